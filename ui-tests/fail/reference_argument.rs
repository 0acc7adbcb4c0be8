#[gproc::service]
trait Logger {
    async fn log(&self, line: &str) -> &'static str;
}

fn main() {}

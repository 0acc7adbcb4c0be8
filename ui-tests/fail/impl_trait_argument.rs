#[gproc::service]
trait Logger {
    async fn log(&self, line: impl Into<String>);
}

fn main() {}

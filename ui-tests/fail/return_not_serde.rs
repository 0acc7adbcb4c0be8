struct Report {
    lines: Vec<String>,
}

#[gproc::service]
trait Reporter {
    async fn report(&self, day: u32) -> Report;
}

fn main() {}

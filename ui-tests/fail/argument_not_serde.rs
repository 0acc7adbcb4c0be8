struct Point {
    x: i64,
    y: i64,
}

#[gproc::service]
trait Plotter {
    async fn plot(&self, at: Point, label: String);
}

fn main() {}

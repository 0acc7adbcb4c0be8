#[gproc::service]
struct Calculator {
    total: i64,
}

fn main() {}

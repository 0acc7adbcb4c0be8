#[gproc::service]
trait Calculator {
    fn add(&self, a: i64, b: i64) -> i64;
    async fn sub(&mut self, a: i64, b: i64) -> i64;
    async fn mul<T>(&self, a: T, b: T) -> T;
}

fn main() {}

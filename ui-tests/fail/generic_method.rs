#[gproc::service]
trait Store {
    async fn put<T: Clone>(&self, value: T);
}

fn main() {}

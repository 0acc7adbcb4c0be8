#[gproc::service]
trait Session {
    async fn new(&self, user: String) -> u64;
    async fn wait_served(&self);
}

fn main() {}

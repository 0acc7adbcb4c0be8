#[gproc::service]
trait Jobs {
    #[gproc(oneway)]
    async fn submit(&self, job: String) -> u64;
}

fn main() {}

#[gproc::service]
trait Jobs {
    #[gproc(one_way)]
    async fn note(&self, line: String);
}

fn main() {}

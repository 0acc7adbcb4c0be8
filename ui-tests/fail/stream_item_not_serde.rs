struct Progress {
    done: u32,
}

#[gproc::service]
trait Jobs {
    async fn progress(&self, job: u64) -> gproc::Stream<Progress>;
}

fn main() {}

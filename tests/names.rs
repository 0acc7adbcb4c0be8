//! Names against real processes: one holder per name, a killed holder's name free at once,
//! racing registrations, a PID that is not the holder never returned, prompt
//! `NoSuchName`, invalid names, listing, sending by name, a `by_name` client following a
//! new holder, and names surviving their directory being removed.
//!
//! Each test runs in a process of its own with a `GPROC_DIR` of its own (see `support`);
//! peers are this binary re-executed in a role, talking to the test through stdin/stdout.

mod support;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use gproc::Error;
use support::{spawn_peer, Peer};

/// Answers who it is.
#[gproc::service]
pub trait Who {
    /// The PID of the process that answers.
    async fn whoami(&self) -> u32;
}

struct Me;

impl Who for Me {
    async fn whoami(&self) -> u32 {
        gproc::pid()
    }
}

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        &[$((stringify!($name), $name as fn())),*]
    };
}

const TESTS: &[(&str, fn())] = tests![
    one_holder_per_name,
    killed_holders_name_is_free_at_once,
    racing_registrations_have_one_winner,
    a_pid_that_is_not_the_holder_is_never_returned,
    no_such_name_is_prompt,
    invalid_names_are_refused,
    several_names_and_listing,
    send_by_name_reaches_the_holder,
    by_name_client_follows_a_new_holder,
    names_survive_the_directory_being_removed,
];

const ROLES: &[(&str, fn())] = &[
    ("hold", role_hold),
    ("race", role_race),
    ("serve", role_serve),
    ("idle", role_idle),
];

fn main() {
    support::run_tests(TESTS, ROLES);
}

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------

fn arg(key: &str) -> String {
    support::role_args()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("role argument {key}= is missing"))
}

/// What `register` gave: `held`, `taken <pid>`, or `error <text>`.
fn outcome(result: gproc::Result<()>) -> String {
    match result {
        Ok(()) => "held".into(),
        Err(Error::NameTaken { pid, .. }) => format!("taken {pid}"),
        Err(e) => format!("error {e}"),
    }
}

/// Registers every `name=` argument, says the outcome of each, then prints every message
/// it receives in the groups `""` and `jobs` as `got <group> <data>` until its stdin
/// closes.
fn role_hold() {
    support::exit_when_stdin_closes();
    support::current_thread_runtime().block_on(async {
        for (key, name) in support::role_args() {
            if key == "name" {
                support::say(&outcome(gproc::register(&name).await));
            }
        }
        let print = |group: &'static str| async move {
            loop {
                let msg = gproc::receive_group(group).await.expect("receive");
                support::say(&format!(
                    "got {} {}",
                    msg.group,
                    String::from_utf8_lossy(&msg.data)
                ));
            }
        };
        tokio::join!(print(""), print("jobs"));
    });
}

/// Brings its endpoint up, says `ready`, waits for `go` on stdin, registers `name=`, says
/// the outcome, and waits for its stdin to close.
fn role_race() {
    let name = arg("name");
    gproc::blocking::listen().expect("listen");
    support::ready();
    assert_eq!(support::read_line().as_deref(), Some("go"));
    support::say(&outcome(gproc::blocking::register(&name)));
    while support::read_line().is_some() {}
}

/// Registers `name=` and serves `Who` until its stdin closes.
fn role_serve() {
    support::exit_when_stdin_closes();
    let name = arg("name");
    support::current_thread_runtime().block_on(async {
        gproc::register(&name).await.expect("register");
        support::ready();
        WhoServer::new(Me).serve().await.expect("serve");
    });
}

/// Listens, and does nothing else until its stdin closes.
fn role_idle() {
    gproc::blocking::listen().expect("listen");
    support::ready();
    while support::read_line().is_some() {}
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn run<F: std::future::Future<Output = ()>>(name: &str, body: F) {
    support::block_on(support::within(Duration::from_secs(60), name, body));
}

fn holder(name: &str) -> Peer {
    let peer = spawn_peer("hold", &[&format!("name={name}")]);
    peer.expect_line("held");
    peer
}

fn is_no_such_name(result: &gproc::Result<u32>, name: &str) -> bool {
    matches!(result, Err(Error::NoSuchName(n)) if n == name)
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

fn one_holder_per_name() {
    run("one_holder", async {
        let first = holder("calc");
        assert_eq!(gproc::lookup("calc").await.expect("lookup"), first.pid());
        // A second process: refused, told who holds it.
        let second = spawn_peer("hold", &["name=calc"]);
        second.expect_line(&format!("taken {}", first.pid()));
        // This process too; and the holder itself may register again.
        match gproc::register("calc").await {
            Err(Error::NameTaken { name, pid }) => {
                assert_eq!((name.as_str(), pid), ("calc", first.pid()));
            }
            other => panic!("expected NameTaken, got {other:?}"),
        }
        assert_eq!(gproc::lookup("calc").await.expect("lookup"), first.pid());
        gproc::register("mine").await.expect("register");
        gproc::register("mine")
            .await
            .expect("registering a name held again is Ok");
    });
}

fn killed_holders_name_is_free_at_once() {
    run("killed_holder", async {
        let mut first = holder("calc");
        assert_eq!(gproc::lookup("calc").await.expect("lookup"), first.pid());
        first.kill(); // SIGKILL, and reaped
        assert!(is_no_such_name(&gproc::lookup("calc").await, "calc"));
        // Free at once: taken at the first try, by this process and then by a new one.
        gproc::register("calc")
            .await
            .expect("a dead holder's name is free");
        assert_eq!(gproc::lookup("calc").await.expect("lookup"), gproc::pid());
        let mut other = holder("other");
        other.kill();
        let again = holder("other");
        assert_eq!(gproc::lookup("other").await.expect("lookup"), again.pid());
    });
}

fn racing_registrations_have_one_winner() {
    run("race", async {
        for round in 0..3 {
            let name = format!("race-{round}");
            let mut racers: Vec<Peer> = (0..8)
                .map(|_| spawn_peer("race", &[&format!("name={name}")]))
                .collect();
            for racer in &racers {
                racer.wait_until_listening(WAIT);
            }
            for racer in &mut racers {
                racer.write_line("go");
            }
            let outcomes: Vec<(u32, String)> = racers
                .iter()
                .map(|r| (r.pid(), r.line_within(WAIT)))
                .collect();
            let winners: Vec<u32> = outcomes
                .iter()
                .filter(|(_, o)| o == "held")
                .map(|(p, _)| *p)
                .collect();
            assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
            let winner = winners[0];
            for (pid, o) in &outcomes {
                if *pid != winner {
                    assert_eq!(o, &format!("taken {winner}"), "round {round}: {outcomes:?}");
                }
            }
            assert_eq!(gproc::lookup(&name).await.expect("lookup"), winner);
        }
    });
}

/// A name file naming a live process that does not hold the lock is what a holder that
/// died leaves when its PID is reused: the file's PID is alive, but it is not the holder.
/// (PID reuse itself cannot be forced cheaply; the registry never trusts the PID in the
/// file, only the lock, so the two cases are the same to it.)
fn a_pid_that_is_not_the_holder_is_never_returned() {
    run("reused_pid", async {
        let bystander = spawn_peer("idle", &[]);
        bystander.wait_until_listening(WAIT);
        let path = support::gproc_dir().join("ghost.name");
        let ticks = proc_start_ticks(bystander.pid());
        // Its right start time, no lock: nobody holds it.
        std::fs::write(&path, format!("{} {ticks}\n", bystander.pid())).expect("write");
        assert!(is_no_such_name(&gproc::lookup("ghost").await, "ghost"));
        assert!(gproc::names().await.expect("names").is_empty());
        // A lock held, but a start time that is not the live process's: not it either.
        std::fs::write(&path, format!("{} {}\n", bystander.pid(), ticks + 1)).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        rustix::fs::flock(file.as_fd(), rustix::fs::FlockOperation::LockShared).expect("lock");
        assert!(is_no_such_name(&gproc::lookup("ghost").await, "ghost"));
        drop(file);
        // The stale file is taken over.
        gproc::register("ghost")
            .await
            .expect("take over a stale name");
        assert_eq!(gproc::lookup("ghost").await.expect("lookup"), gproc::pid());
    });
}

fn proc_start_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    stat[stat.rfind(')').expect(")") + 1..]
        .split_whitespace()
        .nth(19)
        .expect("field 22")
        .parse()
        .expect("ticks")
}

fn no_such_name_is_prompt() {
    run("prompt", async {
        gproc::listen().await.expect("listen");
        let mut dead = holder("was-here");
        dead.kill();
        for name in ["never-held", "was-here"] {
            let started = Instant::now();
            let result = gproc::lookup(name).await;
            let took = started.elapsed();
            println!("lookup({name:?}) = {result:?} in {took:?}");
            assert!(is_no_such_name(&result, name));
            assert!(took < Duration::from_secs(1), "{took:?}");
        }
    });
}

fn invalid_names_are_refused() {
    run("invalid", async {
        let long = "a".repeat(101);
        for name in ["", ".", "..", "a/b", "a b", "näme", "x\0y", long.as_str()] {
            match gproc::register(name).await {
                Err(Error::InvalidName(n)) => assert_eq!(n, name),
                other => panic!("register({name:?}): expected InvalidName, got {other:?}"),
            }
            assert!(
                matches!(gproc::lookup(name).await, Err(Error::InvalidName(_))),
                "lookup({name:?})"
            );
        }
        for name in ["a", "A-z_0.9", "...x", "a".repeat(100).as_str()] {
            gproc::register(name).await.expect(name);
        }
    });
}

fn several_names_and_listing() {
    run("listing", async {
        gproc::register("b").await.expect("register");
        gproc::register("a").await.expect("register");
        let mut peer = spawn_peer("hold", &["name=c", "name=d"]);
        peer.expect_line("held");
        peer.expect_line("held");
        let me = gproc::pid();
        let expected = vec![
            ("a".to_owned(), me),
            ("b".to_owned(), me),
            ("c".to_owned(), peer.pid()),
            ("d".to_owned(), peer.pid()),
        ];
        assert_eq!(gproc::names().await.expect("names"), expected);
        peer.kill();
        assert_eq!(gproc::names().await.expect("names"), expected[..2].to_vec());
    });
}

fn send_by_name_reaches_the_holder() {
    run("send_to", async {
        let peer = holder("inbox");
        gproc::send_to("inbox", "hello").await.expect("send_to");
        peer.expect_line("got  hello");
        gproc::send_group_to("inbox", "jobs", "work")
            .await
            .expect("send_group_to");
        peer.expect_line("got jobs work");
        tokio::task::spawn_blocking(|| gproc::blocking::send_to("inbox", "blocking"))
            .await
            .expect("join")
            .expect("blocking::send_to");
        peer.expect_line("got  blocking");
        assert!(matches!(
            gproc::send_to("nobody", "x").await,
            Err(Error::NoSuchName(_))
        ));
    });
}

fn by_name_client_follows_a_new_holder() {
    run("by_name", async {
        let client = WhoClient::by_name("who").with_timeout(Duration::from_secs(5));
        assert_eq!(client.pid(), 0, "nothing looked up yet");
        assert!(matches!(
            client.whoami().await,
            Err(gproc::RpcError::Transport(Error::NoSuchName(_)))
        ));
        let mut first = spawn_peer("serve", &["name=who"]);
        first.wait_until_listening(WAIT);
        assert_eq!(client.whoami().await.expect("call"), first.pid());
        assert_eq!(client.pid(), first.pid());
        first.kill();
        // The holder is gone: the calls fail, promptly.
        let failed = client.whoami().await;
        assert!(
            matches!(failed, Err(gproc::RpcError::Transport(_))),
            "{failed:?}"
        );
        // A new holder: the same client reaches it.
        let second = spawn_peer("serve", &["name=who"]);
        second.wait_until_listening(WAIT);
        assert_eq!(client.whoami().await.expect("call"), second.pid());
        assert_eq!(client.pid(), second.pid());
    });
}

fn names_survive_the_directory_being_removed() {
    run("recreated", async {
        let peer = holder("durable");
        gproc::register("mine").await.expect("register");
        std::fs::remove_dir_all(support::gproc_dir()).expect("remove the directory");
        // Both come back within the endpoints' upkeep (a quarter of a second).
        let started = Instant::now();
        loop {
            let found = (gproc::lookup("durable").await, gproc::lookup("mine").await);
            if let (Ok(a), Ok(b)) = found {
                assert_eq!((a, b), (peer.pid(), gproc::pid()));
                break;
            }
            assert!(started.elapsed() < WAIT, "names not back: {found:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("names back after {:?}", started.elapsed());
        gproc::send_to("durable", "still here")
            .await
            .expect("send_to");
        peer.expect_line("got  still here");
    });
}

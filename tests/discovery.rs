//! Discovery over loopback only: servers on 127.0.0.2-6 (any 127.x address is local on
//! Linux), a sweep of 127.0.0.0/24 through the real client, and the sweep's
//! parallelism measured with an injected connector (wall time proves nothing here).

mod support;

use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fos::discovery::{self, Connector, Options};
use support::*;

fn list(greet: u16, range: &str) -> std::process::Output {
    let child = support::without_terminal(env!("CARGO_BIN_EXE_fos-client"))
        .args([
            "--list",
            "--scan",
            range,
            "--greet-port",
            &greet.to_string(),
            "--cert",
        ])
        .arg(cert())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_with_deadline(child, Duration::from_secs(60))
}

#[test]
fn sweep_finds_fos_python_and_untrusted_servers() {
    let fx = Fixture::new("disc");
    // one port number free on all the addresses used (they are distinct sockets)
    let greet = free_port("127.0.0.2");
    let a = discoverable(&fx, "127.0.0.2", greet, "", "alpha");
    let b = discoverable(&fx, "127.0.0.3", greet, "", "beta\tbad\nname");
    let c = discoverable(&fx, "127.0.0.4", greet, "", "gamma");
    let other = discoverable(&fx, "127.0.0.5", greet, "other-", "impostor");
    let py = PythonServer::launch(
        &fx,
        "127.0.0.6",
        &["--greet-port", &greet.to_string(), "--name", "legacyhost"],
        &cert(),
        &data_dir().join("key.pem"),
    );
    {
        let line = &py.line;
        assert!(line.starts_with("listening"), "{line}");
    }
    let out = list(greet, "127.0.0.0/24");
    // stopped before the sweeps below, which must not find it
    drop(py);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let want = format!(
        "127.0.0.2\t{}\talpha\tfos\t-\n127.0.0.3\t{}\tbeta\\tbad\\nname\tfos\t-\n127.0.0.4\t{}\tgamma\tfos\t-\n127.0.0.5\t{}\timpostor\tuntrusted\t-\n127.0.0.6\t5001\tlegacyhost\tpython\t-\n",
        a.addr.port(),
        b.addr.port(),
        c.addr.port(),
        other.addr.port()
    );
    assert_eq!(stdout(&out), want);
    let report = stderr(&out);
    assert!(
        report.contains("swept 254 addresses") && report.contains("5 servers"),
        "{report}"
    );

    // a single address and a last-octet range
    let out = list(greet, "127.0.0.3");
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = list(greet, "127.0.0.2-4");
    assert_eq!(stdout(&out).lines().count(), 3);
}

#[test]
fn a_cluster_is_listed_and_used_as_one() {
    let fx = Fixture::new("cluster-disc");
    let greet = free_port("127.0.0.2");
    // two servers over one storage in cluster "team", and a lone one
    let in_team = |ip, name| {
        BinServer::launch(
            &fx,
            ip,
            0,
            Some(greet),
            "",
            &["-q", "--name", name, "--cluster", "team"],
        )
    };
    let a = in_team("127.0.0.2", "a");
    let b = in_team("127.0.0.3", "b");
    let lone = discoverable(&fx, "127.0.0.4", greet, "", "lone");
    let out = list(greet, "127.0.0.2-4");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "127.0.0.2\t{}\ta\tfos\tteam\n127.0.0.3\t{}\tb\tfos\tteam\n127.0.0.4\t{}\tlone\tfos\t-\n",
            a.addr.port(),
            b.addr.port(),
            lone.addr.port()
        )
    );
    // --cluster: the client finds the members and uses one of them
    std::fs::write(fx.local().join("f.txt"), "hello").unwrap();
    let client = |cluster: &str, script: &str| {
        let mut cmd = without_terminal(env!("CARGO_BIN_EXE_fos-client"));
        cmd.current_dir(fx.local())
            .env("FOS_PASSWORD", "p")
            .args(["--user", "u", "--scan", "127.0.0.2-4", "--greet-port"])
            .arg(greet.to_string())
            .args(["--cluster", cluster, "--cert"])
            .arg(cert())
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        wait_with_deadline(cmd.spawn().unwrap(), Duration::from_secs(60))
    };
    let out = client("team", "put f.txt; ls");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("f.txt"), "{}", stdout(&out));
    assert_eq!(
        std::fs::read(fx.storage().join("u/f.txt")).unwrap(),
        b"hello"
    );
    let out = client("nope", "ls");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no server of cluster"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_server_found_and_bad_ranges() {
    let greet = free_port("127.0.0.1");
    let out = list(greet, "127.0.1.0/24");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no server found"), "{}", stderr(&out));
    assert!(stderr(&out).contains("swept 254 addresses"));
    for bad in ["127.0.0.0/8", "::1", "not-an-address", "127.0.0.9-3"] {
        let out = list(greet, bad);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
    }
    let out = list(greet, "127.0.0.0/15");
    assert!(stderr(&out).contains("more than a /16"));
}

/// Counts connects in flight and fails them after a pause, like unanswered addresses.
struct Counting {
    now: AtomicUsize,
    peak: AtomicUsize,
    total: AtomicUsize,
}

impl Connector for Counting {
    fn connect(&self, _addr: SocketAddr, _timeout: Duration) -> std::io::Result<TcpStream> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        self.total.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(40));
        self.now.fetch_sub(1, Ordering::SeqCst);
        Err(std::io::ErrorKind::TimedOut.into())
    }
}

#[test]
fn sweep_runs_a_bounded_pool_of_connects_in_parallel() {
    let cfg = fos::client::ClientConfig {
        cert: cert(),
        ..Default::default()
    };
    let addrs = discovery::parse_range("127.0.0.0/24").unwrap();
    for threads in [8, 64, 256] {
        let counting = Counting {
            now: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
        };
        let opts = Options {
            threads,
            ..Options::default()
        };
        let report = discovery::sweep(&cfg, &addrs, &opts, &counting, &|_, _| {}).unwrap();
        let peak = counting.peak.load(Ordering::SeqCst);
        assert_eq!(report.tried, 254);
        assert_eq!(
            counting.total.load(Ordering::SeqCst),
            254,
            "every address tried once"
        );
        assert!(
            peak <= threads.min(254),
            "threads={threads}: peak {peak} over the bound"
        );
        // all workers overlap while each connect waits
        assert!(
            peak >= threads.min(254) * 3 / 4,
            "threads={threads}: only {peak} in flight"
        );
        assert!(report.found.is_empty());
    }
}

#[test]
fn no_discovery_flag_closes_the_greet_port() {
    let fx = Fixture::new("nodisc");
    let server = BinServer::start(&fx, &["-q", "--no-discovery"]);
    assert!(server.greet.is_none());
}

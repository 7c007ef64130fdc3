//! Two fos servers over one storage: the two-server suite. Server A listens on
//! 127.0.0.2 and server B on 127.0.0.3, each the real `fos-server` binary, both over
//! the same files. In `make test` that is one plain directory; `make test-cluster`
//! runs the same suite with `FOS_CLUSTER_MOUNTS="DIR_A DIR_B"`, two FUSE mounts of one
//! replicated GlusterFS volume, A serving the first and B the second.
//!
//! What must hold: a file put through one is current through the other at once;
//! concurrent puts of one name leave one whole version; a get while the file is
//! replaced through the other server is whole; an upload whose client froze through
//! A resumes through B from its partial (never from zero, never with a second
//! partial); a client whose server is killed finishes through the other, resumed;
//! the quota, `passwd` and the login throttle hold across both; one server sweeps.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fos::protocol::Request;
use fos::protocol::frame::{Kind, write_frame};
use support::*;

const MIB: usize = 1 << 20;

/// One test's corner of the storage, as each server sees it, and a local directory
/// for the client's files.
struct Cluster {
    /// `<mount>/<test>` for A and for B (the same directory through two mounts).
    base: [PathBuf; 2],
    local: TempDir,
    /// The plain directory standing in for the volume, without Gluster.
    _plain: Option<TempDir>,
}

impl Cluster {
    fn new(tag: &str) -> Cluster {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "fos-cluster-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let (mounts, plain) = match std::env::var("FOS_CLUSTER_MOUNTS") {
            Ok(v) => {
                let m: Vec<PathBuf> = v.split_whitespace().map(PathBuf::from).collect();
                assert_eq!(m.len(), 2, "FOS_CLUSTER_MOUNTS names two directories");
                ([m[0].clone(), m[1].clone()], None)
            }
            Err(_) => {
                let t = TempDir::new("cluster");
                ([t.path().to_path_buf(), t.path().to_path_buf()], Some(t))
            }
        };
        let base = [mounts[0].join(&name), mounts[1].join(&name)];
        fs::create_dir_all(base[0].join("storage")).unwrap();
        write_private(&base[0].join("users.txt"), USERS);
        // the other mount sees it at once (entry and attribute caches are off)
        assert!(
            base[1].join("users.txt").exists(),
            "the mounts share nothing"
        );
        Cluster {
            base,
            local: TempDir::new("cluster-local"),
            _plain: plain,
        }
    }

    fn local(&self) -> &Path {
        self.local.path()
    }

    /// `fos-client --no-fsync -c SCRIPT` as user u against `servers`, in the local
    /// directory; not started yet.
    fn client(&self, servers: &str, script: &str) -> Command {
        client_command(
            self.local(),
            servers,
            "u",
            "p",
            &cert(),
            &["--no-fsync", "-c", script],
        )
    }

    /// The user `u`'s directory, as server `i` sees it.
    fn user_dir(&self, i: usize) -> PathBuf {
        self.base[i].join("storage/u")
    }

    /// Starts server `i` (0: A on 127.0.0.2, 1: B on 127.0.0.3) with `extra` flags.
    fn server(&self, i: usize, extra: &[&str]) -> Node {
        let mut cmd = without_terminal(env!("CARGO_BIN_EXE_fos-server"));
        cmd.args([
            "--bind",
            ["127.0.0.2", "127.0.0.3"][i],
            "--port",
            "0",
            "--no-discovery",
            "--no-fsync",
            "--name",
            ["node-a", "node-b"][i],
        ])
        .arg("--root")
        .arg(self.base[i].join("storage"))
        .arg("--users")
        .arg(self.base[i].join("users.txt"))
        .arg("--cert")
        .arg(cert())
        .arg("--key")
        .arg(data_dir().join("key.pem"))
        .args(extra);
        Node::spawn(cmd)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base[0]);
    }
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// A running `fos-server` and the log it writes (collected as it comes, so the
/// server never blocks on a full pipe).
struct Node {
    bin: BinServer,
    log: Arc<Mutex<String>>,
}

impl Node {
    fn spawn(cmd: Command) -> Node {
        let mut bin = BinServer::spawn(cmd);
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = bin.child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Node { bin, log }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.bin.addr
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL, as a crash.
    fn kill(&mut self) {
        self.bin.child.kill().unwrap();
        self.bin.child.wait().unwrap();
    }
}

fn lib_cfg() -> fos::client::ClientConfig {
    fos::client::ClientConfig {
        cert: cert(),
        fsync: false,
        ..Default::default()
    }
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A partial upload's data file (`.fos-part-HEX`), not its sidecar or marker.
fn is_partial_data(name: &str) -> bool {
    name.strip_prefix(".fos-part-")
        .is_some_and(|rest| !rest.contains('.'))
}

/// Bytes in the partial uploads (not their sidecars) of `dir`.
fn partial_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| is_partial_data(&e.file_name().to_string_lossy()))
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

/// The MiB the client's transfer summary (`SRC -> DST: 17.0 MiB in 1.52 s`) says the
/// last try moved: less than the file when it resumed.
fn moved_mib(out: &std::process::Output) -> f64 {
    let text = format!("{}{}", stdout(out), stderr(out));
    text.lines()
        .filter(|l| l.contains(" -> ") && l.contains(" in "))
        .find_map(|l| {
            let (_, rest) = l.rsplit_once(": ")?;
            let (n, unit) = rest.split_once(' ')?;
            let n: f64 = n.parse().ok()?;
            match unit.split(' ').next()? {
                "GiB" => Some(n * 1024.0),
                "MiB" => Some(n),
                "KiB" => Some(n / 1024.0),
                "B" => Some(n / 1048576.0),
                _ => None,
            }
        })
        .unwrap_or_else(|| panic!("no transfer summary in: {text}"))
}

#[test]
fn a_put_through_a_is_current_through_b_at_once() {
    let c = Cluster::new("current");
    let (a, b) = (c.server(0, &["-q"]), c.server(1, &["-q"]));
    let mut ra = connect(a.addr(), "u", "p").unwrap();
    let mut rb = connect(b.addr(), "u", "p").unwrap();
    let cfg = lib_cfg();
    let mut current = 0;
    for i in 0..20u8 {
        // same name, a new version each time, of a size that varies a little
        let data = content(256 * 1024 + usize::from(i) * 4096, i);
        let src = c.local().join("v.bin");
        fs::write(&src, &data).unwrap();
        ra.put(&src, "v.bin", Default::default()).unwrap();
        let out = c.local().join("got.bin");
        rb.get(&cfg, "v.bin", &out, Default::default()).unwrap();
        if fs::read(&out).unwrap() == data {
            current += 1;
        }
    }
    assert_eq!(
        current, 20,
        "gets through B that saw the version put through A"
    );
}

#[test]
fn concurrent_puts_of_one_name_through_both_leave_one_whole_version() {
    let c = Cluster::new("samename");
    let (a, b) = (c.server(0, &["-q"]), c.server(1, &["-q"]));
    let versions = [content(4 * MIB, 41), content(4 * MIB, 42)];
    let srcs = [c.local().join("x.bin"), c.local().join("y.bin")];
    for (src, data) in srcs.iter().zip(&versions) {
        fs::write(src, data).unwrap();
    }
    for round in 0..5 {
        std::thread::scope(|scope| {
            for (addr, src) in [a.addr(), b.addr()].into_iter().zip(&srcs) {
                scope.spawn(move || {
                    let mut r = connect(addr, "u", "p").unwrap();
                    r.put(src, "same.bin", Default::default()).unwrap();
                    r.close();
                });
            }
        });
        for i in 0..2 {
            let got = fs::read(c.user_dir(i).join("same.bin")).unwrap();
            assert!(
                versions.contains(&got),
                "round {round}: the stored file is not one whole version"
            );
        }
    }
    assert_eq!(names(&c.user_dir(0)), vec!["same.bin"], "no partial left");
}

#[test]
fn a_get_while_the_file_is_replaced_through_the_other_server_is_whole() {
    let c = Cluster::new("replace");
    let (a, b) = (c.server(0, &["-q"]), c.server(1, &["-q"]));
    let versions = [content(8 * MIB, 51), content(8 * MIB, 52)];
    let srcs = [c.local().join("x.bin"), c.local().join("y.bin")];
    for (src, data) in srcs.iter().zip(&versions) {
        fs::write(src, data).unwrap();
    }
    let mut ra = connect(a.addr(), "u", "p").unwrap();
    ra.put(&srcs[0], "f.bin", Default::default()).unwrap();
    let (gets, whole) = std::thread::scope(|scope| {
        let srcs = &srcs;
        let writer = scope.spawn(move || {
            for n in 1..=12 {
                ra.put(&srcs[n % 2], "f.bin", Default::default()).unwrap();
            }
        });
        let mut rb = connect(b.addr(), "u", "p").unwrap();
        let cfg = lib_cfg();
        let (mut gets, mut whole) = (0, 0);
        let out = c.local().join("got.bin");
        while !writer.is_finished() && gets < 200 {
            gets += 1;
            rb.get(&cfg, "f.bin", &out, Default::default())
                .unwrap_or_else(|e| panic!("get {gets} while the file was replaced: {e}"));
            if versions.contains(&fs::read(&out).unwrap()) {
                whole += 1;
            }
        }
        writer.join().unwrap();
        (gets, whole)
    });
    assert!(gets > 0);
    assert_eq!(whole, gets, "every get returned one whole version");
}

/// A raw session to `addr` that starts a resumable upload of `src` as `name` and
/// sends its first `send` bytes, then goes silent with the connection open: a client
/// that froze (a laptop gone to sleep). Returned so that the caller keeps it open.
fn frozen_upload(
    addr: std::net::SocketAddr,
    src: &Path,
    name: &str,
    send: usize,
) -> fos::client::ClientTls {
    let data = fs::read(src).unwrap();
    let mut s = raw_tls(addr);
    login(&mut s);
    let (kind, _) = request(
        &mut s,
        &Request::Put {
            path: name.into(),
            size: data.len() as u64,
            mtime: mtime_secs(src),
            no_clobber: false,
            resume: true,
        },
    );
    assert_eq!(kind, Kind::Ok);
    for chunk in data[..send].chunks(256 * 1024) {
        write_frame(&mut s, Kind::Data, chunk).unwrap();
    }
    std::io::Write::flush(&mut s).unwrap();
    s
}

/// Waits (bounded) until the partials in `dir` hold at least `bytes`.
fn wait_for_partial(dir: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while partial_bytes(dir) < bytes {
        assert!(
            Instant::now() < deadline,
            "the upload did not reach the disk"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where the takeover tests start: A (a long transfer timeout: only a takeover can
/// free the partial in time) and B over `c`, `mib` MiB of content (`seed`) in the
/// local `up.bin`, and an upload of it through A that froze after a third, half of
/// which is on A's disk. Returns A, B, the content and the frozen connection.
fn frozen_through_a(
    c: &Cluster,
    mib: usize,
    seed: u8,
) -> (Node, Node, Vec<u8>, fos::client::ClientTls) {
    let a = c.server(0, &["--transfer-timeout", "600"]);
    let b = c.server(1, &[]);
    let data = content(mib * MIB, seed);
    let src = c.local().join("up.bin");
    fs::write(&src, &data).unwrap();
    let frozen = frozen_upload(a.addr(), &src, "up.bin", mib / 3 * MIB);
    wait_for_partial(&c.user_dir(0), (mib / 6 * MIB) as u64);
    (a, b, data, frozen)
}

#[test]
fn an_upload_frozen_through_a_is_resumed_through_b() {
    let c = Cluster::new("frozen");
    let (_a, b, data, frozen) = frozen_through_a(&c, 48, 61);
    let started = Instant::now();
    let out = run(c.client(&b.addr().to_string(), "reput up.bin"));
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(took < Duration::from_secs(60), "took {took:?}");
    let moved = moved_mib(&out);
    assert!(
        moved < 48.0 - 4.0,
        "resumed from the partial, not from zero: {moved} MiB"
    );
    assert_same(
        &fs::read(c.user_dir(1).join("up.bin")).unwrap(),
        &data,
        "resumed upload",
    );
    assert_eq!(
        names(&c.user_dir(0)),
        vec!["up.bin"],
        "no second partial, no sidecar, no marker left"
    );
    assert!(
        b.log().contains("asked to let go") && b.log().contains("node-a at 127.0.0.2"),
        "B names the holder it asked: {}",
        b.log()
    );
    drop(frozen);
}

#[test]
fn a_resume_rides_out_an_upload_held_by_a_stopped_server() {
    let c = Cluster::new("stopped");
    let (a, b, data, frozen) = frozen_through_a(&c, 24, 63);
    // A stops altogether (SIGSTOP): it holds the partial and cannot hear B's request
    let pid = a.bin.child.id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success());
    };
    signal("-STOP");
    let client = c
        .client(&b.addr().to_string(), "reput up.bin")
        .spawn()
        .unwrap();
    let mut client = client;
    let errors = PipeWatch::new(client.stderr.take().unwrap());
    // B answers in-use and the client waits its backoff; A comes back meanwhile
    wait_until(
        "the client to be told to wait",
        Duration::from_secs(30),
        || errors.contains("trying again"),
    );
    signal("-CONT");
    let mut out = wait_with_deadline(client, Duration::from_secs(60));
    out.stderr = errors.finish();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("still running") && stderr(&out).contains("trying again"),
        "the client was told to wait and did: {}",
        stderr(&out)
    );
    let moved = moved_mib(&out);
    assert!(moved < 24.0 - 2.0, "resumed, not restarted: {moved} MiB");
    assert_same(
        &fs::read(c.user_dir(1).join("up.bin")).unwrap(),
        &data,
        "resumed upload",
    );
    assert_eq!(names(&c.user_dir(0)), vec!["up.bin"], "no second partial");
    drop(frozen);
}

#[test]
fn a_frozen_upload_lets_go_of_its_partial_after_the_transfer_timeout() {
    let c = Cluster::new("timeout");
    let a = c.server(0, &["--transfer-timeout", "2"]);
    let data = content(4 * MIB, 62);
    let src = c.local().join("up.bin");
    fs::write(&src, &data).unwrap();
    let frozen = frozen_upload(a.addr(), &src, "up.bin", 2 * MIB);
    wait_for_partial(&c.user_dir(0), MIB as u64);
    let part = fs::read_dir(c.user_dir(1))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| is_partial_data(&p.file_name().unwrap().to_string_lossy()))
        .expect("a partial");
    let file = fs::File::open(&part).unwrap();
    assert!(file.try_lock().is_err(), "held while the upload runs");
    let deadline = Instant::now() + Duration::from_secs(15);
    while file.try_lock().is_err() {
        assert!(Instant::now() < deadline, "still held after the timeout");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(part.exists(), "kept for a resume");
    // the connection's end is logged just after it lets go
    let deadline = Instant::now() + Duration::from_secs(5);
    while !a.log().contains("sent nothing during an upload") {
        assert!(Instant::now() < deadline, "{}", a.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(frozen);
}

#[test]
fn the_quota_holds_across_servers() {
    let c = Cluster::new("quota");
    let a = c.server(0, &["-q", "--quota", "100M"]);
    let b = c.server(1, &["-q", "--quota", "100M"]);
    let data = content(60 * MIB, 71);
    for round in 0..3 {
        // two 60 MiB uploads begin at once, one through each server: the second to
        // ask is refused before a byte is sent, because the first reserved its size
        let mut sa = raw_tls(a.addr());
        login(&mut sa);
        let mut sb = raw_tls(b.addr());
        login(&mut sb);
        let put = |name: &str| Request::Put {
            path: name.into(),
            size: data.len() as u64,
            mtime: 1000,
            no_clobber: false,
            resume: false,
        };
        let (ka, _) = request(&mut sa, &put("a.bin"));
        let (kb, fb) = request(&mut sb, &put("b.bin"));
        assert_eq!(ka, Kind::Ok, "round {round}");
        assert_eq!(kb, Kind::Error, "round {round}: both accepted");
        assert_eq!(String::from_utf8_lossy(&fb[0]), "quota");
        for chunk in data.chunks(256 * 1024) {
            write_frame(&mut sa, Kind::Data, chunk).unwrap();
        }
        let sha = ring::digest::digest(&ring::digest::SHA256, &data);
        write_frame(&mut sa, Kind::End, sha.as_ref()).unwrap();
        std::io::Write::flush(&mut sa).unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            fos::protocol::frame::read_frame(&mut sa, &mut buf).unwrap(),
            Kind::Ok
        );
        // and the stored file counts through the other server
        let (k, f) = request(&mut sb, &put("c.bin"));
        assert_eq!(k, Kind::Error);
        assert_eq!(String::from_utf8_lossy(&f[0]), "quota");
        let (k, _) = request(
            &mut sb,
            &Request::Rm {
                path: "a.bin".into(),
                recursive: false,
            },
        );
        assert_eq!(k, Kind::Ok);
    }
    assert!(names(&c.user_dir(0)).is_empty(), "no partial left");
}

#[test]
fn concurrent_passwd_through_both_servers_keeps_both_changes() {
    let c = Cluster::new("passwd");
    let (a, b) = (c.server(0, &["-q"]), c.server(1, &["-q"]));
    let mut old = ["p".to_string(), "p2".to_string()];
    for round in 0..3 {
        let new = [format!("u-new-{round}"), format!("u2-new-{round}")];
        std::thread::scope(|scope| {
            for (i, (addr, user)) in [(a.addr(), "u"), (b.addr(), "u2")].into_iter().enumerate() {
                let (old, new) = (&old[i], &new[i]);
                scope.spawn(move || {
                    let mut r = connect(addr, user, old).unwrap();
                    r.passwd(old, new).unwrap();
                    r.close();
                });
            }
        });
        for (addr, i) in [(a.addr(), 0), (b.addr(), 1), (b.addr(), 0), (a.addr(), 1)] {
            let user = ["u", "u2"][i];
            assert!(
                connect(addr, user, &new[i]).is_ok(),
                "round {round}: {user}'s new password was lost"
            );
        }
        old = new;
    }
}

#[test]
fn failed_logins_count_across_servers() {
    let c = Cluster::new("throttle");
    let (a, b) = (c.server(0, &["-q"]), c.server(1, &["-q"]));
    let refused = |addr, pw: &str| match connect(addr, "u", pw) {
        Err(fos::Error::Remote(code, _)) => code,
        other => panic!("expected a refusal, got {other:?}"),
    };
    use fos::protocol::ErrorCode;
    // five wrong passwords for u, split over the two servers
    for _ in 0..3 {
        assert_eq!(refused(a.addr(), "wrong"), ErrorCode::Auth);
    }
    for _ in 0..2 {
        assert_eq!(refused(b.addr(), "wrong"), ErrorCode::Auth);
    }
    // locked out on both, even with the right password
    assert_eq!(refused(a.addr(), "p"), ErrorCode::Throttled);
    assert_eq!(refused(b.addr(), "p"), ErrorCode::Throttled);
    assert!(connect(b.addr(), "t", "tp").is_ok(), "another user is not");
}

#[test]
fn one_server_sweeps_the_stale_partials_of_both() {
    let c = Cluster::new("sweep");
    let dir = c.user_dir(0);
    fs::create_dir_all(&dir).unwrap();
    // two stale partials left by a crash long ago
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    for n in ["0123456789abcdef", "fedcba9876543210"] {
        let part = dir.join(format!(".fos-part-{n}"));
        fs::write(&part, b"stale").unwrap();
        fs::File::options()
            .write(true)
            .open(&part)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let (a, b) = (
        c.server(0, &["--partial-max-age", "3600"]),
        c.server(1, &["--partial-max-age", "3600"]),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !names(&c.user_dir(1)).is_empty() {
        assert!(Instant::now() < deadline, "not swept");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let elected = [a.log(), b.log()]
        .iter()
        .filter(|l| l.contains("this server sweeps stale partial uploads"))
        .count();
    assert_eq!(elected, 1, "A: {}\nB: {}", a.log(), b.log());
}

/// A TCP relay on 127.0.0.1 in front of `upstream`, at most `rate` bytes a second in
/// each direction, counting what it relays: it slows a transfer enough for a server
/// to be killed in the middle of it, and tells which server the client chose.
struct Relay {
    addr: std::net::SocketAddr,
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    fn start(upstream: std::net::SocketAddr, rate: u64) -> Relay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = Arc::clone(&bytes);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                // the upstream refusing (its server killed): the client sees a close
                let Ok(server) = std::net::TcpStream::connect(upstream) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let count = Arc::clone(&count);
                    std::thread::spawn(move || relay(from, to, rate, &count));
                }
            }
        });
        Relay { addr, bytes }
    }

    fn relayed(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

fn relay(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    rate: u64,
    count: &std::sync::atomic::AtomicU64,
) {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    let mut total = 0u64;
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
        total += n as u64;
        count.fetch_add(n as u64, Ordering::Relaxed);
        let due = Duration::from_secs_f64(total as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Size of the failover transfers: large enough to kill a server in the middle of
/// one, small enough for `make test` on two cores (`make test-cluster` sets
/// `FOS_CLUSTER_FAILOVER_MIB=1024`).
fn failover_size() -> usize {
    std::env::var("FOS_CLUSTER_FAILOVER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
        * MIB
}

/// Relays' rate: the whole transfer takes a few seconds.
const RELAY_RATE: u64 = 64 << 20;

/// Runs `script` with the client given both servers (through relays), kills the
/// server that carries the transfer once a quarter of `size` has gone through it,
/// and returns the client's output, how long it took and which server survived.
fn kill_the_chosen_server(
    c: &Cluster,
    nodes: &mut [Node; 2],
    size: usize,
    script: &str,
) -> (std::process::Output, Duration, usize) {
    let relays = [
        Relay::start(nodes[0].addr(), RELAY_RATE),
        Relay::start(nodes[1].addr(), RELAY_RATE),
    ];
    let servers = format!("{},{}", relays[0].addr, relays[1].addr);
    let started = Instant::now();
    let child = c.client(&servers, script).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        if let Some(i) = (0..2).find(|&i| relays[i].relayed() >= (size / 4) as u64) {
            break i;
        }
        assert!(Instant::now() < deadline, "the transfer did not get going");
        std::thread::sleep(Duration::from_millis(5));
    };
    nodes[victim].kill();
    let out = wait_with_deadline(child, Duration::from_secs(120));
    (out, started.elapsed(), 1 - victim)
}

/// What a failover run must show: the client succeeded within a minute, said it
/// reconnected, and moved less than nine tenths of the `size` bytes (it resumed).
#[track_caller]
fn assert_finished_resumed(out: std::process::Output, took: Duration, size: usize) {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(stderr(&out).contains("reconnecting"), "{}", stderr(&out));
    // killed a quarter of the way: the rest came through the other server
    let moved = moved_mib(&out);
    let whole = (size / MIB) as f64;
    assert!(
        moved < whole * 0.9,
        "resumed, not restarted: {moved} of {whole} MiB"
    );
}

#[test]
fn a_put_whose_server_is_killed_finishes_through_the_other_resumed() {
    let c = Cluster::new("failover-put");
    let mut nodes = [c.server(0, &[]), c.server(1, &[])];
    let size = failover_size();
    let src = c.local().join("big.bin");
    fs::write(&src, content(size, 81)).unwrap();
    let (out, took, survivor) = kill_the_chosen_server(&c, &mut nodes, size, "put big.bin");
    assert_finished_resumed(out, took, size);
    assert!(
        nodes[survivor].log().contains("resuming"),
        "{}",
        nodes[survivor].log()
    );
    let dir = c.user_dir(survivor);
    assert_eq!(sha_file(&dir.join("big.bin")), sha_file(&src), "byte-exact");
    assert_eq!(names(&dir), vec!["big.bin"], "no partial left");
}

#[test]
fn a_get_whose_server_is_killed_finishes_through_the_other_resumed() {
    let c = Cluster::new("failover-get");
    let size = failover_size();
    fs::create_dir_all(c.user_dir(0)).unwrap();
    let stored = c.user_dir(0).join("big.bin");
    fs::write(&stored, content(size, 82)).unwrap();
    let mut nodes = [c.server(0, &[]), c.server(1, &[])];
    let (out, took, _) = kill_the_chosen_server(&c, &mut nodes, size, "get big.bin");
    assert_finished_resumed(out, took, size);
    assert_eq!(
        sha_file(&c.local().join("big.bin")),
        sha_file(&stored),
        "byte-exact"
    );
    assert!(!c.local().join(".big.bin.fos-partial").exists());
}

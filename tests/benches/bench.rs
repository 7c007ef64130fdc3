//! `make bench`: measures fos on 127.0.0.1 and prints one table (a benchmark, not a
//! test: it asserts nothing). Built in release mode by `cargo bench`.
//!
//! Rows: the bare rustls stream between two threads (the ceiling of this stack on this
//! machine), with and without SHA-256 on both ends, and hashed with a file read at one
//! end and written at the other; fos put/get of 1 GiB with their ratio to the hashed
//! ceiling (and, in brackets, to the file-to-file stream), with and without fsync; 1,000 puts of 4 KiB; the `ls`
//! round trip; 100 concurrent clients; the server's peak RSS. The server is the real
//! `fos-server` binary, so its RSS is its own. Then the Python tool's protocol, through
//! the repo's Python client peer against fos-server and the Python server peer.
//! `FOS_BENCH_MIB` shrinks the big transfers for a quick look. Last come the sync
//! scenarios (see `sync_bench`), beside rsync and Unison under `make bench-peers`.
//! `make bench-cluster` (`FOS_BENCH_CLUSTER`) prints instead the rows of two servers
//! over one GlusterFS volume beside the volume's own rates.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

mod sync_bench;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

/// What the bare TLS stream does at each end besides TLS.
#[derive(Clone, Copy, PartialEq)]
enum Ends {
    /// Nothing: the sender sends one block over and over.
    Bare,
    /// SHA-256 of every byte on both ends (the ceiling for a verified transfer).
    Hashed,
    /// Hashed, and the sender reads a file while the receiver writes one, written
    /// behind as fos writes: what any verified file-to-file transfer costs here.
    Files,
}

/// The bare TLS stream: one thread sends `total` bytes, the other receives them.
fn bare_rustls(total: u64, ends: Ends, files: (&Path, &Path)) -> f64 {
    let hash = ends != Ends::Bare;
    let (src, dst) = (files.0.to_path_buf(), files.1.to_path_buf());
    let certs = fos::tls::load_certs(&data_dir().join("cert.pem")).unwrap();
    let key = fos::tls::load_key(&data_dir().join("key.pem")).unwrap();
    let server_cfg = fos::tls::server_config(certs, key, &data_dir()).unwrap();
    let trust = fos::tls::Trust::pinned_file(&data_dir().join("cert.pem")).unwrap();
    let client_cfg = fos::tls::client_config(&trust, true).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sender = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_nodelay(true).unwrap();
        let conn = rustls::ServerConnection::new(server_cfg).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let mut block = vec![0x5au8; fos::internals::transfer::CHUNK];
        let mut file = (ends == Ends::Files).then(|| std::fs::File::open(&src).unwrap());
        let mut ctx = fos::internals::transfer::sha();
        let mut sent = 0u64;
        while sent < total {
            if let Some(f) = &mut file {
                f.read_exact(&mut block).unwrap();
            }
            if hash {
                ctx.update(&block);
            }
            s.write_all(&block).unwrap();
            sent += block.len() as u64;
        }
        s.flush().unwrap();
        let _ = fos::internals::transfer::finish(ctx);
    });
    let tcp = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    let mut s = fos::client::handshake(
        tcp,
        client_cfg,
        ServerName::try_from("localhost").unwrap(),
        Duration::from_secs(10),
    )
    .unwrap();
    let mut buf = vec![0u8; fos::internals::transfer::CHUNK];
    let mut ctx = fos::internals::transfer::sha();
    let mut out = (ends == Ends::Files).then(|| {
        let f = std::fs::File::create(&dst).unwrap();
        fos::internals::writeback::WriteBehind::buffered(f, 0, total)
    });
    let mut got = 0u64;
    while got < total {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        if hash {
            ctx.update(&buf[..n]);
        }
        if let Some(out) = &mut out {
            out.write_all(&buf[..n]).unwrap();
        }
        got += n as u64;
    }
    if let Some(out) = &mut out {
        out.flush().unwrap();
    }
    let elapsed = started.elapsed();
    sender.join().unwrap();
    mib_per_s(total, elapsed)
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(root: &Path, users: &Path, fsync: bool) -> Server {
        let mut flags = vec![
            "--bind",
            "127.0.0.1",
            "--no-discovery",
            "--max-sessions-per-ip",
            "512",
            // a hundred clients from this one address log in at once
            "--max-prelogin-per-ip",
            "512",
            "--max-prelogin",
            "512",
        ];
        if !fsync {
            flags.push("--no-fsync");
        }
        Server::spawn(&flags, root, users)
    }

    /// Runs the real `fos-server` with `flags` (port 0 unless given) and waits for its
    /// "listening on" line.
    fn spawn(flags: &[&str], root: &Path, users: &Path) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fos-server"));
        cmd.args(["-q", "--port", "0"])
            .args(flags)
            .arg("--root")
            .arg(root)
            .arg("--users")
            .arg(users)
            .arg("--cert")
            .arg(data_dir().join("cert.pem"))
            .arg("--key")
            .arg(data_dir().join("key.pem"));
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("listening on ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Server { child, addr }
    }

    /// Peak resident set size, from /proc.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

fn connect(addr: SocketAddr) -> fos::client::Remote {
    fos::client::Remote::connect(&no_fsync(), &addr.to_string(), "u", "p").unwrap()
}

fn no_fsync() -> fos::client::ClientConfig {
    fos::client::ClientConfig {
        cert: data_dir().join("cert.pem"),
        fsync: false,
        ..Default::default()
    }
}

fn fs_type(dir: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Flushes a file the last step wrote, so the next measurement does not pay for its
/// write-back.
fn settle(path: &Path) {
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.sync_all();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The Python tool's protocol, measured with the repo's Python client peer (its fixed
/// sleep before each data connection set to 0) against fos-server and, in the same run,
/// against the Python server peer: the login (connect, TLS, `fs` and credentials as two
/// records, Nagle on) and put/get of 1 MiB and 100 MiB. Each figure is the median of
/// five runs, taken by the peer itself (command sent to status read), so Python's
/// start-up is not in it.
fn legacy_rows(dir: &Path, users: &Path, row: &dyn Fn(&str, String, String)) {
    let Ok(py) = Command::new("python3").arg("--version").output() else {
        println!("(legacy rows: python3 not found)");
        return;
    };
    if !py.status.success() {
        return;
    }
    let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers");
    let local = dir.join("legacy-local");
    std::fs::create_dir_all(&local).unwrap();
    let sizes = [
        ("1 MiB", "one.bin", 1u64 << 20),
        ("100 MiB", "hundred.bin", 100 << 20),
    ];
    for (_, name, size) in sizes {
        let block: Vec<u8> = (0..size as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        std::fs::write(local.join(name), block).unwrap();
    }
    let commands: Vec<String> = sizes
        .iter()
        .flat_map(|(_, n, _)| [format!("put {n}"), format!("get {n}")])
        .collect();
    // one sitting: fos-server and the Python server peer, each run five times in turn
    let fos_root = dir.join("legacy-fos");
    let fos = Server::spawn(
        &["--bind", "127.0.0.1", "--no-discovery", "--no-fsync"],
        &fos_root,
        users,
    );
    let py_root = dir.join("legacy-py");
    std::fs::create_dir_all(py_root.join("u")).unwrap();
    let mut py = Command::new("python3")
        .arg(peers.join("legacy_server.py"))
        .args(["--bind", "127.0.0.1", "--cert"])
        .arg(data_dir().join("cert.pem"))
        .arg("--key")
        .arg(data_dir().join("key.pem"))
        .arg("--users")
        .arg(users)
        .arg("--root")
        .arg(&py_root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(py.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let py_port: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // per server, per step (login, then each command): the five timings
    let mut times: [Vec<Vec<f64>>; 2] = Default::default();
    for _ in 0..5 {
        for (i, port) in [fos.addr.port(), py_port].into_iter().enumerate() {
            let out = Command::new("python3")
                .arg(peers.join("legacy_client.py"))
                .current_dir(&local)
                .args(["--port", &port.to_string(), "--sleep", "0", "--cert"])
                .arg(data_dir().join("cert.pem"))
                .args(&commands)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let secs: Vec<f64> = text
                .lines()
                .filter_map(|l| {
                    l.split("\"secs\": \"")
                        .nth(1)?
                        .split('"')
                        .next()?
                        .parse()
                        .ok()
                })
                .collect();
            if secs.len() != commands.len() + 1 {
                println!("(legacy rows: the Python peer failed: {text})");
                let _ = py.kill();
                let _ = py.wait();
                return;
            }
            times[i].resize(secs.len(), Vec::new());
            for (step, t) in secs.into_iter().enumerate() {
                times[i][step].push(t);
            }
        }
    }
    let _ = py.kill();
    let _ = py.wait();
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] * 1000.0
    };
    let steps = std::iter::once("login".to_string()).chain(
        sizes
            .iter()
            .flat_map(|(label, _, _)| [format!("put {label}"), format!("get {label}")]),
    );
    for (step, what) in steps.enumerate() {
        let (f, p) = (median(&times[0][step]), median(&times[1][step]));
        row(
            &format!("legacy {what}, Python client (vs Python server)"),
            format!("{f:.1} ms"),
            format!("{:.2} ({p:.1})", f / p),
        );
    }
    let _ = std::fs::remove_dir_all(&local);
}

/// The same workloads over sftp, against the private sshd `make bench-peers` starts
/// (`FOS_BENCH_SFTP="PORT KEYFILE DIR"`).
fn sftp_rows(
    spec: &str,
    big: &Path,
    mib: u64,
    bare_sha: f64,
    local: &Path,
    row: &dyn Fn(&str, String, String),
) {
    let mut it = spec.split_whitespace();
    let (Some(port), Some(key), Some(dir)) = (it.next(), it.next(), it.next()) else {
        println!("FOS_BENCH_SFTP must be \"PORT KEYFILE DIR\"");
        return;
    };
    let files = Path::new(dir).join("files");
    let run = |batch: String| -> Duration {
        let t = Instant::now();
        let mut child = start_sftp(port, key, &batch);
        assert!(child.wait().unwrap().success(), "sftp failed");
        t.elapsed()
    };
    let total = mib << 20;
    let d = run(format!(
        "put {} {}/big.bin\n",
        big.display(),
        files.display()
    ));
    let put = mib_per_s(total, d);
    row(
        &format!("sftp put {mib} MiB"),
        format!("{put:.0} MiB/s"),
        format!("{:.2}", put / bare_sha),
    );
    let d = run(format!(
        "get {}/big.bin {}/sftp-back.bin\n",
        files.display(),
        local.display()
    ));
    let get = mib_per_s(total, d);
    row(
        &format!("sftp get {mib} MiB"),
        format!("{get:.0} MiB/s"),
        format!("{:.2}", get / bare_sha),
    );
    let _ = std::fs::remove_file(local.join("sftp-back.bin"));
    let small = local.join("small.bin");
    let batch: String = (0..1000)
        .map(|i| format!("put {} {}/s{i}.bin\n", small.display(), files.display()))
        .collect();
    let d = run(batch);
    row(
        "sftp 1,000 x 4 KiB put",
        format!("{:.3} s", d.as_secs_f64()),
        format!("{:.0} us/file", d.as_micros() as f64 / 1000.0),
    );
    // an empty directory, as for fos: the round trip, not the listing, is measured
    let empty = files.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let one = run(format!("ls {}\n", empty.display()));
    let many = run(format!("ls {}\n", empty.display()).repeat(201));
    row(
        "sftp ls round trip (mean of 200)",
        format!("{} us", (many.saturating_sub(one)).as_micros() / 200),
        String::new(),
    );
    let mib1 = local.join("one.bin");
    let t = Instant::now();
    let children: Vec<_> = (0..100)
        .map(|i| {
            let batch = format!(
                "put {} {}/c{i}.bin\nget {}/c{i}.bin {}/sftp-c{i}.out\n",
                mib1.display(),
                files.display(),
                files.display(),
                local.display()
            );
            start_sftp(port, key, &batch)
        })
        .collect();
    let errors = children
        .into_iter()
        .filter_map(|mut c| c.wait().ok())
        .filter(|s| !s.success())
        .count();
    row(
        "sftp 100 clients x (put + get 1 MiB)",
        format!("{:.3} s", t.elapsed().as_secs_f64()),
        format!("{errors} errors"),
    );
}

/// Starts `sftp` in batch mode against the private sshd, with `batch` on its stdin.
fn start_sftp(port: &str, key: &str, batch: &str) -> Child {
    let mut child = Command::new("sftp")
        .args([
            "-q",
            "-b",
            "-",
            "-P",
            port,
            "-i",
            key,
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "root@127.0.0.1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(batch.as_bytes())
        .unwrap();
    child
}

/// Time to sweep 127.0.0.0/24 with three servers up (127.0.0.2-4), then with none.
fn discovery_rows(dir: &Path, users: &Path, row: &dyn Fn(&str, String, String)) {
    let greet = TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let greet_port = greet.to_string();
    let servers: Vec<Server> = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .map(|ip| {
            Server::spawn(
                &["--bind", ip, "--greet-port", &greet_port],
                &dir.join("disc"),
                users,
            )
        })
        .collect();
    let cfg = fos::client::ClientConfig {
        cert: data_dir().join("cert.pem"),
        ..Default::default()
    };
    let addrs = fos::discovery::parse_range("127.0.0.0/24").unwrap();
    let opts = fos::discovery::Options {
        port: greet,
        ..Default::default()
    };
    let sweep_row = |name: &str| {
        let report = fos::discovery::sweep(
            &cfg,
            &addrs,
            &opts,
            &fos::discovery::TcpConnector,
            &|_, _| {},
        )
        .unwrap();
        row(
            name,
            format!("{:.0} ms", report.elapsed.as_secs_f64() * 1000.0),
            format!("{} found", report.found.len()),
        );
    };
    sweep_row("sweep 127.0.0.0/24, 3 servers up");
    drop(servers);
    sweep_row("sweep 127.0.0.0/24, none up");
}

/// `make bench-cluster` (`FOS_BENCH_CLUSTER="MOUNT_A MOUNT_B"`, two mounts of one
/// GlusterFS volume): put and get of the big file and of 1,000 x 4 KiB through a server
/// over each mount (127.0.0.2 over A, 127.0.0.3 over B), each beside the engine's own
/// rate for the same work (a plain copy onto the mount, or off it), as ratios.
fn cluster_rows(
    spec: &str,
    big: &Path,
    mib: u64,
    local: &Path,
    row: &dyn Fn(&str, String, String),
) {
    let mounts: Vec<PathBuf> = spec.split_whitespace().map(PathBuf::from).collect();
    let [a, b] = &mounts[..] else {
        println!("FOS_BENCH_CLUSTER must be \"MOUNT_A MOUNT_B\"");
        return;
    };
    let base = format!("fos-bench-{}", std::process::id());
    let (base_a, base_b) = (a.join(&base), b.join(&base));
    std::fs::create_dir_all(base_a.join("storage/u")).unwrap();
    std::fs::create_dir_all(base_a.join("plain")).unwrap();
    std::fs::write(base_a.join("users.txt"), "u:p\n").unwrap();
    println!(
        "GlusterFS volume mounted at {} and {}",
        a.display(),
        b.display()
    );
    let total = mib << 20;
    let start = |ip: &str, base: &Path| {
        Server::spawn(
            &["--bind", ip, "--no-discovery", "--no-fsync"],
            &base.join("storage"),
            &base.join("users.txt"),
        )
    };
    let servers = [start("127.0.0.2", &base_a), start("127.0.0.3", &base_b)];
    let names = ["A", "B"];
    // the engine's own rates: a plain copy onto mount A, a plain read off mount B
    let t = Instant::now();
    std::fs::copy(big, base_a.join("plain/big.bin")).unwrap();
    let copy = mib_per_s(total, t.elapsed());
    let t = Instant::now();
    std::io::copy(
        &mut std::fs::File::open(base_b.join("plain/big.bin")).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();
    let read = mib_per_s(total, t.elapsed());
    row(
        &format!("gluster: plain copy of {mib} MiB onto the mount"),
        format!("{copy:.0} MiB/s"),
        String::new(),
    );
    row(
        &format!("gluster: plain read of {mib} MiB off the mount"),
        format!("{read:.0} MiB/s"),
        String::new(),
    );
    let cfg = no_fsync();
    for (server, name) in servers.iter().zip(names) {
        let mut r = connect(server.addr);
        let t = Instant::now();
        r.put(big, "big.bin", Default::default()).unwrap();
        let put = mib_per_s(total, t.elapsed());
        let back = local.join("cluster-back.bin");
        let t = Instant::now();
        r.get(&cfg, "big.bin", &back, Default::default()).unwrap();
        let get = mib_per_s(total, t.elapsed());
        let _ = std::fs::remove_file(&back);
        let _ = std::fs::remove_file(base_a.join("storage/u/big.bin"));
        row(
            &format!("gluster: fos put {mib} MiB through {name}"),
            format!("{put:.0} MiB/s"),
            format!("{:.2}", put / copy),
        );
        row(
            &format!("gluster: fos get {mib} MiB through {name}"),
            format!("{get:.0} MiB/s"),
            format!("{:.2}", get / read),
        );
        r.close();
    }
    let _ = std::fs::remove_file(base_a.join("plain/big.bin"));
    // 1,000 small files: plain writes onto the mount (create, write, close, rename, as
    // an upload lands) and reads off it, then the same through each server
    let small = vec![7u8; 4096];
    let plain = base_a.join("plain");
    let t = Instant::now();
    for i in 0..1000 {
        let tmp = plain.join(format!(".s{i}.tmp"));
        std::fs::write(&tmp, &small).unwrap();
        std::fs::rename(&tmp, plain.join(format!("s{i}.bin"))).unwrap();
    }
    let plain_put = t.elapsed();
    let t = Instant::now();
    for i in 0..1000 {
        let _ = std::fs::read(base_b.join(format!("plain/s{i}.bin"))).unwrap();
    }
    let plain_get = t.elapsed();
    let us = |d: Duration| format!("{:.0} us/file", d.as_micros() as f64 / 1000.0);
    row(
        "gluster: plain 1,000 x 4 KiB written",
        format!("{:.3} s", plain_put.as_secs_f64()),
        us(plain_put),
    );
    row(
        "gluster: plain 1,000 x 4 KiB read",
        format!("{:.3} s", plain_get.as_secs_f64()),
        us(plain_get),
    );
    let src = local.join("cluster-small.bin");
    std::fs::write(&src, &small).unwrap();
    for (server, name) in servers.iter().zip(names) {
        let mut r = connect(server.addr);
        r.mkdir(name).unwrap();
        let t = Instant::now();
        for i in 0..1000 {
            r.put(&src, &format!("{name}/s{i}.bin"), Default::default())
                .unwrap();
        }
        let put = t.elapsed();
        let out = local.join("cluster-small.out");
        let t = Instant::now();
        for i in 0..1000 {
            r.get(&cfg, &format!("{name}/s{i}.bin"), &out, Default::default())
                .unwrap();
        }
        let get = t.elapsed();
        row(
            &format!("gluster: fos 1,000 x 4 KiB put through {name}"),
            format!("{:.3} s", put.as_secs_f64()),
            format!(
                "{:.2} of plain",
                plain_put.as_secs_f64() / put.as_secs_f64()
            ),
        );
        row(
            &format!("gluster: fos 1,000 x 4 KiB get through {name}"),
            format!("{:.3} s", get.as_secs_f64()),
            format!(
                "{:.2} of plain",
                plain_get.as_secs_f64() / get.as_secs_f64()
            ),
        );
        r.close();
    }
    drop(servers);
    let _ = std::fs::remove_dir_all(&base_a);
}

fn main() {
    let mib: u64 = std::env::var("FOS_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let total = mib << 20;
    let dir = std::env::temp_dir().join(format!("fos-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("local")).unwrap();
    let users = dir.join("users.txt");
    std::fs::write(&users, "u:p\n").unwrap();
    let big = dir.join("local/big.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let block: Vec<u8> = (0..1 << 20)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for _ in 0..mib {
            f.write_all(&block).unwrap();
        }
        // written back before anything is timed: the page cache starts clean
        f.into_inner().unwrap().sync_all().unwrap();
    }
    println!(
        "fos bench: {mib} MiB transfers over 127.0.0.1, {} cores, storage on {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        fs_type(&dir)
    );
    println!("{:<44} {:>14} {:>12}", "measurement", "result", "ratio");
    let row =
        |name: &str, value: String, ratio: String| println!("{name:<44} {value:>14} {ratio:>12}");
    // make bench-cluster: the cluster's rows alone (make bench has the rest)
    if let Ok(spec) = std::env::var("FOS_BENCH_CLUSTER") {
        cluster_rows(&spec, &big, mib, &dir.join("local"), &row);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    let copy = dir.join("local/copy.bin");
    let files = (big.as_path(), copy.as_path());
    let bare = bare_rustls(total, Ends::Bare, files);
    let bare_sha = bare_rustls(total, Ends::Hashed, files);
    let bare_files = bare_rustls(total, Ends::Files, files);
    let _ = std::fs::remove_file(&copy);
    row(
        "bare rustls stream",
        format!("{bare:.0} MiB/s"),
        String::new(),
    );
    row(
        "bare rustls stream + SHA-256 both ends",
        format!("{bare_sha:.0} MiB/s"),
        format!("{:.2}", bare_sha / bare),
    );
    row(
        "  + reading and writing the files",
        format!("{bare_files:.0} MiB/s"),
        format!("{:.2}", bare_files / bare_sha),
    );

    let mut peak = 0;
    for fsync in [false, true] {
        let root = dir.join(if fsync { "storage-fsync" } else { "storage" });
        let server = Server::start(&root, &users, fsync);
        let mut r = connect(server.addr);
        let cfg = fos::client::ClientConfig {
            fsync,
            ..no_fsync()
        };
        let t = Instant::now();
        r.put(&big, "big.bin", Default::default()).unwrap();
        let put = mib_per_s(total, t.elapsed());
        // let the disk catch up between measurements (not timed)
        settle(&root.join("u/big.bin"));
        let back = dir.join("local/back.bin");
        let t = Instant::now();
        r.get(&cfg, "big.bin", &back, Default::default()).unwrap();
        let get = mib_per_s(total, t.elapsed());
        settle(&back);
        let tag = if fsync { "fsync" } else { "--no-fsync" };
        row(
            &format!("fos put {mib} MiB ({tag})"),
            format!("{put:.0} MiB/s"),
            format!("{:.2} ({:.2})", put / bare_sha, put / bare_files),
        );
        row(
            &format!("fos get {mib} MiB ({tag})"),
            format!("{get:.0} MiB/s"),
            format!("{:.2} ({:.2})", get / bare_sha, get / bare_files),
        );
        row("  get / put", format!("{:.2}", get / put), String::new());
        let _ = std::fs::remove_file(&back);
        let _ = std::fs::remove_file(root.join("u/big.bin"));

        // 1,000 small files, one session
        let small = dir.join("local/small.bin");
        std::fs::write(&small, vec![7u8; 4096]).unwrap();
        let t = Instant::now();
        for i in 0..1000 {
            r.put(&small, &format!("s{i}.bin"), Default::default())
                .unwrap();
        }
        let d = t.elapsed();
        row(
            &format!("1,000 x 4 KiB put ({tag})"),
            format!("{:.3} s", d.as_secs_f64()),
            format!("{:.0} us/file", d.as_micros() as f64 / 1000.0),
        );
        if !fsync {
            r.mkdir("lsdir").unwrap();
            r.cd(Some("lsdir")).unwrap();
            let mut rtts: Vec<Duration> = (0..2000)
                .map(|_| {
                    let t = Instant::now();
                    r.ls(None).unwrap();
                    t.elapsed()
                })
                .collect();
            rtts.sort();
            row(
                "ls round trip (median / p99)",
                format!("{} us", percentile(&rtts, 0.5).as_micros()),
                format!("{} us", percentile(&rtts, 0.99).as_micros()),
            );
            r.close();

            // 100 clients at once, each putting and getting 1 MiB
            let mib1 = Arc::new(dir.join("local/one.bin"));
            std::fs::write(&*mib1, vec![9u8; 1 << 20]).unwrap();
            let addr = server.addr;
            let t = Instant::now();
            let threads: Vec<_> = (0..100)
                .map(|i| {
                    let (src, dir) = (Arc::clone(&mib1), dir.clone());
                    std::thread::spawn(move || -> bool {
                        let cfg = no_fsync();
                        let Ok(mut r) =
                            fos::client::Remote::connect(&cfg, &addr.to_string(), "u", "p")
                        else {
                            return false;
                        };
                        let ok = r
                            .put(&src, &format!("c{i}.bin"), Default::default())
                            .is_ok()
                            && r.get(
                                &cfg,
                                &format!("c{i}.bin"),
                                &dir.join(format!("local/c{i}.out")),
                                Default::default(),
                            )
                            .is_ok();
                        r.close();
                        ok
                    })
                })
                .collect();
            let errors = threads
                .into_iter()
                .map(|t| t.join())
                .filter(|r| !matches!(r, Ok(true)))
                .count();
            row(
                "100 clients x (put + get 1 MiB)",
                format!("{:.3} s", t.elapsed().as_secs_f64()),
                format!("{errors} errors"),
            );
        } else {
            r.close();
        }
        peak = peak.max(server.peak_rss_kib().unwrap_or(0));
    }
    row(
        "server peak RSS",
        format!("{:.1} MiB", peak as f64 / 1024.0),
        String::new(),
    );
    discovery_rows(&dir, &users, &row);
    legacy_rows(&dir, &users, &row);
    match std::env::var("FOS_BENCH_SFTP") {
        Ok(spec) => sftp_rows(&spec, &big, mib, bare_sha, &dir.join("local"), &row),
        Err(_) => println!(
            "(sftp rows: run `make bench-peers`, which starts a private sshd on 127.0.0.1)"
        ),
    }
    let peers = std::env::var("FOS_BENCH_SFTP").ok();
    sync_bench::rows(&dir, &users, peers.as_deref(), &row);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Shared helpers for the integration tests: temporary directories, a server started
//! in-process (library) or as the real binary, and the real client binary. Everything
//! binds 127.0.0.1 on OS-chosen ports.
#![allow(dead_code)] // each test file uses a different subset

mod shared;
#[allow(unused_imports)] // each test file uses a different subset
pub use shared::*;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fos::server::{Server, ServerConfig, ShutdownHandle};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "fos-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

pub fn cert() -> PathBuf {
    data_dir().join("cert.pem")
}

/// Users every fixture has: u/p, u2/p2, t/tp.
pub const USERS: &str = "u:p\nu2:p2\nt:tp\n";

/// A fixture directory: `users.txt`, `storage/`, and room for local files.
pub struct Fixture {
    pub dir: TempDir,
}

impl Fixture {
    pub fn new(tag: &str) -> Fixture {
        let dir = TempDir::new(tag);
        std::fs::write(dir.path().join("users.txt"), USERS).unwrap();
        std::fs::create_dir_all(dir.path().join("storage")).unwrap();
        std::fs::create_dir_all(dir.path().join("local")).unwrap();
        Fixture { dir }
    }
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
    pub fn local(&self) -> PathBuf {
        self.dir.path().join("local")
    }
    pub fn users(&self) -> PathBuf {
        self.dir.path().join("users.txt")
    }
    /// A server config for this fixture on 127.0.0.1, OS-chosen ports.
    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            port: 0,
            greet_port: 0,
            root: self.storage(),
            users: self.users(),
            cert: cert(),
            key: data_dir().join("key.pem"),
            name: "testhost".into(),
            fsync: false,
            ..ServerConfig::default()
        }
    }
}

/// A server running in this process.
pub struct LibServer {
    pub addr: SocketAddr,
    pub greet: Option<SocketAddr>,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl LibServer {
    pub fn start(cfg: ServerConfig) -> LibServer {
        let server = Server::bind(cfg, Arc::new(fos::Logger::silent())).expect("server binds");
        let addr = server.local_addr().unwrap();
        let greet = server.greet_addr();
        let handle = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run().unwrap());
        LibServer {
            addr,
            greet,
            handle,
            thread: Some(thread),
        }
    }
    pub fn stop(mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for LibServer {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// The real `fos-server` binary, killed (by its PID) on drop.
pub struct BinServer {
    pub child: Child,
    pub addr: SocketAddr,
    pub greet: Option<SocketAddr>,
    pub stderr: Option<std::process::ChildStderr>,
}

impl BinServer {
    /// Starts `fos-server` on 127.0.0.1 with `extra` flags after the fixture's own.
    pub fn start(fx: &Fixture, extra: &[&str]) -> BinServer {
        Self::launch(
            fx,
            "127.0.0.1",
            0,
            Some(0),
            "",
            &[&["--name", "testhost"], extra].concat(),
        )
    }

    /// Starts `fos-server` for the fixture on `bind`:`port` (0: any), with discovery on
    /// `greet` (`None`: off), the `tests/data/<certs>cert.pem`/`<certs>key.pem` pair
    /// (`""`, `"other-"`, `"v1-"`, `"expired-"`), then `extra` flags.
    pub fn launch(
        fx: &Fixture,
        bind: &str,
        port: u16,
        greet: Option<u16>,
        certs: &str,
        extra: &[&str],
    ) -> BinServer {
        let mut cmd = without_terminal(env!("CARGO_BIN_EXE_fos-server"));
        cmd.args(["--bind", bind, "--port", &port.to_string(), "--no-fsync"]);
        match greet {
            Some(g) => cmd.args(["--greet-port", &g.to_string()]),
            None => cmd.arg("--no-discovery"),
        };
        cmd.arg("--root")
            .arg(fx.storage())
            .arg("--users")
            .arg(fx.users())
            .arg("--cert")
            .arg(data_dir().join(format!("{certs}cert.pem")))
            .arg("--key")
            .arg(data_dir().join(format!("{certs}key.pem")))
            .args(extra);
        Self::spawn(cmd)
    }

    pub fn spawn(mut cmd: Command) -> BinServer {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fos-server starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let grab = |key: &str| -> Option<SocketAddr> {
            let rest = &line[line.find(key)? + key.len()..];
            rest.split([' ', ')', ',']).next()?.parse().ok()
        };
        let addr = grab("listening on ").unwrap_or_else(|| panic!("no address in {line:?}"));
        let greet = grab("discovery on ");
        BinServer {
            child,
            addr,
            greet,
            stderr: None,
        }
    }

    pub fn server_arg(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for BinServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real `fos-client` binary with `FOS_PASSWORD` set, run in `cwd`.
pub fn client(cwd: &Path, server: &str, user: &str, password: &str, args: &[&str]) -> Output {
    client_stdin(cwd, server, user, password, args, "")
}

/// The real `fos-client` binary, not started yet: run in `cwd` with `FOS_PASSWORD` set,
/// logging in to `server` as `user`, trusting `pinned`; output captured, no input.
pub fn client_command(
    cwd: &Path,
    server: &str,
    user: &str,
    password: &str,
    pinned: &Path,
    args: &[&str],
) -> Command {
    let mut cmd = without_terminal(env!("CARGO_BIN_EXE_fos-client"));
    cmd.current_dir(cwd)
        .env("FOS_PASSWORD", password)
        .env("NO_COLOR", "1")
        .args(["--server", server, "--user", user, "--cert"])
        .arg(pinned)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs a [`client_command`] to its end (bounded).
pub fn run(mut cmd: Command) -> Output {
    wait_with_deadline(
        cmd.spawn().expect("fos-client starts"),
        Duration::from_secs(60),
    )
}

pub fn client_stdin(
    cwd: &Path,
    server: &str,
    user: &str,
    password: &str,
    args: &[&str],
    stdin: &str,
) -> Output {
    let mut child = client_command(cwd, server, user, password, &cert(), args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("fos-client starts");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    wait_with_deadline(child, Duration::from_secs(60))
}

/// `bin` as a command whose process runs in a session of its own, without a controlling
/// terminal. The binaries ask for secrets and confirmations on `/dev/tty`; run from a
/// terminal, a test would otherwise wait there for a person, and `make test` must behave
/// the same with a terminal and without one. (util-linux `setsid` execs `bin` in place,
/// so the child's PID is the binary's own.)
pub fn without_terminal(bin: &str) -> Command {
    let mut cmd = Command::new("setsid");
    cmd.arg(bin);
    cmd
}

/// Waits for a child, killing it if it overruns `limit` (tests never hang).
pub fn wait_with_deadline(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            // where it was stuck, for the failure that follows
            eprintln!("{}", where_stuck(child.id()));
            let _ = child.kill();
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What each thread of process `pid` waits in (name, kernel wait channel, syscall and
/// its arguments), as /proc shows it: printed when a child overruns its deadline.
pub fn where_stuck(pid: u32) -> String {
    let mut out = format!("process {pid} overran its deadline; its threads:\n");
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out + "  (gone)";
    };
    for t in tasks.flatten() {
        let p = t.path();
        let read = |f: &str| {
            std::fs::read_to_string(p.join(f))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        out.push_str(&format!(
            "  {} {}: wchan {} syscall {}\n",
            t.file_name().to_string_lossy(),
            read("comm"),
            read("wchan"),
            read("syscall")
        ));
    }
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A library client logged in to `addr`.
pub fn connect(
    addr: SocketAddr,
    user: &str,
    password: &str,
) -> Result<fos::client::Remote, fos::Error> {
    let cfg = fos::client::ClientConfig {
        cert: cert(),
        fsync: false,
        ..Default::default()
    };
    fos::client::Remote::connect(&cfg, &addr.to_string(), user, password)
}

/// Deterministic test content.
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut x = seed as u32 | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// [`snapshot`] of a server's storage root without the servers' own state at its top
/// (`.fos-locks`, `.fos-throttle`: lock files and login records, which change when
/// anyone logs in), i.e. what the users' files are.
pub fn snapshot_storage(storage: &Path) -> Vec<(PathBuf, String)> {
    snapshot(storage)
        .into_iter()
        .filter(|(p, _)| {
            !p.components()
                .next()
                .is_some_and(|c| c.as_os_str().to_string_lossy().starts_with(".fos-"))
        })
        .collect()
}

/// A listing of every path under `root` with its type, size and content hash, to prove
/// that nothing changed.
pub fn snapshot(root: &Path) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if md.file_type().is_symlink() {
                out.push((rel, format!("link {:?}", std::fs::read_link(&p).unwrap())));
            } else if md.is_dir() {
                out.push((rel, "dir".into()));
                walk(&p, root, out);
            } else {
                let data = std::fs::read(&p).unwrap();
                let h = ring::digest::digest(&ring::digest::SHA256, &data);
                out.push((
                    rel,
                    format!(
                        "file {} {:?} {:?}",
                        data.len(),
                        &h.as_ref()[..8],
                        md.modified().unwrap()
                    ),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Asserts two byte strings are equal without printing megabytes when they differ.
#[track_caller]
pub fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: {} bytes, expected {}; first difference at byte {first}",
            got.len(),
            want.len()
        );
    }
}

/// A TLS stream that negotiated `fos/1`, before any frame.
pub fn raw_tls(addr: std::net::SocketAddr) -> fos::client::ClientTls {
    let trust = fos::tls::Trust::pinned_file(&cert()).unwrap();
    let cfg = fos::tls::client_config(&trust, true).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    fos::client::tls_connect(addr, cfg, name, Duration::from_secs(5)).unwrap()
}

pub fn hello(s: &mut fos::client::ClientTls) {
    fos::protocol::frame::write_frame(
        s,
        fos::protocol::frame::Kind::Hello,
        &fos::protocol::frame::encode_fields(&["fos", "1"]),
    )
    .unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    assert_eq!(
        fos::protocol::frame::read_frame(s, &mut buf).unwrap(),
        fos::protocol::frame::Kind::Hello
    );
}

pub fn request(
    s: &mut fos::client::ClientTls,
    req: &fos::protocol::Request,
) -> (fos::protocol::frame::Kind, Vec<Vec<u8>>) {
    fos::protocol::frame::write_frame(s, fos::protocol::frame::Kind::Request, &req.encode())
        .unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    let kind = fos::protocol::frame::read_frame(s, &mut buf).unwrap();
    (
        kind,
        fos::protocol::frame::decode_fields(&buf)
            .unwrap()
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

pub fn login(s: &mut fos::client::ClientTls) {
    hello(s);
    let (kind, _) = request(
        s,
        &fos::protocol::Request::Login {
            user: "u".into(),
            password: "p".into(),
        },
    );
    assert_eq!(kind, fos::protocol::frame::Kind::Ok);
}

/// Faults a [`Proxy`] injects.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Close the first connection after this many bytes from server to client.
    pub drop_down_after: Option<u64>,
    /// Flip one bit of the byte at this offset from client to server (first connection).
    pub flip_up_at: Option<u64>,
    /// Bytes per second in each direction (every connection).
    pub rate: Option<u64>,
    /// After this many bytes from client to server (first connection), close the
    /// client's side and leave the server's side open and silent: a connection that
    /// died without the server noticing.
    pub silence_up_after: Option<u64>,
}

/// Most connections one [`Proxy`] forwards; it stops accepting after them, so its
/// threads are bounded (one acceptor, two pumps a connection).
const PROXY_CONNECTIONS: usize = 64;
/// A pump that has moved nothing for this long ends, and its connection with it.
const PROXY_IDLE: Duration = Duration::from_secs(120);

/// A TCP proxy on 127.0.0.1 in front of `upstream` that can cut, corrupt or slow the
/// stream, below TLS. Forwards up to [`PROXY_CONNECTIONS`] connections, each until one
/// side closes or it is idle for [`PROXY_IDLE`].
pub struct Proxy {
    pub addr: SocketAddr,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, faults: Faults) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().take(PROXY_CONNECTIONS).enumerate() {
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(upstream) else {
                    continue;
                };
                for s in [&client, &server] {
                    let _ = s.set_read_timeout(Some(PROXY_IDLE));
                }
                let first = n == 0;
                let f = faults.clone();
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = Faults {
                    flip_up_at: if first { f.flip_up_at } else { None },
                    silence_up_after: if first { f.silence_up_after } else { None },
                    rate: f.rate,
                    ..Faults::default()
                };
                let down = Faults {
                    drop_down_after: if first { f.drop_down_after } else { None },
                    rate: f.rate,
                    ..Faults::default()
                };
                let silenced = Arc::new(AtomicBool::new(false));
                let s = Arc::clone(&silenced);
                std::thread::spawn(move || pump(client, server, up, false, &s));
                std::thread::spawn(move || pump(s2, c2, down, true, &silenced));
            }
        });
        Proxy { addr }
    }
}

fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    f: Faults,
    down: bool,
    silenced: &AtomicBool,
) {
    use std::io::Read;
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    let started = Instant::now();
    // a side that was reset (a killed process's socket with unread input, a failed
    // write) is passed on as a reset: a FIN instead would leave the client writing into
    // a closed window until its timeouts, which a dead server does not do to it
    let mut reset = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Err(e) => {
                reset = e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut;
                break;
            }
            Ok(n) => n,
        };
        let chunk = &mut buf[..n];
        if let Some(at) = f.flip_up_at
            && !down
            && at >= total
            && at < total + n as u64
        {
            chunk[(at - total) as usize] ^= 0x01;
        }
        if let Some(limit) = f.drop_down_after
            && down
            && total + n as u64 > limit
        {
            break;
        }
        if let Some(limit) = f.silence_up_after
            && !down
            && total + n as u64 > limit
        {
            silenced.store(true, Ordering::SeqCst);
            // the server's socket is held open for good: it never hears of the end
            // (stopping our reads of it sends nothing, but frees the other pump, which
            // then lets go of the client's socket so the client sees it close)
            let _ = to.shutdown(std::net::Shutdown::Read);
            std::mem::forget(to);
            let _ = from.shutdown(std::net::Shutdown::Both);
            return;
        }
        if to.write_all(chunk).is_err() {
            reset = true;
            break;
        }
        total += n as u64;
        if let Some(rate) = f.rate {
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    let (client, server) = if down { (&to, &from) } else { (&from, &to) };
    if reset {
        use std::os::fd::AsFd;
        let _ = fos::internals::sys::reset_on_close(client.as_fd());
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    if !silenced.load(Ordering::SeqCst) {
        let _ = server.shutdown(std::net::Shutdown::Both);
    }
}

/// SHA-256 of a file, hex.
pub fn sha_file(path: &Path) -> String {
    let data = std::fs::read(path).unwrap();
    ring::digest::digest(&ring::digest::SHA256, &data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Waits until `condition` holds, looking every few milliseconds, and panics naming
/// `what` if `limit` passes first: tests wait for what they need, not for a time that
/// is usually enough.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The bytes of the upload partials kept in `dir` (`.fos-part-*`, without their
/// `.meta` records); 0 if there is no such directory yet.
pub fn partial_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with(".fos-part-") && !name.ends_with(".meta")
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// What a child writes to one of its pipes, collected as it arrives by a thread of its
/// own (which ends when the pipe closes), so a test can wait for a line while the child
/// still runs and still assert on the whole text afterwards.
pub struct PipeWatch {
    text: Arc<std::sync::Mutex<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl PipeWatch {
    /// Collects `pipe` (a child's `stdout` or `stderr`, taken from it).
    pub fn new(mut pipe: impl std::io::Read + Send + 'static) -> PipeWatch {
        let text = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&text);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PipeWatch {
            text,
            thread: Some(thread),
        }
    }

    /// What has arrived so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap()).into_owned()
    }

    /// How many bytes have arrived so far.
    pub fn len(&self) -> usize {
        self.text.lock().unwrap().len()
    }

    /// What has arrived after the first `from` bytes.
    pub fn text_from(&self, from: usize) -> String {
        let text = self.text.lock().unwrap();
        String::from_utf8_lossy(&text[from.min(text.len())..]).into_owned()
    }

    /// Whether what has arrived so far contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.text().contains(needle)
    }

    /// Waits for the pipe to close (the child has exited or been killed): then
    /// [`PipeWatch::text`] is all of it.
    pub fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// All of it, once the pipe has closed.
    pub fn finish(mut self) -> Vec<u8> {
        self.join();
        std::mem::take(&mut *self.text.lock().unwrap())
    }
}

/// Whether a terminal's output ends with a prompt that waits for input: its last
/// line, without the escape sequences that draw it, ends in `> `, `] ` or `: ` (the
/// shell's `fos:/> `, a `[y/N] ` question, a `[1-3] ` choice, a `Password: `).
pub fn ends_with_prompt(screen: &str) -> bool {
    let mut plain = String::new();
    let mut chars = screen.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // a CSI sequence: ESC [ parameters, then one final letter (or ~)
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() || c == '~' {
                        break;
                    }
                }
            } else {
                chars.next();
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .split(['\r', '\n'])
        .rfind(|segment| !segment.is_empty())
        .is_some_and(|last| last.ends_with("> ") || last.ends_with("] ") || last.ends_with(": "))
}

/// Types `keys` into a program on a terminal, each once it is ready for it: first
/// once it shows a prompt, then after each key once its echo has arrived and, for a
/// key that ends a line (Enter, Ctrl-C), once the next prompt is drawn or the program
/// has ended. The program may discard what is typed ahead when it switches its
/// terminal settings, so keys are never sent faster than it takes them.
pub fn type_keys(child: &mut Child, stdin: &mut impl Write, screen: &PipeWatch, keys: &[&[u8]]) {
    const READY: Duration = Duration::from_secs(20);
    let ended = |child: &mut Child| child.try_wait().unwrap().is_some();
    wait_until("the first prompt", READY, || {
        ended(child) || ends_with_prompt(&screen.text())
    });
    for key in keys {
        let before = screen.len();
        if stdin.write_all(key).and_then(|()| stdin.flush()).is_err() {
            return; // the program has gone: what it showed is the test's to judge
        }
        let ends_line = key.iter().any(|b| matches!(b, b'\n' | b'\r' | 0x03));
        wait_until("the program to take a key", READY, || {
            ended(child)
                || (screen.len() > before
                    && (!ends_line || ends_with_prompt(&screen.text_from(before))))
        });
    }
}

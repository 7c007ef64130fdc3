//! Setups that several test files share: a free port, servers that discovery finds,
//! the client running one `-c` script, and the client on a pseudo-terminal.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{BinServer, Fixture, PipeWatch, cert, client_command, stdout, type_keys};

/// A port on `ip` (a loopback address) that the OS just handed out and nobody
/// listens on now: for a server that must be found at a known port (discovery's greet
/// port, a restart at the same address).
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `fos-server` on `bind` (any port), quiet, named `name`, answering
/// discovery on `greet`, with the `<certs>cert.pem` pair (as [`BinServer::launch`]).
pub fn discoverable(fx: &Fixture, bind: &str, greet: u16, certs: &str, name: &str) -> BinServer {
    BinServer::launch(fx, bind, 0, Some(greet), certs, &["-q", "--name", name])
}

/// `fos-client -c SCRIPT` in `cwd` as user u against `server`, trusting the test
/// certificate; output captured, no input; not started yet.
pub fn client_script(cwd: &Path, server: &str, script: &str) -> Command {
    client_command(cwd, server, "u", "p", &cert(), &["-c", script])
}

/// Runs the shell command line `command` on a pseudo-terminal (util-linux `script`),
/// in `cwd` (or here), with `FOS_PASSWORD=p`, `NO_COLOR=1` and `env`, typing `keys`
/// as [`type_keys`] does (each once the program is ready for it); returns its exit
/// code and what the terminal showed, within 20 s. `command` should `exec` the
/// program, so that no shell stays between `script` and it.
pub fn on_a_pty(
    command: &str,
    cwd: Option<&Path>,
    env: &[(&str, &OsStr)],
    keys: &[&[u8]],
) -> (Option<i32>, String) {
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", command, "/dev/null"])
        .env("FOS_PASSWORD", "p")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd
        .spawn()
        .expect("script (util-linux) runs; make test installs it");
    let mut stdin = child.stdin.take().unwrap();
    let screen = PipeWatch::new(child.stdout.take().unwrap());
    type_keys(&mut child, &mut stdin, &screen, keys);
    drop(stdin);
    let mut out = super::wait_with_deadline(child, Duration::from_secs(20));
    out.stdout = screen.finish();
    (out.status.code(), stdout(&out))
}

/// A fresh [`Fixture`] tagged `tag`, and a quiet `fos-server` over it
/// ([`BinServer::start`] with `-q`).
pub fn quiet_server(tag: &str) -> (Fixture, BinServer) {
    let fx = Fixture::new(tag);
    let server = BinServer::start(&fx, &["-q"]);
    (fx, server)
}

/// The Python tool's server (`tests/peers/legacy_server.py`) on `bind` with `args`
/// and the certificate pair `cert`/`key`, over `fx`'s users and storage, once it has
/// said where it listens; killed on drop.
pub struct PythonServer {
    /// The server's process.
    pub child: std::process::Child,
    /// The first line it printed: `listening PORT GREET-PORT`.
    pub line: String,
}

impl PythonServer {
    /// Starts it and reads its first line.
    pub fn launch(fx: &Fixture, bind: &str, args: &[&str], cert: &Path, key: &Path) -> Self {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/legacy_server.py"))
            .args(["--bind", bind])
            .args(args)
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--users")
            .arg(fx.users())
            .arg("--root")
            .arg(fx.storage())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        PythonServer { child, line }
    }

    /// The session port and the discovery port of its first line.
    pub fn ports(&self) -> (u16, u16) {
        let mut it = self
            .line
            .split_whitespace()
            .skip(1)
            .map(|p| p.parse().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The names in directory `dir`, in the order the file system gives them.
pub fn names_in(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect()
}

/// A file's modification time in whole seconds since the epoch.
pub fn mtime_secs(path: &Path) -> i64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What `text` says right after `marker`, up to the next space, parsed (`try again in
/// 30 s`: 30).
pub fn number_after<T: std::str::FromStr>(text: &str, marker: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    text.split(marker)
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

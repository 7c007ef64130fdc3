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

//! Review r1 of issue 10's fixes: hostile inputs that still got past them, one test
//! per hole (each names the issue item it belongs to).

mod hostile;
mod support;


use fos::protocol::Request;
use hostile::Hostile;
use support::*;

/// A window-title and clear-screen sequence, as a hostile server would send it.
const TITLE: &str = "\x1b]0;pwned\x07\x1b[2J";

/// Runs `fos-client -c SCRIPT` against `server` in `cwd`.
fn run_client(cwd: &std::path::Path, server: &str, script: &str) -> std::process::Output {
    run(client_command(cwd, server, "u", "p", &cert(), &["-c", script]))
}

// issue 10 item 2: `get PATTERN -` names the file the server's glob chose in its
// summary on stderr, which was printed raw
#[test]
fn the_summary_of_a_wildcard_get_to_stdout_is_escaped() {
    let tmp = TempDir::new("r1-esc-stdout");
    let server = Hostile::native(|req, w| match req {
        Request::Glob(_) => w.ok(&[format!("/x{TITLE}").as_bytes()]),
        Request::Get { .. } => w.file(b"data"),
        _ => w.err("invalid", b"no"),
    });
    let out = run_client(tmp.path(), &server.server_arg(), "get 'x*' -");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"data", "the data itself is byte-exact");
    let err = stderr(&out);
    assert!(err.contains("x\\u{1b}]0;pwned"), "{err:?}");
    assert!(
        !err.contains('\x1b') && !err.contains('\x07'),
        "the summary reached the terminal raw: {err:?}"
    );
}

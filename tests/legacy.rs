//! Drop-in compatibility with the Python tool, both directions, through test peers
//! written with Python's standard `ssl` module from the observed wire protocol
//! (`tests/peers/`): an unmodified-style Python client against `fos-server`, and
//! `fos-client` against a Python-style server.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn peer(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(name)
}

#[derive(Debug)]
struct Line {
    cmd: String,
    reply: String,
    status: Option<String>,
    second_connect: Option<String>,
}

/// Minimal JSON-lines reader for the peer's output (flat objects of strings).
fn parse_lines(out: &str) -> Vec<Line> {
    fn field(line: &str, key: &str) -> Option<String> {
        let start = line.find(&format!("\"{key}\": \""))? + key.len() + 5;
        let mut s = String::new();
        let mut chars = line[start..].chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(s),
                '\\' => match chars.next()? {
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        s.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    c => s.push(c),
                },
                c => s.push(c),
            }
        }
        None
    }
    out.lines()
        .map(|l| Line {
            cmd: field(l, "cmd").unwrap(),
            reply: field(l, "reply").unwrap(),
            status: field(l, "status"),
            second_connect: field(l, "second_connect"),
        })
        .collect()
}

/// Runs the Python client peer against `port` in `cwd`.
fn python_client(
    cwd: &Path,
    port: u16,
    cert: &Path,
    extra: &[&str],
    commands: &[&str],
) -> Vec<Line> {
    let child = Command::new("python3")
        .arg(peer("legacy_client.py"))
        .current_dir(cwd)
        .args(["--port", &port.to_string(), "--sleep", "0.05", "--cert"])
        .arg(cert)
        .args(extra)
        .args(commands)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (make test installs it)");
    let out = wait_with_deadline(child, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "python client failed: {}",
        stderr(&out)
    );
    parse_lines(&stdout(&out))
}

const G: &str = "\x1b[32m";
const R: &str = "\x1b[31m";
const X: &str = "\x1b[0m";

#[test]
fn python_client_against_fos_server_every_command() {
    let (fx, server) = quiet_server("legacy-a");
    let port = server.addr.port();
    let local = fx.local();
    fs::write(local.join("hello.txt"), "hello world\n").unwrap();
    let lines = python_client(
        &local,
        port,
        &cert(),
        &[],
        &[
            "ls ",
            "put hello.txt",
            "ls ",
            "cat hello.txt",
            "mkdir d",
            "mkdir d",
            "cd d",
            "ls ",
            "cd ..",
            "cd ..",
            "cd nosuchdir",
            "ls d",
            "ls nosuchdir",
            "cat d",
            "cat missing.txt",
            "get hello.txt",
            "get missing.txt",
            "get",
            "put",
            "rmdir d",
            "rm hello.txt",
            "rm hello.txt",
            "frobnicate x y",
            "get ../u2/x",
            "put ../escape.txt",
            "exit",
        ],
    );
    let replies: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l.cmd.as_str(), l.reply.as_str()))
        .collect();
    let expect: Vec<(&str, String)> = vec![
        ("login", "accept".into()),
        ("ls ", "\x1b[34mNo files found\x1b[0m\n".into()),
        ("put hello.txt", String::new()), // a port: checked below
        ("ls ", "hello.txt\n".into()),
        ("cat hello.txt", "hello world\n\n".into()),
        ("mkdir d", format!("{G}Directory created successfully{X}\n")),
        ("mkdir d", format!("{R}mkdir: already exists{X}\n")),
        ("cd d", format!("{G}Directory changed successfully{X}\n")),
        ("ls ", "\x1b[34mNo files found\x1b[0m\n".into()),
        ("cd ..", format!("{G}Directory changed successfully{X}\n")),
        // fos keeps the user at the root instead of refusing
        ("cd ..", format!("{G}Directory changed successfully{X}\n")),
        ("cd nosuchdir", format!("{R}Directory does not exist{X}\n")),
        ("ls d", "\x1b[34mNo files found\x1b[0m\n".into()),
        (
            "ls nosuchdir",
            format!("{R}ls: no such file or directory{X}\n"),
        ),
        ("cat d", format!("{R}cat: is a directory{X}\n")),
        (
            "cat missing.txt",
            format!("{R}cat: no such file or directory{X}\n"),
        ),
        ("get hello.txt", String::new()),
        (
            "get missing.txt",
            format!("{R}get: no such file or directory{X}\n"),
        ),
        (
            "get",
            format!("{R}No filename provided for get command.{X}\n"),
        ),
        (
            "put",
            format!("{R}No filename provided for put command.{X}\n"),
        ),
        ("rmdir d", format!("{G}Directory deleted successfully{X}\n")),
        ("rm hello.txt", format!("{G}File deleted successfully{X}\n")),
        (
            "rm hello.txt",
            format!("{R}rm: no such file or directory{X}\n"),
        ),
        ("frobnicate x y", format!("{R}Unknown command{X}\n")),
        (
            "get ../u2/x",
            format!("{R}get: no such file or directory{X}\n"),
        ),
        (
            "put ../escape.txt",
            format!("{R}put: no such file or directory{X}\n"),
        ),
        ("exit", String::new()),
    ];
    assert_eq!(replies.len(), expect.len(), "{lines:#?}");
    for ((cmd, reply), (want_cmd, want)) in replies.iter().zip(&expect) {
        assert_eq!(cmd, want_cmd);
        if want.is_empty() && cmd.starts_with("put") || cmd.starts_with("get hello") {
            assert!(
                reply.trim_end().parse::<u16>().is_ok(),
                "{cmd}: port expected, got {reply:?}"
            );
        } else if *cmd != "exit" {
            assert_eq!(reply, want, "{cmd}");
        }
    }
    let status = |c: &str| {
        lines
            .iter()
            .find(|l| l.cmd == c)
            .and_then(|l| l.status.clone())
    };
    assert_eq!(
        status("put hello.txt").unwrap(),
        format!("{G}File received successfully{X}\n")
    );
    assert_eq!(
        status("get hello.txt").unwrap(),
        format!("{G}File sent successfully{X}\n")
    );
    // the refused get created no local file; nothing escaped the root
    assert!(!local.join("missing.txt").exists());
    assert!(
        !fx.storage().join("escape.txt").exists() && !fx.dir.path().join("escape.txt").exists()
    );
    assert_eq!(fs::read(local.join("hello.txt")).unwrap(), b"hello world\n");
}

#[test]
fn python_client_big_files_long_listing_coalesced_login_and_refusals() {
    let fx = Fixture::new("legacy-b");
    fs::create_dir_all(fx.storage().join("u/bigdir")).unwrap();
    for i in 0..300 {
        fs::write(
            fx.storage()
                .join(format!("u/bigdir/file_with_long_name_{i:04}.txt")),
            "",
        )
        .unwrap();
    }
    // the Python tool's own X.509 v1 certificate, served as it is
    let server = BinServer::launch(
        &fx,
        "127.0.0.1",
        0,
        Some(0),
        "v1-",
        &["-q", "--name", "testhost"],
    );
    let port = server.addr.port();
    let v1 = data_dir().join("v1-cert.pem");
    let local = fx.local();
    let big = content(10 << 20, 9);
    fs::write(local.join("big.bin"), &big).unwrap();
    let lines = python_client(
        &local,
        port,
        &v1,
        &["--coalesce-login"],
        &["put big.bin", "ls bigdir", "ls ", "exit"],
    );
    assert_eq!(
        lines[0].reply, "accept",
        "fs and credentials in one TCP segment are still two messages"
    );
    assert_eq!(
        lines[1].status.as_deref(),
        Some(&*format!("{G}File received successfully{X}\n"))
    );
    assert_same(
        &fs::read(fx.storage().join("u/big.bin")).unwrap(),
        &big,
        "uploaded",
    );
    let listing = &lines[2].reply;
    assert!(listing.len() <= 4096, "one recv(4096): {}", listing.len());
    let shown = listing
        .split('\t')
        .filter(|n| n.starts_with("file_with"))
        .count();
    assert!(shown > 50 && shown < 300);
    assert!(
        listing.contains(&format!("{} more not shown", 300 - shown)),
        "{listing}"
    );
    assert_eq!(
        lines[3].reply, "big.bin\tbigdir\n",
        "still in step after the long listing"
    );

    fs::remove_file(local.join("big.bin")).unwrap();
    let lines = python_client(&local, port, &v1, &[], &["get big.bin", "exit"]);
    assert_eq!(
        lines[1].status.as_deref(),
        Some(&*format!("{G}File sent successfully{X}\n"))
    );
    assert_same(
        &fs::read(local.join("big.bin")).unwrap(),
        &big,
        "downloaded",
    );

    // every refusal is exactly "invalid credentials"
    let lines = python_client(&local, port, &v1, &["--password", "wrong"], &[]);
    assert_eq!(lines[0].reply, "invalid credentials");
    let lines = python_client(&local, port, &v1, &["--user", "nobody"], &[]);
    assert_eq!(lines[0].reply, "invalid credentials");
    // ping on both ports
    for p in [port, server.greet.unwrap().port()] {
        let out = Command::new("python3")
            .arg(peer("legacy_client.py"))
            .args(["--port", &p.to_string(), "--ping", "--cert"])
            .arg(&v1)
            .output()
            .unwrap();
        let lines = parse_lines(&stdout(&out));
        assert_eq!(lines[0].reply, "testhost");
    }
}

/// A Python-style server on 127.0.0.1 with the v1 certificate, killed on drop.
struct PyServer {
    _server: PythonServer,
    port: u16,
    greet: u16,
}

impl PyServer {
    fn start(fx: &Fixture, name: &str) -> PyServer {
        let server = PythonServer::launch(
            fx,
            "127.0.0.1",
            &["--name", name],
            &data_dir().join("v1-cert.pem"),
            &data_dir().join("v1-key.pem"),
        );
        let (port, greet) = server.ports();
        PyServer {
            _server: server,
            port,
            greet,
        }
    }
}

fn fos_client(cwd: &Path, port: u16, pw: &str, script: &str) -> std::process::Output {
    run(client_command(
        cwd,
        &format!("127.0.0.1:{port}"),
        "u",
        pw,
        &data_dir().join("v1-cert.pem"),
        &["-q", "-c", script],
    ))
}

#[test]
fn fos_client_against_python_server() {
    let fx = Fixture::new("legacy-c");
    let py = PyServer::start(&fx, "legacyhost");
    let local = fx.local();
    fs::write(local.join("hello.txt"), "hello world\n").unwrap();
    let big = content(10 << 20, 4);
    fs::write(local.join("big.bin"), &big).unwrap();
    let out = fos_client(
        &local,
        py.port,
        "p",
        "put hello.txt; put big.bin; ls; cat hello.txt; mkdir d; cd d; pwd; ls; cd ..; get big.bin back.bin; get hello.txt h.txt; rm hello.txt; rmdir d; ls",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "big.bin\nhello.txt\nhello world\n/d\nbig.bin\n"
    );
    assert_same(
        &fs::read(fx.storage().join("u/big.bin")).unwrap(),
        &big,
        "uploaded",
    );
    assert_same(
        &fs::read(local.join("back.bin")).unwrap(),
        &big,
        "downloaded",
    );
    assert_eq!(fs::read(local.join("h.txt")).unwrap(), b"hello world\n");

    // a missing remote file: an error, and the local file is neither created nor truncated
    fs::write(local.join("keep.txt"), "precious").unwrap();
    let out = fos_client(&local, py.port, "p", "get missing.txt keep.txt");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(fs::read(local.join("keep.txt")).unwrap(), b"precious");
    let out = fos_client(&local, py.port, "p", "get missing.txt");
    assert_eq!(out.status.code(), Some(1));
    assert!(!local.join("missing.txt").exists());
    assert!(fs::read_dir(&local).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains("fos-partial")
    }));

    // what the Python server lacks is said clearly
    let out = fos_client(&local, py.port, "p", "stat big.bin");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not supported by a Python server"),
        "{}",
        stderr(&out)
    );
    let out = fos_client(&local, py.port, "p", "exit");
    assert_eq!(out.status.code(), Some(0));
    // wrong password: exit 4
    let out = fos_client(&local, py.port, "wrong", "ls");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let _ = py.greet;
}

#[test]
fn forced_legacy_mode_against_fos_server() {
    let (fx, server) = quiet_server("legacy-d");
    let local = fx.local();
    fs::write(local.join("a.txt"), "aaa").unwrap();
    let out = client(
        &local,
        &server.server_arg(),
        "u",
        "p",
        &[
            "-q",
            "--legacy",
            "-c",
            "put a.txt; ls; get a.txt b.txt; mv a.txt c.txt",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "mv is not in the legacy protocol"
    );
    assert_eq!(stdout(&out), "a.txt\n");
    assert!(stderr(&out).contains("not supported"), "{}", stderr(&out));
    assert_eq!(fs::read(local.join("b.txt")).unwrap(), b"aaa");
    // and the server can refuse legacy clients altogether
    let strict = BinServer::start(&fx, &["-q", "--no-legacy"]);
    let out = client(
        &local,
        &strict.server_arg(),
        "u",
        "p",
        &["--legacy", "-c", "ls"],
    );
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn python_client_put_cannot_leave_the_root() {
    let fx = Fixture::new("legacy-attack");
    let outside = fx.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "SECRET").unwrap();
    fs::create_dir_all(fx.storage().join("u2")).unwrap();
    fs::write(fx.storage().join("u2/f"), "OTHER").unwrap();
    let u = fx.storage().join("u");
    fs::create_dir_all(u.join("d")).unwrap();
    std::os::unix::fs::symlink("../../outside", u.join("link_out")).unwrap();
    std::os::unix::fs::symlink(&outside, u.join("link_abs")).unwrap();
    std::os::unix::fs::symlink("../u2", u.join("link_u2")).unwrap();
    std::os::unix::fs::symlink("link_loop", u.join("link_loop")).unwrap();
    let server = BinServer::start(&fx, &["-q"]);
    let local = fx.local();
    fs::write(local.join("payload"), "PAYLOAD").unwrap();
    let outside_state = |fx: &Fixture| -> Vec<_> {
        snapshot(fx.dir.path())
            .into_iter()
            // the servers' own state in the storage (locks, login throttle) is not a
            // user's doing
            .filter(|(p, _)| !p.starts_with("storage/u/") && !p.starts_with("local"))
            .filter(|(p, _)| !p.to_string_lossy().starts_with("storage/.fos-"))
            .collect()
    };
    let before = outside_state(&fx);
    let hostile = [
        "..",
        "../",
        "../u2/f",
        "../u2/new",
        "/../u2/f",
        "../../outside/secret",
        "/etc/passwd",
        "/tmp/fos-escape",
        "~",
        "~/../u2/f",
        "link_out/secret",
        "link_out/new",
        "link_abs/secret",
        "link_abs/new",
        "link_u2/f",
        "link_u2/new",
        "link_loop",
        "link_loop/x",
        "d/../../u2/f",
        "./../u2/f",
        ".",
        "/",
        ".fos-part-x",
        "d/.fos-part-y",
        "..%2fu2",
        "\u{2024}\u{2024}/u2",
        "\u{ff0e}\u{ff0e}/u2/f",
        "../u2x",
        "../u",
        "../u/../u2/f",
    ];
    let cmds: Vec<String> = hostile
        .iter()
        .map(|p| format!("put {p}"))
        .chain(["exit".to_string()])
        .collect();
    let cmd_refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let lines = python_client(
        &local,
        server.addr.port(),
        &cert(),
        &["--local-file", "payload"],
        &cmd_refs,
    );
    assert_eq!(lines.len(), hostile.len() + 2, "{lines:#?}");
    for l in &lines[1..=hostile.len()] {
        // either refused outright, or accepted and landed inside u's root
        let refused = l.reply.starts_with(R);
        let stored = l.status.as_deref().is_some_and(|s| s.starts_with(G));
        assert!(refused || l.reply.trim().parse::<u16>().is_ok(), "{l:?}");
        assert!(
            !l.reply.contains(fx.dir.path().to_str().unwrap()),
            "no server path in {l:?}"
        );
        let _ = stored;
    }
    assert_eq!(
        outside_state(&fx),
        before,
        "nothing outside u's root changed"
    );
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"SECRET");
    assert!(!std::path::Path::new("/tmp/fos-escape").exists());
}

#[test]
fn an_expired_pinned_certificate_warns_but_connects() {
    let fx = Fixture::new("expired");
    let server = BinServer::launch(&fx, "127.0.0.1", 0, Some(0), "expired-", &["-q"]);
    let out = run(client_command(
        &fx.local(),
        &server.server_arg(),
        "u",
        "p",
        &data_dir().join("expired-cert.pem"),
        &["-c", "pwd"],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("expired on"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "/\n");
}

/// The Python client reads a `get`'s data to its end, then the status line, and closes
/// its data connection only after that. A server that waits for that close before it
/// sends the status stalls both sides until its data-port timeout (5 s).
#[test]
fn a_legacy_get_is_answered_before_the_client_closes_its_data_connection() {
    let (fx, server) = quiet_server("legacy-linger");
    let local = fx.local();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    fs::create_dir_all(fx.storage().join("u")).unwrap();
    fs::write(fx.storage().join("u/one.bin"), &body).unwrap();
    fs::write(fx.storage().join("u/two.bin"), b"second").unwrap();
    let started = Instant::now();
    let lines = python_client(
        &local,
        server.addr.port(),
        &cert(),
        &["--probe-data-port"],
        &["get one.bin", "get two.bin", "put two.bin"],
    );
    let took = started.elapsed();
    for line in &lines[1..] {
        assert_eq!(
            line.status.as_deref(),
            Some(
                format!(
                    "{G}File {} successfully{X}\n",
                    if line.cmd.starts_with("get") {
                        "sent"
                    } else {
                        "received"
                    }
                )
                .as_str()
            ),
            "{line:?}"
        );
        // the one-shot port serves one connection: once the client has it, it is closed
        assert_eq!(line.second_connect.as_deref(), Some("refused"), "{line:?}");
    }
    assert_eq!(fs::read(local.join("one.bin")).unwrap(), body);
    assert_eq!(fs::read(local.join("two.bin")).unwrap(), b"second");
    // two gets and a put: waiting out the 5 s data-port timeout even once would show
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[test]
fn a_data_connection_that_never_comes_fails_the_transfer_with_a_warning() {
    let fx = Fixture::new("legacy-nodata");
    fs::create_dir_all(fx.storage().join("u")).unwrap();
    fs::write(fx.storage().join("u/there.txt"), b"content").unwrap();
    let log = fx.dir.path().join("server.log");
    // --quiet: warnings and errors only, as an operator runs it
    let server = BinServer::start(&fx, &["-q", "--log", log.to_str().unwrap()]);
    fs::write(fx.local().join("new.txt"), b"never sent").unwrap();
    let lines = python_client(
        &fx.local(),
        server.addr.port(),
        &cert(),
        &["--no-data-connection"],
        &["put new.txt", "get there.txt"],
    );
    for line in &lines[1..] {
        let status = line.status.as_deref().unwrap_or_default();
        assert!(status.starts_with(R), "a failure, in red: {line:?}");
    }
    assert!(
        !fx.storage().join("u/new.txt").exists(),
        "nothing was stored"
    );
    assert_eq!(
        partial_bytes(&fx.storage().join("u")),
        0,
        "no partial stays"
    );
    let text = fs::read_to_string(&log).unwrap_or_default();
    for (verb, name) in [("put", "new.txt"), ("get", "there.txt")] {
        assert!(
            text.lines()
                .any(|l| l.contains(" WARN ")
                    && l.contains(&format!("legacy {verb} \"{name}\" failed"))),
            "the {verb} that never got its data connection is not a warning:\n{text}"
        );
    }
}

//! The client against a hostile server (a compromised host, or anyone with the public
//! demo key), through the real binary: `get -r` stays beneath the chosen directory and
//! never follows a symlink already there, the partial download is created afresh and
//! fits any name, server text reaches the terminal escaped, replies are bounded, and
//! the password prompt can be cancelled and survives a suspend.

mod hostile;
mod support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fos::protocol::Request;
use hostile::{Hostile, dir, file};
use support::*;

/// Runs `fos-client -c SCRIPT` (plus `extra` flags) against `server` in `cwd`.
fn run_client(cwd: &Path, server: &str, extra: &[&str], script: &str) -> Output {
    let args: Vec<&str> = extra.iter().copied().chain(["-c", script]).collect();
    run(client_command(cwd, server, "u", "p", &cert(), &args))
}

/// What the hostile server sends for `get PATH`: a good file's own name, or `evil`.
fn content_for(path: &str) -> Vec<u8> {
    let base = path.rsplit('/').next().unwrap_or("");
    if base.starts_with("good") {
        format!("content of {base}").into_bytes()
    } else {
        b"evil".to_vec()
    }
}

/// A tree `d` whose listing holds every kind of name that must not become a local
/// path, around three good files (one in a subdirectory).
fn hostile_tree(outside: &Path) -> Hostile {
    let abs = outside.join("abs1").display().to_string();
    let top = vec![
        file("good1", 15),
        file("../up1", 4),
        file(abs.as_bytes(), 4),
        file("a/b", 4),
        dir("."),
        dir(".."),
        file("", 4),
        file(b"nul\0x", 4),
        file("x".repeat(256), 4),
        dir("../updir"),
        dir("sub"),
        file("good3", 15),
    ];
    let sub = vec![file("good2", 15), file("../../up2", 4)];
    Hostile::native(move |req, w| match req {
        Request::Ls(Some(p)) if p == "d" => w.list(&top),
        Request::Ls(Some(p)) if p == "d/sub" => w.list(&sub),
        Request::Ls(Some(p)) if p.ends_with("updir") => w.list(&[file("planted", 4)]),
        Request::Ls(_) => w.list(&[]),
        Request::Get { path, .. } => w.file(&content_for(path)),
        _ => w.err("invalid", b"no"),
    })
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn get_r_refuses_every_name_that_is_not_one_plain_component() {
    let tmp = TempDir::new("hostile-names");
    let (local, outside) = (tmp.path().join("local"), tmp.path().join("outside"));
    fs::create_dir_all(&local).unwrap();
    fs::create_dir_all(&outside).unwrap();
    let server = hostile_tree(&outside);
    let out = run_client(&local, &server.server_arg(), &["-q"], "get -r d out");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // nothing above or beside the chosen directory
    assert_eq!(names(&local), ["out"], "{err}");
    assert!(names(&outside).is_empty(), "{err}");
    assert!(names(tmp.path()).len() == 2, "{:?}", names(tmp.path()));
    // the good files arrived, the rest of the tree went on after each refusal
    let o = local.join("out");
    assert_eq!(names(&o), ["good1", "good3", "sub"], "{err}");
    assert_eq!(names(&o.join("sub")), ["good2"], "{err}");
    for (p, want) in [
        ("good1", "good1"),
        ("good3", "good3"),
        ("sub/good2", "good2"),
    ] {
        assert_eq!(
            fs::read_to_string(o.join(p)).unwrap(),
            format!("content of {want}")
        );
    }
    // each refusal names its entry, escaped
    for shown in [
        "\"../up1\"",
        "\"a/b\"",
        "\".\"",
        "\"..\"",
        "\"\"",
        "\"nul\\u{0}x\"",
        "\"../updir\"",
        "\"../../up2\"",
        &format!("\"{}\"", "x".repeat(256)),
    ] {
        assert!(err.contains(shown), "{shown} not named in: {err}");
    }
    assert!(err.contains("abs1"), "{err}");
}

#[test]
fn get_r_does_not_follow_local_symlinks_in_the_tree() {
    let (fx, server) = quiet_server("hostile-links");
    let root = fx.storage().join("u");
    fs::create_dir_all(root.join("d/sub")).unwrap();
    fs::write(root.join("d/good1"), "one").unwrap();
    fs::write(root.join("d/good3"), "three").unwrap();
    fs::write(root.join("d/sub/good2"), "two").unwrap();
    let local = fx.local();
    let elsewhere = fx.dir.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let victim = fx.dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    // planted: a directory level and a final file name that point elsewhere
    let out_dir = local.join("out");
    fs::create_dir_all(&out_dir).unwrap();
    symlink(&elsewhere, out_dir.join("sub")).unwrap();
    symlink(&victim, out_dir.join("good3")).unwrap();
    let out = run_client(&local, &server.server_arg(), &["-q"], "get -r d out");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        names(&elsewhere).is_empty(),
        "followed the planted directory: {err}"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        fs::symlink_metadata(out_dir.join("sub"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link is left alone"
    );
    assert!(err.contains("\"sub\""), "{err}");
    // the final name is neither written through nor replaced: a download never
    // replaces a symlink (refused and named, the rest of the tree goes on)
    let md = fs::symlink_metadata(out_dir.join("good3")).unwrap();
    assert!(md.file_type().is_symlink());
    assert!(err.contains("good3"), "{err}");
    assert_eq!(fs::read_to_string(out_dir.join("good1")).unwrap(), "one");

    // the top level of the tree is a name too: a link there is not followed either
    symlink(&elsewhere, local.join("d")).unwrap();
    let out = run_client(&local, &server.server_arg(), &["-q"], "get -r d");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(names(&elsewhere).is_empty(), "{}", stderr(&out));
}

#[test]
fn the_partial_download_does_not_follow_a_planted_link() {
    let (fx, server) = quiet_server("hostile-partial");
    let root = fx.storage().join("u");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f"), "new content").unwrap();
    fs::set_permissions(root.join("f"), fs::Permissions::from_mode(0o640)).unwrap();
    let local = fx.local();
    let victim = fx.dir.path().join("victim");
    for verb in ["get", "reget"] {
        fs::write(&victim, "precious").unwrap();
        let _ = fs::remove_file(local.join("f"));
        let planted = local.join(".f.fos-partial");
        let _ = fs::remove_file(&planted);
        symlink(&victim, &planted).unwrap();
        let out = run_client(&local, &server.server_arg(), &["-q"], &format!("{verb} f"));
        assert_eq!(out.status.code(), Some(0), "{verb}: {}", stderr(&out));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious", "{verb}");
        let md = fs::symlink_metadata(local.join("f")).unwrap();
        assert!(md.is_file(), "{verb}: the target is a plain file");
        assert_eq!(fs::read_to_string(local.join("f")).unwrap(), "new content");
        // the server's bits as the local umask lets them (never the victim's)
        assert_eq!(
            md.permissions().mode() & 0o777,
            0o640 & !fos::internals::sys::umask(),
            "{verb}"
        );
        assert!(fs::symlink_metadata(&planted).is_err(), "{verb}");
    }
}

#[test]
fn names_up_to_255_bytes_download_and_a_cut_partial_fits_too() {
    let fx = Fixture::new("hostile-long");
    let root = fx.storage().join("u");
    fs::create_dir_all(&root).unwrap();
    let local = fx.local();
    // every length near the limit, including multi-byte characters cut at the limit
    let long: Vec<String> = vec![
        "n".repeat(242),
        "n".repeat(243),
        "n".repeat(250),
        "n".repeat(255),
        format!("{}{}", "é".repeat(120), "xyzzyzz"),
    ];
    for name in &long {
        fs::write(root.join(name), name.as_bytes()).unwrap();
    }
    let server = BinServer::start(&fx, &["-q"]);
    for name in &long {
        let out = run_client(
            &local,
            &server.server_arg(),
            &["-q"],
            &format!("get '{name}'"),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{} bytes: {err}", name.len());
        assert!(!err.contains("fos-partial"), "{err}");
        assert_eq!(fs::read(local.join(name)).unwrap(), name.as_bytes());
    }
    assert_eq!(names(&local).len(), long.len(), "no partial left behind");

    // a download of a long name cut mid-way keeps a partial whose name fits, mode 0600,
    // and `reget` finds it again
    let data = content(6 << 20, 3);
    let big = "b".repeat(255);
    fs::write(root.join(&big), &data).unwrap();
    let lib = LibServer::start(fx.config());
    let proxy = Proxy::start(
        lib.addr,
        Faults {
            drop_down_after: Some(2 << 20),
            ..Faults::default()
        },
    );
    let out = run_client(
        &local,
        &proxy.addr.to_string(),
        &["-q", "--retries", "1", "--no-fsync"],
        &format!("get {big}"),
    );
    assert_ne!(out.status.code(), Some(0), "the cut was noticed");
    let partials: Vec<PathBuf> = fs::read_dir(&local)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".fos-partial"))
        .collect();
    assert_eq!(partials.len(), 1, "{:?}", names(&local));
    let partial = &partials[0];
    assert!(partial.file_name().unwrap().len() <= 255);
    let md = fs::metadata(partial).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    let kept = md.len();
    assert!(kept > 0 && kept < data.len() as u64, "{kept}");
    let out = run_client(
        &local,
        &lib.addr.to_string(),
        &["--no-fsync"],
        &format!("reget {big}"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_same(&fs::read(local.join(&big)).unwrap(), &data, "reget");
    assert!(
        !stderr(&out).contains("6.0 MiB in"),
        "it resumed: {}",
        stderr(&out)
    );
    assert!(!partial.exists());
}

/// Terminal escapes a hostile server puts in its text: set the window title, clear
/// the screen.
const TITLE: &str = "\x1b]0;pwned\x07\x1b[2J";
/// How the client shows [`TITLE`].
const TITLE_SHOWN: &str = "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J";
/// How a listing shows a name made of `prefix` and [`TITLE`]: in `$'...'`, which reads
/// back as the same name when pasted into a command.
fn listed(prefix: &str) -> String {
    format!("$'{prefix}\\x1b]0;pwned\\x07\\x1b[2J'")
}
/// A file with colour codes in it, for `cat`.
const COLOURED: &[u8] = b"hello \x1b[31mred\x1b[0m\n";

fn escaping_server() -> Hostile {
    Hostile::native(|req, w| match req {
        Request::Pwd => w.ok(&[format!("/{TITLE}").as_bytes()]),
        Request::Cd(_) => w.ok(&[format!("/{TITLE}").as_bytes()]),
        Request::Cat(p) if p == "ok" => w.ok(&[COLOURED, b"23"]),
        Request::Cat(_) => w.err("not-found", format!("gone{TITLE}").as_bytes()),
        Request::Glob(_) => w.ok(&[format!("/x{TITLE}").as_bytes()]),
        Request::Get { .. } => w.file(b"data"),
        Request::Ls(_) => w.list(&[file(format!("e{TITLE}"), 1)]),
        _ => w.err("invalid", TITLE.as_bytes()),
    })
}

#[track_caller]
fn assert_no_escapes(text: &str, what: &str) {
    assert!(
        !text.contains('\x1b') && !text.contains('\x07'),
        "{what} reached the terminal raw: {text:?}"
    );
}

#[test]
fn server_text_is_escaped_and_cat_to_a_pipe_stays_exact() {
    let tmp = TempDir::new("hostile-esc");
    let server = escaping_server();
    let out = run_client(
        tmp.path(),
        &server.server_arg(),
        &[],
        "pwd; cat ok; get 'x*'; ls; cat bad",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let head = format!("/{TITLE_SHOWN}\n{}", String::from_utf8_lossy(COLOURED));
    assert!(text.starts_with(&head), "{text:?}");
    // after the byte-exact cat: the listing (the transfer summary is on stderr)
    let rest = &text[head.len()..];
    assert_no_escapes(rest, "a name in a listing");
    assert!(rest.contains(&format!("{}\n", listed("e"))), "{rest:?}");
    let err = stderr(&out);
    assert_no_escapes(&err, "an error message or a summary");
    assert!(
        err.contains(&format!("x{TITLE_SHOWN}")),
        "the summary: {err}"
    );
    assert!(err.contains(&format!("gone{TITLE_SHOWN}")), "{err}");
    // the name is a legal local name: the file is there under it
    assert_eq!(
        fs::read(tmp.path().join(format!("x{TITLE}"))).unwrap(),
        b"data"
    );
}

#[test]
fn legacy_replies_are_escaped_too() {
    let tmp = TempDir::new("hostile-legacy");
    let server = Hostile::legacy(|cmd, s| {
        use fos::protocol::legacy::send_record;
        let reply = match cmd {
            c if c.starts_with("ls") => format!("a{TITLE}\tb\n"),
            c if c.starts_with("cat") => format!("plain{TITLE} text\n"),
            _ => format!("\x1b[31mDirectory does not exist{TITLE}\x1b[0m\n"),
        };
        send_record(s, reply.as_bytes())
    });
    let out = run_client(tmp.path(), &server.server_arg(), &[], "ls; cat f; cd d");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let listing = format!("{}\nb\n", listed("a"));
    // cat to a pipe is byte-exact, escapes and all
    assert_eq!(stdout(&out), format!("{listing}plain{TITLE} text\n"));
    let err = stderr(&out);
    assert_no_escapes(&err, "a legacy error");
    assert!(
        err.contains(&format!("Directory does not exist{TITLE_SHOWN}")),
        "{err}"
    );
}

/// A listing of `count` entries named `name`, in frames as full as allowed, and (if the
/// client is still reading) its end.
fn listing_server(name: Vec<u8>, count: usize) -> Hostile {
    Hostile::native(move |req, w| match req {
        Request::Ls(_) => {
            w.ok(&[])?;
            let field = file(&name, 0).encode();
            let per = ((1 << 20) / (field.len() + 4)).min(4096);
            let batch = fos::protocol::frame::encode_fields(&vec![&field[..]; per]);
            for _ in 0..count.div_ceil(per) {
                w.frame(fos::protocol::frame::Kind::List, &batch)?;
            }
            w.frame(fos::protocol::frame::Kind::List, &[])
        }
        _ => w.err("invalid", b"no"),
    })
}

#[test]
fn a_listing_without_end_is_cut_off_by_count_and_by_size() {
    let tmp = TempDir::new("hostile-list");
    // two million one-letter names: far past the entry limit
    let server = listing_server(b"e".to_vec(), 2_000_000);
    let out = run_client(tmp.path(), &server.server_arg(), &[], "ls");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("listing has more than 262144 entries"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty(), "nothing listed");
    // 255-byte names: the size limit comes first
    let server = listing_server(vec![b'n'; 255], 140_000);
    let out = run_client(tmp.path(), &server.server_arg(), &[], "ls");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("listing is larger than 32 MiB"),
        "{}",
        stderr(&out)
    );
    // get -r meets the same limit, and gives up
    let server = listing_server(b"e".to_vec(), 2_000_000);
    let out = run_client(tmp.path(), &server.server_arg(), &[], "get -r d");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

/// Runs `command` on a pseudo-terminal (util-linux `script`) without `FOS_PASSWORD`
/// unless `password` is given, typing each key string and then pausing its
/// milliseconds; returns the exit code and everything the terminal showed.
fn on_a_pty(command: &str, password: Option<&str>, keys: &[(&[u8], u64)]) -> (Option<i32>, String) {
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", command, "/dev/null"])
        .env("NO_COLOR", "1")
        .env("HISTFILE", "/dev/null")
        .env_remove("FOS_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = password {
        cmd.env("FOS_PASSWORD", p);
    }
    let mut child = cmd
        .spawn()
        .expect("script (util-linux) runs; make test installs it");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    for (k, pause) in keys {
        use std::io::Write;
        stdin.write_all(k).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(*pause));
    }
    drop(stdin);
    let out = wait_with_deadline(child, Duration::from_secs(20));
    (out.status.code(), stdout(&out))
}

/// `exec fos-client ARGS --cert CERT`: the client alone on the terminal.
fn client_line(args: &str) -> String {
    format!(
        "exec {} {args} --cert {}",
        env!("CARGO_BIN_EXE_fos-client"),
        cert().display()
    )
}

#[test]
fn on_a_terminal_the_prompt_and_cat_are_escaped() {
    let server = escaping_server();
    let (code, screen) = on_a_pty(
        &client_line(&format!("--server {} --user u", server.server_arg())),
        Some("p"),
        &[(b"cat ok\n", 300), (b"pwd\n", 300), (b"exit\n", 300)],
    );
    assert_eq!(code, Some(0), "{screen}");
    for raw in ["\x1b]0;", "\x1b[2J", "\x1b[31m"] {
        assert!(
            !screen.contains(raw),
            "{raw:?} reached the terminal: {screen:?}"
        );
    }
    assert!(
        screen.contains(&format!("fos:/{TITLE_SHOWN}> ")),
        "{screen:?}"
    );
    assert!(
        screen.contains("hello \\u{1b}[31mred\\u{1b}[0m"),
        "{screen:?}"
    );
}

#[test]
fn ctrl_c_and_ctrl_d_at_the_password_prompt_cancel_and_send_nothing() {
    let server = Hostile::native(|_, w| w.ok(&[b"/"]));
    let line = client_line(&format!("--server {} --user u -c pwd", server.server_arg()));
    let (code, screen) = on_a_pty(&line, None, &[(b"abc", 300), (b"\x03", 300)]);
    assert_eq!(code, Some(130), "{screen:?}");
    assert!(screen.contains("password for u: "), "{screen:?}");
    assert!(!screen.contains("abc"), "no echo: {screen:?}");
    let (code, screen) = on_a_pty(&line, None, &[(b"abc", 300), (b"\x04", 300)]);
    assert_eq!(code, Some(1), "{screen:?}");
    assert!(screen.contains("cancelled"), "{screen:?}");
    assert_eq!(server.connections(), 0, "nothing was sent");
    // Enter sends what was typed, less what was erased: the real server takes it
    let fx = Fixture::new("hostile-enter");
    let real = BinServer::start(&fx, &["-q"]);
    let line = client_line(&format!(
        "--server {} --user u -c 'mkdir in'",
        real.server_arg()
    ));
    let (code, screen) = on_a_pty(&line, None, &[(b"pX\x7f\n", 1500)]);
    assert_eq!(code, Some(0), "{screen:?}");
    assert!(fx.storage().join("u/in").is_dir(), "{screen:?}");
}

#[test]
fn ctrl_c_at_a_yes_no_question_answers_no() {
    let (fx, server) = quiet_server("hostile-confirm");
    fs::create_dir_all(fx.storage().join("u/d/e")).unwrap();
    let (code, screen) = on_a_pty(
        &client_line(&format!("--server {} --user u", server.server_arg())),
        Some("p"),
        &[
            (b"rm -r d\n", 300),
            (b"\x03", 300),
            // no longer the answer: a command of its own (an unknown one)
            (b"y\n", 300),
            (b"exit\n", 300),
        ],
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("remove d and everything in it? [y/N]"),
        "{screen}"
    );
    assert!(screen.contains("not confirmed"), "{screen}");
    assert!(fx.storage().join("u/d/e").is_dir(), "{screen}");
}

#[test]
fn after_ctrl_z_and_fg_the_password_prompt_still_does_not_echo() {
    let fx = Fixture::new("hostile-suspend");
    let secret = "Zebra-Horse-42";
    fs::write(fx.users(), format!("u:{secret}\n")).unwrap();
    let server = BinServer::start(&fx, &["-q"]);
    let client = format!(
        "{} --server {} --user u --cert {} -c 'mkdir resumed'\n",
        env!("CARGO_BIN_EXE_fos-client"),
        server.server_arg(),
        cert().display()
    );
    // an interactive shell with job control, as a user has
    let (_, screen) = on_a_pty(
        "bash --norc --noprofile -i",
        None,
        &[
            (client.as_bytes(), 700),
            (b"wrong", 300),
            (b"\x1a", 700),
            (b"fg\n", 700),
            (format!("{secret}\n").as_bytes(), 2000),
            (b"exit\n", 300),
        ],
    );
    assert!(
        screen.contains("Stopped"),
        "the shell suspended the client: {screen:?}"
    );
    assert!(!screen.contains(secret), "the password echoed: {screen:?}");
    assert_eq!(
        screen.matches("password for u: ").count(),
        2,
        "asked anew after fg: {screen:?}"
    );
    assert!(fx.storage().join("u/resumed").is_dir(), "{screen:?}");
}

#[test]
fn without_a_terminal_the_password_comes_from_the_environment_or_a_file_only() {
    let (fx, server) = quiet_server("hostile-nopty");
    let local = fx.local();
    // a new session: no controlling terminal, whatever runs the tests
    let client = |extra: &[&str], script: &str| {
        let mut cmd = Command::new("setsid");
        cmd.arg("-w")
            .arg(env!("CARGO_BIN_EXE_fos-client"))
            .args(["--server", &server.server_arg(), "--user", "u", "--cert"])
            .arg(cert())
            .args(extra)
            .current_dir(&local)
            .env_remove("FOS_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("setsid (util-linux) runs");
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        // a client that refuses at once may be gone before its input is written
        let _ = input.write_all(script.as_bytes());
        drop(input);
        wait_with_deadline(child, Duration::from_secs(30))
    };
    // the first line of the script is not taken for the password
    let out = client(&[], "p\nmkdir taken\n");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no terminal")
            && err.contains("FOS_PASSWORD")
            && err.contains("--password-file"),
        "{err}"
    );
    assert!(!fx.storage().join("u/taken").exists());
    let file = fx.dir.path().join("pw");
    fs::write(&file, "p\n").unwrap();
    let out = client(
        &["--password-file", file.to_str().unwrap()],
        "mkdir viafile\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(fx.storage().join("u/viafile").is_dir());
    let out = client(&["--password-file", "/nonexistent/pw"], "pwd\n");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_download_longer_than_announced_is_cut_off() {
    let tmp = TempDir::new("hostile-long-get");
    // four bytes announced, then 512 MiB of data frames
    let server = Hostile::native(|req, w| match req {
        Request::Get { .. } => {
            w.ok(&[b"4", b"0", b"0"])?;
            let chunk = vec![b'x'; 256 << 10];
            for _ in 0..2048 {
                w.frame(fos::protocol::frame::Kind::Data, &chunk)?;
            }
            w.frame(fos::protocol::frame::Kind::End, &[0; 32])
        }
        _ => w.err("invalid", b"no"),
    });
    let out = run_client(tmp.path(), &server.server_arg(), &["-q"], "get f");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than the 4 bytes it announced"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("f").exists());
}

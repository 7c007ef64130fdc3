//! The client as sftp users expect it, through the real binary: wildcards on both
//! sides, `-n`, modification times, `put -r`/`get -r`, `rm -r -f`, scripts on standard
//! input (with `-k`), `passwd`, an IPv6 loopback session, and Ctrl-C during a get.

mod support;

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use support::*;

#[test]
fn wildcards_on_both_sides() {
    let (fx, server) = quiet_server("glob");
    let local = fx.local();
    let s = server.server_arg();
    for n in ["a.log", "b.log", "c.txt"] {
        fs::write(local.join(n), n).unwrap();
    }
    let out = client(
        &local,
        &s,
        "u",
        "p",
        &["-q", "-c", "mkdir data; put *.log data; ls data"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "a.log\nb.log\n");
    let root = fx.storage().join("u");
    for n in ["2026-01.csv", "2026-02.csv", "2025-12.csv"] {
        fs::write(root.join("data").join(n), n).unwrap();
    }
    fs::create_dir_all(root.join("tmp")).unwrap();
    for n in ["x.bak", "y.bak", "keep.txt"] {
        fs::write(root.join("tmp").join(n), n).unwrap();
    }
    let got = local.join("got");
    fs::create_dir_all(&got).unwrap();
    let out = client(
        &local,
        &s,
        "u",
        "p",
        &["-q", "-c", "get 'data/2026-*' got; rm tmp/*.bak; ls tmp"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut names: Vec<_> = fs::read_dir(&got)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["2026-01.csv", "2026-02.csv"]);
    assert_eq!(stdout(&out), "keep.txt\n");
    // no match is an error that says so, on both sides
    let out = client(&local, &s, "u", "p", &["-c", "get 'nothing*'"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no match for nothing*"),
        "{}",
        stderr(&out)
    );
    let out = client(&local, &s, "u", "p", &["-c", "put *.none"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no local file matches *.none"),
        "{}",
        stderr(&out)
    );
    // a pattern that tries to leave the root is refused, and deletes nothing outside
    fs::create_dir_all(fx.storage().join("u2")).unwrap();
    fs::write(fx.storage().join("u2/victim.bak"), "v").unwrap();
    for pattern in ["../u2/*.bak", "../*/*.bak", "/../u2/*"] {
        let out = client(&local, &s, "u", "p", &["-c", &format!("rm '{pattern}'")]);
        assert_eq!(out.status.code(), Some(1), "{pattern}");
    }
    assert!(fx.storage().join("u2/victim.bak").exists());
}

fn set_mtime(path: &std::path::Path, secs: u64) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn mtime(path: &std::path::Path) -> u64 {
    fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn no_clobber_and_modification_times() {
    let (fx, server) = quiet_server("times");
    let local = fx.local();
    let s = server.server_arg();
    fs::write(local.join("old.txt"), "from 2001").unwrap();
    set_mtime(&local.join("old.txt"), 978_307_200); // 2001-01-01T00:00:00Z
    assert!(
        client(&local, &s, "u", "p", &["-q", "-c", "put old.txt"])
            .status
            .success()
    );
    assert_eq!(
        mtime(&fx.storage().join("u/old.txt")),
        978_307_200,
        "the server kept the client's mtime"
    );
    let out = client(&local, &s, "u", "p", &["-q", "-c", "ls -l old.txt"]);
    assert!(
        stdout(&out).contains("2001-01-01T00:00:00Z"),
        "{}",
        stdout(&out)
    );
    set_mtime(&fx.storage().join("u/old.txt"), 1_000_000_000);
    assert!(
        client(&local, &s, "u", "p", &["-q", "-c", "get old.txt back.txt"])
            .status
            .success()
    );
    assert_eq!(
        mtime(&local.join("back.txt")),
        1_000_000_000,
        "the client kept the server's mtime"
    );
    // -n refuses to replace, on both sides; without it both overwrite like sftp
    fs::write(local.join("old.txt"), "changed").unwrap();
    let out = client(&local, &s, "u", "p", &["-c", "put -n old.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(
        fs::read(fx.storage().join("u/old.txt")).unwrap(),
        b"from 2001"
    );
    let out = client(&local, &s, "u", "p", &["-c", "get -n old.txt back.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        client(
            &local,
            &s,
            "u",
            "p",
            &["-q", "-c", "put old.txt; get old.txt back.txt"]
        )
        .status
        .success()
    );
    assert_eq!(fs::read(local.join("back.txt")).unwrap(), b"changed");
}

#[test]
fn trees_both_ways_and_rm_r() {
    let (fx, server) = quiet_server("trees");
    let local = fx.local();
    let s = server.server_arg();
    let tree = local.join("proj");
    fs::create_dir_all(tree.join("src/deep")).unwrap();
    fs::write(tree.join("README"), "r").unwrap();
    fs::write(tree.join("src/main.rs"), "fn main() {}").unwrap();
    fs::write(tree.join("src/deep/x.bin"), content(300_000, 1)).unwrap();
    let out = client(&local, &s, "u", "p", &["-c", "put -r proj"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("put -r proj -> proj: 3 files"),
        "one summary: {}",
        stderr(&out)
    );
    assert_eq!(
        snapshot(&tree).len(),
        snapshot(&fx.storage().join("u/proj")).len()
    );
    // a symlink on the server is not followed by get -r
    std::os::unix::fs::symlink("/etc", fx.storage().join("u/proj/etc-link")).unwrap();
    let out = client(&local, &s, "u", "p", &["-c", "get -r proj copy"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read(local.join("copy/src/deep/x.bin")).unwrap(),
        content(300_000, 1)
    );
    assert!(!local.join("copy/etc-link").exists());
    // rm -r -f removes the tree without asking
    let out = client(&local, &s, "u", "p", &["-c", "rm -r -f proj; ls"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

#[test]
fn scripts_on_stdin_stop_at_the_first_failure_unless_k() {
    let (fx, server) = quiet_server("script");
    let local = fx.local();
    let s = server.server_arg();
    let script = "# make a tree\nmkdir a\ncd a   # inside\npwd\ncat missing\nmkdir b\npwd\n";
    let out = client_stdin(&local, &s, "u", "p", &["-q"], script);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "/a\n", "stopped at the failing line");
    assert!(stderr(&out).contains("line 5"), "{}", stderr(&out));
    assert!(!fx.storage().join("u/a/b").exists());
    let out = client_stdin(
        &local,
        &s,
        "u",
        "p",
        &["-q", "-k"],
        &script
            .replace("mkdir a\n", "mkdir a2\n")
            .replace("cd a ", "cd a2 "),
    );
    assert_eq!(out.status.code(), Some(1), "the first failure's code");
    assert_eq!(stdout(&out), "/a2\n/a2\n", "kept going");
    assert!(fx.storage().join("u/a2/b").is_dir());
}

#[test]
fn passwd_at_the_prompt() {
    let (fx, server) = quiet_server("cpasswd");
    let local = fx.local();
    let s = server.server_arg();
    // without a terminal the secrets are read from standard input
    let out = client_stdin(
        &local,
        &s,
        "u",
        "p",
        &["-c", "passwd"],
        "p\nn3w-pw\nn3w-pw\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        fs::read_to_string(fx.users())
            .unwrap()
            .contains("u:$pbkdf2-sha256$i=")
    );
    assert!(
        client(&local, &s, "u", "n3w-pw", &["-c", "pwd"])
            .status
            .success()
    );
    assert_eq!(
        client(&local, &s, "u", "p", &["-c", "pwd"]).status.code(),
        Some(4)
    );
    let out = client_stdin(&local, &s, "u2", "p2", &["-c", "passwd"], "wrong\nx\nx\n");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let out = client_stdin(&local, &s, "u2", "p2", &["-c", "passwd"], "p2\nx\ny\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("differ"));
}

#[test]
fn ipv6_loopback_session() {
    let fx = Fixture::new("v6");
    let server = BinServer::launch(&fx, "::1", 0, Some(0), "", &["-q"]);
    assert!(server.addr.is_ipv6());
    fs::write(fx.local().join("six.txt"), "over ::1").unwrap();
    let out = client(
        &fx.local(),
        &format!("[::1]:{}", server.addr.port()),
        "u",
        "p",
        &["-q", "-c", "put six.txt; cat six.txt"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "over ::1\n");
}

#[test]
fn ctrl_c_cancels_a_get_and_reget_completes_it() {
    let fx = Fixture::new("sigint");
    let data = content(16 << 20, 21);
    fs::create_dir_all(fx.storage().join("u")).unwrap();
    fs::write(fx.storage().join("u/big.bin"), &data).unwrap();
    let server = LibServer::start(fx.config());
    let proxy = Proxy::start(
        server.addr,
        Faults {
            rate: Some(8 << 20),
            ..Faults::default()
        },
    );
    let local = fx.local();
    let mut child = client_command(
        &local,
        &proxy.addr.to_string(),
        "u",
        "p",
        &cert(),
        &["-k", "--no-fsync"],
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let errors = PipeWatch::new(child.stderr.take().unwrap());
    use std::io::Write;
    // to another local name: the cancel hint must name it too
    stdin.write_all(b"get big.bin copy.bin\n").unwrap();
    stdin.flush().unwrap();
    let partial = local.join(".copy.bin.fos-partial");
    wait_until("the download to start", Duration::from_secs(20), || {
        fs::metadata(&partial).map_or(0, |m| m.len()) >= 2 << 20
    });
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // the client has taken the Ctrl-C when it says the get is cancelled
    wait_until("the cancelled get", Duration::from_secs(20), || {
        errors.contains("cancelled") || child.try_wait().unwrap().is_some()
    });
    if let Some(st) = child.try_wait().unwrap() {
        let mut out = child.wait_with_output().unwrap();
        out.stderr = errors.finish();
        panic!(
            "one Ctrl-C quit the client: {st:?} {} {}",
            stdout(&out),
            stderr(&out)
        );
    }
    let kept = fs::metadata(&partial).expect("the partial is kept").len();
    assert!(kept > 0 && kept < data.len() as u64);
    stdin.write_all(b"reget big.bin copy.bin\npwd\n").unwrap();
    drop(stdin);
    let mut out = wait_with_deadline(child, Duration::from_secs(60));
    out.stderr = errors.finish();
    assert_eq!(
        out.status.code(),
        Some(1),
        "-k exits with the cancelled get's code: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("cancelled; `reget big.bin copy.bin` resumes it"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).ends_with("/\n"),
        "the next commands ran: {}",
        stdout(&out)
    );
    assert_same(&fs::read(local.join("copy.bin")).unwrap(), &data, "reget");
    assert!(!partial.exists());
}

#[test]
fn the_local_side_lcd_lls_lpwd() {
    let (fx, server) = quiet_server("local");
    let local = fx.local();
    fs::create_dir_all(local.join("sub/inner")).unwrap();
    fs::write(local.join("sub/f.txt"), "12345").unwrap();
    let out = client(
        &local,
        &server.server_arg(),
        "u",
        "p",
        &[
            "-q",
            "-c",
            "lcd sub; lpwd; lls; lls -l; put f.txt; lcd nowhere",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "lcd nowhere fails: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with("/local/sub"), "{text}");
    assert_eq!(&lines[1..3], &["f.txt", "inner"]);
    // type and permission bits (owner's at least rwx / rw), then size, time, name
    assert!(
        lines[3].starts_with("drwx") && lines[3].ends_with(" inner"),
        "directories first: {text}"
    );
    assert!(
        lines[4].starts_with("-rw") && lines[4].contains(" 5 "),
        "{text}"
    );
    assert_eq!(
        fs::read(fx.storage().join("u/f.txt")).unwrap(),
        b"12345",
        "put read from the new local directory"
    );
}

#[test]
fn ca_mode_checks_the_server_name() {
    let (_fx, server) = quiet_server("ca");
    let run = |name: &str| {
        support::without_terminal(env!("CARGO_BIN_EXE_fos-client"))
            .env("FOS_PASSWORD", "p")
            .args([
                "--server",
                &server.server_arg(),
                "--user",
                "u",
                "-c",
                "pwd",
                "--ca",
                "--server-name",
                name,
                "--cafile",
            ])
            .arg(cert())
            .output()
            .unwrap()
    };
    // the test certificate is its own CA here; its subjectAltName holds localhost
    let ok = run("localhost");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let wrong = run("files.example");
    assert_eq!(wrong.status.code(), Some(3), "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("TLS handshake"),
        "{}",
        stderr(&wrong)
    );
}

#[test]
fn mv_moves_across_directories_and_refuses_what_it_must() {
    let (fx, server) = quiet_server("mv");
    let root = fx.storage().join("u");
    fs::create_dir_all(root.join("a/sub")).unwrap();
    fs::create_dir_all(root.join("b/sub")).unwrap();
    fs::write(root.join("a/f.txt"), "f").unwrap();
    let s = server.server_arg();
    let local = fx.local();
    let out = client(
        &local,
        &s,
        "u",
        "p",
        &["-q", "-c", "mv a/f.txt b; ls b; mv b/f.txt b/g.txt; ls b"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "f.txt\nsub\ng.txt\nsub\n");
    for (script, needle) in [
        ("mv a/sub b", "already exists"), // would replace the directory b/sub
        ("mv a a/sub", "into itself"),    // a directory into itself
        ("mv b/g.txt ../u2/x", "no such file"), // out of the root
        ("mv nothing b", "no such file"),
    ] {
        let out = client(&local, &s, "u", "p", &["-c", script]);
        assert_eq!(out.status.code(), Some(1), "{script}");
        assert!(stderr(&out).contains(needle), "{script}: {}", stderr(&out));
    }
    assert!(root.join("a/sub").is_dir() && root.join("b/g.txt").exists());
}

/// Runs the client on a pseudo-terminal (util-linux `script`), typing `keys` with pauses
/// between the pieces; returns what the terminal showed.
fn on_a_terminal(server: &str, keys: &[&[u8]]) -> (Option<i32>, String) {
    on_a_terminal_with(&format!("--server {server} --user u"), keys)
}

fn on_a_terminal_with(args: &str, keys: &[&[u8]]) -> (Option<i32>, String) {
    // `exec`: with no shell left between `script` and the client, a Ctrl-C reaches only
    // the client (dash forks for `-c` and would re-raise the SIGINT when the client ends)
    let client = format!(
        "exec {} {args} --cert {}",
        env!("CARGO_BIN_EXE_fos-client"),
        cert().display()
    );
    // the prompt's history goes here, not into the home of whoever runs the tests
    let state = TempDir::new("state");
    on_a_pty(
        &client,
        None,
        &[("XDG_STATE_HOME", state.path().as_os_str())],
        keys,
    )
}

#[test]
fn on_a_terminal_ctrl_c_clears_the_line_and_rm_r_asks() {
    let (fx, server) = quiet_server("pty");
    fs::create_dir_all(fx.storage().join("u/d/e")).unwrap();
    let (code, screen) = on_a_terminal(
        &server.server_arg(),
        &[
            b"mkdir junk",
            b"\x03",
            b"pwd\n",
            b"rm -r d\n",
            b"n\n",
            b"ls\n",
            b"rm -r d\n",
            b"y\n",
            b"exit\n",
        ],
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        !fx.storage().join("u/junk").exists(),
        "the interrupted line was dropped: {screen}"
    );
    assert!(screen.contains("^C"), "{screen}");
    assert!(
        screen.contains("remove d and everything in it? [y/N]"),
        "{screen}"
    );
    assert!(screen.contains("not confirmed"), "{screen}");
    assert!(!fx.storage().join("u/d").exists(), "removed after yes");
}

#[test]
fn on_a_terminal_discovery_lists_servers_and_connects_to_the_one_picked() {
    let fx = Fixture::new("pick");
    let greet = free_port("127.0.0.2");
    let _a = discoverable(&fx, "127.0.0.2", greet, "", "first");
    let _b = discoverable(&fx, "127.0.0.3", greet, "", "second");
    let (code, screen) = on_a_terminal_with(
        &format!("--scan 127.0.0.1-4 --greet-port {greet} --user u"),
        &[b"2\n", b"mkdir picked\n", b"exit\n"],
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("swept 4 addresses"), "{screen}");
    assert!(
        screen.contains("1) first 127.0.0.2:") && screen.contains("2) second 127.0.0.3:"),
        "{screen}"
    );
    assert!(screen.contains("Connected to 127.0.0.3:"), "{screen}");
    assert!(fx.storage().join("u/picked").is_dir());
}

//! The prompt as sftp users expect it, through the real binaries: output
//! that keeps to its stream, `help`, timeouts, `localhost`, discovery that offers only
//! what it trusts, cancel hints that resume, and command lines read as a shell reads
//! them; errors that say what failed; flags that behave like their shell namesakes;
//! finding the certificate and trusting a new server; `!`, `df`, `ls` in columns and
//! the `cat` marker; permission bits and directory times.
//!
//! Every wait is bounded; servers listen on loopback only.

mod support;

use std::fs;
use std::net::TcpListener;

use support::*;
// a modification time in seconds, under the name the tests use
use support::mtime_secs as time_of;

/// Runs `-c CMDS` as user u against `server` from `cwd` (no terminal).
fn c(cwd: &std::path::Path, server: &str, cmds: &str) -> std::process::Output {
    client(cwd, server, "u", "p", &["-c", cmds])
}

#[test]
fn transfer_summaries_go_to_stderr_and_stdout_keeps_command_output() {
    let (fx, server) = quiet_server("ux-summary");
    fs::write(fx.local().join("f.txt"), "data").unwrap();
    let out = c(
        &fx.local(),
        &server.server_arg(),
        "put f.txt; ls; get f.txt g.txt",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "f.txt\n", "only what ls printed");
    assert!(
        stderr(&out).contains("f.txt -> f.txt: 4 B in"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("f.txt -> g.txt: 4 B in"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_is_ordered_aligned_within_80_columns_and_knows_quit() {
    let (fx, server) = quiet_server("ux-help");
    let out = c(&fx.local(), &server.server_arg(), "help");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "{line:?}");
    }
    let at = |cmd: &str| {
        text.lines()
            .position(|l| l.starts_with(&format!("  {cmd}")))
            .unwrap_or_else(|| panic!("{cmd} listed: {text}"))
    };
    assert!(at("ls") < at("get ") && at("get ") < at("reget") && at("reget") < at("mkdir"));
    assert!(at("lcd") < at("help") && at("help") < at("exit"));
    // the explanations start in one column
    let starts: Vec<usize> = ["List a remote directory", "Download a file", "Leave"]
        .iter()
        .map(|about| {
            text.lines()
                .find_map(|l| l.find(about))
                .unwrap_or_else(|| panic!("{about}: {text}"))
        })
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] == w[1]),
        "{starts:?}: {text}"
    );
    let quit = c(&fx.local(), &server.server_arg(), "help quit");
    assert_eq!(quit.status.code(), Some(0), "{}", stderr(&quit));
    assert!(stdout(&quit).starts_with("exit\n"), "{}", stdout(&quit));
}

#[test]
fn a_silent_server_times_out_and_says_so_and_timeout_0_is_a_usage_error() {
    let fx = Fixture::new("ux-timeout");
    // accepts (the kernel completes the handshake) and never says a word
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let out = client(
        &fx.local(),
        &addr,
        "u",
        "p",
        &["--timeout", "1", "-c", "pwd"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    drop(silent);
    let out = client(
        &fx.local(),
        &addr,
        "u",
        "p",
        &["--timeout", "0", "-c", "pwd"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--timeout"), "{}", stderr(&out));
}

#[test]
fn localhost_reaches_a_server_on_either_loopback_address() {
    let fx = Fixture::new("ux-localhost");
    for bind in ["::1", "127.0.0.1"] {
        let server = BinServer::launch(&fx, bind, 0, None, "", &["-q"]);
        let out = c(
            &fx.local(),
            &format!("localhost:{}", server.addr.port()),
            "pwd",
        );
        assert_eq!(out.status.code(), Some(0), "{bind}: {}", stderr(&out));
        assert_eq!(stdout(&out), "/\n");
    }
}

#[test]
fn discovery_connects_to_the_one_trusted_server_and_never_offers_an_untrusted_one() {
    let fx = Fixture::new("ux-disc");
    let greet = free_port("127.0.0.2");
    let _ours = discoverable(&fx, "127.0.0.2", greet, "", "ours");
    let _other = discoverable(&fx, "127.0.0.3", greet, "other-", "impostor");
    let scan = [
        "--scan",
        "127.0.0.1-4",
        "--greet-port",
        &greet.to_string(),
        "--user",
        "u",
        "-c",
        "mkdir picked",
    ];
    let mut cmd = without_terminal(env!("CARGO_BIN_EXE_fos-client"));
    cmd.current_dir(fx.local())
        .env("FOS_PASSWORD", "p")
        .args(scan)
        .arg("--cert")
        .arg(cert())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = run(cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("[1-"), "no question with one choice: {err}");
    assert!(err.contains("1) ours 127.0.0.2:"), "{err}");
    assert!(
        err.contains("-) impostor 127.0.0.3:") && err.contains("not offered"),
        "{err}"
    );
    assert!(fx.storage().join("u/picked").is_dir());
}

#[test]
fn backslashes_escape_spaces_as_in_a_shell() {
    let (fx, server) = quiet_server("ux-backslash");
    fs::create_dir_all(fx.storage().join("u/docs")).unwrap();
    fs::write(fx.storage().join("u/docs/my file.txt"), "spaced").unwrap();
    let out = client(
        &fx.local(),
        &server.server_arg(),
        "u",
        "p",
        &["-q", "-c", r"get docs/my\ file.txt; cat docs/my\ file.txt"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "spaced\n");
    assert_eq!(fs::read(fx.local().join("my file.txt")).unwrap(), b"spaced");
    // the same from a script on standard input
    let out = client_stdin(
        &fx.local(),
        &server.server_arg(),
        "u",
        "p",
        &["-q"],
        "cat docs/my\\ file.txt\n",
    );
    assert_eq!(stdout(&out), "spaced\n", "{}", stderr(&out));
}

#[test]
fn exit_130_is_in_the_exit_code_tables() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fos-client"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(stdout(&out).contains("130 Ctrl-C"), "{}", stdout(&out));
    let readme = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("| 130 | Ctrl-C"), "README exit-code table");
}

/// Runs the client on a pseudo-terminal (util-linux `script`), typing `keys` with pauses
/// between the pieces; returns its exit code and what the terminal showed. Its history
/// and configuration go to a fresh directory.
fn on_a_terminal(cwd: &std::path::Path, args: &str, keys: &[&[u8]]) -> (Option<i32>, String) {
    let state = TempDir::new("ux-state");
    on_a_terminal_in(cwd, state.path(), args, keys)
}

/// [`on_a_terminal`] in the fixture's local directory, with the configuration kept in
/// the fixture's `conf/` from one run to the next.
fn on_a_terminal_keeping(fx: &Fixture, args: &str, keys: &[&[u8]]) -> (Option<i32>, String) {
    let conf = fx.dir.path().join("conf");
    fs::create_dir_all(&conf).unwrap();
    on_a_terminal_in(&fx.local(), &conf, args, keys)
}

fn on_a_terminal_in(
    cwd: &std::path::Path,
    state: &std::path::Path,
    args: &str,
    keys: &[&[u8]],
) -> (Option<i32>, String) {
    // `exec`: no shell stays between `script` and the client
    let command = format!(
        "stty cols 80 rows 24; exec {} {args}",
        env!("CARGO_BIN_EXE_fos-client")
    );
    let state = state.as_os_str();
    let env = [
        ("XDG_STATE_HOME", state),
        ("XDG_CONFIG_HOME", state),
        ("HOME", state),
        ("TERM", std::ffi::OsStr::new("xterm")),
    ];
    on_a_pty(&command, Some(cwd), &env, keys)
}

#[test]
fn errors_name_the_command_the_path_and_where_in_the_script() {
    let (fx, server) = quiet_server("ux-errors");
    let s = server.server_arg();
    let local = fx.local();
    let root = fx.storage().join("u");
    fs::create_dir_all(root.join("dir/sub")).unwrap();
    fs::write(root.join("old.txt"), "server copy").unwrap();
    // -c: each failure names its command, its path and its place
    let out = client(
        &local,
        &s,
        "u",
        "p",
        &["-k", "-c", "cat nothere; pwd; cat alsonot"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("fos: command 1: cat nothere: no such file or directory"),
        "{err}"
    );
    assert!(
        err.contains("fos: command 3: cat alsonot: no such file or directory"),
        "{err}"
    );
    // one command alone: just the command
    let out = c(&local, &s, "cat nothere");
    assert_eq!(
        stderr(&out),
        "fos: cat nothere: no such file or directory\n"
    );
    // scripts on standard input: the line
    let out = client_stdin(&local, &s, "u", "p", &["-k"], "cat nothere\nls gone\n");
    let err = stderr(&out);
    assert!(err.contains("line 1: cat nothere: no such file"), "{err}");
    assert!(err.contains("line 2: ls gone: no such file"), "{err}");
    // rm of a directory says what would remove it
    let out = c(&local, &s, "rm dir");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("rm dir: is a directory") && err.contains("rm -r") && err.contains("rmdir"),
        "{err}"
    );
    // the two -n refusals read the same, each naming its side
    fs::write(local.join("old.txt"), "local copy").unwrap();
    let put = stderr(&c(&local, &s, "put -n old.txt"));
    let get = stderr(&c(&local, &s, "get -n old.txt"));
    assert_eq!(
        put,
        "fos: put old.txt: old.txt already exists on the server (-n does not replace it)\n"
    );
    assert_eq!(
        get,
        "fos: get old.txt: old.txt already exists locally (-n does not replace it)\n"
    );
    // mv onto itself, or into the directory it is in: nothing to do, not an error
    for script in [
        "mv dir dir",
        "mv dir /",
        "mv old.txt old.txt",
        "mv dir/sub dir",
    ] {
        let out = c(&local, &s, script);
        assert_eq!(out.status.code(), Some(0), "{script}: {}", stderr(&out));
    }
    assert!(root.join("dir/sub").is_dir() && root.join("old.txt").is_file());
    assert!(stderr(&c(&local, &s, "mv dir dir/sub")).contains("into itself"));
}

#[test]
fn a_local_write_failure_says_local_and_never_shows_the_partial_name() {
    let (fx, server) = quiet_server("ux-efbig");
    fs::create_dir_all(fx.storage().join("u")).unwrap();
    fs::write(fx.storage().join("u/big.bin"), content(1 << 20, 3)).unwrap();
    // a file size limit of 64 KiB (dash counts 512-byte blocks): writes past it fail
    // with EFBIG; the signal that would come with them is ignored
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 128; exec setsid {} --server {} --user u --cert {} -c 'get big.bin'",
            env!("CARGO_BIN_EXE_fos-client"),
            server.server_arg(),
            cert().display()
        ))
        .current_dir(fx.local())
        .env("FOS_PASSWORD", "p")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = run(cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("fos: get big.bin: "), "{err}");
    assert!(err.contains("local"), "says which side: {err}");
    assert!(err.contains("big.bin"), "{err}");
    assert!(
        !err.contains("fos-partial") && !err.contains("os error"),
        "{err}"
    );
    assert!(!fx.local().join("big.bin").exists());
}

#[test]
fn unknown_flags_are_refused_and_mkdir_p_rm_f_work_as_in_a_shell() {
    let (fx, server) = quiet_server("ux-flags");
    let s = server.server_arg();
    let local = fx.local();
    let root = fx.storage().join("u");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f"), "f").unwrap();
    for script in [
        "mkdir -x d",
        "cat -n f",
        "cd -l /",
        "pwd -q",
        "rmdir -r d",
        "mv -f f g",
    ] {
        let out = c(&local, &s, script);
        assert_eq!(out.status.code(), Some(2), "{script}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("unknown option"),
            "{script}: {}",
            stderr(&out)
        );
    }
    assert!(root.join("f").exists() && !root.join("g").exists() && !root.join("d").exists());
    let out = c(
        &local,
        &s,
        "mkdir -p a/b/c; mkdir -p a/b; mkdir -p /a/b/c/d",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(root.join("a/b/c/d").is_dir());
    let out = c(&local, &s, "mkdir -p f/x");
    assert_eq!(out.status.code(), Some(1), "a file in the way");
    let out = c(
        &local,
        &s,
        "rm -f nothere; rm -f 'none*'; rm -r -f gone; rm -f f",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "quietly");
    assert!(!root.join("f").exists());
    let out = c(&local, &s, "rm nothere");
    assert_eq!(out.status.code(), Some(1), "without -f it is an error");
}

#[test]
fn on_a_terminal_rm_r_of_a_missing_path_fails_without_asking() {
    let (fx, server) = quiet_server("ux-rmr");
    fs::create_dir_all(fx.storage().join("u/keep")).unwrap();
    let (code, screen) = on_a_terminal(
        &fx.local(),
        &format!(
            "--server {} --user u --cert {}",
            server.server_arg(),
            cert().display()
        ),
        &[b"rm -r nothere\n", b"exit\n"],
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(!screen.contains("[y/N]"), "asked: {screen}");
    assert!(
        screen.contains("rm -r nothere: no such file or directory"),
        "{screen}"
    );
    assert!(fx.storage().join("u/keep").is_dir());
}

#[test]
fn no_clobber_trees_skip_existing_files_and_count_them() {
    let (fx, server) = quiet_server("ux-nr");
    let s = server.server_arg();
    let local = fx.local();
    let root = fx.storage().join("u");
    fs::create_dir_all(local.join("proj/sub")).unwrap();
    for (name, text) in [("a", "new a"), ("b", "new b"), ("sub/c", "new c")] {
        fs::write(local.join("proj").join(name), text).unwrap();
    }
    fs::create_dir_all(root.join("proj/sub")).unwrap();
    fs::write(root.join("proj/b"), "old b").unwrap();
    fs::write(root.join("proj/sub/c"), "old c").unwrap();
    let out = c(&local, &s, "put -n -r proj");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("put -r proj -> proj: 1 files") && stderr(&out).contains("2 skipped"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_to_string(root.join("proj/a")).unwrap(), "new a");
    assert_eq!(fs::read_to_string(root.join("proj/b")).unwrap(), "old b");
    assert_eq!(
        fs::read_to_string(root.join("proj/sub/c")).unwrap(),
        "old c"
    );
    // and back: the local copies that exist stay
    fs::create_dir_all(local.join("copy")).unwrap();
    fs::write(local.join("copy/a"), "mine").unwrap();
    let out = c(&local, &s, "get -r -n proj copy");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 skipped"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(local.join("copy/a")).unwrap(), "mine");
    assert_eq!(fs::read_to_string(local.join("copy/b")).unwrap(), "old b");
    assert_eq!(
        fs::read_to_string(local.join("copy/sub/c")).unwrap(),
        "old c"
    );
}

/// The SHA-256 fingerprint of a test certificate, as the client prints it.
fn fingerprint(pem: &str) -> String {
    let certs = fos::tls::load_certs(&data_dir().join(pem)).unwrap();
    fos::internals::x509::fingerprint(&certs[0])
}

/// The client without `--cert`, in `cwd`, with its configuration under `conf`
/// (`XDG_CONFIG_HOME`) and `home` (`HOME`), running `-c pwd`.
fn unpinned(
    cwd: &std::path::Path,
    conf: Option<&std::path::Path>,
    home: &std::path::Path,
    server: &str,
) -> std::process::Output {
    let mut cmd = without_terminal(env!("CARGO_BIN_EXE_fos-client"));
    cmd.current_dir(cwd)
        .env("FOS_PASSWORD", "p")
        .env("NO_COLOR", "1")
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .args(["--server", server, "--user", "u", "-c", "pwd"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(conf) = conf {
        cmd.env("XDG_CONFIG_HOME", conf);
    }
    run(cmd)
}

#[test]
fn without_cert_the_pin_is_looked_for_in_certs_then_the_config_directory() {
    let (fx, server) = quiet_server("ux-pin");
    let s = server.server_arg();
    let (cwd, conf, home) = (
        fx.dir.path().join("elsewhere"),
        fx.dir.path().join("conf"),
        fx.dir.path().join("home"),
    );
    for d in [&cwd, &conf.join("fos"), &home.join(".config/fos")] {
        fs::create_dir_all(d).unwrap();
    }
    // $XDG_CONFIG_HOME/fos/cert.pem, from a directory with no certs/
    fs::copy(cert(), conf.join("fos/cert.pem")).unwrap();
    let out = unpinned(&cwd, Some(&conf), &home, &s);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // ~/.config/fos/cert.pem without XDG_CONFIG_HOME
    fs::copy(cert(), home.join(".config/fos/cert.pem")).unwrap();
    let out = unpinned(&cwd, None, &home, &s);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // ./certs/cert.pem comes first: here it is another server's, and says so
    fs::create_dir_all(cwd.join("certs")).unwrap();
    fs::copy(
        data_dir().join("other-cert.pem"),
        cwd.join("certs/cert.pem"),
    )
    .unwrap();
    let out = unpinned(&cwd, Some(&conf), &home, &s);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the pin is certs/cert.pem"),
        "{}",
        stderr(&out)
    );
    // --cert pins exactly as before, whatever is lying around
    let out = client(&cwd, &s, "u", "p", &["-c", "pwd"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn with_no_pin_an_unknown_server_is_exit_3_in_scripts_and_a_changed_one_is_refused() {
    let (fx, server) = quiet_server("ux-tofu");
    let s = server.server_arg();
    let (cwd, conf) = (fx.dir.path().join("cwd"), fx.dir.path().join("conf"));
    fs::create_dir_all(&cwd).unwrap();
    let fp = fingerprint("cert.pem");
    let out = unpinned(&cwd, Some(&conf), &conf, &s);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains(&fp), "the fingerprint is shown: {err}");
    assert!(
        err.contains("certs/cert.pem")
            && err.contains(&format!("{}", conf.join("fos/cert.pem").display()))
            && err.contains("/etc/fos/cert.pem"),
        "where it looked: {err}"
    );
    let known = conf.join("fos/known_servers");
    let line = format!("{s} {fp}");
    assert!(err.contains(&line), "the line that trusts it: {err}");
    assert!(!known.exists(), "nothing recorded from a script");
    // recorded by hand: trusted
    fs::create_dir_all(known.parent().unwrap()).unwrap();
    fs::write(&known, format!("# mine\n{line}\n")).unwrap();
    let out = unpinned(&cwd, Some(&conf), &conf, &s);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "/\n");
    // a known server that presents another certificate: refused, loudly
    drop(server);
    let other = BinServer::launch(&fx, "127.0.0.1", 0, None, "other-", &["-q"]);
    let s2 = other.server_arg();
    fs::write(&known, format!("{line}\n{s2} {fp}\n")).unwrap();
    let out = unpinned(&cwd, Some(&conf), &conf, &s2);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("HAS CHANGED"), "{err}");
    assert!(
        err.contains(&fingerprint("other-cert.pem")) && err.contains("line 2"),
        "{err}"
    );
}

#[test]
fn on_a_terminal_an_unknown_server_shows_its_fingerprint_and_is_trusted_on_yes() {
    let (fx, server) = quiet_server("ux-tofu-pty");
    let args = format!("--server {} --user u", server.server_arg());
    let fp = fingerprint("cert.pem");
    // no: nothing is recorded, exit 3
    let (code, screen) = on_a_terminal(&fx.local(), &args, &[b"n\n"]);
    assert_eq!(code, Some(3), "{screen}");
    assert!(screen.contains(&fp) && screen.contains("[y/N]"), "{screen}");
    // yes: recorded (in the same state directory the helper gives each run)
    let (code, screen) = on_a_terminal_keeping(&fx, &args, &[b"y\n", b"pwd\n", b"exit\n"]);
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Remembered"), "{screen}");
    let known = fs::read_to_string(fx.dir.path().join("conf/fos/known_servers")).unwrap();
    assert_eq!(known, format!("{} {fp}\n", server.server_arg()));
    // known now: no question
    let (code, screen) = on_a_terminal_keeping(&fx, &args, &[b"exit\n"]);
    assert_eq!(code, Some(0), "{screen}");
    assert!(!screen.contains("[y/N]"), "{screen}");
}

#[test]
fn a_known_servers_pin_is_checked_in_the_handshake_too() {
    let fx = Fixture::new("ux-known-lib");
    let server = LibServer::start(fx.config());
    let known = fx.dir.path().join("known_servers");
    let s = server.addr.to_string();
    let cfg = fos::client::ClientConfig {
        known_servers: Some(known.clone()),
        fsync: false,
        ..Default::default()
    };
    // recorded: the handshake's signature is checked with the presented certificate
    fs::write(&known, format!("{s} {}\n", fingerprint("cert.pem"))).unwrap();
    let r = fos::client::Remote::connect(&cfg, &s, "u", "p");
    assert!(r.is_ok(), "{:?}", r.err());
    // recorded with another certificate: refused before any credentials are sent
    fs::write(&known, format!("{s} {}\n", fingerprint("other-cert.pem"))).unwrap();
    match fos::client::Remote::connect(&cfg, &s, "u", "p") {
        Err(fos::Error::Certificate(m)) => assert!(m.contains(&fingerprint("cert.pem")), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bang_runs_a_local_command_and_never_eats_a_script() {
    let (fx, server) = quiet_server("ux-bang");
    let s = server.server_arg();
    let out = c(
        &fx.local(),
        &s,
        "!echo hi > made.txt; echo there >> made.txt\npwd",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(fx.local().join("made.txt")).unwrap(),
        "hi\nthere\n",
        "the whole line went to the shell, `;` included"
    );
    assert_eq!(stdout(&out), "/\n");
    let out = c(&fx.local(), &s, "!exit 3");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("!exit 3: exit status 3"),
        "{}",
        stderr(&out)
    );
    // from a script on standard input the command gets no input: the script goes on
    let out = client_stdin(&fx.local(), &s, "u", "p", &[], "!cat\npwd\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "/\n");
}

#[test]
fn df_and_quota_errors_speak_human_units() {
    let fx = Fixture::new("ux-df");
    let server = BinServer::start(&fx, &["-q", "--quota", "10M", "--max-file-size", "4M"]);
    let s = server.server_arg();
    fs::write(fx.local().join("three.bin"), content(3 << 20, 1)).unwrap();
    fs::write(fx.local().join("four.bin"), content(4 << 20, 2)).unwrap();
    let out = c(&fx.local(), &s, "put three.bin; df");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "      Used      Quota       Free  Use%\n   3.0 MiB   10.0 MiB    7.0 MiB   30%\nlargest upload: 4.0 MiB\n"
    );
    let out = c(&fx.local(), &s, "put four.bin; put four.bin again.bin");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("quota exceeded: 7.0 MiB of 10.0 MiB used, this file needs 4.0 MiB"),
        "{}",
        stderr(&out)
    );
    let plain = BinServer::start(&fx, &["-q"]);
    let out = c(&fx.local(), &plain.server_arg(), "df -h");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("7.0 MiB       none"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn ls_h_names_with_control_characters_and_the_cat_marker() {
    let (fx, server) = quiet_server("ux-ls");
    let s = server.server_arg();
    let root = fx.storage().join("u");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("k.bin"), vec![0u8; 1536]).unwrap();
    set_mode(&root.join("k.bin"), 0o644);
    fs::write(root.join("a\x1bb"), "esc").unwrap();
    let text: String = (0..500).map(|i| format!("line {i}\n")).collect();
    fs::write(root.join("long.txt"), &text).unwrap();
    let out = c(&fx.local(), &s, "ls -h k.bin; ls");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listing = stdout(&out);
    assert!(listing.starts_with("-rw-r--r--      1.5 KiB "), "{listing}");
    assert!(
        listing.contains("\n$'a\\x1bb'\nk.bin\nlong.txt\n"),
        "{listing}"
    );
    // the name as shown reads back as the same name
    let out = c(&fx.local(), &s, "get $'a\\x1bb' copy.txt");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read(fx.local().join("copy.txt")).unwrap(), b"esc");
    // cat: the head exactly on stdout, the marker on stderr
    let out = c(&fx.local(), &s, "cat long.txt");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let head = &text.as_bytes()[..1024];
    assert!(
        head.ends_with(b"\n"),
        "the test's text is cut at a line's end"
    );
    assert_same(&out.stdout, head, "cat to a pipe");
    let left = text.len() - 1024;
    assert!(
        stderr(&out).contains(&format!(
            "[... {left} more bytes ({} in all) not shown; `get long.txt` downloads the whole file]",
            text.len()
        )),
        "{}",
        stderr(&out)
    );
    let out = c(&fx.local(), &s, "cat k.bin");
    assert!(stdout(&out).contains("binary"), "{}", stdout(&out));
}

#[test]
fn on_a_terminal_ls_prints_columns_and_cat_ends_with_its_marker() {
    let (fx, server) = quiet_server("ux-cols");
    let root = fx.storage().join("u");
    fs::create_dir_all(&root).unwrap();
    for n in ["alpha", "beta", "gamma", "delta", "epsilon"] {
        fs::write(root.join(n), n).unwrap();
    }
    fs::write(root.join("zlong.txt"), "x".repeat(2000)).unwrap();
    let (code, screen) = on_a_terminal(
        &fx.local(),
        &format!(
            "--server {} --user u --cert {}",
            server.server_arg(),
            cert().display()
        ),
        &[b"ls\n", b"cat zlong.txt\n", b"exit\n"],
    );
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("alpha  beta  delta  epsilon  gamma  zlong.txt"),
        "{screen:?}"
    );
    assert!(
        screen.contains("[... 976 more bytes (2000 in all) not shown"),
        "{screen:?}"
    );
}

/// `path`'s permission bits.
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn set_time(path: &std::path::Path, secs: u64) {
    fs::File::open(path)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap();
}

/// The real server with umask 022, whatever the test runner's is.
fn server_with_umask(fx: &Fixture) -> BinServer {
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "umask 022; exec setsid \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_fos-server"))
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--no-fsync",
            "--no-discovery",
            "-q",
        ])
        .arg("--root")
        .arg(fx.storage())
        .arg("--users")
        .arg(fx.users())
        .arg("--cert")
        .arg(cert())
        .arg("--key")
        .arg(data_dir().join("key.pem"));
    BinServer::spawn(cmd)
}

/// `-c CMDS` with umask 022 on the client's side too.
fn c_umask(cwd: &std::path::Path, server: &str, cmds: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "umask 022; exec setsid \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_fos-client"))
        .args(["--server", server, "--user", "u", "-q", "--cert"])
        .arg(cert())
        .args(["-c", cmds])
        .current_dir(cwd)
        .env("FOS_PASSWORD", "p")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    run(cmd)
}

#[test]
fn permission_bits_travel_both_ways_as_cp_carries_them() {
    let fx = Fixture::new("ux-modes");
    let server = server_with_umask(&fx);
    let s = server.server_arg();
    let (local, root) = (fx.local(), fx.storage().join("u"));
    for (name, mode) in [
        ("run.sh", 0o755),
        ("data.txt", 0o640),
        ("open.txt", 0o666),
        ("g.txt", 0o775),
    ] {
        fs::write(local.join(name), name).unwrap();
        set_mode(&local.join(name), mode);
    }
    let out = c_umask(
        &local,
        &s,
        "put run.sh; put data.txt; put open.txt; put -p g.txt",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode_of(&root.join("run.sh")), 0o755, "+x travels");
    assert_eq!(mode_of(&root.join("data.txt")), 0o640);
    assert_eq!(
        mode_of(&root.join("open.txt")),
        0o644,
        "the server's umask applies"
    );
    assert_eq!(
        mode_of(&root.join("g.txt")),
        0o755,
        "-p, within the server's policy"
    );
    // a replaced file never gets wider bits, unless -p says so
    set_mode(&root.join("run.sh"), 0o700);
    let out = c_umask(&local, &s, "put run.sh");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode_of(&root.join("run.sh")), 0o700);
    let out = c_umask(&local, &s, "put -p run.sh");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode_of(&root.join("run.sh")), 0o755);
    // downloads: the server's bits, the local umask, never wider than the file replaced
    let back = local.join("back");
    fs::create_dir_all(&back).unwrap();
    fs::write(back.join("data.txt"), "old").unwrap();
    set_mode(&back.join("data.txt"), 0o600);
    let out = c_umask(
        &local,
        &s,
        "get run.sh back; get data.txt back; get open.txt back",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode_of(&back.join("run.sh")), 0o755, "not 0600 any more");
    assert_eq!(
        mode_of(&back.join("data.txt")),
        0o600,
        "never wider than it was"
    );
    assert_eq!(mode_of(&back.join("open.txt")), 0o644);
    let out = c_umask(&local, &s, "get -p data.txt back");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode_of(&back.join("data.txt")), 0o640, "-p: exactly");
    // ls -l shows them; chmod changes them, octal or symbolic, within the policy
    fs::create_dir_all(root.join("d")).unwrap();
    set_mode(&root.join("d"), 0o755);
    let out = c_umask(&local, &s, "ls -l");
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("drwxr-xr-x ") && l.ends_with(" d")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("-rwxr-xr-x ") && l.ends_with(" run.sh")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("-rw-r----- ") && l.ends_with(" data.txt")),
        "{text}"
    );
    let out = c_umask(
        &local,
        &s,
        "chmod 600 run.sh; chmod g+r,u-w data.txt; chmod 777 d; chmod 4777 open.txt",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode_of(&root.join("run.sh")), 0o600);
    assert_eq!(mode_of(&root.join("data.txt")), 0o440);
    assert_eq!(
        mode_of(&root.join("d")),
        0o755,
        "never writable by group or others"
    );
    assert_eq!(mode_of(&root.join("open.txt")), 0o755, "never setuid");
    let out = c_umask(&local, &s, "chmod 9 run.sh");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn trees_keep_directory_times_both_ways() {
    let fx = Fixture::new("ux-dirtimes");
    let server = server_with_umask(&fx);
    let s = server.server_arg();
    let (local, root) = (fx.local(), fx.storage().join("u"));
    fs::create_dir_all(local.join("proj/sub")).unwrap();
    fs::write(local.join("proj/sub/f"), "f").unwrap();
    fs::write(local.join("proj/g"), "g").unwrap();
    set_time(&local.join("proj/sub"), 978_307_200);
    set_time(&local.join("proj"), 1_000_000_000);
    let out = c_umask(&local, &s, "put -r proj");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(time_of(&root.join("proj/sub")), 978_307_200);
    assert_eq!(time_of(&root.join("proj")), 1_000_000_000);
    set_time(&root.join("proj/sub"), 1_100_000_000);
    set_time(&root.join("proj"), 1_200_000_000);
    let out = c_umask(&local, &s, "get -r proj copy");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(time_of(&local.join("copy/sub")), 1_100_000_000);
    assert_eq!(time_of(&local.join("copy")), 1_200_000_000);
    assert_eq!(fs::read(local.join("copy/sub/f")).unwrap(), b"f");
}

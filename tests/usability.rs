//! The prompt as sftp users expect it (issue 14), through the real binaries: output
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

/// Runs `-c CMDS` as user u against `server` from `cwd` (no terminal).
fn c(cwd: &std::path::Path, server: &str, cmds: &str) -> std::process::Output {
    client(cwd, server, "u", "p", &["-c", cmds])
}

#[test]
fn transfer_summaries_go_to_stderr_and_stdout_keeps_command_output() {
    let fx = Fixture::new("ux-summary");
    let server = BinServer::start(&fx, &["-q"]);
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
    let fx = Fixture::new("ux-help");
    let server = BinServer::start(&fx, &["-q"]);
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
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{starts:?}: {text}");
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
    let out = client(&fx.local(), &addr, "u", "p", &["--timeout", "1", "-c", "pwd"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    drop(silent);
    let out = client(&fx.local(), &addr, "u", "p", &["--timeout", "0", "-c", "pwd"]);
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
    let greet = TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _ours = BinServer::launch(
        &fx,
        "127.0.0.2",
        0,
        Some(greet),
        "",
        &["-q", "--name", "ours"],
    );
    let _other = BinServer::launch(
        &fx,
        "127.0.0.3",
        0,
        Some(greet),
        "other-",
        &["-q", "--name", "impostor"],
    );
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
    let fx = Fixture::new("ux-backslash");
    let server = BinServer::start(&fx, &["-q"]);
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
    assert_eq!(
        fs::read(fx.local().join("my file.txt")).unwrap(),
        b"spaced"
    );
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

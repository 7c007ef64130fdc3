//! Every command end to end through the real `fos-server` and `fos-client` binaries,
//! over 127.0.0.1, with the exit codes of the documented table.

mod support;

use std::fs;

use support::*;

#[test]
fn every_command_through_the_binaries() {
    let (fx, server) = quiet_server("cmds");
    let local = fx.local();
    fs::write(local.join("hello.txt"), "hello world\n").unwrap();
    fs::write(local.join("my file.txt"), "spaced\n").unwrap();
    let big = content(3 << 20, 7);
    fs::write(local.join("big.bin"), &big).unwrap();

    let script = r#"put hello.txt; put "my file.txt"; put big.bin data.bin; mkdir d; cd d; pwd; put hello.txt inner.txt; cd ..;
        ls; ls -l; ls d; cat hello.txt; cat "my file.txt"; cat data.bin; stat d; get data.bin back.bin; get "my file.txt";
        get d/inner.txt; mv hello.txt d/moved.txt; ls d; rm d/moved.txt; rm d/inner.txt; rmdir d; ls; help; help get"#;
    let out = client(
        &local,
        &server.server_arg(),
        "u",
        "p",
        &["-q", "-c", script],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    // pwd after cd d
    assert_eq!(lines[0], "/d");
    // plain ls: one name per line, sorted
    assert_eq!(&lines[1..5], &["d", "data.bin", "hello.txt", "my file.txt"]);
    // ls -l: directories first, then files by name; type, size, UTC time, name
    let long: Vec<Vec<&str>> = lines[5..9]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    // the type, then the permission bits as ls writes them
    assert!(
        long[0][0].starts_with("drwx") && long[0][0].len() == 10,
        "{text}"
    );
    assert_eq!(long[0][3], "d");
    assert!(
        long[1][0].starts_with("-rw") && long[1][0].len() == 10,
        "{text}"
    );
    assert_eq!((long[1][1], long[1][3]), ("3145728", "data.bin"));
    assert_eq!((long[2][1], long[2][3]), ("12", "hello.txt"));
    assert!(
        long[2][2].ends_with('Z') && long[2][2].contains('T'),
        "{}",
        long[2][2]
    );
    assert_eq!(lines[9], "inner.txt");
    assert_eq!(lines[10], "hello world");
    assert_eq!(lines[11], "spaced");
    assert!(lines[12].contains("binary file"), "{}", lines[12]);
    assert!(
        lines[13].starts_with("drwx") && lines[13].ends_with(" d"),
        "{}",
        lines[13]
    );
    assert_eq!(&lines[14..16], &["inner.txt", "moved.txt"]);
    // the final ls after rmdir
    assert_eq!(&lines[16..18], &["data.bin", "my file.txt"]);
    assert!(
        text.contains("get [-n] [-p] [-r] remote [local]"),
        "help lists syntax"
    );
    assert_eq!(fs::read(local.join("back.bin")).unwrap(), big);
    assert_eq!(fs::read(local.join("my file.txt")).unwrap(), b"spaced\n");
    assert_eq!(fs::read(local.join("inner.txt")).unwrap(), b"hello world\n");
    // the server's tree holds exactly what the session left
    let root = fx.storage().join("u");
    assert_eq!(fs::read(root.join("data.bin")).unwrap(), big);
    assert!(!root.join("d").exists() && !root.join("hello.txt").exists());
    let names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "no partial files left: {names:?}");
}

#[test]
fn failures_and_exit_codes() {
    let (fx, server) = quiet_server("codes");
    let local = fx.local();
    let s = server.server_arg();

    // a failing command stops a -c run with exit 1 and an error on stderr
    let out = client(
        &local,
        &s,
        "u",
        "p",
        &["-c", "mkdir a; ls missing; mkdir b"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no such file or directory"),
        "{}",
        stderr(&out)
    );
    assert!(
        fx.storage().join("u/a").is_dir() && !fx.storage().join("u/b").exists(),
        "stopped at the failure"
    );

    for (script, needle) in [
        ("rmdir a; rmdir a", "no such file"),
        ("mkdir c; put nothere.txt", "does not exist"),
        ("mkdir c2; mkdir c2", "already exists"),
        ("mkdir e; cd e; put ../x", "does not exist"),
        ("cat nope", "no such file"),
        ("get nope", "no such file"),
        ("frobnicate", "unknown command"),
        ("ls a b", "usage: ls"),
    ] {
        let out = client(&local, &s, "u", "p", &["-c", script]);
        assert_ne!(out.status.code(), Some(0), "{script}");
        assert!(stderr(&out).contains(needle), "{script}: {}", stderr(&out));
    }
    // rmdir of a non-empty directory
    fs::create_dir_all(fx.storage().join("u/full")).unwrap();
    fs::write(fx.storage().join("u/full/f"), "x").unwrap();
    let out = client(&local, &s, "u", "p", &["-c", "rmdir full"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    // a failed get leaves no local file, and never truncates an existing one
    fs::write(local.join("keep.txt"), "precious").unwrap();
    let out = client(&local, &s, "u", "p", &["-c", "get nope keep.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(fs::read(local.join("keep.txt")).unwrap(), b"precious");
    assert!(!local.join(".keep.txt.fos-partial").exists());

    // usage error: 2
    let out = client(&local, &s, "u", "p", &["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let out = client(&local, &s, "u", "p", &["-c", "put \"open"]);
    assert_eq!(out.status.code(), Some(2));
    // wrong password or user: 4, with "invalid credentials"
    for (user, pw) in [("u", "wrong"), ("nobody", "p")] {
        let out = client(&local, &s, user, pw, &["-c", "ls"]);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        assert!(stderr(&out).contains("invalid credentials"));
    }
    // nothing listening: 3
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = client(&local, &closed.to_string(), "u", "p", &["-c", "ls"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn wrong_certificate_is_refused_with_its_fingerprint() {
    let (fx, server) = quiet_server("cert");
    let out = run(client_command(
        &fx.local(),
        &server.server_arg(),
        "u",
        "p",
        &data_dir().join("other-cert.pem"),
        &["-c", "ls"],
    ));
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("not the pinned one"), "{err}");
    // the fingerprint of what the server presented (tests/data/cert.pem)
    let pem = fs::read(cert()).unwrap();
    let der = rustls_der(&pem);
    assert!(
        err.contains(&fos::internals::x509::fingerprint(&der)),
        "{err}"
    );
}

fn rustls_der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_slice(pem).unwrap().to_vec()
}

#[test]
fn users_cannot_see_each_other() {
    let (fx, server) = quiet_server("iso");
    let local = fx.local();
    let s = server.server_arg();
    fs::write(local.join("secret.txt"), "u's secret").unwrap();
    assert!(
        client(&local, &s, "u", "p", &["-c", "put secret.txt"])
            .status
            .success()
    );
    let out = client(&local, &s, "u2", "p2", &["-c", "ls"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "", "u2's root is empty");
    for script in [
        "cat secret.txt",
        "cat ../u/secret.txt",
        "cat /../u/secret.txt",
        "get ../u/secret.txt",
        "cd ../u",
        "ls ../u",
    ] {
        let out = client(&local, &s, "u2", "p2", &["-c", script]);
        assert_eq!(out.status.code(), Some(1), "{script}");
        assert!(!stdout(&out).contains("secret"), "{script}");
    }
    // cd .. at the root stays at the root; pwd is relative to it
    let out = client(&local, &s, "u2", "p2", &["-c", "cd ..; pwd; cd ../..; pwd"]);
    assert_eq!(stdout(&out), "/\n/\n");
}

#[test]
fn version_and_help() {
    for bin in [
        env!("CARGO_BIN_EXE_fos-server"),
        env!("CARGO_BIN_EXE_fos-client"),
    ] {
        let out = support::without_terminal(bin)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success());
        let help = stdout(&out);
        assert!(
            help.contains("--help") && help.contains("default"),
            "{help}"
        );
        let out = support::without_terminal(bin).arg("-V").output().unwrap();
        assert!(stdout(&out).contains(fos::VERSION));
    }
    let out = support::without_terminal(env!("CARGO_BIN_EXE_fos-client"))
        .arg("--help")
        .output()
        .unwrap();
    let help = stdout(&out);
    for code in [
        "0  success",
        "2  usage error",
        "4  login refused",
        "5  server busy",
    ] {
        assert!(help.contains(code), "{code}");
    }
    let out = support::without_terminal(env!("CARGO_BIN_EXE_fos-server"))
        .arg("--help")
        .output()
        .unwrap();
    let help = stdout(&out);
    for flag in [
        "--bind",
        "--port",
        "--greet-port",
        "--root",
        "--users",
        "--cert",
        "--key",
        "--name",
        "(default 5001)",
        "(default 5003)",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
}

/// `make certs` writes a new pair only where none is: every client pinned the old one.
#[test]
fn make_certs_never_replaces_a_pinned_certificate_unless_forced() {
    let fx = Fixture::new("make-certs");
    let dir = fx.local().join("pki");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/make-certs.sh");
    let run = |force: bool| {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(&script).arg(&dir);
        if force {
            cmd.env("FORCE", "1");
        }
        cmd.output().expect("bash runs")
    };
    let out = run(false);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = fs::read(dir.join("cert.pem")).unwrap();
    let out = run(false);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("FORCE=1"), "{}", stderr(&out));
    assert_eq!(
        fs::read(dir.join("cert.pem")).unwrap(),
        first,
        "left as it was"
    );
    let out = run(true);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(
        fs::read(dir.join("cert.pem")).unwrap(),
        first,
        "replaced when forced"
    );
}

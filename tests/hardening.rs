//! Hardening: hashed credentials and `fos-server passwd`, login throttling, session
//! and size limits, the event log, start-up warnings, graceful shutdown, and a bounded
//! load test.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fos::protocol::Request;
use fos::protocol::frame::{Kind, read_frame, write_frame};
use support::*;

#[test]
fn passwd_subcommand_writes_a_hash_that_logs_in() {
    let fx = Fixture::new("passwd");
    let users = fx.users();
    let run = |user: &str, pw: &str| {
        let mut child = support::without_terminal(env!("CARGO_BIN_EXE_fos-server"))
            .args(["passwd", user, "--iterations", "1000", "--users"])
            .arg(&users)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // a refused user name exits before reading: a broken pipe is fine
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{pw}\n").as_bytes());
        wait_with_deadline(child, Duration::from_secs(20))
    };
    assert!(run("carol", "c4rol-pw").status.success());
    assert!(
        run("u", "new-p").status.success(),
        "replaces an existing line"
    );
    assert_eq!(run("../evil", "x").status.code(), Some(1));
    let text = fs::read_to_string(&users).unwrap();
    assert!(text.contains("carol:$pbkdf2-sha256$i=1000$"), "{text}");
    assert!(
        !text.contains("c4rol-pw") && !text.contains("u:p\n"),
        "{text}"
    );
    assert_eq!(text.lines().filter(|l| l.starts_with("u:")).count(), 1);
    // a new file is created 0600
    let fresh = fx.dir.path().join("fresh.txt");
    let mut child = support::without_terminal(env!("CARGO_BIN_EXE_fos-server"))
        .args(["passwd", "dave", "--iterations", "1000", "--users"])
        .arg(&fresh)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"d\n").unwrap();
    assert!(child.wait().unwrap().success());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let server = BinServer::start(&fx, &["-q"]);
    let local = fx.local();
    assert!(
        client(
            &local,
            &server.server_arg(),
            "carol",
            "c4rol-pw",
            &["-c", "pwd"]
        )
        .status
        .success()
    );
    assert!(
        client(&local, &server.server_arg(), "u", "new-p", &["-c", "pwd"])
            .status
            .success()
    );
    assert_eq!(
        client(&local, &server.server_arg(), "u", "p", &["-c", "pwd"])
            .status
            .code(),
        Some(4)
    );
}

#[test]
fn five_failures_lock_the_address_out() {
    let (fx, server) = quiet_server("throttle");
    let local = fx.local();
    let s = server.server_arg();
    for _ in 0..5 {
        let out = client(&local, &s, "u", "wrong", &["-c", "pwd"]);
        assert_eq!(out.status.code(), Some(4));
        assert!(stderr(&out).contains("invalid credentials"));
    }
    // now even the right password is refused, with the time to wait
    let out = client(&local, &s, "u", "p", &["-c", "pwd"]);
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(
        err.contains("too many failed logins; try again in"),
        "{err}"
    );
    let secs: u64 = number_after(&err, "try again in ");
    assert!((1..=61).contains(&secs), "{secs}");
}

#[test]
fn session_limits_answer_busy() {
    let fx = Fixture::new("busy");
    let server = BinServer::start(&fx, &["-q", "--max-sessions-per-ip", "2"]);
    let a = connect(server.addr, "u", "p").unwrap();
    let b = connect(server.addr, "u2", "p2").unwrap();
    let out = client(&fx.local(), &server.server_arg(), "u", "p", &["-c", "pwd"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("server busy"));
    drop((a, b));
    // once they are gone, there is room again
    wait_until(
        "the sessions to be released",
        Duration::from_secs(10),
        || {
            client(&fx.local(), &server.server_arg(), "u", "p", &["-c", "pwd"])
                .status
                .success()
        },
    );
}

#[test]
fn file_size_and_quota_limits() {
    let fx = Fixture::new("quota");
    let server = BinServer::start(&fx, &["-q", "--max-file-size", "8K", "--quota", "12K"]);
    let local = fx.local();
    let s = server.server_arg();
    fs::write(local.join("9k"), vec![1u8; 9 * 1024]).unwrap();
    fs::write(local.join("6k"), vec![2u8; 6 * 1024]).unwrap();
    fs::write(local.join("7k"), vec![3u8; 7 * 1024]).unwrap();
    let out = client(&local, &s, "u", "p", &["-c", "put 9k"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("over the server's limit of 8192 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(
        client(&local, &s, "u", "p", &["-c", "put 6k a"])
            .status
            .success()
    );
    let out = client(&local, &s, "u", "p", &["-c", "put 7k b"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("quota exceeded"), "{}", stderr(&out));
    // replacing a file counts its old size as freed
    assert!(
        client(&local, &s, "u", "p", &["-c", "put 7k a"])
            .status
            .success()
    );
    let root = fx.storage().join("u");
    assert_eq!(fs::read(root.join("a")).unwrap().len(), 7 * 1024);
    assert!(!root.join("b").exists());
    assert_eq!(
        fs::read_dir(&root).unwrap().count(),
        1,
        "no partial files left"
    );
}

#[test]
fn the_log_has_one_line_per_event_and_no_secrets() {
    let fx = Fixture::new("log");
    fs::write(fx.users(), "logu:Sup3rS3cretPW\n").unwrap();
    let log = fx.dir.path().join("fos.log");
    let server = BinServer::start(&fx, &["--log", log.to_str().unwrap()]);
    let local = fx.local();
    fs::write(local.join("x"), "x").unwrap();
    client(
        &local,
        &server.server_arg(),
        "logu",
        "Wr0ngPassw0rd",
        &["-c", "pwd"],
    );
    let out = client(
        &local,
        &server.server_arg(),
        "logu",
        "Sup3rS3cretPW",
        &["-c", "put x \"a\nb\"; ls; get nope"],
    );
    assert_eq!(out.status.code(), Some(1));
    // the server logs the session's end after the client has gone
    wait_until(
        "the session's end in the log",
        Duration::from_secs(20),
        || {
            fs::read_to_string(&log).is_ok_and(|t| {
                t.lines()
                    .any(|l| l.contains(" logu ") && l.contains("disconnect"))
            })
        },
    );
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("Sup3rS3cretPW") && !text.contains("Wr0ngPassw0rd"),
        "{text}"
    );
    assert!(!text.contains("$pbkdf2"));
    let mut seen = vec![];
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(5, ' ').collect();
        assert_eq!(f.len(), 5, "{line}");
        assert!(
            f[0].len() == 24 && f[0].ends_with('Z') && f[0].as_bytes()[10] == b'T',
            "timestamp: {line}"
        );
        assert!(["DEBUG", "INFO", "WARN", "ERROR"].contains(&f[1]), "{line}");
        if f[2] != "-" {
            assert!(f[2].starts_with("127.0.0.1:"), "{line}");
        }
        seen.push((f[3].to_string(), f[4].to_string()));
    }
    let has = |user: &str, event: &str| seen.iter().any(|(u, e)| u == user && e.contains(event));
    assert!(has("-", "login failed for \"logu\""), "{seen:?}");
    assert!(has("logu", "login ok"));
    assert!(
        has("logu", "put \"a\\\\nb\""),
        "name escaped on one line: {seen:?}"
    );
    assert!(has("logu", "received \"a\\\\nb\": 1 bytes"));
    assert!(has("logu", "refused: no such file or directory"));
    assert!(has("logu", "disconnect"));
    assert!(has("-", "plain-text passwords for: logu"));
}

#[test]
fn startup_warnings() {
    let fx = Fixture::new("warn");
    let key = fx.dir.path().join("key.pem");
    fs::copy(data_dir().join("key.pem"), &key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = fos::server::ServerConfig {
        key: key.clone(),
        cert: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/cert.pem"),
        // not bound: only the warning logic looks at it
        bind: "0.0.0.0".parse().unwrap(),
        ..fx.config()
    };
    let logfile = fx.dir.path().join("w.log");
    let logger = fos::Logger::new(fos::Level::Warn).with_file(fs::File::create(&logfile).unwrap());
    fos::server::startup_warnings(&cfg, &logger);
    let text = fs::read_to_string(&logfile).unwrap();
    assert!(text.contains("demo certificate"), "{text}");
    assert!(text.contains("is readable by other users"), "{text}");
    // loopback with a private key: quiet
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(fx.users(), fs::Permissions::from_mode(0o600)).unwrap();
    let logfile2 = fx.dir.path().join("w2.log");
    let logger = fos::Logger::silent().with_file(fs::File::create(&logfile2).unwrap());
    fos::server::startup_warnings(
        &fos::server::ServerConfig {
            bind: "127.0.0.1".parse().unwrap(),
            ..cfg
        },
        &logger,
    );
    assert_eq!(fs::read_to_string(&logfile2).unwrap(), "");
}

fn sigterm(child: &std::process::Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_lets_a_running_upload_finish() {
    let fx = Fixture::new("grace");
    let mut server = BinServer::start(&fx, &["-q"]);
    let mut s = raw_tls(server.addr);
    login(&mut s);
    let data = content(4 << 20, 5);
    let (kind, _) = request(
        &mut s,
        &Request::Put {
            path: "up.bin".into(),
            size: data.len() as u64,
            mtime: 0,
            no_clobber: false,
            resume: false,
        },
    );
    assert_eq!(kind, Kind::Ok);
    for chunk in data[..1 << 20].chunks(256 * 1024) {
        write_frame(&mut s, Kind::Data, chunk).unwrap();
    }
    s.flush().unwrap();
    sigterm(&server.child);
    // new connections are refused at once
    wait_until(
        "new connections to be refused after SIGTERM",
        Duration::from_secs(5),
        || std::net::TcpStream::connect(server.addr).is_err(),
    );
    // the running upload completes
    for chunk in data[1 << 20..].chunks(256 * 1024) {
        write_frame(&mut s, Kind::Data, chunk).unwrap();
    }
    let sha = ring::digest::digest(&ring::digest::SHA256, &data);
    write_frame(&mut s, Kind::End, sha.as_ref()).unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    assert_eq!(
        read_frame(&mut s, &mut buf).unwrap(),
        Kind::Ok,
        "upload acknowledged during shutdown"
    );
    assert_same(
        &fs::read(fx.storage().join("u/up.bin")).unwrap(),
        &data,
        "upload",
    );
    drop(s);
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
}

#[test]
fn the_grace_period_cuts_stalled_transfers() {
    let fx = Fixture::new("grace-cut");
    let mut server = BinServer::start(&fx, &["--shutdown-grace", "1"]);
    let mut stderr_pipe = server.child.stderr.take().unwrap();
    let mut idle = raw_tls(server.addr);
    login(&mut idle);
    let mut s = raw_tls(server.addr);
    login(&mut s);
    let (kind, _) = request(
        &mut s,
        &Request::Put {
            path: "stall.bin".into(),
            size: 1 << 20,
            mtime: 0,
            no_clobber: false,
            resume: false,
        },
    );
    assert_eq!(kind, Kind::Ok);
    write_frame(&mut s, Kind::Data, &[0u8; 1000]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    sigterm(&server.child);
    assert_eq!(
        wait_exit(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "the stalled upload had its grace period"
    );
    let mut log = String::new();
    stderr_pipe.read_to_string(&mut log).unwrap();
    assert!(log.contains("SIGTERM: shutting down"), "{log}");
    assert!(log.contains("cut after the grace period"), "{log}");
    assert!(!fx.storage().join("u/stall.bin").exists());
    // what arrived is kept for a resume, only under reserved names that users never see
    for e in fs::read_dir(fx.storage().join("u")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(name.starts_with(".fos-part-"), "{name}");
    }
}

#[test]
fn load_200_clients_20_commands_each() {
    let fx = Fixture::new("load");
    // 200 clients from one address log in at once: room for all of them at the door
    let cfg = fos::server::ServerConfig {
        max_sessions_per_ip: 256,
        max_prelogin_per_ip: 256,
        max_prelogin: 256,
        ..fx.config()
    };
    let server = LibServer::start(cfg);
    let addr = server.addr;
    let local = Arc::new(fx.local());
    let started = Instant::now();
    let threads: Vec<_> = (0..200u32)
        .map(|i| {
            let local = Arc::clone(&local);
            std::thread::spawn(move || -> Result<(String, Vec<u8>), String> {
                let (user, pw) = [("u", "p"), ("u2", "p2"), ("t", "tp")][i as usize % 3];
                let e = |e: fos::Error| format!("client {i}: {e}");
                let mut r = connect(addr, user, pw).map_err(e)?;
                let dir = format!("c{i}");
                let data = content(4096 + (i as usize * 37) % 8192, i as u8);
                let src = local.join(format!("in-{i}"));
                fs::write(&src, &data).unwrap();
                let back = local.join(format!("out-{i}"));
                let cfg = fos::client::ClientConfig {
                    fsync: false,
                    ..Default::default()
                };
                r.mkdir(&dir).map_err(e)?; // 1
                r.cd(Some(&dir)).map_err(e)?; // 2
                r.put(&src, "a.bin", Default::default()).map_err(e)?; // 3
                r.put(&src, "b.bin", Default::default()).map_err(e)?; // 4
                let names: Vec<String> =
                    r.ls(None).map_err(e)?.into_iter().map(|e| e.name).collect(); // 5
                if names != ["a.bin", "b.bin"] {
                    return Err(format!("client {i}: ls {names:?}"));
                }
                r.get(&cfg, "a.bin", &back, Default::default()).map_err(e)?; // 6
                if fs::read(&back).unwrap() != data {
                    return Err(format!("client {i}: get differs"));
                }
                r.stat("b.bin").map_err(e)?; // 7
                r.cat("a.bin").map_err(e)?; // 8
                r.mv("b.bin", "c.bin").map_err(e)?; // 9
                r.mkdir("sub").map_err(e)?; // 10
                r.mv("c.bin", "sub").map_err(e)?; // 11
                r.ls(Some("sub")).map_err(e)?; // 12
                r.pwd().map_err(e)?; // 13
                r.rm("sub/c.bin", false).map_err(e)?; // 14
                r.rmdir("sub").map_err(e)?; // 15
                r.cd(Some("..")).map_err(e)?; // 16
                r.get(&cfg, &format!("{dir}/a.bin"), &back, Default::default())
                    .map_err(e)?; // 17
                if fs::read(&back).unwrap() != data {
                    return Err(format!("client {i}: second get differs"));
                }
                r.ls(Some(&dir)).map_err(e)?; // 18
                r.stat(&dir).map_err(e)?; // 19
                r.pwd().map_err(e)?; // 20
                r.close();
                Ok((format!("{user}/{dir}/a.bin"), data))
            })
        })
        .collect();
    let mut errors = vec![];
    let mut files = vec![];
    for t in threads {
        match t.join().unwrap() {
            Ok(f) => files.push(f),
            Err(e) => errors.push(e),
        }
    }
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    for (path, data) in files {
        assert_same(&fs::read(fx.storage().join(&path)).unwrap(), &data, &path);
    }
    eprintln!(
        "load: 200 clients x 20 commands in {:.2?}",
        started.elapsed()
    );
}

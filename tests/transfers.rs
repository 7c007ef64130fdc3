//! Transfer faults over loopback: a download cut mid-way resumes by itself, a killed
//! client's upload is completed by `reput`, a server killed mid-upload is retried, a
//! flipped byte on the wire is caught by TLS, and a corrupted resume prefix is caught
//! by SHA-256. Every fault is injected by a proxy below TLS or on disk; every result is
//! checked byte for byte.

mod support;

use std::fs;
use std::process::Command;
use std::time::Duration;

use support::*;

fn fos_client(cwd: &std::path::Path, server: &str, script: &str) -> Command {
    client_command(
        cwd,
        server,
        "u",
        "p",
        &cert(),
        &["--no-fsync", "-c", script],
    )
}

/// Runs `script` against `server` (an address) and waits for the client (bounded).
fn run_client(fx: &Fixture, server: &str, script: &str) -> std::process::Output {
    let child = fos_client(&fx.local(), server, script).spawn().unwrap();
    wait_with_deadline(child, Duration::from_secs(60))
}

/// Runs `script` against a fresh server of `fx` through a proxy that injects `faults`,
/// and waits for the client (bounded).
fn through_faults(fx: &Fixture, faults: Faults, script: &str) -> std::process::Output {
    let server = LibServer::start(fx.config());
    let proxy = Proxy::start(server.addr, faults);
    // the server and proxy stop when the client is done
    run_client(fx, &proxy.addr.to_string(), script)
}

/// `put up.bin` started through a proxy to `upstream` slowed to 16 MiB/s (slow enough
/// to be killed half-way): the proxy and the running client.
fn slow_put(fx: &Fixture, upstream: std::net::SocketAddr) -> (Proxy, std::process::Child) {
    let proxy = Proxy::start(
        upstream,
        Faults {
            rate: Some(16 << 20),
            ..Faults::default()
        },
    );
    let child = fos_client(&fx.local(), &proxy.addr.to_string(), "put up.bin")
        .spawn()
        .unwrap();
    (proxy, child)
}

#[test]
fn a_download_cut_mid_way_resumes_by_itself() {
    let fx = Fixture::new("cutget");
    let data = content(8 << 20, 11);
    fs::create_dir_all(fx.storage().join("u")).unwrap();
    fs::write(fx.storage().join("u/big.bin"), &data).unwrap();
    let out = through_faults(
        &fx,
        Faults {
            drop_down_after: Some(3 << 20),
            ..Faults::default()
        },
        "get big.bin",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("reconnecting"), "{}", stderr(&out));
    assert_same(
        &fs::read(fx.local().join("big.bin")).unwrap(),
        &data,
        "resumed download",
    );
    // it resumed: the second transfer moved less than the whole file
    let summary = stderr(&out);
    assert!(!summary.contains("8.0 MiB in"), "{summary}");
    assert!(!fx.local().join(".big.bin.fos-partial").exists());
}

#[test]
fn a_killed_client_upload_is_completed_by_reput() {
    let fx = Fixture::new("killput");
    let data = content(200 << 20, 12);
    let src = fx.local().join("up.bin");
    fs::write(&src, &data).unwrap();
    let server = LibServer::start(fx.config());
    let (_proxy, mut child) = slow_put(&fx, server.addr);
    let root = fx.storage().join("u");
    // wait until a good part of the upload is on the server
    wait_until("the upload to start", Duration::from_secs(20), || {
        partial_bytes(&root) > 4 << 20
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // no waiting for the server to notice the cut: a resume takes the partial over
    // from the dead connection if the server still holds it
    assert!(
        !root.join("up.bin").exists(),
        "nothing under the target name"
    );
    let out = run_client(&fx, &server.addr.to_string(), "reput up.bin");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(sha_file(&root.join("up.bin")), sha_file(&src));
    assert!(
        !stderr(&out).contains("200.0 MiB in"),
        "resumed, not restarted: {}",
        stderr(&out)
    );
    let names = names_in(&root);
    assert_eq!(
        names,
        vec!["up.bin"],
        "the partial and its sidecar are gone"
    );
}

#[test]
fn an_upload_whose_connection_went_silent_is_resumed_not_restarted() {
    let fx = Fixture::new("silentput");
    let data = content(48 << 20, 14);
    let src = fx.local().join("up.bin");
    fs::write(&src, &data).unwrap();
    // the first connection dies a third of the way in without the server hearing of
    // it: its thread still holds the partial, waiting for bytes that never come
    let out = through_faults(
        &fx,
        Faults {
            silence_up_after: Some(16 << 20),
            ..Faults::default()
        },
        "put up.bin",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("reconnecting"), "{}", stderr(&out));
    let root = fx.storage().join("u");
    assert_eq!(sha_file(&root.join("up.bin")), sha_file(&src));
    assert!(
        !stderr(&out).contains("48.0 MiB in"),
        "the retry took the partial over and resumed: {}",
        stderr(&out)
    );
    let names = names_in(&root);
    assert_eq!(names, vec!["up.bin"], "no partial left behind");
}

#[test]
fn a_server_killed_mid_upload_is_retried_after_restart() {
    let fx = Fixture::new("killserver");
    let data = content(24 << 20, 13);
    fs::write(fx.local().join("up.bin"), &data).unwrap();
    let port = free_port("127.0.0.1");
    // a fixed port, so the restarted server is where the client retries
    let spawn = |fx: &Fixture| BinServer::launch(fx, "127.0.0.1", port, None, "", &["-q"]);
    let mut server = spawn(&fx);
    let upstream = server.addr;
    // the proxy passes the killed server's reset on to the client, as the kernel does
    // without one (with a FIN instead, the client would write into a closed window
    // until its write timeout)
    let proxy = Proxy::start(
        upstream,
        Faults {
            rate: Some(16 << 20),
            ..Faults::default()
        },
    );
    let mut child = fos_client(&fx.local(), &proxy.addr.to_string(), "put up.bin")
        .spawn()
        .unwrap();
    // killed once the upload is under way: a client slow to start (a loaded
    // machine) would otherwise find the server gone before it had even logged in,
    // and a failed first connection is not retried
    let root = fx.storage().join("u");
    wait_until("the upload to start", Duration::from_secs(30), || {
        child.try_wait().unwrap().is_some() || partial_bytes(&root) > 4 << 20
    });
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let restarted = spawn(&fx);
    // nothing half-written is visible after the crash
    let mut r = connect(restarted.addr, "u", "p").unwrap();
    assert!(r.ls(None).unwrap().iter().all(|e| e.name == "up.bin"));
    r.close();
    let out = wait_with_deadline(child, Duration::from_secs(90));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("reconnecting"), "{}", stderr(&out));
    assert_same(
        &fs::read(fx.storage().join("u/up.bin")).unwrap(),
        &data,
        "upload after restart",
    );
}

#[test]
fn a_flipped_byte_on_the_wire_fails_tls_and_the_retry_is_intact() {
    let fx = Fixture::new("flip");
    let data = content(4 << 20, 14);
    fs::write(fx.local().join("f.bin"), &data).unwrap();
    let out = through_faults(
        &fx,
        Faults {
            flip_up_at: Some(1 << 20),
            ..Faults::default()
        },
        "put f.bin",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("reconnecting"),
        "the corrupted connection failed: {err}"
    );
    assert_same(
        &fs::read(fx.storage().join("u/f.bin")).unwrap(),
        &data,
        "upload",
    );
}

#[test]
fn a_corrupted_resume_prefix_is_caught_and_nothing_bad_is_committed() {
    let fx = Fixture::new("badprefix");
    let data = content(6 << 20, 15);
    let src = fx.local().join("p.bin");
    fs::write(&src, &data).unwrap();
    let server = LibServer::start(fx.config());
    // an upload cut after about 2 MiB leaves a partial on the server
    let mut s = raw_tls(server.addr);
    login(&mut s);
    let mtime = mtime_secs(&src);
    let (kind, _) = request(
        &mut s,
        &fos::protocol::Request::Put {
            path: "p.bin".into(),
            size: data.len() as u64,
            mtime,
            no_clobber: false,
            resume: true,
        },
    );
    assert_eq!(kind, fos::protocol::frame::Kind::Ok);
    for chunk in data[..2 << 20].chunks(256 * 1024) {
        fos::protocol::frame::write_frame(&mut s, fos::protocol::frame::Kind::Data, chunk).unwrap();
    }
    std::io::Write::flush(&mut s).unwrap();
    let root = fx.storage().join("u");
    // all of it is on the server's disk before the connection is cut
    wait_until("the 2 MiB to arrive", Duration::from_secs(20), || {
        partial_bytes(&root) == 2 << 20
    });
    s.sock.shutdown(std::net::Shutdown::Both).unwrap();
    drop(s);
    // the server has let go: a kept partial's record names no holder
    wait_until(
        "the server to let go of the partial",
        Duration::from_secs(20),
        || {
            fs::read_dir(&root).unwrap().flatten().any(|e| {
                e.file_name().to_string_lossy().ends_with(".meta")
                    && fs::read_to_string(e.path())
                        .is_ok_and(|t| t.lines().nth(3).is_some_and(|h| h.trim() == "-"))
            })
        },
    );
    // corrupt the kept prefix on disk
    let part = fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".fos-part-")
                && p.extension().is_none_or(|e| e != "meta")
        })
        .expect("a partial was kept");
    let mut bytes = fs::read(&part).unwrap();
    assert!(bytes.len() > 1 << 20);
    bytes[12345] ^= 0xff;
    fs::write(&part, &bytes).unwrap();
    let out = run_client(&fx, &server.addr.to_string(), "reput p.bin");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("6.0 MiB in"),
        "the mismatch restarted from zero: {}",
        stderr(&out)
    );
    assert_same(
        &fs::read(root.join("p.bin")).unwrap(),
        &data,
        "committed file",
    );
}

#[test]
fn concurrent_puts_and_reads_of_one_file_never_mix() {
    let fx = Fixture::new("race");
    let server = LibServer::start(fx.config());
    let a = content(4 << 20, 31);
    let b = content(4 << 20, 32);
    let (pa, pb) = (fx.local().join("a.bin"), fx.local().join("b.bin"));
    fs::write(&pa, &a).unwrap();
    fs::write(&pb, &b).unwrap();
    let target = fx.storage().join("u/same.bin");
    for round in 0..5 {
        let addr = server.addr;
        let writers: Vec<_> = [pa.clone(), pb.clone()]
            .into_iter()
            .map(|src| {
                std::thread::spawn(move || {
                    let mut r = connect(addr, "u", "p").unwrap();
                    r.put(&src, "same.bin", Default::default()).unwrap();
                    r.close();
                })
            })
            .collect();
        // a reader meanwhile sees the old or a new version, whole
        let mut r = connect(addr, "u", "p").unwrap();
        let out = fx.local().join(format!("read-{round}.bin"));
        let cfg = fos::client::ClientConfig {
            fsync: false,
            ..Default::default()
        };
        for _ in 0..3 {
            if r.get(&cfg, "same.bin", &out, Default::default()).is_ok() {
                let got = fs::read(&out).unwrap();
                assert!(got == a || got == b, "round {round}: a read saw a mix");
            }
        }
        for w in writers {
            w.join().unwrap();
        }
        let got = fs::read(&target).unwrap();
        assert!(
            got == a || got == b,
            "round {round}: the stored file is a mix"
        );
    }
    let left = names_in(&fx.storage().join("u"));
    assert_eq!(left, vec!["same.bin"], "no partials left behind");
}

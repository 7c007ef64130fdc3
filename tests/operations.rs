//! Running fos-server as a service: SIGHUP reopens `--log` (after a rotation moved
//! the old file away), and the server carries on serving meanwhile.

mod support;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits (bounded) until `path` holds `text`.
fn wait_for(path: &std::path::Path, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = fs::read_to_string(path).unwrap_or_default();
        if got.contains(text) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{text:?} never reached {path:?}: {got}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reopens_the_log_after_a_rotation() {
    let fx = Fixture::new("sighup");
    let log = fx.dir.path().join("fos.log");
    let rotated = fx.dir.path().join("fos.log.1");
    let log_arg = log.to_string_lossy().into_owned();
    let server = BinServer::start(&fx, &["--log", &log_arg]);
    connect(server.addr, "u", "p").unwrap().close();
    wait_for(&log, "login ok");
    // logrotate's way: move the file, then tell the server
    fs::rename(&log, &rotated).unwrap();
    signal(&server.child, "-HUP");
    let fresh = wait_for(&log, "SIGHUP: log file reopened");
    assert!(!fresh.contains("login ok"), "a new file: {fresh}");
    connect(server.addr, "u2", "p2").unwrap().close();
    let fresh = wait_for(&log, "login ok");
    assert!(fresh.contains(" u2 "), "{fresh}");
    let old = fs::read_to_string(&rotated).unwrap();
    assert!(
        !old.contains(" u2 "),
        "the rotated file gets no more lines: {old}"
    );
    // and it still stops on SIGTERM as before
    let mut server = server;
    signal(&server.child, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "SIGTERM no longer stops it");
        std::thread::sleep(Duration::from_millis(20));
    }
}

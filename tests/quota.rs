//! The quota holds however uploads arrive: interrupted uploads kept for a resume count,
//! concurrent uploads reserve their size before a byte is written (native and legacy
//! alike), files at any depth count, directories deeper than the limit cannot be
//! made, and native and legacy puts share one formula (the replaced file is freed).

mod support;

use std::fs;
use std::io::Write;
use std::path::Path;

use fos::protocol::Request;
use fos::protocol::frame::{Kind, read_frame, write_frame};
use support::*;

const MIB: usize = 1 << 20;

fn server(fx: &Fixture, quota: u64) -> LibServer {
    LibServer::start(fos::server::ServerConfig {
        quota: Some(quota),
        ..fx.config()
    })
}

/// A logged-in raw native session with user `u`.
fn session(server: &LibServer) -> fos::client::ClientTls {
    let mut s = raw_tls(server.addr);
    login(&mut s);
    s
}

fn put_request(name: &str, size: usize, mtime: i64) -> Request {
    Request::Put {
        path: name.into(),
        size: size as u64,
        mtime,
        no_clobber: false,
        resume: false,
    }
}

/// Starts an upload of `size` bytes and sends the first `send` of `data` without
/// ending it; returns the reply to the request.
fn start_upload(
    s: &mut fos::client::ClientTls,
    name: &str,
    data: &[u8],
    send: usize,
) -> (Kind, Vec<Vec<u8>>) {
    let (kind, fields) = request(s, &put_request(name, data.len(), 1000));
    if kind == Kind::Ok {
        for chunk in data[..send].chunks(256 * 1024) {
            write_frame(s, Kind::Data, chunk).unwrap();
        }
        s.flush().unwrap();
    }
    (kind, fields)
}

/// Sends the rest of `data` from `from` and the end frame; returns the verdict.
fn finish_upload(s: &mut fos::client::ClientTls, data: &[u8], from: usize) -> Kind {
    for chunk in data[from..].chunks(256 * 1024) {
        write_frame(s, Kind::Data, chunk).unwrap();
    }
    let sha = ring::digest::digest(&ring::digest::SHA256, data);
    write_frame(s, Kind::End, sha.as_ref()).unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    read_frame(s, &mut buf).unwrap()
}

fn error_code(fields: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&fields[0]).into_owned()
}

/// Bytes in regular files under `dir`, at any depth, reserved names included.
fn stored(dir: &Path) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let md = fs::symlink_metadata(e.path()).unwrap();
            if md.is_dir() {
                todo.push(e.path());
            } else if md.is_file() {
                total += md.len();
            }
        }
    }
    total
}

#[test]
fn interrupted_uploads_kept_for_resume_count_against_the_quota() {
    let fx = Fixture::new("quota-partial");
    let server = server(&fx, 2 * MIB as u64);
    let data = content(3 * MIB / 2, 1);
    // an upload of 1.5 MiB cut after 1 MiB (Ctrl-C: kept for a resume), ten times over
    let mut refused = 0;
    for i in 0..10 {
        let mut s = session(&server);
        let (kind, fields) = start_upload(&mut s, &format!("f{i}"), &data, MIB);
        if kind == Kind::Error {
            assert_eq!(error_code(&fields), "quota", "f{i}");
            refused += 1;
            continue;
        }
        write_frame(&mut s, Kind::Abort, b"").unwrap();
        s.flush().unwrap();
        let mut buf = Vec::new();
        assert_eq!(read_frame(&mut s, &mut buf).unwrap(), Kind::Error);
    }
    assert_eq!(refused, 9, "only the first fits in 2 MiB");
    let root = fx.storage().join("u");
    assert!(
        stored(&root) <= 2 * MIB as u64,
        "{} bytes stored under a 2 MiB quota",
        stored(&root)
    );
    // the kept partial's own resume still fits: it reserved its size when it began
    let mut remote = connect(server.addr, "u", "p").unwrap();
    let src = fx.local().join("f0");
    fs::write(&src, &data).unwrap();
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000);
    fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_modified(when)
        .unwrap();
    let report = remote
        .put(
            &src,
            "f0",
            fos::client::TransferOpts {
                resume: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        report.bytes,
        (data.len() - MIB) as u64,
        "resumed, not resent"
    );
    assert_same(&fs::read(root.join("f0")).unwrap(), &data, "resumed upload");
}

#[test]
fn concurrent_uploads_cannot_each_pass_the_check() {
    let fx = Fixture::new("quota-concurrent");
    let server = server(&fx, 2 * MIB as u64);
    let data = content(3 * MIB / 2, 2);
    let mut a = session(&server);
    let (kind, _) = start_upload(&mut a, "a", &data, 256 * 1024);
    assert_eq!(kind, Kind::Ok);
    // while `a` is under way, `b` of the same size would take the user over the quota
    let mut b = session(&server);
    let (kind, fields) = start_upload(&mut b, "b", &data, 0);
    assert_eq!(
        kind,
        Kind::Error,
        "a second 1.5 MiB upload under a 2 MiB quota"
    );
    assert_eq!(error_code(&fields), "quota");
    // the same through the legacy protocol
    let small = fx.local().join("small");
    fs::write(&small, content(MIB, 3)).unwrap();
    let out = client(
        &fx.local(),
        &server.addr.to_string(),
        "u",
        "p",
        &["--legacy", "-c", "put small"],
    );
    assert_eq!(out.status.code(), Some(1), "legacy: {}", stdout(&out));
    assert!(stderr(&out).contains("quota"), "{}", stderr(&out));
    // and `a` completes
    assert_eq!(finish_upload(&mut a, &data, 256 * 1024), Kind::Ok);
    let root = fx.storage().join("u");
    assert_same(&fs::read(root.join("a")).unwrap(), &data, "a");
    assert!(!root.join("b").exists() && !root.join("small").exists());
}

#[test]
fn a_stream_reserves_as_it_goes_and_stops_at_the_quota() {
    let fx = Fixture::new("quota-stream");
    let server = server(&fx, 2 * MIB as u64);
    let data = content(3 * MIB / 2, 4);
    // a stream of 1.5 MiB under way (through the client library, from a pipe)...
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    let addr = server.addr;
    let streaming = std::thread::spawn(move || {
        let mut remote = connect(addr, "u", "p").unwrap();
        remote.put_stream(&mut reader, "stream", fos::client::TransferOpts::default())
    });
    writer.write_all(&data[..MIB + 1]).unwrap();
    // ...has reserved what it wrote: a 1 MiB upload no longer fits, though no file is
    // complete yet (wait for the reservation to show, bounded)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut s = session(&server);
        let (kind, fields) = start_upload(&mut s, "other", &content(MIB, 5), 0);
        if kind == Kind::Error {
            assert_eq!(error_code(&fields), "quota");
            break;
        }
        write_frame(&mut s, Kind::Abort, b"discard").unwrap();
        s.flush().unwrap();
        assert!(std::time::Instant::now() < deadline, "never reserved");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    writer.write_all(&data[MIB + 1..]).unwrap();
    drop(writer);
    let report = streaming.join().unwrap().unwrap();
    assert_eq!(report.size, data.len() as u64);
    let root = fx.storage().join("u");
    assert_same(&fs::read(root.join("stream")).unwrap(), &data, "stream");
    // a second stream goes over: refused with `quota`, nothing left behind
    let (mut reader, mut writer) = std::io::pipe().unwrap();
    let feeding = std::thread::spawn(move || {
        // the client stops reading when refused: the write then fails
        let _ = writer.write_all(&content(4 * MIB, 6));
    });
    let mut remote = connect(addr, "u", "p").unwrap();
    let err = remote
        .put_stream(&mut reader, "over", fos::client::TransferOpts::default())
        .unwrap_err();
    drop(reader);
    feeding.join().unwrap();
    assert!(
        matches!(&err, fos::Error::Remote(fos::protocol::ErrorCode::Quota, _)),
        "{err}"
    );
    let names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["stream"], "no partial left behind");
    // the session is still in step
    assert_eq!(remote.ls(None).unwrap().len(), 1);
}

#[test]
fn files_at_any_depth_count_and_rm_r_removes_any_depth() {
    let fx = Fixture::new("quota-deep");
    // a tree 200 directories deep, made behind the server's back (by an admin, or by
    // an older version), with 1.5 MiB at the bottom
    let root = fx.storage().join("u");
    let mut deep = root.join("top");
    for _ in 0..199 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("bottom.bin"), content(3 * MIB / 2, 7)).unwrap();
    let server = server(&fx, 2 * MIB as u64);
    let mut s = session(&server);
    let (kind, fields) = start_upload(&mut s, "one", &content(MIB, 8), 0);
    assert_eq!(kind, Kind::Error, "the deep file counts");
    assert_eq!(error_code(&fields), "quota");
    drop(s);
    let mut remote = connect(server.addr, "u", "p").unwrap();
    remote.rm("top", true).unwrap();
    assert!(!root.join("top").exists());
}

#[test]
fn directories_deeper_than_the_limit_cannot_be_made() {
    let fx = Fixture::new("quota-mkdir");
    let server = LibServer::start(fx.config());
    let mut s = session(&server);
    let mkdir = |s: &mut fos::client::ClientTls, path: &str| {
        let (kind, fields) = request(s, &Request::Mkdir(path.into()));
        (kind, fields)
    };
    let mut path = String::from("a");
    for depth in 1..=fos::internals::sandbox::MAX_DEPTH {
        let (kind, fields) = mkdir(&mut s, &path);
        assert_eq!(kind, Kind::Ok, "depth {depth}: {fields:?}");
        path.push_str("/a");
    }
    let (kind, fields) = mkdir(&mut s, &path);
    assert_eq!(
        kind,
        Kind::Error,
        "depth {}",
        fos::internals::sandbox::MAX_DEPTH + 1
    );
    assert!(
        String::from_utf8_lossy(&fields[1]).contains("deeper than 128"),
        "{fields:?}"
    );
    // nor by moving a tree down: b/c (2 levels) under the 127th level would reach 129
    assert_eq!(mkdir(&mut s, "b").0, Kind::Ok);
    assert_eq!(mkdir(&mut s, "b/c").0, Kind::Ok);
    let at127 = vec!["a"; 127].join("/");
    let (kind, _) = request(
        &mut s,
        &Request::Mv {
            from: "b".into(),
            to: format!("{at127}/b"),
        },
    );
    assert_eq!(kind, Kind::Error, "moved 2 levels under level 127");
    // one level less fits
    let at126 = vec!["a"; 126].join("/");
    let (kind, fields) = request(
        &mut s,
        &Request::Mv {
            from: "b".into(),
            to: format!("{at126}/b"),
        },
    );
    assert_eq!(kind, Kind::Ok, "{fields:?}");
}

#[test]
fn native_and_legacy_puts_share_one_limit() {
    let fx = Fixture::new("quota-legacy");
    let server = server(&fx, 12 * 1024);
    let s = server.addr.to_string();
    let local = fx.local();
    fs::write(local.join("a"), vec![1u8; 6 * 1024]).unwrap();
    fs::write(local.join("b"), vec![2u8; 7 * 1024]).unwrap();
    let ok = |args: &[&str]| {
        let out = client(&local, &s, "u", "p", args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    ok(&["-c", "put a"]);
    // 6 KiB used; 7 KiB more does not fit, by either protocol...
    for legacy in [false, true] {
        let mut args = vec!["-c", "put b"];
        if legacy {
            args.insert(0, "--legacy");
        }
        let out = client(&local, &s, "u", "p", &args);
        assert_eq!(out.status.code(), Some(1), "legacy {legacy}");
        assert!(stderr(&out).contains("quota"), "{}", stderr(&out));
    }
    // ...but replacing the 6 KiB file with it does, by either protocol
    ok(&["--legacy", "-c", "put b a"]);
    ok(&["-c", "put b a"]);
    let root = fx.storage().join("u");
    assert_eq!(fs::read(root.join("a")).unwrap(), vec![2u8; 7 * 1024]);
    assert!(!root.join("b").exists());
}

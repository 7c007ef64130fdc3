//! What the restructuring (issue 11: uploads and downloads as session objects, one
//! reply function per protocol, the client split along its concepts) must not have
//! lost, found by a review of it: a failed upload is still a warning in the server's
//! log (`--quiet` keeps it), a cancelled upload says it is kept only when it is, and
//! the client's transfer steps refuse a server's offset or size that no real server
//! sends instead of underflowing on it.

mod hostile;
mod support;

use std::fs;
use std::io::Write;
use std::time::Duration;

use fos::protocol::Request;
use fos::protocol::frame::{Kind, encode_fields, read_frame, write_frame};
use hostile::Hostile;
use support::*;

type Stream = fos::client::ClientTls;

fn frame(s: &mut Stream, kind: Kind, payload: &[u8]) {
    write_frame(s, kind, payload).unwrap();
    s.flush().unwrap();
}

fn request(s: &mut Stream, fields: &[&[u8]]) {
    frame(s, Kind::Request, &encode_fields(fields));
}

/// The next frame: its kind and its fields as text.
fn reply(s: &mut Stream) -> (Kind, Vec<String>) {
    let mut buf = Vec::new();
    let kind = read_frame(s, &mut buf).unwrap();
    let fields = hostile::fields(&buf)
        .into_iter()
        .map(|f| String::from_utf8_lossy(&f).into_owned())
        .collect();
    (kind, fields)
}

fn sha(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// A logged-in native session with `server`, reads bounded in time.
fn session(addr: std::net::SocketAddr) -> Stream {
    let mut s = raw_tls(addr);
    s.sock
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    login(&mut s);
    s
}

#[test]
fn a_failed_upload_is_still_a_warning_that_names_the_file() {
    let fx = Fixture::new("review-warn");
    let log = fx.dir.path().join("server.log");
    // --quiet: warnings and errors only, as an operator runs it
    let server = BinServer::start(&fx, &["-q", "--log", log.to_str().unwrap()]);
    let mut s = session(server.addr);
    request(&mut s, &[b"put", b"corrupt.txt", b"10", b"1000", b""]);
    assert_eq!(reply(&mut s).0, Kind::Ok);
    frame(&mut s, Kind::Data, b"0123456789");
    frame(&mut s, Kind::End, &[0u8; 32]);
    let (kind, fields) = reply(&mut s);
    assert_eq!(kind, Kind::Error, "{fields:?}");
    assert_eq!(fields[0], "integrity", "{fields:?}");
    // the line is written before the reply is sent
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines().any(|l| l.contains(" WARN ")
            && l.contains("corrupt.txt")
            && l.contains("SHA-256 mismatch")),
        "a corrupted upload is not a warning in the log:\n{text}"
    );
    assert!(
        !fx.storage().join("u/corrupt.txt").exists(),
        "nothing was saved"
    );
}

#[test]
fn a_cancelled_upload_says_it_is_kept_only_when_it_is() {
    let fx = Fixture::new("review-kept");
    let server = LibServer::start(fx.config());
    let mut s = session(server.addr);
    let user = fx.storage().join("u");

    // a pipelined cput is never kept: its cancel must not promise a resume
    request(
        &mut s,
        &[b"cput", b"c1", b"10", b"1000000000", b"644", b"-", b"f"],
    );
    frame(&mut s, Kind::Data, b"012");
    frame(&mut s, Kind::Abort, b"");
    let (kind, fields) = reply(&mut s);
    assert_eq!(kind, Kind::Error, "{fields:?}");
    assert_eq!(fields[0], "aborted", "{fields:?}");
    assert!(
        !fields[1].contains("kept"),
        "a pipelined cput's partial is not kept, yet the reply says: {:?}",
        fields[1]
    );
    assert_eq!(partial_bytes(&user), 0, "nothing of the cput stays");

    // a small put is not resumable either
    request(&mut s, &[b"put", b"small", b"10", b"1000", b"r"]);
    assert_eq!(reply(&mut s).0, Kind::Ok);
    frame(&mut s, Kind::Data, b"0123");
    frame(&mut s, Kind::Abort, b"");
    let (_, fields) = reply(&mut s);
    assert_eq!(fields[0], "aborted", "{fields:?}");
    assert!(
        !fields[1].contains("kept"),
        "a small upload's partial is not kept, yet the reply says: {:?}",
        fields[1]
    );
    assert_eq!(partial_bytes(&user), 0, "nothing of the small put stays");

    // a large resumable put is kept, and says so
    let big = content(1536 << 10, 3);
    let size = big.len().to_string();
    request(&mut s, &[b"put", b"big", size.as_bytes(), b"1000", b"r"]);
    assert_eq!(reply(&mut s).0, Kind::Ok);
    for chunk in big[..1 << 20].chunks(256 << 10) {
        frame(&mut s, Kind::Data, chunk);
    }
    frame(&mut s, Kind::Abort, b"");
    let (_, fields) = reply(&mut s);
    assert_eq!(fields[0], "aborted", "{fields:?}");
    assert!(fields[1].contains("kept for a resume"), "{fields:?}");
    assert_eq!(partial_bytes(&user), 1 << 20, "what arrived is kept");
    // and is continued where it stopped
    request(&mut s, &[b"put", b"big", size.as_bytes(), b"1000", b"r"]);
    let (kind, fields) = reply(&mut s);
    assert_eq!(kind, Kind::Ok, "{fields:?}");
    assert_eq!(fields[0], (1u64 << 20).to_string(), "{fields:?}");
    for chunk in big[1 << 20..].chunks(256 << 10) {
        frame(&mut s, Kind::Data, chunk);
    }
    frame(&mut s, Kind::End, &sha(&big));
    assert_eq!(reply(&mut s).0, Kind::Ok);
    assert_same(&fs::read(user.join("big")).unwrap(), &big, "resumed upload");
    server.stop();
}

/// Runs `fos-client -c SCRIPT` against `server` in `cwd`, quietly.
fn run_client(cwd: &std::path::Path, server: &str, script: &str) -> std::process::Output {
    run(client_command(
        cwd,
        server,
        "u",
        "p",
        &cert(),
        &["-q", "-c", script],
    ))
}

#[test]
fn a_resumed_download_whose_size_is_below_the_offset_is_refused() {
    let tmp = TempDir::new("review-get-under");
    // 8 bytes of an earlier try, kept for reget
    let partial = tmp
        .path()
        .join(String::from_utf8(fos::internals::client::partial_name(b"x")).unwrap());
    fs::write(&partial, b"01234567").unwrap();
    let server = Hostile::native(|req, w| match req {
        // a resume from 8, of a file "of 4 bytes", then far more than 4
        Request::Get { offset, .. } if *offset > 0 => {
            let off = offset.to_string();
            w.ok(&[b"4", b"0", off.as_bytes()])?;
            let junk = vec![b'j'; 256 << 10];
            for _ in 0..4 {
                w.frame(Kind::Data, &junk)?;
            }
            w.frame(Kind::End, &[0u8; 32])
        }
        Request::Get { .. } => w.err("not-found", b"gone"),
        _ => w.err("invalid", b"no"),
    });
    let out = run_client(tmp.path(), &server.server_arg(), "reget x");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "the client panicked: {err}");
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
    assert!(!tmp.path().join("x").exists(), "nothing lands");
    let kept = fs::metadata(&partial).map_or(0, |m| m.len());
    assert!(
        kept <= 8,
        "{kept} bytes in the partial: more than the server announced was written"
    );
}

#[test]
fn an_upload_the_server_answers_past_its_end_is_refused() {
    let tmp = TempDir::new("review-put-past");
    fs::write(tmp.path().join("small.txt"), b"0123456789").unwrap();
    // every put is answered "continue at 100" (with no prefix), then, for the discard
    // the client may send, "aborted"
    let server = Hostile::native(|req, w| match req {
        Request::Put { .. } | Request::PutWithMode { .. } => {
            w.ok(&[b"100", b""])?;
            w.err("aborted", b"discarded")
        }
        _ => w.err("invalid", b"no"),
    });
    let out = run_client(tmp.path(), &server.server_arg(), "put small.txt");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "the client panicked: {err}");
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
}

//! Bad input and bad clients: garbage, oversized frames, unknown commands, silent and
//! slow clients, cut uploads, connection bursts. The server answers or drops each one
//! (after a timeout where needed) and keeps serving everyone else.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fos::protocol::frame::{self, Kind, encode_fields, read_frame, write_frame};
use fos::protocol::{ErrorCode, Request};
use support::*;

fn quick(fx: &Fixture) -> fos::server::ServerConfig {
    fos::server::ServerConfig {
        handshake_timeout: Duration::from_millis(500),
        login_timeout: Duration::from_millis(1500),
        ..fx.config()
    }
}

/// Reads until the peer closes; true if it did within `limit`.
fn closed_within(s: &mut impl Read, limit: Duration) -> bool {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return true,
        }
    }
    false
}

fn still_serves(addr: std::net::SocketAddr) {
    let mut r = connect(addr, "u", "p").expect("the server still accepts logins");
    r.ls(None).expect("and serves commands");
    r.close();
}

#[test]
fn garbage_silence_and_slowness_are_dropped() {
    let fx = Fixture::new("robust");
    let server = LibServer::start(quick(&fx));
    let addr = server.addr;
    // a session that is already logged in must survive everything below
    let mut bystander = connect(addr, "u", "p").unwrap();

    // garbage before TLS
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(
        closed_within(&mut tcp, Duration::from_secs(5)),
        "garbage is dropped"
    );

    // a client that connects and says nothing is dropped after the handshake timeout
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let t = Instant::now();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)),
        "silent client dropped"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "not before the timeout"
    );

    // a byte-a-second hello cannot outlive the login deadline
    let mut slow = raw_tls(addr);
    slow.sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut hello = vec![];
    write_frame(&mut hello, Kind::Hello, &encode_fields(&["fos", "1"])).unwrap();
    let start = Instant::now();
    let mut cut = false;
    for b in hello.iter().take(hello.len() - 1) {
        if slow.write_all(&[*b]).and_then(|()| slow.flush()).is_err() {
            cut = true;
            break;
        }
        let mut one = [0u8; 1];
        match slow.read(&mut one) {
            Ok(0) | Err(_) if start.elapsed() > Duration::from_millis(1400) => {
                cut = true;
                break;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        cut || closed_within(&mut slow, Duration::from_secs(3)),
        "slow sender cut at the login deadline"
    );
    assert!(start.elapsed() < Duration::from_secs(5));

    // garbage after TLS: an unknown frame kind closes that connection
    let mut g = raw_tls(addr);
    g.write_all(b"XXXXXXXXXXXX").unwrap();
    g.flush().unwrap();
    g.sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(closed_within(&mut g, Duration::from_secs(5)));

    bystander
        .ls(None)
        .expect("the logged-in session carried on");
    still_serves(addr);
}

#[test]
fn frames_over_the_bound_and_bad_requests() {
    let fx = Fixture::new("frames");
    let server = LibServer::start(quick(&fx));
    let addr = server.addr;

    // before login: nothing but login is served
    let mut s = raw_tls(addr);
    hello(&mut s);
    let (kind, fields) = request(&mut s, &Request::Ls(None));
    assert_eq!(kind, Kind::Error);
    assert_eq!(fields[1], b"log in first");

    // an unknown verb is an error reply, and the session carries on
    let mut s = raw_tls(addr);
    login(&mut s);
    write_frame(&mut s, Kind::Request, &encode_fields(&["frobnicate", "x"])).unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_frame(&mut s, &mut buf).unwrap(), Kind::Error);
    assert_eq!(
        frame::decode_fields(&buf).unwrap()[0],
        ErrorCode::Invalid.as_str().as_bytes()
    );
    assert_eq!(request(&mut s, &Request::Pwd).0, Kind::Ok);

    // a frame announced over the bound: the connection is closed without reading it
    let mut header = vec![b'Q'];
    header.extend_from_slice(&((frame::MAX_PAYLOAD as u32) + 1).to_be_bytes());
    s.write_all(&header).unwrap();
    s.flush().unwrap();
    s.sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(5)));

    // a wrong protocol version is refused clearly
    let mut v = raw_tls(addr);
    write_frame(&mut v, Kind::Hello, &encode_fields(&["fos", "99"])).unwrap();
    v.flush().unwrap();
    assert_eq!(read_frame(&mut v, &mut buf).unwrap(), Kind::Error);
    assert!(String::from_utf8_lossy(frame::decode_fields(&buf).unwrap()[1]).contains("version 99"));
    still_serves(addr);
}

#[test]
fn a_cut_upload_leaves_nothing_under_the_target_name() {
    let fx = Fixture::new("cut");
    let server = LibServer::start(fx.config());
    let mut s = raw_tls(server.addr);
    login(&mut s);
    let (kind, _) = request(
        &mut s,
        &Request::Put {
            path: "big.bin".into(),
            size: 10 << 20,
            mtime: 0,
            no_clobber: false,
            resume: false,
        },
    );
    assert_eq!(kind, Kind::Ok);
    let chunk = content(256 * 1024, 3);
    for _ in 0..8 {
        write_frame(&mut s, Kind::Data, &chunk).unwrap();
    }
    s.flush().unwrap();
    // the client dies: a bare TCP close in the middle of the stream
    s.sock.shutdown(std::net::Shutdown::Both).unwrap();
    drop(s);
    let root = fx.storage().join("u");
    // the server notices the cut at once; what arrived stays only under reserved names
    // (kept for a resume), never under the target name
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let names: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names.contains(&"big.bin".to_string()),
            "no file under the target name"
        );
        assert!(
            names.iter().all(|n| n.starts_with(".fos-part-")),
            "{names:?}"
        );
        let mut r = connect(server.addr, "u", "p").unwrap();
        let visible = r.ls(None).unwrap();
        assert!(visible.is_empty(), "partials are never listed: {visible:?}");
        if Instant::now() > deadline || names.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    still_serves(server.addr);
}

#[test]
fn a_burst_of_dropped_connections_does_not_stop_the_server() {
    let fx = Fixture::new("burst");
    let server = LibServer::start(quick(&fx));
    let addr = server.addr;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..250 {
                    if let Ok(t) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                        drop(t);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    still_serves(addr);
}

#[test]
fn twenty_concurrent_clients_get_byte_exact_files() {
    let fx = Fixture::new("conc");
    let server = LibServer::start(fx.config());
    let addr = server.addr;
    let local = Arc::new(fx.local());
    let threads: Vec<_> = (0..20u8)
        .map(|i| {
            let local = Arc::clone(&local);
            std::thread::spawn(move || {
                let (user, pw) = [("u", "p"), ("u2", "p2"), ("t", "tp")][i as usize % 3];
                let mut r = connect(addr, user, pw).unwrap();
                let data = content(200_000 + i as usize * 1000, i);
                let src = local.join(format!("src-{i}"));
                std::fs::write(&src, &data).unwrap();
                let name = format!("file-{i}.bin");
                r.put(&src, &name, Default::default()).unwrap();
                let names: Vec<String> = r.ls(None).unwrap().into_iter().map(|e| e.name).collect();
                assert!(names.contains(&name));
                let back = local.join(format!("back-{i}"));
                let cfg = fos::client::ClientConfig {
                    fsync: false,
                    ..Default::default()
                };
                r.get(&cfg, &name, &back, Default::default()).unwrap();
                assert_eq!(std::fs::read(&back).unwrap(), data, "client {i}");
                r.close();
                (user, name, data)
            })
        })
        .collect();
    for t in threads {
        let (user, name, data) = t.join().unwrap();
        assert_eq!(
            std::fs::read(fx.storage().join(user).join(&name)).unwrap(),
            data
        );
    }
}

//! Transfers whose local end is a stream, not a file: `put` from a FIFO, a pipe or
//! standard input sends everything to its end and reports the real size; `get` into a
//! FIFO, a device or standard output writes in place, byte-exact; a local symlink is
//! never replaced. Every run is the real client binary against a real server.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const MIB: usize = 1 << 20;

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(st.success());
}

/// Runs the client with `script` and `input` on its standard input.
fn with_input(fx: &Fixture, server: &str, script: &str, input: Vec<u8>) -> std::process::Output {
    let mut child = client_script(&fx.local(), server, script)
        .stdin(Stdio::piped())
        .spawn()
        .expect("fos-client starts");
    let mut stdin = child.stdin.take().unwrap();
    // a refused upload stops reading: the rest of the input is not wanted
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = wait_with_deadline(child, Duration::from_secs(60));
    feeder.join().unwrap();
    out
}

/// Runs a client whose output may exceed a pipe's buffer: stdout and stderr are read
/// while it runs (killed, by its own handle, if it overruns the deadline).
fn run_draining(mut cmd: Command) -> std::process::Output {
    let mut child = cmd.spawn().expect("fos-client starts");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut done = wait_with_deadline(child, Duration::from_secs(60));
    done.stdout = out.join().unwrap();
    done.stderr = err.join().unwrap();
    done
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn put_from_a_fifo_sends_everything_and_reports_the_real_size() {
    let fx = Fixture::new("put-fifo");
    let server = LibServer::start(fx.config());
    let fifo = fx.local().join("ff");
    mkfifo(&fifo);
    let data = content(3 * MIB, 1);
    let (path, want) = (fifo.clone(), data.clone());
    let writer = std::thread::spawn(move || {
        // opens once the client opens the FIFO for reading
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all(&want)
            .unwrap();
    });
    let out = run(client_script(
        &fx.local(),
        &server.addr.to_string(),
        "put ff up.bin",
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    writer.join().unwrap();
    assert_same(
        &fs::read(fx.storage().join("u/up.bin")).unwrap(),
        &data,
        "uploaded from a FIFO",
    );
    assert!(
        stderr(&out).contains("ff -> up.bin: 3.0 MiB in"),
        "{}",
        stderr(&out)
    );
    assert_eq!(names(&fx.storage().join("u")), vec!["up.bin"]);
}

#[test]
fn put_dash_and_dev_stdin_read_standard_input() {
    let fx = Fixture::new("put-stdin");
    let server = LibServer::start(fx.config());
    let s = server.addr.to_string();
    let data = content(MIB + 12_345, 2);
    let out = with_input(&fx, &s, "put - in.bin", data.clone());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_same(
        &fs::read(fx.storage().join("u/in.bin")).unwrap(),
        &data,
        "put -",
    );
    assert!(
        stderr(&out).contains("standard input -> in.bin: 1.0 MiB in"),
        "{}",
        stderr(&out)
    );
    // /dev/stdin, a pipe here, is read to its end too
    let out = with_input(&fx, &s, "put /dev/stdin dev.bin", data.clone());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_same(
        &fs::read(fx.storage().join("u/dev.bin")).unwrap(),
        &data,
        "put /dev/stdin",
    );
    // an empty input is an empty file, not a failure
    let out = with_input(&fx, &s, "put - empty", Vec::new());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fs::read(fx.storage().join("u/empty")).unwrap(), b"");
    // when the commands themselves come from standard input, it is refused
    let out = with_input(&fx, &s, "", Vec::new());
    assert_eq!(out.status.code(), Some(0));
    let mut child = client_command(&fx.local(), &s, "u", "p", &cert(), &[])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"put - script.bin\nmore data\n")
        .unwrap();
    let out = wait_with_deadline(child, Duration::from_secs(60));
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("give them with -c"),
        "{}",
        stderr(&out)
    );
    assert!(!fx.storage().join("u/script.bin").exists());
}

#[test]
fn a_stream_over_the_size_limit_is_refused_at_once_and_leaves_nothing() {
    let fx = Fixture::new("put-stream-max");
    let server = LibServer::start(fos::server::ServerConfig {
        max_file_size: Some(MIB as u64),
        ..fx.config()
    });
    // far more than the limit: the client must stop reading when the server refuses,
    // not send it all first
    let total = 128 * MIB;
    let mut child = client_script(&fx.local(), &server.addr.to_string(), "put - big.bin")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![7u8; 64 * 1024];
        let mut fed = 0;
        while fed < total {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
            fed += chunk.len();
        }
        fed
    });
    let out = wait_with_deadline(child, Duration::from_secs(60));
    let fed = feeder.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("over the server's limit of 1048576 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(fed < total, "the client read all {fed} bytes of its input");
    assert_eq!(
        names(&fx.storage().join("u")),
        Vec::<String>::new(),
        "no file, no partial"
    );
}

#[test]
fn get_into_a_fifo_writes_it_in_place() {
    let fx = Fixture::new("get-fifo");
    let data = content(2 * MIB + 7, 3);
    fs::create_dir_all(fx.storage().join("u")).unwrap();
    fs::write(fx.storage().join("u/f.bin"), &data).unwrap();
    let server = LibServer::start(fx.config());
    let fifo = fx.local().join("ff");
    mkfifo(&fifo);
    let path = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        got
    });
    let out = run(client_script(
        &fx.local(),
        &server.addr.to_string(),
        "get f.bin ff",
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(),
        "the FIFO was replaced"
    );
    assert_same(&reader.join().unwrap(), &data, "read from the FIFO");
    assert!(stderr(&out).contains("f.bin -> "), "{}", stderr(&out));
    assert_eq!(names(&fx.local()), vec!["ff"], "no partial file");
}

#[test]
fn get_dash_writes_standard_output_byte_exact() {
    let fx = Fixture::new("get-stdout");
    // every byte value, escape sequences included: stdout is a pipe, not a terminal
    let mut data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    data.extend_from_slice(b"\x1b[2J\r\n");
    fs::create_dir_all(fx.storage().join("u")).unwrap();
    fs::write(fx.storage().join("u/f.bin"), &data).unwrap();
    let server = LibServer::start(fx.config());
    let s = server.addr.to_string();
    let out = run_draining(client_script(&fx.local(), &s, "get f.bin -"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_same(&out.stdout, &data, "stdout");
    // the summary is on stderr, out of the data's way
    assert!(
        stderr(&out).contains("f.bin -> standard output"),
        "{}",
        stderr(&out)
    );
    assert_eq!(names(&fx.local()), Vec::<String>::new(), "no file named -");
    // through a symlink to the client's own stdout: streamed, the link left alone
    std::os::unix::fs::symlink("/proc/self/fd/1", fx.local().join("out")).unwrap();
    std::os::unix::fs::symlink("/dev/null", fx.local().join("null")).unwrap();
    let out = run_draining(client_script(&fx.local(), &s, "get f.bin out"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_same(&out.stdout, &data, "stdout through a symlink");
    let out = run_draining(client_script(&fx.local(), &s, "get f.bin null"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("f.bin -> null: 293.0 KiB in"),
        "{}",
        stderr(&out)
    );
    for link in ["out", "null"] {
        assert!(
            fs::symlink_metadata(fx.local().join(link))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{link} replaced"
        );
    }
    assert!(
        fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn get_never_replaces_a_local_symlink() {
    let fx = Fixture::new("get-symlink");
    fs::create_dir_all(fx.storage().join("u")).unwrap();
    fs::write(fx.storage().join("u/f.bin"), b"remote content").unwrap();
    let server = LibServer::start(fx.config());
    let local = fx.local();
    fs::write(local.join("target.txt"), b"keep me").unwrap();
    std::os::unix::fs::symlink("target.txt", local.join("link")).unwrap();
    std::os::unix::fs::symlink("nowhere", local.join("dangling")).unwrap();
    let before = snapshot(&local);
    for name in ["link", "dangling"] {
        let out = run(client_script(
            &local,
            &server.addr.to_string(),
            &format!("get f.bin {name}"),
        ));
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        assert!(
            stderr(&out).contains(&format!("{name}: is a symbolic link")),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        snapshot(&local),
        before,
        "the links and their target untouched"
    );
}

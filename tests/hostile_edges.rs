//! Hostile inputs at the edges of the trust rules: a wildcard download to standard
//! output, a glob that fans out through `..`, listings that are large in bytes rather
//! than in entries, and a partial download planted by another user.

mod hostile;
mod support;

use fos::protocol::Request;
use hostile::Hostile;
use support::*;

/// A window-title and clear-screen sequence, as a hostile server would send it.
const TITLE: &str = "\x1b]0;pwned\x07\x1b[2J";

/// Runs `fos-client -c SCRIPT` against `server` in `cwd`.
fn run_client(cwd: &std::path::Path, server: &str, script: &str) -> std::process::Output {
    run(client_script(cwd, server, script))
}

// `get PATTERN -` names the file the server's glob chose in its
// summary on stderr, which was printed raw
#[test]
fn the_summary_of_a_wildcard_get_to_stdout_is_escaped() {
    let tmp = TempDir::new("edge-esc-stdout");
    let server = Hostile::native(|req, w| match req {
        Request::Glob(_) => w.ok(&[format!("/x{TITLE}").as_bytes()]),
        Request::Get { .. } => w.file(b"data"),
        _ => w.err("invalid", b"no"),
    });
    let out = run_client(tmp.path(), &server.server_arg(), "get 'x*' -");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"data", "the data itself is byte-exact");
    let err = stderr(&out);
    assert!(err.contains("x\\u{1b}]0;pwned"), "{err:?}");
    assert!(
        !err.contains('\x1b') && !err.contains('\x07'),
        "the summary reached the terminal raw: {err:?}"
    );
}

fn cpu_time(pid: u32) -> std::time::Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // fields after the command name, which is in parentheses and may hold spaces
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    std::time::Duration::from_millis(ticks * 10)
}

// each `..` multiplies the directories the next `*` lists, and a
// listing (opened beneath the root, read, every entry stat'ed) was free in the
// matching budget: one 316-byte pattern over 100 directories listed a 120-deep
// directory 140 000 times (5 s of server CPU here) and was answered
#[test]
fn a_glob_that_multiplies_listings_with_dotdot_runs_out_of_budget() {
    let (fx, server) = quiet_server("edge-glob-fan");
    let pid = server.child.id();
    let mut s = raw_tls(server.addr);
    login(&mut s);
    s.get_ref()
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    let depth = 120;
    let mut deep = fx.storage().join("u");
    for _ in 0..depth {
        deep = deep.join("a");
    }
    for i in 0..100 {
        std::fs::create_dir_all(deep.join(format!("d{i:02}/s"))).unwrap();
    }
    // 100 directories, then 100 x 100 bases, then 13 rounds of 10 000 listings
    let pattern = format!("{}*/../*/*/..{}", "a/".repeat(depth), "/*/..".repeat(13));
    assert!(pattern.len() < 400 && fos::internals::glob::check(&pattern).is_ok());
    let before = cpu_time(pid);
    let (kind, fields) = request(&mut s, &Request::Glob(pattern));
    let used = cpu_time(pid).saturating_sub(before);
    eprintln!("glob: {used:?} of server CPU");
    assert_eq!(
        kind,
        fos::protocol::frame::Kind::Error,
        "{} matches",
        fields.len()
    );
    assert!(
        String::from_utf8_lossy(&fields[1]).contains("too costly"),
        "{:?}",
        String::from_utf8_lossy(&fields[1])
    );
    // a plain two-level glob over the same directories is still answered
    let (kind, fields) = request(
        &mut s,
        &Request::Glob(format!("{}d*/s", "a/".repeat(depth))),
    );
    assert_eq!(kind, fos::protocol::frame::Kind::Ok);
    assert_eq!(fields.len(), 100);
}

/// The client's resident memory now (KiB), if it is still running.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// `get -r` bounded the entries its held listings have, not their
// bytes: every level kept its whole listing (up to 32 MiB) while it descended, so 31
// names of 1 MB per level, 128 levels deep, came to 4 GB. Here 12 levels: 370 MB.
#[test]
fn get_r_does_not_hold_every_level_of_huge_names_while_it_descends() {
    use fos::protocol::frame::{Kind, encode_fields};
    const LEVELS: usize = 12;
    let tmp = TempDir::new("edge-held");
    let server = Hostile::native(|req, w| match req {
        Request::Ls(Some(p)) => {
            w.ok(&[])?;
            if p.matches('/').count() < LEVELS {
                w.frame(Kind::List, &encode_fields(&[hostile::dir("d").encode()]))?;
                for i in 0..30u8 {
                    let mut name = vec![b'n'; 1_000_000];
                    name[0] = b'a' + i;
                    let entry = hostile::file(&name, 1).encode();
                    w.frame(Kind::List, &encode_fields(&[&entry[..]]))?;
                }
            }
            w.frame(Kind::List, &[])
        }
        _ => w.err("invalid", b"no"),
    });
    let mut child = client_script(tmp.path(), &server.server_arg(), "get -r top")
        // each refusal names its 1 MB entry: nobody reads that here
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        peak = peak.max(rss_kib(pid).unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = wait_with_deadline(child, std::time::Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(1), "the entries were refused");
    assert!(
        tmp.path().join("top").join("d/".repeat(LEVELS)).is_dir(),
        "the tree of directories was made"
    );
    eprintln!("peak RSS {} MiB", peak >> 10);
    assert!(peak < 150 << 10, "the client grew to {} MiB", peak >> 10);
}

// `reget` (and every automatic retry, which resumes) reopened any
// regular file at the partial's name, whoever owned it: in a directory others can
// write to, a `.NAME.fos-partial` planted by another user (mode 0666) got the whole
// download written into it and was renamed into place, still theirs to read and change
#[test]
fn reget_does_not_continue_a_partial_that_another_user_owns() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = TempDir::new("edge-foreign-partial");
    let partial = tmp.path().join(".f.fos-partial");
    std::fs::write(&partial, b"planted").unwrap();
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o666)).unwrap();
    // another user's file: only root can make one here
    if std::os::unix::fs::chown(&partial, Some(65534), Some(65534)).is_err() {
        eprintln!("skipped: not root, cannot plant another user's file");
        return;
    }
    let server = Hostile::native(|req, w| match req {
        // what the partial holds is not the start of the file: start over
        Request::Get { offset, .. } if *offset > 0 => w.err("integrity", b"no"),
        Request::Get { .. } => w.file(b"the secret content"),
        _ => w.err("invalid", b"no"),
    });
    let out = run_client(tmp.path(), &server.server_arg(), "reget f");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = tmp.path().join("f");
    assert_eq!(std::fs::read(&got).unwrap(), b"the secret content");
    let md = std::fs::metadata(&got).unwrap();
    assert_eq!(md.uid(), 0, "the download is the other user's file");
    // not the planted file's 0666: a fresh file, under this process's umask
    assert_eq!(md.mode() & 0o022, 0, "mode {:o}", md.mode());
}

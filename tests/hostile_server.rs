//! The client against a hostile server (a compromised host, or anyone with the public
//! demo key), through the real binary: `get -r` stays beneath the chosen directory and
//! never follows a symlink already there, the partial download is created afresh and
//! fits any name, server text reaches the terminal escaped, replies are bounded, and
//! the password prompt can be cancelled and survives a suspend.

mod hostile;
mod support;

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fos::protocol::Request;
use hostile::{Hostile, RawEntry, dir, file};
use support::*;

/// Runs `fos-client -c SCRIPT` (plus `extra` flags) against `server` in `cwd`.
fn run_client(cwd: &Path, server: &str, extra: &[&str], script: &str) -> Output {
    let args: Vec<&str> = extra.iter().copied().chain(["-c", script]).collect();
    run(client_command(cwd, server, "u", "p", &cert(), &args))
}

/// What the hostile server sends for `get PATH`: a good file's own name, or `evil`.
fn content_for(path: &str) -> Vec<u8> {
    let base = path.rsplit('/').next().unwrap_or("");
    if base.starts_with("good") {
        format!("content of {base}").into_bytes()
    } else {
        b"evil".to_vec()
    }
}

/// A tree `d` whose listing holds every kind of name that must not become a local
/// path, around three good files (one in a subdirectory).
fn hostile_tree(outside: &Path) -> Hostile {
    let abs = outside.join("abs1").display().to_string();
    let top = vec![
        file("good1", 15),
        file("../up1", 4),
        file(abs.as_bytes(), 4),
        file("a/b", 4),
        dir("."),
        dir(".."),
        file("", 4),
        file(b"nul\0x", 4),
        file("x".repeat(256), 4),
        dir("../updir"),
        dir("sub"),
        file("good3", 15),
    ];
    let sub = vec![file("good2", 15), file("../../up2", 4)];
    Hostile::native(move |req, w| match req {
        Request::Ls(Some(p)) if p == "d" => w.list(&top),
        Request::Ls(Some(p)) if p == "d/sub" => w.list(&sub),
        Request::Ls(Some(p)) if p.ends_with("updir") => w.list(&[file("planted", 4)]),
        Request::Ls(_) => w.list(&[]),
        Request::Get { path, .. } => w.file(&content_for(path)),
        _ => w.err("invalid", b"no"),
    })
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn get_r_refuses_every_name_that_is_not_one_plain_component() {
    let tmp = TempDir::new("hostile-names");
    let (local, outside) = (tmp.path().join("local"), tmp.path().join("outside"));
    fs::create_dir_all(&local).unwrap();
    fs::create_dir_all(&outside).unwrap();
    let server = hostile_tree(&outside);
    let out = run_client(&local, &server.server_arg(), &["-q"], "get -r d out");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // nothing above or beside the chosen directory
    assert_eq!(names(&local), ["out"], "{err}");
    assert!(names(&outside).is_empty(), "{err}");
    assert!(names(tmp.path()).len() == 2, "{:?}", names(tmp.path()));
    // the good files arrived, the rest of the tree went on after each refusal
    let o = local.join("out");
    assert_eq!(names(&o), ["good1", "good3", "sub"], "{err}");
    assert_eq!(names(&o.join("sub")), ["good2"], "{err}");
    for (p, want) in [
        ("good1", "good1"),
        ("good3", "good3"),
        ("sub/good2", "good2"),
    ] {
        assert_eq!(
            fs::read_to_string(o.join(p)).unwrap(),
            format!("content of {want}")
        );
    }
    // each refusal names its entry, escaped
    for shown in [
        "\"../up1\"",
        "\"a/b\"",
        "\".\"",
        "\"..\"",
        "\"\"",
        "\"nul\\u{0}x\"",
        "\"../updir\"",
        "\"../../up2\"",
        &format!("\"{}\"", "x".repeat(256)),
    ] {
        assert!(err.contains(shown), "{shown} not named in: {err}");
    }
    assert!(err.contains("abs1"), "{err}");
}

#[test]
fn get_r_does_not_follow_local_symlinks_in_the_tree() {
    let fx = Fixture::new("hostile-links");
    let server = BinServer::start(&fx, &["-q"]);
    let root = fx.storage().join("u");
    fs::create_dir_all(root.join("d/sub")).unwrap();
    fs::write(root.join("d/good1"), "one").unwrap();
    fs::write(root.join("d/good3"), "three").unwrap();
    fs::write(root.join("d/sub/good2"), "two").unwrap();
    let local = fx.local();
    let elsewhere = fx.dir.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let victim = fx.dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    // planted: a directory level and a final file name that point elsewhere
    let out_dir = local.join("out");
    fs::create_dir_all(&out_dir).unwrap();
    symlink(&elsewhere, out_dir.join("sub")).unwrap();
    symlink(&victim, out_dir.join("good3")).unwrap();
    let out = run_client(&local, &server.server_arg(), &["-q"], "get -r d out");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        names(&elsewhere).is_empty(),
        "followed the planted directory: {err}"
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        fs::symlink_metadata(out_dir.join("sub"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link is left alone"
    );
    assert!(err.contains("\"sub\""), "{err}");
    // the final name was replaced, not written through
    let md = fs::symlink_metadata(out_dir.join("good3")).unwrap();
    assert!(md.is_file());
    assert_eq!(fs::read_to_string(out_dir.join("good3")).unwrap(), "three");
    assert_eq!(fs::read_to_string(out_dir.join("good1")).unwrap(), "one");

    // the top level of the tree is a name too: a link there is not followed either
    symlink(&elsewhere, local.join("d")).unwrap();
    let out = run_client(&local, &server.server_arg(), &["-q"], "get -r d");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(names(&elsewhere).is_empty(), "{}", stderr(&out));
}

#[test]
fn the_partial_download_does_not_follow_a_planted_link() {
    let fx = Fixture::new("hostile-partial");
    let server = BinServer::start(&fx, &["-q"]);
    let root = fx.storage().join("u");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f"), "new content").unwrap();
    let local = fx.local();
    let victim = fx.dir.path().join("victim");
    for verb in ["get", "reget"] {
        fs::write(&victim, "precious").unwrap();
        let _ = fs::remove_file(local.join("f"));
        let planted = local.join(".f.fos-partial");
        let _ = fs::remove_file(&planted);
        symlink(&victim, &planted).unwrap();
        let out = run_client(&local, &server.server_arg(), &["-q"], &format!("{verb} f"));
        assert_eq!(out.status.code(), Some(0), "{verb}: {}", stderr(&out));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious", "{verb}");
        let md = fs::symlink_metadata(local.join("f")).unwrap();
        assert!(md.is_file(), "{verb}: the target is a plain file");
        assert_eq!(fs::read_to_string(local.join("f")).unwrap(), "new content");
        assert_eq!(md.permissions().mode() & 0o777, 0o600, "{verb}");
        assert!(fs::symlink_metadata(&planted).is_err(), "{verb}");
    }
}

#[test]
fn names_up_to_255_bytes_download_and_a_cut_partial_fits_too() {
    let fx = Fixture::new("hostile-long");
    let root = fx.storage().join("u");
    fs::create_dir_all(&root).unwrap();
    let local = fx.local();
    // every length near the limit, including multi-byte characters cut at the limit
    let long: Vec<String> = vec![
        "n".repeat(242),
        "n".repeat(243),
        "n".repeat(250),
        "n".repeat(255),
        format!("{}{}", "é".repeat(120), "xyzzyzz"),
    ];
    for name in &long {
        fs::write(root.join(name), name.as_bytes()).unwrap();
    }
    let server = BinServer::start(&fx, &["-q"]);
    for name in &long {
        let out = run_client(
            &local,
            &server.server_arg(),
            &["-q"],
            &format!("get '{name}'"),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{} bytes: {err}", name.len());
        assert!(!err.contains("fos-partial"), "{err}");
        assert_eq!(fs::read(local.join(name)).unwrap(), name.as_bytes());
    }
    assert_eq!(names(&local).len(), long.len(), "no partial left behind");

    // a download of a long name cut mid-way keeps a partial whose name fits, mode 0600,
    // and `reget` finds it again
    let data = content(6 << 20, 3);
    let big = "b".repeat(255);
    fs::write(root.join(&big), &data).unwrap();
    let lib = LibServer::start(fx.config());
    let proxy = Proxy::start(
        lib.addr,
        Faults {
            drop_down_after: Some(2 << 20),
            ..Faults::default()
        },
    );
    let out = run_client(
        &local,
        &proxy.addr.to_string(),
        &["-q", "--retries", "1", "--no-fsync"],
        &format!("get {big}"),
    );
    assert_ne!(out.status.code(), Some(0), "the cut was noticed");
    let partials: Vec<PathBuf> = fs::read_dir(&local)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".fos-partial"))
        .collect();
    assert_eq!(partials.len(), 1, "{:?}", names(&local));
    let partial = &partials[0];
    assert!(partial.file_name().unwrap().len() <= 255);
    let md = fs::metadata(partial).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    let kept = md.len();
    assert!(kept > 0 && kept < data.len() as u64, "{kept}");
    let out = run_client(
        &local,
        &lib.addr.to_string(),
        &["--no-fsync"],
        &format!("reget {big}"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_same(&fs::read(local.join(&big)).unwrap(), &data, "reget");
    assert!(
        !stdout(&out).contains("6.0 MiB in"),
        "it resumed: {}",
        stdout(&out)
    );
    assert!(!partial.exists());
}

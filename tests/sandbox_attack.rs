//! The sandbox attack suite: hostile path arguments applied to every path-taking
//! command as user `u` (with users `u2` and `t` beside it). Each must either stay
//! inside u's root or be refused, and the test proves that nothing outside the root
//! was created, changed or deleted (a snapshot of the whole tree before and after) and
//! that no reply carried anything from outside it.

mod support;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use support::*;

const SECRET: &str = "TOP-SECRET-OUTSIDE";
const OTHER: &str = "OTHER-USERS-DATA";

fn hostile_paths() -> Vec<String> {
    let mut v: Vec<String> = [
        "..",
        "../",
        "../..",
        "../../..",
        "/..",
        "/../..",
        "./..",
        "d/../..",
        "d/../../u2",
        "../u2",
        "../u2/f",
        "/../u2/f",
        "../u2/../u2/f",
        "a/../../u2",
        "../u",
        "../u/../u2/f",
        "../u2x",
        "../u2x/f",
        "../t/f",
        "../../outside/secret",
        "../outside/secret",
        "/etc/passwd",
        "/etc",
        "//etc/passwd",
        "/etc/shadow",
        "~",
        "~/../u2",
        "~u2",
        "~/..",
        "link_out",
        "link_out/secret",
        "link_abs",
        "link_abs/secret",
        "link_u2",
        "link_u2/f",
        "link_loop",
        "link_loop/x",
        "link_self",
        "link_dotdot",
        "link_dotdot/u2/f",
        "d/link_up2",
        "d/link_up2/f",
        "name\0x",
        "\0",
        "a/\0/b",
        "a\nb",
        "\n",
        "\r\n",
        ".",
        "",
        " ",
        "..\\u2",
        "%2e%2e/u2",
        "\u{2024}\u{2024}/u2",
        "\u{ff0e}\u{ff0e}/u2",
        "..\u{2215}u2",
        "\u{2025}/u2",
        ".fos-part-x",
        "d/.fos-part-y",
        "/.fos-part-z/../f",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("n".repeat(300));
    v.push(format!("{}/f", "d".repeat(256)));
    v.push("a/".repeat(2100));
    v.push(format!("{}u2/f", "../".repeat(1400)));
    v
}

fn setup(fx: &Fixture) {
    let storage = fx.storage();
    let outside = fx.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), SECRET).unwrap();
    for user in ["u2", "t", "u2x"] {
        fs::create_dir_all(storage.join(user)).unwrap();
        fs::write(storage.join(user).join("f"), OTHER).unwrap();
    }
    reset_root(&storage.join("u"), &outside);
}

/// (Re)creates u's root: earlier commands may legitimately have removed or replaced
/// links inside it, and each hostile path must meet the same tree.
fn reset_root(u: &Path, outside: &Path) {
    // empty it in place: the session holds the directory itself open
    fs::create_dir_all(u).unwrap();
    for e in fs::read_dir(u).unwrap() {
        let p = e.unwrap().path();
        if p.symlink_metadata().unwrap().is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
    }
    fs::create_dir_all(u.join("d")).unwrap();
    fs::write(u.join("victim"), "mine").unwrap();
    fs::write(u.join("d/inner"), "mine too").unwrap();
    symlink("../../outside", u.join("link_out")).unwrap();
    symlink(outside, u.join("link_abs")).unwrap();
    symlink("../u2", u.join("link_u2")).unwrap();
    symlink("link_loop", u.join("link_loop")).unwrap();
    symlink(".", u.join("link_self")).unwrap();
    symlink("..", u.join("link_dotdot")).unwrap();
    symlink("../../u2", u.join("d/link_up2")).unwrap();
}

/// Everything except u's own root.
fn outside_snapshot(fx: &Fixture) -> Vec<(std::path::PathBuf, String)> {
    snapshot(fx.dir.path())
        .into_iter()
        .filter(|(p, _)| {
            !p.starts_with("storage/u/") && p != Path::new("storage/u") && !p.starts_with("local")
        })
        // the servers' own state in the storage (locks, login throttle)
        .filter(|(p, _)| !p.to_string_lossy().starts_with("storage/.fos-"))
        .collect()
}

fn assert_clean(reply: &[u8], what: &str) {
    let text = String::from_utf8_lossy(reply);
    assert!(
        !text.contains(SECRET) && !text.contains(OTHER),
        "{what} leaked: {text}"
    );
    assert!(
        !text.contains(fx_marker()),
        "{what} revealed a server path: {text}"
    );
}

fn fx_marker() -> &'static str {
    "fos-test-attack"
}

#[test]
fn hostile_paths_never_leave_the_root() {
    let fx = Fixture::new("attack");
    setup(&fx);
    let server = LibServer::start(fx.config());
    let before = outside_snapshot(&fx);
    let local = fx.local();
    fs::write(local.join("payload"), "payload").unwrap();
    let mut refused = 0;
    let mut total = 0;
    let paths = hostile_paths();
    assert!(paths.len() >= 40);
    let mut remote = connect(server.addr, "u", "p").unwrap();
    for p in &paths {
        reset_root(&fx.storage().join("u"), &fx.dir.path().join("outside"));
        let mut results: Vec<(&str, Result<Vec<u8>, fos::Error>)> = vec![
            (
                "ls",
                remote.ls(Some(p)).map(|e| {
                    e.iter()
                        .map(|e| e.name.clone())
                        .collect::<Vec<_>>()
                        .join("\n")
                        .into_bytes()
                }),
            ),
            ("cat", remote.cat(p)),
            ("stat", remote.stat(p).map(|e| e.name.into_bytes())),
            ("mkdir", remote.mkdir(p).map(|()| vec![])),
            ("rmdir", remote.rmdir(p).map(|()| vec![])),
            ("rm", remote.rm(p, false).map(|()| vec![])),
            ("rm -r", remote.rm(p, true).map(|()| vec![])),
            (
                "mv from",
                remote.mv(p, "moved_here").map(String::into_bytes),
            ),
            ("mv to", remote.mv("victim", p).map(String::into_bytes)),
            ("cd", remote.cd(Some(p)).map(String::into_bytes)),
        ];
        // every command above must leave the session usable, and cd back home
        remote.cd(None).unwrap();
        let got = local.join("got");
        let opts = fos::client::TransferOpts::default;
        let cfg = fos::client::ClientConfig {
            fsync: false,
            ..Default::default()
        };
        let get = remote
            .get(&cfg, p, &got, opts())
            .map(|_| fs::read(&got).unwrap_or_default());
        results.push(("get", get));
        results.push((
            "put",
            remote
                .put(&local.join("payload"), p, opts())
                .map(|_| vec![]),
        ));
        for (cmd, r) in results {
            total += 1;
            match r {
                Ok(reply) => assert_clean(&reply, &format!("{cmd} {p:?}")),
                Err(e) => {
                    refused += 1;
                    let msg = e.to_string();
                    assert_clean(msg.as_bytes(), &format!("{cmd} {p:?}"));
                    assert!(!msg.is_empty());
                }
            }
        }
    }
    assert_eq!(
        outside_snapshot(&fx),
        before,
        "something outside u's root changed"
    );
    // the symlinks u had are still there (rm never followed them) or were removed as links
    assert!(fx.dir.path().join("outside/secret").exists());
    assert!(
        refused > total / 2,
        "most hostile requests are refused ({refused}/{total})"
    );
    remote.close();
    server.stop();
}

#[test]
fn refused_and_missing_paths_read_the_same() {
    let fx = Fixture::new("attack-same");
    setup(&fx);
    let server = LibServer::start(fx.config());
    let mut remote = connect(server.addr, "u", "p").unwrap();
    let missing = remote.cat("no-such-file").unwrap_err().to_string();
    for p in [
        "../u2/f",
        "link_u2/f",
        "link_abs/secret",
        "/../u2/f",
        ".fos-part-x",
    ] {
        assert_eq!(remote.cat(p).unwrap_err().to_string(), missing, "{p}");
    }
}

//! `sync push`, `sync pull` and two-way `sync`, end to end on loopback: the real
//! client binary against an in-process server (and the library for the races), on a
//! small version of the benchmark tree. After every scenario both sides must hold
//! exactly the same paths, contents and modification times.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::*;

/// Files of the small tree that scenario c edits.
const EDITED: usize = 10;

/// A server, a local side and a state directory for the client's index.
struct Env {
    fx: Fixture,
    server: LibServer,
}

impl Env {
    fn new(tag: &str) -> Env {
        Env::with(tag, |_| {})
    }

    fn with(tag: &str, tweak: impl FnOnce(&mut fos::server::ServerConfig)) -> Env {
        let fx = Fixture::new(tag);
        let mut cfg = fx.config();
        tweak(&mut cfg);
        let server = LibServer::start(cfg);
        fs::create_dir_all(fx.dir.path().join("state")).unwrap();
        Env { fx, server }
    }

    fn state(&self) -> PathBuf {
        self.fx.dir.path().join("state")
    }

    /// The user's storage directory on the server.
    fn remote(&self) -> PathBuf {
        self.fx.storage().join("u")
    }

    fn local(&self) -> PathBuf {
        self.fx.local()
    }

    /// `fos-client ARGS` against `server`, in the local directory's parent, with the
    /// sync state kept in [`Env::state`]; not started yet.
    fn command(&self, server: &str, args: &[&str]) -> Command {
        let mut c = client_command(self.fx.dir.path(), server, "u", "p", &cert(), args);
        c.env("XDG_STATE_HOME", self.state());
        c
    }

    /// Runs `fos-client -c CMD` in the local directory's parent.
    fn client(&self, cmd: &str, extra: &[&str]) -> Output {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["-c", cmd]);
        let mut c = self.command(&self.server.addr.to_string(), &args);
        c.env("HOME", self.fx.dir.path());
        run(c)
    }

    /// Runs `sync ARGS` and checks the exit status.
    #[track_caller]
    fn sync(&self, args: &str, ok: bool) -> String {
        let out = self.client(&format!("sync {args}"), &[]);
        assert_eq!(
            out.status.success(),
            ok,
            "sync {args}: status {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out) + &stderr(&out)
    }

    /// A library session for the tests that act during a sync.
    fn session(&self) -> fos::client::native::Native {
        match connect(self.server.addr, "u", "p").unwrap() {
            fos::client::Remote::Native(n) => n,
            _ => panic!("a fos server"),
        }
    }

    fn opts(&self, words: &str) -> fos::sync::options::Options {
        let words: Vec<String> = words.split_whitespace().map(String::from).collect();
        let mut o = fos::sync::options::parse(&words).unwrap();
        o.state = Some(self.state().join("fos"));
        o.local = self.local().to_string_lossy().into_owned();
        o
    }
}

/// Every path under `root` (no reserved server files) with kind, size, content hash
/// and modification time in nanoseconds.
fn listing(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".fos-") {
                continue;
            }
            let p = e.path();
            let md = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if md.is_dir() {
                out.push(format!("d {rel}"));
                walk(&p, root, out);
            } else if md.is_file() {
                use std::os::unix::fs::MetadataExt;
                out.push(format!(
                    "f {rel} {} {} {}.{:09}",
                    md.len(),
                    sha_file(&p),
                    md.mtime(),
                    md.mtime_nsec()
                ));
            } else {
                out.push(format!("l {rel}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

#[track_caller]
fn assert_identical(a: &Path, b: &Path) {
    let (la, lb) = (listing(a), listing(b));
    if la != lb {
        let only_a: Vec<_> = la.iter().filter(|x| !lb.contains(x)).collect();
        let only_b: Vec<_> = lb.iter().filter(|x| !la.contains(x)).collect();
        panic!("the two sides differ:\nonly in {a:?}: {only_a:#?}\nonly in {b:?}: {only_b:#?}");
    }
}

fn write_at(path: &Path, data: &[u8], secs: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// A small version of the benchmark tree: 60 source files in nested directories
/// (names with spaces and non-ASCII among them), a vendor directory of 20 files in
/// two subdirectories (the rename target), two assets above the resumable size and
/// one 9 MiB "disk image".
fn small_tree(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let t0 = 1_767_225_600;
    for i in 0..60u32 {
        let dir = match i % 4 {
            0 => "src/pkg00/mod0".to_string(),
            1 => "src/pkg01".to_string(),
            2 => "src/pkg02/mod1/deep dir".to_string(),
            _ => "src/ünïcödé".to_string(),
        };
        let name = if i % 7 == 0 {
            format!("file {i:04}.py")
        } else {
            format!("file{i:04}.py")
        };
        let p = root.join(dir).join(name);
        write_at(
            &p,
            &content(500 + (i as usize * 37) % 3000, i as u8),
            t0 + i as u64,
        );
        files.push(p);
    }
    for i in 0..20u32 {
        let p = root.join(format!("vendor/lib20/part{}/m{i:03}.py", i % 2));
        write_at(
            &p,
            &content(200 + i as usize * 11, 100 + i as u8),
            t0 + 100 + i as u64,
        );
    }
    for i in 0..2u32 {
        let p = root.join(format!("assets/asset_{i:02}.bin"));
        write_at(
            &p,
            &content((1 << 20) + 4096 * i as usize, 200 + i as u8),
            t0 + 200,
        );
    }
    write_at(&root.join("big/disk.img"), &content(9 << 20, 250), t0 + 300);
    files
}

#[test]
fn push_scenarios_a_to_f_leave_both_sides_identical() {
    // fsync on: the batches go through the group durability path
    let env = Env::with("sync-push", |c| c.fsync = true);
    let files = small_tree(&env.local());
    let dst = env.remote().join("dst");

    // a. first sync into an empty directory
    let out = env.sync("push local /dst", true);
    assert!(out.contains("+ src/pkg01/file0001.py"), "{out}");
    assert!(
        out.contains("+ src/ünïcödé/file0007.py") || out.contains("+ src/ünïcödé/file 0007.py"),
        "{out}"
    );
    assert!(out.contains("83 files sent"), "{out}");
    assert_identical(&env.local(), &dst);

    // b. again, nothing changed
    let out = env.sync("push local /dst", true);
    assert!(
        out.contains("0 files sent") && out.contains("83 unchanged"),
        "{out}"
    );
    assert_identical(&env.local(), &dst);

    // c. ten small files edited
    for (i, f) in files.iter().take(EDITED).enumerate() {
        let mut data = fs::read(f).unwrap();
        data.extend_from_slice(format!("edit {i}\n").as_bytes());
        write_at(f, &data, 1_800_000_000 + i as u64);
    }
    let out = env.sync("push local /dst", true);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("> ")).count(),
        EDITED,
        "{out}"
    );
    assert!(out.contains(&format!("{EDITED} files sent")), "{out}");
    assert_identical(&env.local(), &dst);

    // the large file's block list was kept as it was uploaded; damaged, it is rebuilt
    let entries = || -> Vec<PathBuf> {
        fs::read_dir(env.remote())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".fos-sync-b-")
            })
            .collect()
    };
    assert_eq!(entries().len(), 1, "one block list, for big/disk.img");
    fs::write(&entries()[0], b"damaged").unwrap();

    // d. one byte changed in the large file
    let img = env.local().join("big/disk.img");
    let mut data = fs::read(&img).unwrap();
    data[5 << 20] ^= 1;
    write_at(&img, &data, 1_800_000_100);
    let out = env.sync("push local /dst", true);
    assert!(
        out.contains("> big/disk.img") && out.contains("1 files sent"),
        "{out}"
    );
    // a delta: one 64 KiB block and the lists, not 9 MiB
    assert!(wire_bytes(&out) < 512 << 10, "{out}");
    assert_identical(&env.local(), &dst);
    assert_eq!(
        entries().len(),
        1,
        "the old file's list replaced by the new one's"
    );
    // and again, from the list the delta left
    let mut data = fs::read(&img).unwrap();
    data[1 << 20] ^= 1;
    write_at(&img, &data, 1_800_000_150);
    let out = env.sync("push local /dst", true);
    assert!(wire_bytes(&out) < 512 << 10, "{out}");
    assert_identical(&env.local(), &dst);
    // most blocks changed: the whole file goes, and still arrives intact
    write_at(&img, &content(9 << 20, 77), 1_800_000_200);
    let out = env.sync("push local /dst", true);
    assert!(wire_bytes(&out) >= 8 << 20, "{out}");
    assert_identical(&env.local(), &dst);

    // e. a directory renamed: exactly one rename, nothing sent
    fs::rename(
        env.local().join("vendor/lib20"),
        env.local().join("vendor/lib20-renamed"),
    )
    .unwrap();
    let out = env.sync("push --delete local /dst", true);
    let changes: Vec<&str> = out
        .lines()
        .filter(|l| l.len() > 1 && "+>-R!".contains(&l[..1]) && l.as_bytes()[1] == b' ')
        .collect();
    assert_eq!(changes, ["R vendor/lib20 -> vendor/lib20-renamed"], "{out}");
    assert!(
        out.contains("0 files sent") && out.contains("1 renamed"),
        "{out}"
    );
    assert_identical(&env.local(), &dst);

    // f. files deleted
    for f in files.iter().skip(EDITED).take(10) {
        fs::remove_file(f).unwrap();
    }
    let out = env.sync("push --delete local /dst", true);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("- ")).count(),
        10,
        "{out}"
    );
    assert!(out.contains("10 deleted"), "{out}");
    assert_identical(&env.local(), &dst);
    // nothing reserved is left behind in the storage but the sync state
    let stray: Vec<_> = walk_names(&env.remote())
        .into_iter()
        .filter(|n| n.starts_with(".fos-part-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// The "on the wire" figure of a summary line, in bytes.
fn wire_bytes(out: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.contains(" on the wire"))
        .expect("a summary");
    let before: Vec<&str> = line[..line.find(" on the wire").unwrap()]
        .rsplit(", ")
        .next()
        .unwrap()
        .split(' ')
        .collect();
    let n: f64 = before[0].parse().unwrap();
    let unit = match before[1] {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        u => panic!("unit {u}"),
    };
    (n * unit) as u64
}

fn walk_names(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}

#[test]
fn pull_scenarios_with_changes_made_directly_in_the_storage() {
    let env = Env::new("sync-pull");
    let src = env.remote().join("src");
    let files = small_tree(&src);
    let local = env.local().join("copy");

    // a. into a missing local directory; the server hashes what an admin put there
    let out = env.sync("pull /src local/copy", true);
    assert!(
        out.contains("83 files received") || out.contains("83 received"),
        "{out}"
    );
    assert_identical(&src, &local);
    let out = env.sync("pull /src local/copy", true);
    assert!(
        out.contains("0 received") && out.contains("83 unchanged"),
        "{out}"
    );

    // c. edits made behind the server's back are picked up
    for f in files.iter().take(EDITED) {
        let mut data = fs::read(f).unwrap();
        data.push(b'!');
        write_at(f, &data, 1_800_000_000);
    }
    let out = env.sync("pull /src local/copy", true);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("> ")).count(),
        EDITED,
        "{out}"
    );
    assert_identical(&src, &local);

    // d. one byte changed in the large file on the server: a delta comes down
    let img = src.join("big/disk.img");
    let mut data = fs::read(&img).unwrap();
    data[3 << 20] ^= 1;
    write_at(&img, &data, 1_800_000_100);
    let out = env.sync("pull /src local/copy", true);
    assert!(out.contains("> big/disk.img"), "{out}");
    assert!(wire_bytes(&out) < 512 << 10, "{out}");
    assert_identical(&src, &local);

    // e. a directory renamed in the storage: one local rename (the server's hash
    // cache knows the moved files by inode)
    let _ = env.sync("pull --checksum /src local/copy", true);
    fs::rename(src.join("vendor/lib20"), src.join("vendor/moved")).unwrap();
    let out = env.sync("pull --delete /src local/copy", true);
    assert!(out.contains("R vendor/lib20 -> vendor/moved"), "{out}");
    assert!(out.contains("0 received"), "{out}");
    assert_identical(&src, &local);

    // f. deletions
    for f in files.iter().skip(EDITED).take(10) {
        fs::remove_file(f).unwrap();
    }
    let out = env.sync("pull --delete /src local/copy", true);
    assert!(out.contains("10 deleted"), "{out}");
    assert_identical(&src, &local);
}

#[test]
fn dry_run_changes_nothing_on_either_side() {
    let env = Env::new("sync-dry");
    small_tree(&env.local());
    env.sync("push local /dst", true);
    fs::remove_dir_all(env.local().join("vendor")).unwrap();
    write_at(&env.local().join("new file.txt"), b"new", 1_800_000_000);
    write_at(
        &env.local().join("src/pkg01/file0001.py"),
        b"changed",
        1_800_000_000,
    );
    let before = (
        snapshot(&env.local()),
        snapshot_storage(&env.fx.storage()),
        snapshot(&env.state()),
    );
    let out = env.sync("push -n --delete --max-delete 100% local /dst", true);
    assert!(out.contains("+ new file.txt"), "{out}");
    assert!(out.contains("> src/pkg01/file0001.py"), "{out}");
    assert!(out.contains("- vendor/lib20/part0/m000.py"), "{out}");
    assert!(out.contains("dry run"), "{out}");
    let after = (
        snapshot(&env.local()),
        snapshot_storage(&env.fx.storage()),
        snapshot(&env.state()),
    );
    assert!(before == after, "a dry run changed something");
}

#[test]
fn mass_deletions_and_emptied_sources_are_refused() {
    let env = Env::new("sync-maxdel");
    let files = small_tree(&env.local());
    env.sync("push local /dst", true);
    let stored = snapshot(&env.remote());
    // 60 of 83 files gone: over the default 50%
    for f in files.iter().take(60) {
        fs::remove_file(f).unwrap();
    }
    let out = env.sync("push --delete local /dst", false);
    assert!(
        out.contains("refusing to delete 60 of 83 files") && out.contains("nothing was changed"),
        "{out}"
    );
    assert!(snapshot(&env.remote()) == stored, "nothing may change");
    let out = env.sync("push --delete --max-delete 59 local /dst", false);
    assert!(out.contains("over --max-delete 59"), "{out}");
    let out = env.sync("push --delete --max-delete 80% local /dst", true);
    assert!(out.contains("60 deleted"), "{out}");

    // an emptied source: refused even under the limit, unless allowed explicitly
    fs::remove_dir_all(env.local()).unwrap();
    fs::create_dir(env.local()).unwrap();
    let stored = snapshot(&env.remote());
    let out = env.sync("push --delete local /dst", false);
    assert!(out.contains("the local directory is empty"), "{out}");
    assert!(snapshot(&env.remote()) == stored);
    // a missing source is an error, whatever the flags
    let out = env.sync("push --delete --max-delete 100% missing /dst", false);
    assert!(out.contains("no such directory"), "{out}");
    let out = env.sync("pull --delete /nowhere local", false);
    assert!(out.contains("does not exist"), "{out}");
    // pulling an emptied server directory over a full local one
    small_tree(&env.local());
    let here = listing(&env.local());
    fs::create_dir_all(env.remote().join("empty")).unwrap();
    let out = env.sync("pull --delete /empty local", false);
    assert!(out.contains("the remote directory is empty"), "{out}");
    assert_eq!(listing(&env.local()), here, "nothing deleted here");
    let out = env.sync("push --delete --max-delete 100% local /dst", true);
    assert!(
        out.contains("0 deleted") || out.contains("deleted"),
        "{out}"
    );
    assert_identical(&env.local(), &env.remote().join("dst"));
}

#[test]
fn excludes_are_neither_sent_nor_deleted() {
    let env = Env::new("sync-excl");
    small_tree(&env.local());
    write_at(&env.local().join("src/x.o"), b"obj", 1);
    write_at(&env.local().join("build/out.bin"), b"bin", 1);
    let out = env.sync(
        "push --exclude *.o --exclude build/ --exclude /vendor/lib20/part1 local /dst",
        true,
    );
    assert!(!out.contains("x.o") && !out.contains("build"), "{out}");
    let dst = env.remote().join("dst");
    assert!(!dst.join("src/x.o").exists() && !dst.join("build").exists());
    assert!(!dst.join("vendor/lib20/part1").exists());
    assert!(dst.join("vendor/lib20/part0").exists());
    // on the server, excluded files are protected from --delete
    write_at(&dst.join("keep.o"), b"server's", 1);
    let out = env.sync("push --delete --exclude *.o local /dst", true);
    assert!(dst.join("keep.o").exists(), "{out}");
    // --include before a broader --exclude keeps that one
    let out = env.sync("push --include keep.o --exclude *.o local /dst2", true);
    assert!(!out.contains("x.o"), "{out}");
}

#[test]
fn symlinks_are_never_followed_on_either_side() {
    let env = Env::new("sync-links");
    let outside = env.fx.dir.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "secret").unwrap();
    write_at(&env.local().join("a.txt"), b"a", 1);
    std::os::unix::fs::symlink(&outside, env.local().join("link")).unwrap();
    let out = env.sync("push local /dst", true);
    assert!(
        out.contains("skipped link: a symlink (not followed)"),
        "{out}"
    );
    assert!(!env.remote().join("dst/link").exists());
    // a link on the server leading out is listed as a link, never walked or copied
    std::os::unix::fs::symlink(&outside, env.remote().join("dst/out")).unwrap();
    fs::create_dir_all(env.fx.dir.path().join("pulled")).unwrap();
    let out = env.sync("pull /dst pulled", true);
    assert!(out.contains("left alone on the server: out"), "{out}");
    assert!(!env.fx.dir.path().join("pulled/out").exists());
    assert!(!walk_names(&env.fx.dir.path().join("pulled")).contains(&"secret".to_string()));
    // a local symlink where the server has a directory: never written through
    fs::create_dir_all(env.remote().join("dst/d")).unwrap();
    fs::write(env.remote().join("dst/d/f"), "f").unwrap();
    std::os::unix::fs::symlink(&outside, env.fx.dir.path().join("pulled/d")).unwrap();
    let out = env.sync("pull /dst pulled", false);
    assert!(out.contains("d"), "{out}");
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing written outside"
    );
}

#[test]
fn a_damaged_or_deleted_index_on_either_side_costs_only_time() {
    let env = Env::new("sync-index");
    small_tree(&env.local());
    env.sync("local /dst", true);
    let dst = env.remote().join("dst");
    assert_identical(&env.local(), &dst);
    let idx_dir = env.state().join("fos/sync");
    let idx: Vec<_> = fs::read_dir(&idx_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(idx.len(), 1, "one index for the pair");
    let size = fs::metadata(&idx[0]).unwrap().len();
    assert!(size <= 200 * 95, "index of {size} bytes for 95 paths");

    // damaged client index: two-way finds both sides equal, no conflict, no loss
    let mut bytes = fs::read(&idx[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    fs::write(&idx[0], &bytes).unwrap();
    let out = env.sync("local /dst", true);
    assert!(
        out.contains("damaged") && out.contains("0 conflicts") && out.contains("0 files sent"),
        "{out}"
    );
    assert_identical(&env.local(), &dst);
    // deleted client index
    fs::remove_file(&idx[0]).unwrap();
    let out = env.sync("push local /dst", true);
    assert!(out.contains("0 files sent"), "{out}");

    // damaged, then deleted server hash cache: rebuilt, still correct
    let cache = env.remote().join(".fos-sync-hashes");
    fs::write(&cache, b"garbage that is not a cache").unwrap();
    let out = env.sync("push --checksum local /dst", true);
    assert!(out.contains("0 files sent"), "{out}");
    fs::remove_file(&cache).unwrap();
    write_at(
        &env.local().join("src/pkg01/file0001.py"),
        b"edited",
        1_800_000_000,
    );
    let out = env.sync("local /dst", true);
    assert!(out.contains("> src/pkg01/file0001.py"), "{out}");
    assert!(cache.exists(), "the cache is rebuilt");
    assert_identical(&env.local(), &dst);
}

#[test]
fn two_way_carries_changes_both_ways_and_modification_wins_over_deletion() {
    let env = Env::new("sync-2way");
    small_tree(&env.local());
    env.sync("local /dst", true);
    let dst = env.remote().join("dst");
    // a change on each side, a deletion on each side, and a modify-vs-delete
    write_at(
        &env.local().join("src/pkg01/file0001.py"),
        b"local edit",
        1_800_000_001,
    );
    write_at(
        &dst.join("src/pkg01/file0005.py"),
        b"remote edit",
        1_800_000_002,
    );
    fs::remove_file(env.local().join("src/pkg01/file0009.py")).unwrap();
    fs::remove_file(dst.join("src/pkg01/file0013.py")).unwrap();
    write_at(
        &env.local().join("src/pkg01/file0017.py"),
        b"edited here",
        1_800_000_003,
    );
    fs::remove_file(dst.join("src/pkg01/file0017.py")).unwrap();
    write_at(
        &dst.join("src/pkg01/file0025.py"),
        b"edited there",
        1_800_000_004,
    );
    fs::remove_file(env.local().join("src/pkg01/file0025.py")).unwrap();
    // the same change on both sides: no conflict
    write_at(&env.local().join("same.txt"), b"same", 1_800_000_005);
    write_at(&dst.join("same.txt"), b"same", 1_800_000_006);
    let out = env.sync("local /dst", true);
    assert!(
        out.contains("> src/pkg01/file0001.py") && out.contains("> src/pkg01/file0005.py"),
        "{out}"
    );
    assert!(
        out.contains("- src/pkg01/file0009.py") && out.contains("- src/pkg01/file0013.py"),
        "{out}"
    );
    assert!(
        out.contains("+ src/pkg01/file0017.py") && out.contains("+ src/pkg01/file0025.py"),
        "{out}"
    );
    assert!(out.contains("0 conflicts"), "{out}");
    assert_eq!(
        fs::read(dst.join("src/pkg01/file0017.py")).unwrap(),
        b"edited here"
    );
    assert_eq!(
        fs::read(env.local().join("src/pkg01/file0025.py")).unwrap(),
        b"edited there"
    );
    // same content, different mtimes: both kept as they are, the rest identical
    let norm = |v: Vec<String>| -> Vec<String> {
        v.into_iter().filter(|l| !l.contains("same.txt")).collect()
    };
    assert_eq!(norm(listing(&env.local())), norm(listing(&dst)));
    let out = env.sync("local /dst", true);
    assert!(
        out.contains("0 files sent") && out.contains("0 received"),
        "{out}"
    );
    // a directory renamed on the server: one local rename
    fs::rename(dst.join("vendor/lib20"), dst.join("vendor/lib-x")).unwrap();
    let out = env.sync("local /dst", true);
    assert!(out.contains("R vendor/lib20 -> vendor/lib-x"), "{out}");
    assert!(out.contains("0 received"), "{out}");
}

#[test]
fn conflicts_in_every_mode() {
    let env = Env::new("sync-conflict");
    write_at(&env.local().join("doc.txt"), b"base", 1_700_000_000);
    env.sync("local /dst", true);
    let dst = env.remote().join("dst");
    let clash = |l: &[u8], lt: u64, r: &[u8], rt: u64| {
        write_at(&env.local().join("doc.txt"), l, lt);
        write_at(&dst.join("doc.txt"), r, rt);
    };
    // skip (the default): listed, exit 1, both left alone; again on the next run
    clash(b"local 1", 1_800_000_000, b"remote 1", 1_800_000_001);
    let out = env.sync("local /dst", false);
    assert!(out.contains("! doc.txt (changed on both sides)"), "{out}");
    assert_eq!(fs::read(env.local().join("doc.txt")).unwrap(), b"local 1");
    assert_eq!(fs::read(dst.join("doc.txt")).unwrap(), b"remote 1");
    let out = env.sync("local /dst", false);
    assert!(out.contains("! doc.txt"), "{out}");
    // newer: the later modification wins
    let out = env.sync("--conflict newer local /dst", true);
    assert!(out.contains("> doc.txt"), "{out}");
    assert_eq!(fs::read(env.local().join("doc.txt")).unwrap(), b"remote 1");
    // local and remote
    clash(b"local 2", 1_800_000_010, b"remote 2", 1_800_000_011);
    env.sync("--conflict local local /dst", true);
    assert_eq!(fs::read(dst.join("doc.txt")).unwrap(), b"local 2");
    clash(b"local 3", 1_800_000_020, b"remote 3", 1_800_000_021);
    env.sync("--conflict remote local /dst", true);
    assert_eq!(fs::read(env.local().join("doc.txt")).unwrap(), b"remote 3");
    assert_identical(&env.local(), &dst);
    // keep-both: both versions on both sides, under a conflict name with the extension
    clash(b"local 4", 1_800_000_030, b"remote 4", 1_800_000_031);
    let out = env.sync("--conflict keep-both local /dst", true);
    assert!(out.contains("R doc.txt -> doc.fos-conflict-"), "{out}");
    let copies: Vec<String> = walk_names(&env.local())
        .into_iter()
        .filter(|n| n.contains(".fos-conflict-"))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(
        copies[0].starts_with("doc.fos-conflict-") && copies[0].ends_with(".txt"),
        "{copies:?}"
    );
    assert_eq!(fs::read(env.local().join("doc.txt")).unwrap(), b"local 4");
    assert_eq!(fs::read(env.local().join(&copies[0])).unwrap(), b"remote 4");
    assert_identical(&env.local(), &dst);
    // the conflict copy in conflict itself: never a copy of a copy
    clash(b"x", 1_800_000_040, b"x", 1_800_000_040); // doc.txt equal again
    write_at(&env.local().join(&copies[0]), b"l", 1_800_000_050);
    write_at(&dst.join(&copies[0]), b"r", 1_800_000_051);
    let out = env.sync("--conflict keep-both local /dst", false);
    assert!(out.contains(&format!("! {}", copies[0])), "{out}");
    let copies_after = walk_names(&env.local())
        .into_iter()
        .filter(|n| n.contains(".fos-conflict-"))
        .count();
    assert_eq!(copies_after, 1);
}

/// Runs the sync `spec` through the library, and at the first new directory it
/// reports lets another client put `theirs` as `remote` (a change made under a sync in
/// progress). Returns the stats, the changes reported (and the notes, with `notes`),
/// and whether the other client's put was made.
fn sync_raced_at_first_dir(
    env: &Env,
    spec: &str,
    theirs: &[u8],
    remote: &str,
    notes: bool,
) -> (fos::sync::Stats, Vec<String>, bool) {
    let mut n = env.session();
    let mut other = connect(env.server.addr, "u", "p").unwrap();
    let file = env.fx.dir.path().join("theirs.txt");
    fs::write(&file, theirs).unwrap();
    let mut raced = false;
    let mut lines = Vec::new();
    let stats = fos::sync::run(
        &mut n,
        "u",
        &env.opts(spec),
        &|| false,
        &mut |ev| match ev {
            fos::sync::Event::Change(c) => {
                lines.push(c.to_string());
                if !raced && matches!(c, fos::sync::Change::NewDir(_)) {
                    raced = true;
                    other
                        .put(&file, remote, fos::client::TransferOpts::default())
                        .unwrap();
                }
            }
            fos::sync::Event::Note(m) if notes => lines.push(m.to_string()),
            _ => {}
        },
    )
    .unwrap();
    (stats, lines, raced)
}

#[test]
fn a_file_changed_by_another_client_during_a_push_is_never_overwritten() {
    let env = Env::new("sync-race");
    write_at(&env.local().join("victim.txt"), b"v1", 1_700_000_000);
    env.sync("push local /dst", true);
    // the plan updates victim.txt and makes a directory first; when the directory
    // is reported, a second client replaces victim.txt on the server
    write_at(
        &env.local().join("victim.txt"),
        b"v2 from the sync",
        1_800_000_000,
    );
    fs::create_dir_all(env.local().join("aaa")).unwrap();
    let (stats, lines, raced) = sync_raced_at_first_dir(
        &env,
        "push local /dst",
        b"the other client's version",
        "/dst/victim.txt",
        false,
    );
    assert!(raced, "{lines:?}");
    assert_eq!(stats.conflicts, 1, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("! victim.txt (changed on the server")),
        "{lines:?}"
    );
    assert_eq!(
        fs::read(env.remote().join("dst/victim.txt")).unwrap(),
        b"the other client's version"
    );
    // a plain rerun of the push is what overwrites it, knowingly
    let out = env.sync("push local /dst", true);
    assert!(out.contains("> victim.txt"), "{out}");
}

#[test]
fn two_way_re_plans_a_path_changed_under_it() {
    let env = Env::new("sync-replan");
    write_at(&env.local().join("f.txt"), b"v1", 1_700_000_000);
    write_at(&env.local().join("g.txt"), b"g1", 1_700_000_000);
    env.sync("local /dst", true);
    // this sync updates f.txt on the server; meanwhile another client changes it
    write_at(&env.local().join("f.txt"), b"local v2", 1_800_000_000);
    fs::create_dir_all(env.local().join("aaa")).unwrap();
    let (stats, lines, raced) =
        sync_raced_at_first_dir(&env, "local /dst", b"remote v2", "/dst/f.txt", true);
    assert!(raced);
    // looked at again: now changed on both sides, so a conflict, and nothing lost
    assert!(
        lines.iter().any(|l| l.contains("looking at it again")),
        "{lines:?}"
    );
    assert_eq!(stats.conflicts, 1, "{lines:?}");
    assert_eq!(
        fs::read(env.remote().join("dst/f.txt")).unwrap(),
        b"remote v2"
    );
    assert_eq!(fs::read(env.local().join("f.txt")).unwrap(), b"local v2");
}

#[test]
fn a_rerun_after_kill_9_converges_with_nothing_lost() {
    let env = Env::new("sync-kill");
    // many small files and a large one, so the kill lands mid-sync
    for i in 0..300u32 {
        write_at(
            &env.local().join(format!("d{}/f{i:03}", i % 5)),
            &content(2000, i as u8),
            1_700_000_000 + i as u64,
        );
    }
    write_at(
        &env.local().join("big.bin"),
        &content(48 << 20, 7),
        1_700_000_000,
    );
    for direction in ["push local /dst", "pull /dst back"] {
        let mut child = env
            .command(
                &env.server.addr.to_string(),
                &["-c", &format!("sync {direction}")],
            )
            .spawn()
            .unwrap();
        // wait until it is visibly part way, then kill -9 (by its PID)
        let watch = if direction.starts_with("push") {
            env.remote()
        } else {
            env.fx.dir.path().join("back")
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            if watch.exists() && walk_names(&watch).len() > 40 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let mid_way = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            mid_way,
            "{direction}: the sync ended before it could be killed"
        );
        let out = env.sync(direction, true);
        assert!(out.contains("0 conflicts"), "{out}");
        let (a, b) = if direction.starts_with("push") {
            (env.local(), env.remote().join("dst"))
        } else {
            (env.remote().join("dst"), env.fx.dir.path().join("back"))
        };
        assert_identical(&a, &b);
        let again = env.sync(direction, true);
        assert!(
            again.contains("0 files sent") && again.contains("0 received"),
            "{again}"
        );
    }
    // no partial download left behind under the synced names
    assert!(
        !walk_names(&env.fx.dir.path().join("back"))
            .iter()
            .any(|n| n.ends_with(".fos-partial"))
    );
}

#[test]
fn sync_is_refused_by_a_python_server_with_the_reason() {
    let env = Env::new("sync-legacy");
    let out = env.client("sync push local /dst", &["--legacy"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sync is not supported by a Python server"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sync_works_in_scripts_on_standard_input() {
    let env = Env::new("sync-script");
    small_tree(&env.local());
    let mut c = env.command(&env.server.addr.to_string(), &[]);
    c.stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"mkdir d\ncd d\nsync push -q local\nsync pull -q . copy\n")
        .unwrap();
    let out = wait_with_deadline(child, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "-q prints no changes and no summary");
    assert_identical(&env.local(), &env.remote().join("d"));
    assert_identical(&env.local(), &env.fx.dir.path().join("copy"));
}

#[path = "hostile/mod.rs"]
mod hostile;

#[test]
fn names_from_a_hostile_server_never_leave_the_local_directory() {
    use fos::protocol::EntryKind;
    use fos::protocol::frame::{Kind, encode_fields};
    use fos::protocol::sync::{ManifestEntry, SyncRequest};
    let env = Env::new("sync-hostile");
    let content = b"the server's bytes".to_vec();
    let entry = |path: &str, kind: EntryKind| ManifestEntry {
        path: path.into(),
        kind,
        size: if kind == EntryKind::File {
            content.len() as u64
        } else {
            0
        },
        mtime_ns: 1_700_000_000_000_000_000,
        mode: 0o644,
        sha: None,
    };
    let f = EntryKind::File;
    let entries: Vec<Vec<u8>> = [
        entry("good", f),
        entry("../up", f),
        entry("/abs", f),
        entry("a/../../b", f),
        entry("dir", EntryKind::Dir),
        entry("dir/../../x", f),
        entry("dir/ok", f),
        entry("nul\0x", f),
        entry(".good.fos-partial", f),
        entry("missing-parent/f", f),
        entry(&"n".repeat(256), f),
    ]
    .iter()
    .map(ManifestEntry::encode)
    .collect();
    let body = content.clone();
    let server = hostile::Hostile::native(move |req, w| match req {
        fos::protocol::Request::Pwd => w.ok(&[b"/"]),
        fos::protocol::Request::Sync(SyncRequest::Manifest { .. }) => {
            w.ok(&[b"/h"])?;
            w.frame(Kind::List, &encode_fields(&entries))?;
            w.frame(Kind::List, &[])
        }
        fos::protocol::Request::Sync(SyncRequest::Flush) => w.ok(&[]),
        fos::protocol::Request::Get { .. } => w.file(&body),
        _ => w.err("invalid", b"no"),
    });
    let before = snapshot(env.fx.dir.path());
    let out = run(env.command(&server.server_arg(), &["-c", "sync pull /h local"]));
    let text = stdout(&out) + &stderr(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        walk_names(&env.local())
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        ["good", "dir", "ok"]
            .map(String::from)
            .into_iter()
            .collect(),
        "{text}"
    );
    assert_eq!(fs::read(env.local().join("good")).unwrap(), content);
    assert!(text.contains("ignored a name from the server"), "{text}");
    // nothing appeared anywhere else beside the local directory (the fixture's own
    // server keeps its state in storage/: not this test's business)
    let elsewhere = |snap: Vec<(PathBuf, String)>| -> Vec<_> {
        snap.into_iter()
            .filter(|(p, _)| {
                !["local", "state", "storage"]
                    .iter()
                    .any(|d| p.starts_with(d))
            })
            .collect()
    };
    let after = elsewhere(snapshot(env.fx.dir.path()));
    let before = elsewhere(before);
    assert_eq!(after, before);
}

#[test]
fn a_sync_cut_by_the_network_reconnects_and_finishes() {
    let env = Env::new("sync-cut");
    small_tree(&env.local());
    // push: cut while the replies come back; pull: cut in the middle of the data
    for (cmd, cut, a, b) in [
        (
            "sync push local /dst",
            5_000u64,
            env.local(),
            env.remote().join("dst"),
        ),
        (
            "sync pull /dst back",
            5 << 20,
            env.remote().join("dst"),
            env.fx.dir.path().join("back"),
        ),
    ] {
        let proxy = Proxy::start(
            env.server.addr,
            Faults {
                drop_down_after: Some(cut),
                ..Faults::default()
            },
        );
        let out = run(env.command(&proxy.addr.to_string(), &["-c", cmd]));
        let text = stdout(&out) + &stderr(&out);
        assert!(out.status.success(), "{cmd}: {text}");
        assert!(
            text.contains("reconnecting"),
            "{cmd}: the cut happened: {text}"
        );
        assert_identical(&a, &b);
    }
}

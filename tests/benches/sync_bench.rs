//! The sync rows of `make bench`: the sync scenarios a-f on the generated tree
//! (`gen_tree.py`: 5,000 files, 1.39 GB; or `FOS_BENCH_TREE=DIR`, copied, never
//! changed; `FOS_BENCH_TREE=off` skips these rows), with `fos-client sync push` against
//! the real `fos-server`, once with `--no-fsync` and once with fsync, and with
//! `make bench-peers` rsync and Unison over the private sshd on the same tree in the
//! same run, each figure beside its ratio.
//!
//! Each tool works on its own fresh copy of the tree into an empty destination, and
//! the tools take each step in turn (a for all, then b for all, ...), so a busy moment
//! of the shared machine falls on all of them alike. The steps:
//! a. first sync; b. again, nothing changed (median of three); c. 10 small files
//! edited; d. one byte changed in the largest file; e. the directory with the most
//! files renamed; f. 100 files deleted. Then, with nothing changed (medians of three):
//! `--checksum` (against `rsync -c`) and a two-way `sync` (against Unison). Bytes on
//! the wire are what the tools report (fos: the kernel's TCP counters, TLS included;
//! rsync: `--stats`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One measured step: wall time, bytes on the wire if known.
#[derive(Clone, Copy, Default)]
struct Step {
    secs: f64,
    wire: Option<u64>,
}

/// The steps of one tool, in order a–f, then the no-change extras.
#[derive(Default)]
struct Run {
    steps: Vec<Step>,
    checksum: Option<Step>,
    two_way: Option<Step>,
}

const NAMES: [&str; 6] = [
    "a. first sync into an empty directory",
    "b. again, nothing changed",
    "c. 10 small files edited",
    "d. 1 byte changed in the largest file",
    "e. a directory of files renamed",
    "f. 100 files deleted",
];

/// The tree to sync: `FOS_BENCH_TREE`, or the generated one (made once, kept in
/// `target/`). `None`: no tree (off, or no python3 to make it).
fn source_tree() -> Option<PathBuf> {
    match std::env::var("FOS_BENCH_TREE") {
        Ok(v) if v == "off" => return None,
        Ok(v) if !v.is_empty() => return Some(PathBuf::from(v)),
        _ => {}
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let tree = target.join("fos-bench-tree");
    let done = target.join("fos-bench-tree.done");
    if done.exists() {
        return Some(tree);
    }
    let _ = std::fs::remove_dir_all(&tree);
    let gen_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/benches/gen_tree.py");
    let ok = Command::new("python3")
        .arg(gen_tree)
        .arg(&tree)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("(sync rows: could not generate the tree with python3; set FOS_BENCH_TREE)");
        return None;
    }
    std::fs::write(&done, b"").ok()?;
    Some(tree)
}

fn copy_tree(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from.join("."))
        .arg(to)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cp -a {from:?} {to:?}");
    // written back before anything is timed
    let _ = Command::new("sync").status();
}

/// Every regular file under `root`, sorted, with its size.
fn files(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            if md.is_dir() {
                stack.push(e.path());
            } else if md.is_file() {
                out.push((e.path(), md.len()));
            }
        }
    }
    out.sort();
    out
}

/// The directory (below the top) holding the most files, for scenario e.
fn busiest_dir(root: &Path) -> PathBuf {
    let mut counts: std::collections::BTreeMap<PathBuf, usize> = Default::default();
    for (f, _) in files(root) {
        let mut p = f.parent();
        while let Some(d) = p {
            if d == root {
                break;
            }
            *counts.entry(d.to_path_buf()).or_default() += 1;
            p = d.parent();
        }
    }
    // the deepest directory with the top count: vendor/lib500 in the generated tree
    let max = counts.values().copied().max().unwrap_or(0);
    counts
        .into_iter()
        .filter(|(_, n)| *n * 10 >= max * 9 && *n >= 2)
        .max_by_key(|(d, n)| (*n, d.components().count()))
        .map(|(d, _)| d)
        .expect("a directory with files")
}

/// The changes of scenarios c–f, made to the work copy `w` before each step.
fn change(w: &Path, step: usize, renamed: &mut Option<PathBuf>) {
    let all = files(w);
    let small: Vec<&(PathBuf, u64)> = all.iter().filter(|(_, s)| *s < 1 << 20).collect();
    let later = std::time::SystemTime::now();
    match step {
        2 => {
            for (f, _) in small.iter().take(10) {
                let mut data = std::fs::read(f).unwrap();
                data.extend_from_slice(b"# edited\n");
                std::fs::write(f, data).unwrap();
                let _ = std::fs::File::options()
                    .write(true)
                    .open(f)
                    .and_then(|h| h.set_modified(later));
            }
        }
        3 => {
            let (big, size) = all.iter().max_by_key(|(_, s)| *s).unwrap();
            let f = std::fs::File::options()
                .read(true)
                .write(true)
                .open(big)
                .unwrap();
            use std::os::unix::fs::FileExt;
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, size / 2).unwrap();
            b[0] ^= 0xff;
            f.write_all_at(&b, size / 2).unwrap();
        }
        4 => {
            let d = busiest_dir(w);
            let to = d.with_file_name(format!(
                "{}-renamed",
                d.file_name().unwrap().to_string_lossy()
            ));
            std::fs::rename(&d, &to).unwrap();
            *renamed = Some(to);
        }
        5 => {
            let keep = renamed.clone().unwrap_or_default();
            for (f, _) in small
                .iter()
                .rev()
                .filter(|(f, _)| !f.starts_with(&keep))
                .take(100)
            {
                std::fs::remove_file(f).unwrap();
            }
        }
        _ => {}
    }
}

fn median(mut v: Vec<Step>) -> Step {
    v.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    v[v.len() / 2]
}

/// Runs `cmd`, sampling its peak RSS from /proc while it runs; returns the time, its
/// stdout and the peak (KiB).
fn timed(mut cmd: Command) -> (f64, String, u64) {
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let reader = {
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut s);
            s
        })
    };
    let mut peak = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kib) = st
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        {
            peak = peak.max(kib);
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let secs = t.elapsed().as_secs_f64();
    let out = reader.join().unwrap();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!("{cmd:?} failed: {status}\n{out}\n{err}");
    }
    (secs, out, peak)
}

/// The "N on the wire" figure of a fos summary line.
fn fos_wire(out: &str) -> Option<u64> {
    let line = out.lines().find(|l| l.contains(" on the wire"))?;
    let text = line[..line.find(" on the wire")?].rsplit(", ").next()?;
    let (n, unit) = text.split_once(' ')?;
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1048576.0,
        "GiB" => 1073741824.0,
        _ => return None,
    };
    Some((n * scale) as u64)
}

/// The private sshd of `make bench-peers`.
struct Ssh {
    port: String,
    key: String,
}

impl Ssh {
    fn opts(&self) -> String {
        format!(
            "-p {} -i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.port, self.key
        )
    }
}

/// How a tool syncs its work copy to its destination.
enum How {
    /// `fos-client sync push --delete FLAGS` into `/DST` on the fos server.
    Fos {
        addr: String,
        state: PathBuf,
        flags: &'static str,
        dst: String,
    },
    /// `rsync -a --delete` over the private sshd.
    Rsync { ssh: std::rc::Rc<Ssh>, dst: PathBuf },
    /// Unison over the private sshd, its archives beside the bench's files.
    Unison {
        ssh: std::rc::Rc<Ssh>,
        dst: PathBuf,
        home: PathBuf,
    },
}

/// Which kind of run.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Plain,
    /// `--checksum` / `rsync -c`.
    Checksum,
    /// Two-way (fos `sync`; Unison is always two-way).
    TwoWay,
}

/// One tool with its own copy of the tree and its own destination.
struct Tool {
    how: How,
    w: PathBuf,
    renamed: Option<PathBuf>,
    run: Run,
    rss: u64,
}

impl Tool {
    fn go(&mut self, variant: Variant) -> Step {
        let w = self.w.display().to_string();
        match &self.how {
            How::Fos {
                addr,
                state,
                flags,
                dst,
            } => {
                let args = match variant {
                    Variant::Plain => format!("push --delete {flags} {w} {dst}"),
                    Variant::Checksum => format!("push --delete --checksum {flags} {w} {dst}"),
                    Variant::TwoWay => format!("{flags} {w} {dst}"),
                };
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_fos-client"));
                cmd.env("FOS_PASSWORD", "p")
                    .env("XDG_STATE_HOME", state)
                    .args(["--server", addr, "--user", "u", "--cert"])
                    .arg(super::data_dir().join("cert.pem"))
                    .args(["-c", &format!("sync {args}")])
                    .stdin(Stdio::null());
                let (secs, out, rss) = timed(cmd);
                self.rss = self.rss.max(rss);
                Step {
                    secs,
                    wire: fos_wire(&out),
                }
            }
            How::Rsync { ssh, dst } => {
                let mut cmd = Command::new("rsync");
                cmd.args(["-a", "--delete", "--stats"]);
                if variant == Variant::Checksum {
                    cmd.arg("-c");
                }
                cmd.args(["-e", &format!("ssh {}", ssh.opts())])
                    .arg(format!("{w}/"))
                    .arg(format!("root@127.0.0.1:{}/", dst.display()));
                let (secs, out, _) = timed(cmd);
                let num = |key: &str| -> Option<u64> {
                    let l = out.lines().find(|l| l.starts_with(key))?;
                    l[key.len()..]
                        .split_whitespace()
                        .next()?
                        .replace(',', "")
                        .parse()
                        .ok()
                };
                let wire = match (num("Total bytes sent:"), num("Total bytes received:")) {
                    (Some(a), Some(b)) => Some(a + b),
                    _ => None,
                };
                Step { secs, wire }
            }
            How::Unison { ssh, dst, home } => {
                let mut cmd = Command::new("unison");
                cmd.env("UNISON", home)
                    .arg(&self.w)
                    .arg(format!("ssh://root@127.0.0.1/{}", dst.display()))
                    .args([
                        "-batch",
                        "-auto",
                        "-times",
                        "-silent",
                        "-confirmbigdel=false",
                        "-ui",
                        "text",
                    ])
                    .args(["-sshargs", &ssh.opts()])
                    // the server side keeps its archives beside ours, not in ~/.unison
                    .args([
                        "-servercmd",
                        &format!("env UNISON={}-server unison", home.display()),
                    ]);
                let (secs, _, _) = timed(cmd);
                Step { secs, wire: None }
            }
        }
    }
}

fn tool(how: How, tree: &Path, w: PathBuf) -> Tool {
    copy_tree(tree, &w);
    match &how {
        How::Rsync { dst, .. } => {
            let _ = std::fs::remove_dir_all(dst);
            std::fs::create_dir_all(dst).unwrap();
        }
        How::Unison { dst, home, .. } => {
            let _ = std::fs::remove_dir_all(dst);
            std::fs::create_dir_all(dst).unwrap();
            let server_home = PathBuf::from(format!("{}-server", home.display()));
            for h in [home, &server_home] {
                let _ = std::fs::remove_dir_all(h);
                std::fs::create_dir_all(h).unwrap();
            }
        }
        How::Fos { .. } => {}
    }
    Tool {
        how,
        w,
        renamed: None,
        run: Run::default(),
        rss: 0,
    }
}

/// Runs scenarios a–f and the no-change extras with every tool, one step at a time
/// for all of them in turn, so that a busy moment of the machine falls on all alike.
fn run_all(tools: &mut [Tool]) {
    for step in 0..6 {
        for t in tools.iter_mut() {
            change(&t.w, step, &mut t.renamed);
        }
        // b, c and d are short or single-file steps whose one run varies most with
        // what the machine is doing: the median of three, each after its own change
        // (c edits ten more files, d flips another byte)
        let rounds = if (1..=3).contains(&step) { 3 } else { 1 };
        let mut got: Vec<Vec<Step>> = vec![Vec::new(); tools.len()];
        for round in 0..rounds {
            if round > 0 && step >= 2 {
                for t in tools.iter_mut() {
                    change(&t.w, step, &mut t.renamed);
                }
            }
            for (i, t) in tools.iter_mut().enumerate() {
                got[i].push(t.go(Variant::Plain));
            }
        }
        for (t, g) in tools.iter_mut().zip(got) {
            t.run.steps.push(median(g));
        }
    }
    for variant in [Variant::Checksum, Variant::TwoWay] {
        let mut got: Vec<Vec<Step>> = vec![Vec::new(); tools.len()];
        for round in 0..4 {
            for (i, t) in tools.iter_mut().enumerate() {
                let wanted = match (&t.how, variant) {
                    (How::Fos { .. }, _) => true,
                    (How::Rsync { .. }, v) => v == Variant::Checksum,
                    (How::Unison { .. }, v) => v == Variant::TwoWay,
                };
                if !wanted {
                    continue;
                }
                let s = t.go(variant);
                // the first two-way run of fos takes the push's index as its base
                let warm_up =
                    round == 0 && variant == Variant::TwoWay && matches!(t.how, How::Fos { .. });
                if !warm_up {
                    got[i].push(s);
                }
            }
        }
        for (t, g) in tools.iter_mut().zip(got) {
            if g.is_empty() {
                continue;
            }
            let m = Some(median(g));
            match variant {
                Variant::Checksum => t.run.checksum = m,
                _ => t.run.two_way = m,
            }
        }
    }
}

fn bytes(n: Option<u64>) -> String {
    match n {
        Some(n) if n >= 10 << 20 => format!("{:.0} MiB", n as f64 / 1048576.0),
        Some(n) if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / 1048576.0),
        Some(n) => format!("{:.0} KiB", n as f64 / 1024.0),
        None => "?".into(),
    }
}

fn ratio(a: f64, b: Option<f64>) -> String {
    b.filter(|b| *b > 0.0)
        .map_or_else(String::new, |b| format!("{:.2}", a / b))
}

/// Prints the sync rows. `peers`: the `FOS_BENCH_SFTP` spec of the private sshd.
pub fn rows(dir: &Path, users: &Path, peers: Option<&str>, row: &dyn Fn(&str, String, String)) {
    let Some(tree) = source_tree() else { return };
    let all = files(&tree);
    let tree_files = all.len() as u64;
    println!(
        "sync: {} files, {:.2} GB ({}); ratios: fos / rsync (time, bytes), two-way fos / Unison",
        tree_files,
        all.iter().map(|(_, s)| s).sum::<u64>() as f64 / 1e9,
        tree.display()
    );
    let root = dir.join("sync-storage");
    let server = super::Server::start(&root, users, true);
    let work = dir.join("sync-work");
    std::fs::create_dir_all(&work).unwrap();
    let state = dir.join("sync-state");
    let fos = |flags: &'static str, dst: &str| How::Fos {
        addr: server.addr.to_string(),
        state: state.clone(),
        flags,
        dst: dst.to_string(),
    };
    let mut tools = vec![
        tool(
            fos("--no-fsync", "/dst-nofsync"),
            &tree,
            work.join("fos-nofsync"),
        ),
        tool(fos("", "/dst-fsync"), &tree, work.join("fos-fsync")),
    ];
    let peers: Option<Vec<String>> =
        peers.map(|s| s.split_whitespace().map(String::from).collect());
    let files_dir = peers
        .as_ref()
        .filter(|p| p.len() == 3)
        .map(|p| Path::new(&p[2]).join("files"));
    if let (Some(p), Some(files_dir)) = (&peers, &files_dir) {
        let ssh = std::rc::Rc::new(Ssh {
            port: p[0].clone(),
            key: p[1].clone(),
        });
        let have = |cmd: &str, arg: &str| Command::new(cmd).arg(arg).output().is_ok();
        if have("rsync", "--version") {
            tools.push(tool(
                How::Rsync {
                    ssh: ssh.clone(),
                    dst: files_dir.join("rsync-dst"),
                },
                &tree,
                work.join("rsync"),
            ));
        }
        if have("unison", "-version") {
            tools.push(tool(
                How::Unison {
                    ssh,
                    dst: files_dir.join("unison-dst"),
                    home: dir.join("unison-home"),
                },
                &tree,
                work.join("unison"),
            ));
        }
        if tools.len() < 4 {
            println!("(rsync or unison is missing: `make bench-peers` installs them)");
        }
    }
    run_all(&mut tools);
    let index_bytes: u64 = std::fs::read_dir(state.join("fos/sync"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let server_rss = server.peak_rss_kib().unwrap_or(0);
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&work);
    if let Some(f) = &files_dir {
        let _ = std::fs::remove_dir_all(f.join("rsync-dst"));
        let _ = std::fs::remove_dir_all(f.join("unison-dst"));
    }
    let client_rss = tools[0].rss.max(tools[1].rss);
    let find = |pred: fn(&How) -> bool| tools.iter().find(|t| pred(&t.how)).map(|t| &t.run);
    let fast = &tools[0].run;
    let durable = &tools[1].run;
    let rsync = find(|h| matches!(h, How::Rsync { .. }));
    let unison = find(|h| matches!(h, How::Unison { .. }));
    for (i, name) in NAMES.iter().enumerate() {
        let f = fast.steps[i];
        let r = rsync.as_ref().map(|r| r.steps[i]);
        let mut rat = ratio(f.secs, r.map(|r| r.secs));
        if matches!(i, 3 | 4)
            && let (Some(fw), Some(rw)) = (f.wire, r.and_then(|r| r.wire))
        {
            rat = format!("{rat} ({:.2})", fw as f64 / rw as f64);
        }
        row(&format!("sync {name}"), format!("{:.2} s", f.secs), rat);
        if matches!(i, 3 | 4) {
            row("  bytes on the wire", bytes(f.wire), String::new());
        }
    }
    let f = fast.checksum.unwrap_or_default();
    row(
        "sync --checksum, nothing changed",
        format!("{:.2} s", f.secs),
        ratio(
            f.secs,
            rsync.as_ref().and_then(|r| r.checksum).map(|s| s.secs),
        ),
    );
    let f = fast.two_way.unwrap_or_default();
    row(
        "sync two-way, nothing changed (vs Unison)",
        format!("{:.2} s", f.secs),
        ratio(
            f.secs,
            unison.as_ref().and_then(|u| u.two_way).map(|s| s.secs),
        ),
    );
    for (i, name) in NAMES.iter().enumerate() {
        let d = durable.steps[i];
        row(
            &format!("sync {} (fsync)", &name[..2]),
            format!("{:.2} s", d.secs),
            ratio(d.secs, rsync.as_ref().map(|r| r.steps[i].secs)),
        );
    }
    row(
        "sync server / client peak RSS",
        format!("{:.1} MiB", server_rss as f64 / 1024.0),
        format!("{:.1} MiB", client_rss as f64 / 1024.0),
    );
    row(
        "sync client index",
        format!("{} B/file", index_bytes / tree_files.max(1)),
        String::new(),
    );
    if let Some(r) = &rsync {
        for (i, name) in NAMES.iter().enumerate() {
            let s = r.steps[i];
            let wire = if matches!(i, 3 | 4) {
                bytes(s.wire)
            } else {
                String::new()
            };
            row(
                &format!("rsync {}", &name[..2]),
                format!("{:.2} s", s.secs),
                wire,
            );
        }
        let c = r.checksum.unwrap_or_default();
        row(
            "rsync -c, nothing changed",
            format!("{:.2} s", c.secs),
            String::new(),
        );
    }
    if let Some(u) = &unison {
        for (i, name) in NAMES.iter().enumerate() {
            row(
                &format!("unison {}", &name[..2]),
                format!("{:.2} s", u.steps[i].secs),
                String::new(),
            );
        }
        let t = u.two_way.unwrap_or_default();
        row(
            "unison, nothing changed",
            format!("{:.2} s", t.secs),
            String::new(),
        );
    }
}

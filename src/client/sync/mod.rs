//! `sync`: move only what changed between a local directory and a remote one.
//!
//! One run: one `manifest` request for the whole remote tree, a walk of the local
//! tree (hashes come from the index while a file's stat is unchanged), a `plan`
//! (copies, renames, deletions, each conditional on what it saw), the safety checks
//! (`--max-delete`, an emptied source), then `apply` (pipelined, with group
//! durability) and a new index. With `-n` the plan is only reported.
//!
//! This module never prints: it reports [`Event`]s to its caller (the shell) and
//! returns the totals ([`Stats`]).

mod apply;
mod delta;
mod filter;
mod index;
mod localfs;
pub mod options;
mod plan;
mod report;
mod tree;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::Error;
use crate::client::native::Native;
use crate::protocol::frame::{Kind, decode_fields};
use crate::protocol::sync::{Hashes, ManifestEntry, SyncRequest};
use crate::protocol::{self, EntryKind, ErrorCode, Request};
use apply::{Apply, Outcome};
use filter::Filter;
use index::{Entry as Base, Index};
use localfs::LocalRoot;
use options::{Mode, Options};
use plan::{Cond, Op, Plan, Side};
use tree::{Node, StatKey, Tree};

pub use report::{Change, Event, Stats};

/// Rounds a two-way sync makes when paths change under it (each re-plans them).
const ROUNDS: usize = 3;

/// Runs one `sync` command over a logged-in native session as `user`. `cancel` is
/// polled (Ctrl-C); every change and note goes to `sink`. Returns the totals; a
/// run that changed nothing because a safety check refused it is an error.
pub fn run(
    n: &mut Native,
    user: &str,
    opts: &Options,
    cancel: &dyn Fn() -> bool,
    sink: &mut dyn FnMut(Event<'_>),
) -> Result<Stats, Error> {
    let started = Instant::now();
    let wire0 = apply::wire_bytes(n);
    let mut total = Stats {
        dry_run: opts.dry_run,
        ..Stats::default()
    };
    for round in 0..ROUNDS {
        let last = round + 1 == ROUNDS || opts.mode != Mode::TwoWay;
        let (stats, replan) = one_round(n, user, opts, cancel, sink, !last)?;
        total.sent_files += stats.sent_files;
        total.sent_bytes += stats.sent_bytes;
        total.received_files += stats.received_files;
        total.received_bytes += stats.received_bytes;
        total.deleted += stats.deleted;
        total.renamed += stats.renamed;
        total.conflicts += stats.conflicts;
        total.failed += stats.failed;
        if round == 0 {
            total.unchanged = stats.unchanged;
        }
        if !replan {
            break;
        }
    }
    total.wire_bytes = match (wire0, apply::wire_bytes(n)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    total.elapsed = started.elapsed();
    Ok(total)
}

/// The session's directory joined with `arg`, normalised (`..` never climbs past
/// `/`), as the server resolves it.
fn absolute(cwd: &str, arg: &str) -> String {
    let mut parts: Vec<&str> = if arg.starts_with('/') {
        Vec::new()
    } else {
        cwd.split('/').filter(|p| !p.is_empty()).collect()
    };
    for c in arg.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Reads a manifest: `Ok(None)` if the directory does not exist.
fn manifest(
    n: &mut Native,
    path: &str,
    hashes: Hashes,
) -> Result<Option<(String, Vec<ManifestEntry>)>, Error> {
    let req = Request::Sync(SyncRequest::Manifest {
        path: path.to_string(),
        hashes,
    });
    let root = match n.call(&req) {
        Ok(f) => f
            .first()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .ok_or(Error::Protocol(protocol::Error::BadFields))?,
        Err(Error::Remote(ErrorCode::NotFound, _)) => return Ok(None),
        Err(Error::Remote(ErrorCode::Invalid, m)) if m.contains("unknown command") => {
            return Err(Error::Remote(
                ErrorCode::Unsupported,
                "this fos server is too old for sync (it has no manifest request)".into(),
            ));
        }
        Err(e) => return Err(e),
    };
    let mut entries = Vec::new();
    loop {
        match n.read_raw()? {
            Kind::List if n.payload().is_empty() => break,
            Kind::List => {
                for f in decode_fields(n.payload())? {
                    if entries.len() >= tree::MAX_ENTRIES {
                        return Err(Error::Remote(
                            ErrorCode::Invalid,
                            "the server's manifest is too long".into(),
                        ));
                    }
                    entries.push(ManifestEntry::decode(f)?);
                }
            }
            Kind::Error => {
                let f = decode_fields(n.payload())?;
                let code = f
                    .first()
                    .map_or(ErrorCode::Invalid, |c| ErrorCode::parse(c));
                let msg = f.get(1).map_or_else(
                    || "error".into(),
                    |m| String::from_utf8_lossy(m).into_owned(),
                );
                return Err(Error::Remote(code, msg));
            }
            other => return Err(Error::Protocol(protocol::Error::Unexpected(other))),
        }
    }
    Ok(Some((root, entries)))
}

/// Makes the remote directory (and its parents), for a push into a new one.
fn make_remote_dir(n: &mut Native, abs: &str) -> Result<(), Error> {
    let mut p = String::new();
    for c in abs.split('/').filter(|c| !c.is_empty()) {
        p.push('/');
        p.push_str(c);
        n.call(&Request::Sync(SyncRequest::Mkdir(p.clone())))?;
    }
    Ok(())
}

struct LocalHasher<'a> {
    root: Option<&'a LocalRoot>,
}

impl plan::Hasher for LocalHasher<'_> {
    fn local_sha(&mut self, path: &str, stat: Option<StatKey>) -> Option<[u8; 32]> {
        let (sha, st) = self.root?.hash(path).ok()??;
        // changed since the walk: not the file the plan is about
        (Some(StatKey::of(&st)) == stat).then_some(sha)
    }
}

fn one_round(
    n: &mut Native,
    user: &str,
    opts: &Options,
    cancel: &dyn Fn() -> bool,
    sink: &mut dyn FnMut(Event<'_>),
    may_replan: bool,
) -> Result<(Stats, bool), Error> {
    let filter = Filter::new(&opts.rules);
    // the remote side
    let hashes = match (opts.mode, opts.checksum) {
        (Mode::Pull, false) => Hashes::Cached,
        _ => Hashes::All,
    };
    let cwd = n.call_text(&Request::Pwd)?;
    let wanted = absolute(&cwd, &opts.remote);
    let (remote_root, entries, remote_exists) = match manifest(n, &opts.remote, hashes)? {
        Some((root, entries)) => (root, entries, true),
        None if opts.mode == Mode::Pull => {
            return Err(Error::Remote(
                ErrorCode::NotFound,
                format!(
                    "sync: the remote directory {} does not exist; nothing was changed",
                    crate::log::escape(&wanted)
                ),
            ));
        }
        None => (wanted, Vec::new(), false),
    };
    let mut notes = Vec::new();
    let remote = tree::from_manifest(entries, &filter, &mut notes);

    // the local side
    let local_path = Path::new(&opts.local);
    let local_root = match LocalRoot::open(local_path) {
        Ok(r) => Some(r),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && opts.mode == Mode::Pull => {
            if !opts.dry_run {
                std::fs::create_dir_all(local_path).map_err(|e| {
                    Error::Local(format!("sync: cannot make {}: {e}", local_path.display()))
                })?;
                Some(LocalRoot::open(local_path)?)
            } else {
                None
            }
        }
        Err(e) => {
            return Err(Error::Local(format!(
                "sync: {}: {}; nothing was changed",
                local_path.display(),
                if e.kind() == std::io::ErrorKind::NotFound {
                    "no such directory".to_string()
                } else {
                    e.to_string()
                }
            )));
        }
    };
    let state = opts.state.clone().or_else(index::state_dir);
    let skip_dir = state.as_deref().and_then(|s| {
        let md = std::fs::metadata(s).ok()?;
        use std::os::unix::fs::MetadataExt;
        Some((md.dev(), md.ino()))
    });
    let mut local = match &local_root {
        Some(r) => {
            let scan = tree::scan_local(r, &filter, skip_dir).map_err(|e| {
                Error::Local(format!("sync: reading {}: {e}", local_path.display()))
            })?;
            notes.extend(scan.notes);
            scan.tree
        }
        None => Tree::new(),
    };
    for note in &notes {
        sink(Event::Note(note));
    }
    let canonical = std::fs::canonicalize(local_path).unwrap_or_else(|_| local_path.to_path_buf());
    let fingerprint = n.peer_fingerprint().unwrap_or([0; 32]);
    let mut idx = Index::load(
        state.as_deref(),
        &fingerprint,
        user,
        &remote_root,
        &canonical,
    );
    if idx.status == index::Status::Damaged {
        sink(Event::Note(
            "the sync index was damaged; comparing everything again",
        ));
    }
    // a file whose stat is as the index recorded it has the content recorded there
    for (p, node) in local.iter_mut() {
        if let Some(b) = idx.entries.get(p)
            && b.local.is_some()
            && b.local == node.stat
        {
            node.sha = b.sha;
        }
    }
    // two-way needs the last synced state; one-way only borrows hashes from it
    let empty = BTreeMap::new();
    let base = if opts.mode == Mode::TwoWay {
        &idx.entries
    } else {
        &empty
    };
    let host = n.server_name.clone();
    let conflict_name = |p: &str| conflict_copy_name(p, &host);
    let plan = plan::make(
        plan::Inputs {
            mode: opts.mode,
            local: &mut local,
            remote: &remote,
            base,
            delete: opts.delete,
            checksum: opts.checksum,
            conflict: opts.conflict,
            conflict_name: &conflict_name,
        },
        &mut LocalHasher {
            root: local_root.as_ref(),
        },
    );
    check_deletions(opts, &plan, &local, &remote, base)?;

    let mut stats = Stats {
        unchanged: plan.unchanged,
        conflicts: plan.clashes.len() as u64,
        ..Stats::default()
    };
    for c in &plan.clashes {
        sink(Event::Change(Change::Conflict(&c.path, &c.why)));
    }
    if opts.dry_run {
        dry_run(&plan, &mut stats, sink);
        return Ok((stats, false));
    }
    if !remote_exists && !plan.ops.is_empty() {
        make_remote_dir(n, &remote_root)?;
    }
    let Some(local_root) = local_root else {
        return Ok((stats, false));
    };
    let (outcomes, applied, result) = {
        let mut a = Apply::new(
            n,
            &local_root,
            &remote_root,
            !opts.no_fsync,
            sink,
            cancel,
            &plan,
        );
        a.replan = may_replan;
        let result = a.run();
        (std::mem::take(&mut a.outcomes), a.stats, result)
    };
    stats.sent_files = applied.sent_files;
    stats.sent_bytes = applied.sent_bytes;
    stats.received_files = applied.received_files;
    stats.received_bytes = applied.received_bytes;
    stats.deleted = applied.deleted;
    stats.renamed = applied.renamed;
    stats.conflicts += applied.conflicts;
    stats.failed = applied.failed;
    // what was done is recorded even when the connection failed part way
    idx.entries = next_index(&plan, &outcomes, &local, &remote, &idx.entries);
    if let Err(e) = idx.save() {
        let msg = format!("could not save the sync index: {e}");
        sink(Event::Note(&msg));
    }
    result?;
    let replan = may_replan && outcomes.contains(&Some(Outcome::Changed));
    Ok((stats, replan))
}

/// `dir/name.fos-conflict-20260514-093012-host.ext` for `dir/name.ext`.
pub fn conflict_copy_name(path: &str, host: &str) -> String {
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (format!("{d}/"), n),
        None => (String::new(), path),
    };
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    let stamp: String = crate::log::utc_now()
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .map(|c| if c == 'T' { '-' } else { c })
        .collect();
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{dir}{stem}{}{stamp}-{host}{ext}", plan::CONFLICT_MARK)
}

/// Refuses deletions over `--max-delete` (default 50% of the side's files) and
/// deletions from a source that looks emptied (an empty or missing directory),
/// unless `--max-delete` allows them explicitly.
fn check_deletions(
    opts: &Options,
    plan: &Plan,
    local: &Tree,
    remote: &Tree,
    base: &BTreeMap<String, Base>,
) -> Result<(), Error> {
    let files = |t: &Tree| t.values().filter(|n| n.kind == EntryKind::File).count() as u64;
    for side in [Side::Local, Side::Remote] {
        let doomed = plan::deletions(plan, side);
        if doomed == 0 {
            continue;
        }
        let (here, there) = match side {
            Side::Local => (local, remote),
            Side::Remote => (remote, local),
        };
        let (place, source) = match side {
            Side::Local => ("here", "the remote directory"),
            Side::Remote => ("on the server", "the local directory"),
        };
        let total = files(here);
        let source_empty = there.is_empty()
            && (opts.mode != Mode::TwoWay || base.values().any(|b| b.kind == EntryKind::File));
        if source_empty && !opts.max_delete.is_some_and(|m| m.allows(doomed, total)) {
            return Err(Error::Local(format!(
                "sync: {source} is empty: refusing to delete {doomed} files {place}; nothing was changed (if that is what you want, allow it with --max-delete)"
            )));
        }
        let limit = opts.max_delete.unwrap_or(options::DEFAULT_MAX_DELETE);
        if !limit.allows(doomed, total) {
            return Err(Error::Local(format!(
                "sync: refusing to delete {doomed} of {total} files {place} (over --max-delete {limit}); nothing was changed"
            )));
        }
    }
    Ok(())
}

fn dry_run(plan: &Plan, stats: &mut Stats, sink: &mut dyn FnMut(Event<'_>)) {
    for op in &plan.ops {
        sink(Event::Change(record(op, stats)));
    }
}

/// The change `op` makes, as the user sees it, counted in `stats` (a dry run counts
/// what it would do, an applied op what it did).
fn record<'a>(op: &'a Op, stats: &mut Stats) -> Change<'a> {
    match op {
        Op::Mkdir { path, .. } => Change::NewDir(path),
        Op::Copy {
            to,
            path,
            src,
            expect,
            ..
        } => {
            match to {
                Side::Remote => {
                    stats.sent_files += 1;
                    stats.sent_bytes += src.size;
                }
                Side::Local => {
                    stats.received_files += 1;
                    stats.received_bytes += src.size;
                }
            }
            if *expect == Cond::Absent {
                Change::New(path)
            } else {
                Change::Updated(path)
            }
        }
        Op::Remove {
            path, dir: true, ..
        } => Change::DeletedDir(path),
        Op::Remove { path, .. } => {
            stats.deleted += 1;
            Change::Deleted(path)
        }
        Op::Rename { from, to, .. } => {
            stats.renamed += 1;
            Change::Renamed(from, to)
        }
    }
}

fn entry_of(n: &Node, sha: Option<[u8; 32]>, local: Option<StatKey>, remote_mtime_ns: i64) -> Base {
    Base {
        kind: n.kind,
        size: n.size,
        sha: sha.or(n.sha),
        local,
        remote_mtime_ns,
    }
}

/// The index after a run: what is now the same on both sides. Paths whose
/// operation failed or was skipped keep what the index said before.
fn next_index(
    plan: &Plan,
    outcomes: &[Option<Outcome>],
    local: &Tree,
    remote: &Tree,
    old: &BTreeMap<String, Base>,
) -> BTreeMap<String, Base> {
    let mut out = BTreeMap::new();
    for (p, n) in &plan.same {
        out.insert(p.clone(), entry_of(n, n.sha, n.stat, n.mtime_ns));
    }
    let keep_old = |out: &mut BTreeMap<String, Base>, p: &str| {
        if let Some(b) = old.get(p) {
            out.insert(p.to_string(), b.clone());
        }
    };
    for c in &plan.clashes {
        keep_old(&mut out, &c.path);
    }
    for (op, outcome) in plan.ops.iter().zip(outcomes) {
        let Some(Outcome::Done { sha, stat }) = outcome else {
            match op {
                Op::Rename { from, to, .. } => {
                    keep_old(&mut out, from);
                    keep_old(&mut out, to);
                }
                Op::Mkdir { path, .. } | Op::Copy { path, .. } | Op::Remove { path, .. } => {
                    keep_old(&mut out, path)
                }
            }
            continue;
        };
        match op {
            Op::Mkdir { side, path } => {
                let n = match side {
                    Side::Local => remote.get(path),
                    Side::Remote => local.get(path),
                };
                if let Some(n) = n {
                    out.insert(path.clone(), entry_of(n, None, None, n.mtime_ns));
                }
            }
            Op::Copy { to, path, src, .. } => {
                let local_stat = match to {
                    Side::Remote => stat.or(src.stat),
                    Side::Local => *stat,
                };
                out.insert(path.clone(), entry_of(src, *sha, local_stat, src.mtime_ns));
            }
            Op::Remove { path, .. } => {
                out.remove(path);
            }
            Op::Rename {
                side,
                from,
                to,
                dir,
                ..
            } => {
                let moved = |p: &str| -> String { format!("{from}{}", &p[to.len()..]) };
                let mut paths = vec![to.clone()];
                if *dir {
                    let prefix = format!("{to}/");
                    let src = match side {
                        Side::Remote => local,
                        Side::Local => remote,
                    };
                    paths.extend(
                        src.range(prefix.clone()..)
                            .take_while(|(k, _)| k.starts_with(&prefix))
                            .map(|(k, _)| k.clone()),
                    );
                }
                for p in paths {
                    let old_p = moved(&p);
                    let e = match side {
                        // pushed: the local file is the source, the server's moved
                        Side::Remote => local.get(&p).map(|l| {
                            entry_of(
                                l,
                                remote.get(&old_p).and_then(|r| r.sha),
                                l.stat,
                                remote.get(&old_p).map_or(l.mtime_ns, |r| r.mtime_ns),
                            )
                        }),
                        // pulled: the server's file is the source, the local one moved
                        Side::Local => remote.get(&p).map(|r| {
                            let l = local.get(&old_p);
                            let st = if p == *to && !*dir {
                                *stat
                            } else {
                                l.and_then(|l| l.stat)
                            };
                            entry_of(r, l.and_then(|l| l.sha), st, r.mtime_ns)
                        }),
                    };
                    if let Some(e) = e {
                        out.insert(p, e);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_paths_are_normalised() {
        assert_eq!(absolute("/", "."), "/");
        assert_eq!(absolute("/a", "b/../c"), "/a/c");
        assert_eq!(absolute("/a", "/x"), "/x");
        assert_eq!(absolute("/", "../.."), "/");
    }

    #[test]
    fn conflict_copies_keep_the_extension() {
        let n = conflict_copy_name("d/report.pdf", "srv 1");
        assert!(n.starts_with("d/report.fos-conflict-"), "{n}");
        assert!(n.ends_with("-srv_1.pdf"), "{n}");
        let n = conflict_copy_name("Makefile", "h");
        assert!(
            n.starts_with("Makefile.fos-conflict-") && n.ends_with("-h"),
            "{n}"
        );
        let n = conflict_copy_name(".bashrc", "h");
        assert!(n.starts_with(".bashrc.fos-conflict-"), "{n}");
    }
}

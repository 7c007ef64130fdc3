//! What a sync will do: from the local tree, the remote tree and the index (the last
//! synced state), a list of [`Op`]s, each made conditional on what the plan saw.
//!
//! - **push** makes the remote side a copy of the local one (and with `--delete`
//!   removes what the local side lacks); **pull** the reverse.
//! - **two-way** compares each path on both sides with the index: changed on one side
//!   only, it is copied to the other (a deletion too); changed on both, equal content
//!   is just recorded, different content is a conflict handled by `--conflict`; a
//!   modification wins over a deletion.
//! - **renames**: a file to be removed on one side and one to be created there with
//!   the same size and SHA-256 become one rename; a directory to be removed whose
//!   whole contents match a directory to be created becomes one rename of the
//!   directory.
//!
//! Files are compared by size and modification time, or by SHA-256 with
//! `--checksum` (and always where the two-way comparison needs it); local hashes
//! come from the index while a file's stat is unchanged, and are computed otherwise.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::index::Entry as Base;
use super::options::{Conflict, Mode};
use super::tree::{Node, StatKey, Tree};
use crate::protocol::EntryKind;

/// Which side an operation acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// LOCAL_DIR.
    Local,
    /// The remote directory.
    Remote,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Local => Side::Remote,
            Side::Remote => Side::Local,
        }
    }
}

/// What an operation expects to find at its path on the side it acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// Nothing.
    Absent,
    /// A directory.
    Dir,
    /// A file with this content (remote: SHA-256; local: the stat it was seen with).
    File {
        /// Remote files: the SHA-256.
        sha: Option<[u8; 32]>,
        /// Local files: the stat.
        stat: Option<StatKey>,
    },
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Make a directory on `side`.
    Mkdir {
        /// Where.
        side: Side,
        /// Path.
        path: String,
    },
    /// Copy a file from the other side onto `to`, at `path` (from `from` on the
    /// other side, usually the same path).
    Copy {
        /// Destination side.
        to: Side,
        /// Destination path.
        path: String,
        /// Source path (on the other side).
        from: String,
        /// The source file.
        src: Node,
        /// What the destination must hold.
        expect: Cond,
    },
    /// Remove a file or an (empty) directory on `side`.
    Remove {
        /// Where.
        side: Side,
        /// Path.
        path: String,
        /// A directory (removed only if empty).
        dir: bool,
        /// What it must be.
        expect: Cond,
    },
    /// Rename on `side`.
    Rename {
        /// Where.
        side: Side,
        /// Old path.
        from: String,
        /// New path (must not exist).
        to: String,
        /// A directory.
        dir: bool,
        /// What `from` must be.
        expect: Cond,
    },
}

impl Op {
    /// The side the operation changes.
    pub fn side(&self) -> Side {
        match self {
            Op::Mkdir { side, .. } | Op::Remove { side, .. } | Op::Rename { side, .. } => *side,
            Op::Copy { to, .. } => *to,
        }
    }

    /// The order of execution: make directories, rename, copy to the server, copy
    /// from it, remove files, remove directories (deepest first). Uploads and
    /// downloads never share a phase, so a pipelined batch only ever streams content
    /// one way.
    pub fn phase(&self) -> u8 {
        match self {
            Op::Mkdir { .. } => 1,
            Op::Rename { .. } => 2,
            Op::Copy {
                to: Side::Remote, ..
            } => 3,
            Op::Copy {
                to: Side::Local, ..
            } => 4,
            Op::Remove { dir: false, .. } => 5,
            Op::Remove { dir: true, .. } => 6,
        }
    }
}

/// A conflict: both sides changed a path differently (two-way), or a path is of a
/// different kind on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    /// The path.
    pub path: String,
    /// Why, for the user.
    pub why: String,
}

/// A plan.
#[derive(Debug, Default)]
pub struct Plan {
    /// The operations, in execution order.
    pub ops: Vec<Op>,
    /// Paths the plan leaves as they are because they match.
    pub unchanged: u64,
    /// Paths skipped as conflicts.
    pub clashes: Vec<Clash>,
    /// Paths equal on both sides (unchanged or equal content) with their merged
    /// state, for the index.
    pub same: BTreeMap<String, Node>,
}

/// What the planner needs from the outside: local hashes on demand.
pub trait Hasher {
    /// The SHA-256 of local file `path` if it still has stat `stat`; `None` if it
    /// cannot be read or changed since the walk.
    fn local_sha(&mut self, path: &str, stat: Option<StatKey>) -> Option<[u8; 32]>;
}

/// The planner's inputs.
pub struct Inputs<'a> {
    /// Direction.
    pub mode: Mode,
    /// Local tree (hashes filled from the index where the stat is unchanged).
    pub local: &'a mut Tree,
    /// Remote tree.
    pub remote: &'a Tree,
    /// The last synced state.
    pub base: &'a BTreeMap<String, Base>,
    /// `--delete` (push/pull).
    pub delete: bool,
    /// `--checksum`.
    pub checksum: bool,
    /// `--conflict` (two-way).
    pub conflict: Conflict,
    /// Names the conflict copies (`keep-both`): path → copy path.
    pub conflict_name: &'a dyn Fn(&str) -> String,
}

/// Marks conflict copies: never made a conflict copy of again.
pub const CONFLICT_MARK: &str = ".fos-conflict-";

fn file_cond_remote(n: &Node) -> Cond {
    Cond::File {
        sha: n.sha,
        stat: None,
    }
}

fn file_cond_local(n: &Node) -> Cond {
    Cond::File {
        sha: n.sha,
        stat: n.stat,
    }
}

fn cond_on(side: Side, n: &Node) -> Cond {
    if n.is_dir() {
        return Cond::Dir;
    }
    match side {
        Side::Local => file_cond_local(n),
        Side::Remote => file_cond_remote(n),
    }
}

struct Planner<'a, 'h> {
    i: Inputs<'a>,
    h: &'h mut dyn Hasher,
    plan: Plan,
}

impl Planner<'_, '_> {
    fn local_sha(&mut self, path: &str) -> Option<[u8; 32]> {
        let n = self.i.local.get(path)?;
        if n.sha.is_some() {
            return n.sha;
        }
        let stat = n.stat;
        let sha = self.h.local_sha(path, stat);
        if let Some(n) = self.i.local.get_mut(path) {
            n.sha = sha;
        }
        sha
    }

    fn node(&self, side: Side, path: &str) -> Option<&Node> {
        match side {
            Side::Local => self.i.local.get(path),
            Side::Remote => self.i.remote.get(path),
        }
    }

    /// Whether two files hold the same content: by size and mtime (or by hash with
    /// `--checksum`, or where the quick check fails but both hashes are at hand).
    fn same_file(&mut self, path: &str, l: &Node, r: &Node, by_hash: bool) -> bool {
        if l.size != r.size {
            return false;
        }
        if !by_hash && l.mtime_ns == r.mtime_ns {
            return true;
        }
        match (
            l.sha
                .or_else(|| by_hash.then(|| self.local_sha(path)).flatten()),
            r.sha,
        ) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    fn copy(&mut self, to: Side, path: &str) {
        let Some(src) = self.node(to.other(), path).cloned() else {
            return;
        };
        let expect = match self.node(to, path) {
            None => Cond::Absent,
            Some(n) => cond_on(to, n),
        };
        if src.is_dir() {
            self.plan.ops.push(Op::Mkdir {
                side: to,
                path: path.to_string(),
            });
        } else {
            self.plan.ops.push(Op::Copy {
                to,
                path: path.to_string(),
                from: path.to_string(),
                src,
                expect,
            });
        }
    }

    fn remove(&mut self, side: Side, path: &str) {
        let Some(n) = self.node(side, path) else {
            return;
        };
        let op = Op::Remove {
            side,
            path: path.to_string(),
            dir: n.is_dir(),
            expect: cond_on(side, n),
        };
        self.plan.ops.push(op);
    }

    fn clash(&mut self, path: &str, why: &str) {
        self.plan.clashes.push(Clash {
            path: path.to_string(),
            why: why.to_string(),
        });
    }

    fn same(&mut self, path: &str) {
        let (Some(l), Some(r)) = (self.i.local.get(path), self.i.remote.get(path)) else {
            return;
        };
        let mut n = l.clone();
        n.sha = n.sha.or(r.sha);
        n.mtime_ns = r.mtime_ns; // kept in the index as the remote time
        self.plan.same.insert(path.to_string(), n);
        self.plan.unchanged += 1;
    }

    /// One-way: make `to` a copy of the other side.
    fn one_way(&mut self, to: Side) {
        let from = to.other();
        let paths: BTreeSet<String> = self
            .i
            .local
            .keys()
            .chain(self.i.remote.keys())
            .cloned()
            .collect();
        // a directory whose kind clashes hides everything below it from this run
        let mut blocked: Option<String> = None;
        for p in paths {
            if blocked.as_ref().is_some_and(|b| {
                p.starts_with(b.as_str()) && p.as_bytes().get(b.len()) == Some(&b'/')
            }) {
                continue;
            }
            let (src, dst) = (self.node(from, &p).cloned(), self.node(to, &p).cloned());
            match (src, dst) {
                (Some(_), None) => self.copy(to, &p),
                (None, Some(_)) => {
                    if self.i.delete {
                        self.remove(to, &p);
                    }
                }
                (Some(s), Some(d)) if s.is_dir() && d.is_dir() => {}
                (Some(s), Some(d)) if !s.is_dir() && !d.is_dir() => {
                    let (l, r) = match to {
                        Side::Remote => (s, d),
                        Side::Local => (d, s),
                    };
                    if self.same_file(&p, &l, &r, self.i.checksum) {
                        self.same(&p);
                    } else {
                        self.copy(to, &p);
                    }
                }
                (Some(s), Some(_)) => {
                    self.clash(
                        &p,
                        if s.is_dir() {
                            "a directory here, a file on the other side"
                        } else {
                            "a file here, a directory on the other side"
                        },
                    );
                    blocked = Some(p.clone());
                }
                (None, None) => {}
            }
        }
    }

    /// Whether the local file changed since the last sync.
    fn local_changed(&mut self, path: &str, b: &Base) -> bool {
        let Some(l) = self.i.local.get(path).cloned() else {
            return true;
        };
        if l.is_dir() != (b.kind == EntryKind::Dir) {
            return true;
        }
        if l.is_dir() {
            return false;
        }
        if b.local.is_some() && l.stat == b.local {
            return false;
        }
        if l.size != b.size {
            return true;
        }
        match (self.local_sha(path), b.sha) {
            (Some(a), Some(c)) => a != c,
            _ => true,
        }
    }

    /// Whether the remote file changed since the last sync.
    fn remote_changed(&self, path: &str, b: &Base) -> bool {
        let Some(r) = self.i.remote.get(path) else {
            return true;
        };
        if r.is_dir() != (b.kind == EntryKind::Dir) {
            return true;
        }
        if r.is_dir() {
            return false;
        }
        if r.size != b.size {
            return true;
        }
        match (r.sha, b.sha) {
            (Some(a), Some(c)) => a != c,
            _ => r.mtime_ns != b.remote_mtime_ns,
        }
    }

    fn two_way(&mut self) {
        let paths: BTreeSet<String> = self
            .i
            .local
            .keys()
            .chain(self.i.remote.keys())
            .chain(self.i.base.keys())
            .cloned()
            .collect();
        // directories decided after their contents
        let mut dirs = Vec::new();
        for p in paths {
            let l = self.i.local.get(&p).cloned();
            let r = self.i.remote.get(&p).cloned();
            let b = self.i.base.get(&p).cloned();
            if l.as_ref().is_some_and(Node::is_dir) || r.as_ref().is_some_and(Node::is_dir) {
                dirs.push(p);
                continue;
            }
            match (l, r, b) {
                (None, None, _) => {}
                (Some(_), None, None) => self.copy(Side::Remote, &p),
                (None, Some(_), None) => self.copy(Side::Local, &p),
                (Some(l), Some(r), None) => {
                    if self.same_file(&p, &l, &r, true) {
                        self.same(&p);
                    } else {
                        self.conflict(&p);
                    }
                }
                (Some(_), None, Some(b)) => {
                    if self.local_changed(&p, &b) {
                        self.copy(Side::Remote, &p); // modified here, deleted there
                    } else {
                        self.remove(Side::Local, &p);
                    }
                }
                (None, Some(_), Some(b)) => {
                    if self.remote_changed(&p, &b) {
                        self.copy(Side::Local, &p);
                    } else {
                        self.remove(Side::Remote, &p);
                    }
                }
                (Some(l), Some(r), Some(b)) => {
                    let lc = self.local_changed(&p, &b);
                    let rc = self.remote_changed(&p, &b);
                    match (lc, rc) {
                        (false, false) => self.same(&p),
                        (true, false) => self.copy(Side::Remote, &p),
                        (false, true) => self.copy(Side::Local, &p),
                        (true, true) => {
                            if self.same_file(&p, &l, &r, true) {
                                self.same(&p);
                            } else {
                                self.conflict(&p);
                            }
                        }
                    }
                }
            }
        }
        self.two_way_dirs(dirs);
    }

    fn two_way_dirs(&mut self, dirs: Vec<String>) {
        // what the file decisions will put under each directory, per side
        let mut filled: HashMap<Side, BTreeSet<String>> = HashMap::new();
        for op in &self.plan.ops {
            if let Op::Copy { to, path, .. } = op {
                let mut p = path.as_str();
                while let Some((parent, _)) = p.rsplit_once('/') {
                    filled.entry(*to).or_default().insert(parent.to_string());
                    p = parent;
                }
            }
        }
        for p in dirs {
            let l = self.i.local.get(&p).cloned();
            let r = self.i.remote.get(&p).cloned();
            let was = self
                .i
                .base
                .get(&p)
                .is_some_and(|b| b.kind == EntryKind::Dir);
            match (l, r) {
                (Some(l), Some(r)) if l.is_dir() && r.is_dir() => {
                    self.plan.same.insert(p.clone(), l);
                }
                (Some(l), None) if l.is_dir() => {
                    let needed = filled.get(&Side::Remote).is_some_and(|s| s.contains(&p));
                    if was && !needed {
                        self.remove(Side::Local, &p);
                    } else {
                        self.copy(Side::Remote, &p);
                    }
                }
                (None, Some(r)) if r.is_dir() => {
                    let needed = filled.get(&Side::Local).is_some_and(|s| s.contains(&p));
                    if was && !needed {
                        self.remove(Side::Remote, &p);
                    } else {
                        self.copy(Side::Local, &p);
                    }
                }
                _ => self.clash(&p, "a file on one side, a directory on the other"),
            }
        }
    }

    fn conflict(&mut self, p: &str) {
        let (Some(l), Some(r)) = (self.i.local.get(p).cloned(), self.i.remote.get(p).cloned())
        else {
            return;
        };
        let winner = match self.i.conflict {
            Conflict::Skip => None,
            Conflict::Local => Some(Side::Local),
            Conflict::Remote => Some(Side::Remote),
            Conflict::Newer => Some(if l.mtime_ns >= r.mtime_ns {
                Side::Local
            } else {
                Side::Remote
            }),
            Conflict::KeepBoth => {
                let name = p.rsplit('/').next().unwrap_or(p);
                if name.contains(CONFLICT_MARK) {
                    // never a conflict copy of a conflict copy
                    self.clash(
                        p,
                        "changed on both sides (a conflict copy: resolve it by hand)",
                    );
                    return;
                }
                let copy = (self.i.conflict_name)(p);
                // the remote version moves aside on the server and comes here under
                // that name; the local version takes the name on the server
                self.plan.ops.push(Op::Rename {
                    side: Side::Remote,
                    from: p.to_string(),
                    to: copy.clone(),
                    dir: false,
                    expect: file_cond_remote(&r),
                });
                self.plan.ops.push(Op::Copy {
                    to: Side::Remote,
                    path: p.to_string(),
                    from: p.to_string(),
                    src: l,
                    expect: Cond::Absent,
                });
                self.plan.ops.push(Op::Copy {
                    to: Side::Local,
                    path: copy.clone(),
                    from: copy,
                    src: r,
                    expect: Cond::Absent,
                });
                return;
            }
        };
        match winner {
            None => self.clash(p, "changed on both sides"),
            Some(side) => self.copy(side.other(), p),
        }
    }

    /// Turns removals and creations of equal content on one side into renames.
    fn renames(&mut self) {
        for side in [Side::Local, Side::Remote] {
            self.dir_renames(side);
            self.file_renames(side);
        }
    }

    /// The content under `dir` on `side` as a sorted list (relative path, is-dir,
    /// size, sha); `None` if a hash is missing.
    fn subtree(&mut self, side: Side, dir: &str) -> Option<Vec<Shape>> {
        let prefix = format!("{dir}/");
        let tree = match side {
            Side::Local => &*self.i.local,
            Side::Remote => self.i.remote,
        };
        let paths: Vec<(String, bool, u64)> = tree
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, n)| (k.clone(), n.is_dir(), n.size))
            .collect();
        let mut out = Vec::with_capacity(paths.len());
        for (p, is_dir, size) in paths {
            let sha = if is_dir {
                [0; 32]
            } else {
                match side {
                    Side::Local => self.local_sha(&p)?,
                    Side::Remote => self.i.remote.get(&p)?.sha?,
                }
            };
            out.push((p[prefix.len()..].to_string(), is_dir, size, sha));
        }
        Some(out)
    }

    fn dir_renames(&mut self, side: Side) {
        let removed: Vec<String> = self
            .plan
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Remove {
                    side: s,
                    path,
                    dir: true,
                    ..
                } if *s == side => Some(path.clone()),
                _ => None,
            })
            .collect();
        let created: Vec<String> = self
            .plan
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Mkdir { side: s, path } if *s == side => Some(path.clone()),
                _ => None,
            })
            .collect();
        if removed.is_empty() || created.is_empty() {
            return;
        }
        // cheap shape first: (entries, bytes) under each removed directory
        let shape = |tree: &Tree, dir: &str| -> (usize, u64) {
            let prefix = format!("{dir}/");
            tree.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .fold((0, 0), |(n, b), (_, v)| (n + 1, b + v.size))
        };
        let (src_tree, dst_tree) = match side {
            Side::Remote => (&*self.i.local, self.i.remote),
            Side::Local => (self.i.remote, &*self.i.local),
        };
        let removed_shapes: Vec<(String, (usize, u64))> = removed
            .iter()
            .map(|d| (d.clone(), shape(dst_tree, d)))
            .collect();
        let created_shapes: Vec<(String, (usize, u64))> = created
            .iter()
            .map(|d| (d.clone(), shape(src_tree, d)))
            .collect();
        let mut taken_old: BTreeSet<String> = BTreeSet::new();
        let mut moved: Vec<(String, String)> = Vec::new();
        for (new, nshape) in created_shapes {
            if nshape.0 == 0 || moved.iter().any(|(_, n)| is_under(&new, n)) {
                continue;
            }
            for (old, oshape) in &removed_shapes {
                if *oshape != nshape
                    || taken_old.contains(old)
                    || taken_old.iter().any(|t| is_under(old, t))
                {
                    continue;
                }
                let a = self.subtree(side.other(), &new);
                let b = self.subtree(side, old);
                if a.is_some() && a == b {
                    taken_old.insert(old.clone());
                    moved.push((old.clone(), new.clone()));
                    break;
                }
            }
        }
        for (old, new) in moved {
            self.plan.ops.retain(|op| match op {
                Op::Mkdir { side: s, path } | Op::Copy { to: s, path, .. } => {
                    !(*s == side && (path == &new || is_under(path, &new)))
                }
                Op::Remove { side: s, path, .. } => {
                    !(*s == side && (path == &old || is_under(path, &old)))
                }
                Op::Rename { .. } => true,
            });
            self.plan.ops.push(Op::Rename {
                side,
                from: old,
                to: new,
                dir: true,
                expect: Cond::Dir,
            });
        }
    }

    fn file_renames(&mut self, side: Side) {
        let mut by_content: HashMap<(u64, [u8; 32]), Vec<usize>> = HashMap::new();
        let mut sizes: BTreeSet<u64> = BTreeSet::new();
        let removes: Vec<(usize, String)> = self
            .plan
            .ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                Op::Remove {
                    side: s,
                    path,
                    dir: false,
                    ..
                } if *s == side => Some((i, path.clone())),
                _ => None,
            })
            .collect();
        for (i, path) in removes {
            let sha = match side {
                Side::Remote => self.i.remote.get(&path).and_then(|n| n.sha),
                Side::Local => self.local_sha(&path),
            };
            let size = self.node(side, &path).map_or(0, |n| n.size);
            if let Some(sha) = sha {
                by_content.entry((size, sha)).or_default().push(i);
                sizes.insert(size);
            }
        }
        if by_content.is_empty() {
            return;
        }
        let copies: Vec<(usize, String, u64)> = self
            .plan
            .ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                Op::Copy {
                    to,
                    path,
                    src,
                    expect: Cond::Absent,
                    ..
                } if *to == side => Some((i, path.clone(), src.size)),
                _ => None,
            })
            .collect();
        let mut replace: Vec<(usize, usize)> = Vec::new();
        for (ci, path, size) in copies {
            if !sizes.contains(&size) {
                continue;
            }
            let sha = match side {
                Side::Remote => self.local_sha(&path),
                Side::Local => self.i.remote.get(&path).and_then(|n| n.sha),
            };
            let Some(sha) = sha else { continue };
            if let Some(list) = by_content.get_mut(&(size, sha))
                && let Some(ri) = list.pop()
            {
                replace.push((ri, ci));
            }
        }
        let mut drop_idx = BTreeSet::new();
        let mut renames = Vec::new();
        for (ri, ci) in replace {
            let (
                Op::Remove {
                    path: from, expect, ..
                },
                Op::Copy { path: to, .. },
            ) = (&self.plan.ops[ri], &self.plan.ops[ci])
            else {
                continue;
            };
            renames.push(Op::Rename {
                side,
                from: from.clone(),
                to: to.clone(),
                dir: false,
                expect: expect.clone(),
            });
            drop_idx.insert(ri);
            drop_idx.insert(ci);
        }
        let mut i = 0;
        self.plan.ops.retain(|_| {
            i += 1;
            !drop_idx.contains(&(i - 1))
        });
        self.plan.ops.extend(renames);
    }
}

/// One entry of a directory's contents, for comparing two directories: relative
/// path, whether a directory, size, hash.
type Shape = (String, bool, u64, [u8; 32]);

/// Whether `p` lies strictly below directory `dir`.
pub fn is_under(p: &str, dir: &str) -> bool {
    p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/'
}

/// Makes the plan.
pub fn make(i: Inputs<'_>, h: &mut dyn Hasher) -> Plan {
    let mode = i.mode;
    let mut p = Planner {
        i,
        h,
        plan: Plan::default(),
    };
    match mode {
        Mode::Push => p.one_way(Side::Remote),
        Mode::Pull => p.one_way(Side::Local),
        Mode::TwoWay => p.two_way(),
    }
    p.renames();
    let mut plan = p.plan;
    // stable: within a phase, paths in order (removals of directories deepest first)
    plan.ops.sort_by(|a, b| {
        a.phase().cmp(&b.phase()).then_with(|| match (a, b) {
            (
                Op::Remove {
                    path: x, dir: true, ..
                },
                Op::Remove {
                    path: y, dir: true, ..
                },
            ) => y.cmp(x),
            _ => std::cmp::Ordering::Equal,
        })
    });
    plan
}

/// Files a plan deletes on `side` (renames are not deletions).
pub fn deletions(plan: &Plan, side: Side) -> u64 {
    plan.ops
        .iter()
        .filter(|op| matches!(op, Op::Remove { side: s, dir: false, .. } if *s == side))
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoHash;
    impl Hasher for NoHash {
        fn local_sha(&mut self, _: &str, _: Option<StatKey>) -> Option<[u8; 32]> {
            None
        }
    }

    fn file(size: u64, t: i64, sha: u8) -> Node {
        Node {
            kind: EntryKind::File,
            size,
            mtime_ns: t,
            mode: 0o644,
            sha: Some([sha; 32]),
            stat: Some(StatKey {
                dev: 1,
                ino: sha as u64,
                size,
                mtime_ns: t,
                ctime_ns: t,
            }),
        }
    }

    fn dir() -> Node {
        Node {
            kind: EntryKind::Dir,
            size: 0,
            mtime_ns: 0,
            mode: 0o755,
            sha: None,
            stat: None,
        }
    }

    fn tree(items: &[(&str, Node)]) -> Tree {
        items
            .iter()
            .map(|(p, n)| (p.to_string(), n.clone()))
            .collect()
    }

    fn plan(mode: Mode, local: &[(&str, Node)], remote: &[(&str, Node)], delete: bool) -> Plan {
        let mut l = tree(local);
        let r = tree(remote);
        let base = BTreeMap::new();
        let name = |p: &str| format!("{p}.copy");
        make(
            Inputs {
                mode,
                local: &mut l,
                remote: &r,
                base: &base,
                delete,
                checksum: false,
                conflict: Conflict::Skip,
                conflict_name: &name,
            },
            &mut NoHash,
        )
    }

    #[test]
    fn push_copies_updates_deletes_and_renames() {
        let p = plan(
            Mode::Push,
            &[
                ("a", file(1, 1, 1)),
                ("b", file(2, 2, 2)),
                ("d", dir()),
                ("d/new", file(3, 3, 3)),
            ],
            &[
                ("a", file(1, 1, 1)),
                ("b", file(2, 9, 8)),
                ("old", file(3, 7, 3)),
                ("gone", file(4, 4, 4)),
            ],
            true,
        );
        assert_eq!(p.unchanged, 1);
        let kinds: Vec<String> = p
            .ops
            .iter()
            .map(|o| {
                format!("{o:?}")
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(kinds, ["Mkdir", "Rename", "Copy", "Remove"], "{:#?}", p.ops);
        assert!(matches!(&p.ops[1], Op::Rename { from, to, .. } if from == "old" && to == "d/new"));
        assert!(
            matches!(&p.ops[2], Op::Copy { path, expect: Cond::File { sha: Some(s), .. }, .. } if path == "b" && *s == [8; 32])
        );
        assert!(matches!(&p.ops[3], Op::Remove { path, .. } if path == "gone"));
    }

    #[test]
    fn a_renamed_directory_is_one_rename() {
        let p = plan(
            Mode::Push,
            &[
                ("v", dir()),
                ("v/new", dir()),
                ("v/new/x", file(1, 1, 1)),
                ("v/new/s", dir()),
                ("v/new/s/y", file(2, 2, 2)),
            ],
            &[
                ("v", dir()),
                ("v/old", dir()),
                ("v/old/x", file(1, 1, 1)),
                ("v/old/s", dir()),
                ("v/old/s/y", file(2, 2, 2)),
            ],
            true,
        );
        assert_eq!(
            p.ops,
            vec![Op::Rename {
                side: Side::Remote,
                from: "v/old".into(),
                to: "v/new".into(),
                dir: true,
                expect: Cond::Dir
            }]
        );
    }

    #[test]
    fn without_delete_nothing_is_removed_or_renamed() {
        let p = plan(
            Mode::Pull,
            &[("x", file(1, 1, 1))],
            &[("y", file(1, 1, 1))],
            false,
        );
        assert_eq!(p.ops.len(), 1);
        assert!(matches!(&p.ops[0], Op::Copy { to: Side::Local, path, .. } if path == "y"));
    }
}

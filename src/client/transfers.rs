//! The shell's transfer commands: `get`/`put` (with wildcards and `-r`) and
//! `reget`/`reput`. Network failures are retried with exponential backoff (0.5 s
//! doubling to 8 s, `--retries` tries), reconnecting, logging in again, returning to
//! the remote directory and resuming where the transfer stopped. Ctrl-C cancels the
//! transfer in progress and keeps its partial file for `reget`/`reput`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::local::{self, LocalDir, LocalTarget};
use super::shell::{Progress, Shell};
use super::stream::{Sink, Target, classify};
use super::{ClientConfig, Remote, TransferOpts, TransferReport};
use crate::Error;
use crate::glob::{expand_local, has_wildcards};
use crate::log::escape;
use crate::protocol::{Entry, EntryKind, ErrorCode};

/// First pause before a retry; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Deepest tree `get -r`/`put -r` descends: as deep as the server keeps a tree (one
/// definition, [`crate::sandbox::MAX_DEPTH`]).
const MAX_TREE_DEPTH: usize = crate::sandbox::MAX_DEPTH;
/// Most entries the listings of one `get -r` path (a directory and all its parents)
/// hold at once: the walk keeps each parent's listing while it descends.
const MAX_HELD: usize = super::native::MAX_LIST_ENTRIES;

/// The local name that stands for standard input (`put - NAME`) or output
/// (`get REMOTE -`).
const STDIO: &str = "-";

/// How [`Shell::one_transfer`] runs a transfer.
struct Job<'a> {
    verb: &'a str,
    /// The command that resumes it, if it can be resumed.
    again: Option<String>,
    name: &'a str,
    /// Names it in the summary.
    done: &'a str,
    resume: bool,
    /// Retry network failures.
    retry: bool,
    /// What its errors are about (`get NAME`).
    context: String,
}

impl<'a> Job<'a> {
    /// A file: retried, resumable by `again`, the whole command.
    fn file(verb: &'a str, again: String, name: &'a str, done: &'a str, resume: bool) -> Self {
        Job {
            verb,
            again: Some(again),
            name,
            done,
            resume,
            retry: true,
            context: format!("{verb} {name}"),
        }
    }

    /// A stream: not resumable by hand; retried only if `retry`.
    fn stream(verb: &'a str, name: &'a str, done: &'a str, retry: bool) -> Self {
        Job {
            verb,
            again: None,
            name,
            done,
            resume: false,
            retry,
            context: format!("{verb} {name}"),
        }
    }
}

/// Totals of a recursive transfer.
#[derive(Default)]
struct Totals {
    files: u64,
    bytes: u64,
    /// Entries refused (a name from the server that is not one plain component, or
    /// something other than a directory in the way locally).
    refused: u64,
    /// Files left alone because `-n` found them there already.
    skipped: u64,
}

/// Where the top of a `get -r` tree goes.
enum TreeTop<'a> {
    /// The directory the user named, created if missing.
    Named(&'a Path),
    /// A name (the remote directory's) inside a directory the user named.
    Inside(LocalDir, &'a str),
}

/// Says on stderr why an entry of a `get -r` tree was not downloaded.
fn refuse(totals: &mut Totals, remote_dir: &str, name: &str, why: &str) {
    totals.refused += 1;
    eprintln!(
        "fos: get -r: refused \"{}\" in {}: {why}",
        escape(name),
        escape(remote_dir)
    );
}

/// The directory part of a remote path (`.` for a bare name).
fn parent_of(path: &str) -> String {
    match path.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/".into(),
        Some((dir, _)) => dir.into(),
        None => ".".into(),
    }
}

/// A server's refusal of an upload, naming the remote path (the command names the
/// local one); `-n` says so in the words `get -n` uses.
fn on_the_server(e: Error, remote: &str, no_clobber: bool) -> Error {
    match e {
        Error::Remote(ErrorCode::Exists, _) if no_clobber => Error::Remote(
            ErrorCode::Exists,
            format!("{remote} already exists on the server (-n does not replace it)"),
        ),
        Error::Remote(code, msg) => Error::Remote(code, format!("{remote} on the server: {msg}")),
        other => other,
    }
}

/// The command that resumes a transfer from `from` to `to`: `verb from`, with `to`
/// only when it is not the name the transfer would pick by itself (`default`), each
/// word quoted so the command line reads it back.
fn resume_command(verb: &str, from: &str, to: &str, default: Option<&str>) -> String {
    let q = super::complete::quote;
    if default == Some(to) {
        format!("{verb} {}", q(from))
    } else {
        format!("{verb} {} {}", q(from), q(to))
    }
}

fn base_name(path: &str) -> Option<&str> {
    let b = path.trim_end_matches('/').rsplit('/').next()?;
    (!b.is_empty() && b != "." && b != "..").then_some(b)
}

impl Shell {
    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }

    /// Runs a transfer, retrying network failures with backoff on a fresh connection
    /// (at most `tries` tries; 1: none); every retry resumes. A cancelled download
    /// leaves the connection unusable, so it is dropped and the next command
    /// reconnects.
    fn with_retry<T>(
        &mut self,
        what: &str,
        resume: bool,
        tries: u32,
        mut op: impl FnMut(&mut Remote, &ClientConfig, bool) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut delay = FIRST_BACKOFF;
        let tries = tries.max(1);
        let cfg = self.cfg.clone();
        let mut attempt = 1;
        loop {
            let result = self
                .remote()
                .and_then(|r| op(r, &cfg, resume || attempt > 1));
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if self.interrupted()
                || matches!(&err, Error::Protocol(crate::protocol::Error::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted)
            {
                self.remote = None;
                return Err(Error::Cancelled);
            }
            if matches!(err, Error::Cancelled) {
                return Err(err);
            }
            let in_use = err.is_in_use();
            if !(err.is_network() || in_use) || attempt >= tries || self.login.is_none() {
                return Err(err);
            }
            // an upload still held elsewhere: the connection is fine, only wait
            if !in_use {
                self.remote = None;
            }
            eprintln!(
                "fos: {}: {}; {} in {:.1} s (try {} of {tries}), then resuming",
                escape(what),
                escape(&err.to_string()),
                if in_use {
                    "trying again"
                } else {
                    "reconnecting"
                },
                delay.as_secs_f64(),
                attempt + 1
            );
            // sleep in small steps so Ctrl-C is not kept waiting
            let until = Instant::now() + delay;
            while Instant::now() < until {
                if self.interrupted() {
                    return Err(Error::Cancelled);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            delay = (delay * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    /// Expands a remote wildcard pattern (or passes a plain path through).
    pub(super) fn expand_remote(&mut self, pattern: &str) -> Result<Vec<String>, Error> {
        if !has_wildcards(pattern) {
            return Ok(vec![pattern.to_string()]);
        }
        self.remote()?.glob(pattern)
    }

    /// `get`, `get -r`, `reget`; `get REMOTE -` writes to standard output.
    pub(super) fn get(
        &mut self,
        remote: &str,
        local: Option<&str>,
        no_clobber: bool,
        recursive: bool,
        resume: bool,
    ) -> Result<(), Error> {
        let sources = self.expand_remote(remote).map_err(|e| e.about("get"))?;
        if local == Some(STDIO) {
            if recursive {
                return Err(Error::Usage(
                    "get -r: a tree cannot go to standard output".into(),
                ));
            }
            let [src] = &sources[..] else {
                return Err(Error::Usage(format!(
                    "get: {remote} names several files: standard output takes one"
                )));
            };
            self.get_stream(src, Sink::stdout()?)?;
            return Ok(());
        }
        let many = sources.len() > 1 || has_wildcards(remote);
        if many && local.is_some_and(|l| !Path::new(l).is_dir()) {
            return Err(Error::Usage(format!(
                "get: {remote} names several files: the destination must be a directory"
            )));
        }
        for src in &sources {
            // with wildcards the names come from the server: each must be a plain name
            let base = base_name(src)
                .filter(|b| local::check_name(b).is_ok())
                .ok_or_else(|| {
                    Error::Usage(format!("get: \"{}\" does not name a file", escape(src)))
                })?;
            if recursive {
                let top = match local {
                    None => TreeTop::Inside(LocalDir::open(Path::new("."))?, base),
                    Some(l) if many && Path::new(l).is_dir() => {
                        TreeTop::Inside(LocalDir::open(Path::new(l))?, base)
                    }
                    Some(l) => TreeTop::Named(Path::new(l)),
                };
                self.get_tree(src, top, no_clobber)?;
                continue;
            }
            let target = match local {
                None => PathBuf::from(base),
                Some(l) if Path::new(l).is_dir() => Path::new(l).join(base),
                Some(l) => PathBuf::from(l),
            };
            self.get_one(src, &LocalTarget::open(&target)?, no_clobber, resume)?;
        }
        Ok(())
    }

    fn get_one(
        &mut self,
        remote: &str,
        target: &LocalTarget,
        no_clobber: bool,
        resume: bool,
    ) -> Result<TransferReport, Error> {
        // a FIFO or device (not one -n refuses): written in place
        let path = target.shown();
        let exists = std::fs::symlink_metadata(path).is_ok();
        if !(no_clobber && exists) && classify(path)? == Target::Stream {
            let interrupt = Arc::clone(&self.interrupt);
            let sink = Sink::open(path, &move || interrupt.load(Ordering::SeqCst))?;
            return self.get_stream(remote, sink);
        }
        let done = format!("{remote} -> {}", path.display());
        let again = resume_command(
            "reget",
            remote,
            &path.display().to_string(),
            base_name(remote),
        );
        let job = Job::file("get", again, remote, &done, resume);
        self.one_transfer(job, |r, cfg, opts| {
            r.get_to(cfg, remote, target, TransferOpts { no_clobber, ..opts })
        })
    }

    /// A download into a FIFO, a device or standard output. A retry continues after
    /// what was written (a fos server checks it first).
    fn get_stream(&mut self, remote: &str, mut sink: Sink) -> Result<TransferReport, Error> {
        let done = format!("{remote} -> {}", sink.label());
        let job = Job::stream("get", remote, &done, true);
        self.one_transfer(job, |r, _, opts| r.get_stream(remote, &mut sink, opts))
    }

    /// One file with a progress bar, retries and Ctrl-C; `job.done` names it in the
    /// summary.
    fn one_transfer(
        &mut self,
        job: Job<'_>,
        mut op: impl FnMut(
            &mut Remote,
            &ClientConfig,
            TransferOpts<'_>,
        ) -> Result<TransferReport, Error>,
    ) -> Result<TransferReport, Error> {
        let (verb, name) = (job.verb, job.name);
        let bar = Progress::new(&format!("{verb} {name}"), self.show_progress());
        let interrupt = Arc::clone(&self.interrupt);
        let cancel = move || interrupt.load(Ordering::SeqCst);
        let progress = |done, total| bar.update(done, total);
        let tries = if job.retry { self.opts.retries } else { 1 };
        let preserve = self.preserve;
        let what = format!("{verb} {name}");
        let report = self.with_retry(&what, job.resume, tries, |r, cfg, resume| {
            op(
                r,
                cfg,
                TransferOpts {
                    no_clobber: false,
                    progress: &progress,
                    cancel: &cancel,
                    resume,
                    preserve,
                },
            )
        });
        bar.finish();
        match report {
            Ok(report) => {
                self.say(&format!("{}: {}", job.done, report.summary()));
                Ok(report)
            }
            Err(Error::Cancelled) => Err(Error::Local(match &job.again {
                Some(again) => format!("{verb} {name}: cancelled; `{again}` resumes it"),
                None => format!("{verb} {name}: cancelled"),
            })),
            // what fails between the network and a local file here is the local side
            Err(Error::Io(e)) => Err(Error::Local(format!(
                "{verb} {name}: local file: {}",
                super::local_reason(&e)
            ))),
            Err(e) => Err(e.about(&job.context)),
        }
    }

    fn get_tree(&mut self, remote: &str, top: TreeTop<'_>, no_clobber: bool) -> Result<(), Error> {
        let shown = match &top {
            TreeTop::Named(p) => p.to_path_buf(),
            TreeTop::Inside(dir, name) => dir.shown_child(name),
        };
        let label = format!("get -r {remote} -> {}", shown.display());
        // the top's own time and mode, for after its contents are written (a server
        // that cannot say leaves the local time as the writing left it)
        let attrs = match self.remote()?.has_verb("stat") {
            false => None,
            true => self.remote()?.stat(remote).ok(),
        };
        self.tree(&label, |shell, totals| {
            shell.get_tree_inner(remote, top, attrs.as_ref(), no_clobber, 0, 0, totals)
        })
    }

    /// Runs a recursive transfer with the per-file summaries silenced, then prints one
    /// summary for the whole tree.
    fn tree(
        &mut self,
        label: &str,
        walk: impl FnOnce(&mut Self, &mut Totals) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let mut totals = Totals::default();
        let quiet = std::mem::replace(&mut self.opts.quiet, true);
        let result = walk(self, &mut totals);
        self.opts.quiet = quiet;
        result?;
        let report = TransferReport {
            bytes: totals.bytes,
            size: totals.bytes,
            elapsed: started.elapsed(),
        };
        let skipped = match totals.skipped {
            0 => String::new(),
            n => format!(", {n} skipped (already there; -n does not replace them)"),
        };
        self.say(&format!(
            "{label}: {} files, {}{skipped}",
            totals.files,
            report.summary()
        ));
        if totals.refused > 0 {
            let n = totals.refused;
            let entries = if n == 1 { "entry" } else { "entries" };
            return Err(Error::Local(format!(
                "{label}: {n} {entries} refused (see above)"
            )));
        }
        Ok(())
    }

    /// One level of `get -r`: lists `remote`, then makes its local directory (`top`)
    /// and fills it. Every name from the listing is checked before it is used, and
    /// every level is opened relative to its parent without following symlinks.
    /// `held` counts the entries of the parents' listings, still held.
    #[allow(clippy::too_many_arguments)] // one level of a walk: its place and its tallies
    fn get_tree_inner(
        &mut self,
        remote: &str,
        top: TreeTop<'_>,
        attrs: Option<&Entry>,
        no_clobber: bool,
        depth: usize,
        held: usize,
        totals: &mut Totals,
    ) -> Result<(), Error> {
        if depth > MAX_TREE_DEPTH {
            return Err(Error::Local(format!(
                "get -r: {}: tree deeper than {MAX_TREE_DEPTH}",
                escape(remote)
            )));
        }
        let entries = self.remote()?.ls(Some(remote))?;
        let held = held + entries.len();
        if held > MAX_HELD {
            return Err(Error::Local(format!(
                "get -r: {}: the listings down to here hold more than {MAX_HELD} entries",
                escape(remote)
            )));
        }
        let dir = match top {
            TreeTop::Named(path) => LocalDir::create_all(path)?,
            TreeTop::Inside(parent, name) => match parent.subdir(name) {
                Ok(dir) => dir,
                Err(e) => {
                    let at = parent.shown_child(name);
                    return match local::refusal(&e) {
                        Some(why) => {
                            let why = format!("{why} ({})", escape(&at.display().to_string()));
                            refuse(totals, &parent_of(remote), name, &why);
                            Ok(())
                        }
                        None => Err(Error::Local(format!(
                            "{}: {}",
                            at.display(),
                            super::local_reason(&e)
                        ))),
                    };
                }
            },
        };
        // names that cannot be used are refused now, not held while the walk descends:
        // each level's listing may hold up to 32 MiB of them
        let entries: Vec<_> = entries
            .into_iter()
            .filter(|e| match local::check_name(&e.name) {
                Ok(()) => true,
                Err(why) => {
                    refuse(totals, remote, &e.name, why);
                    false
                }
            })
            .collect();
        for e in entries {
            if self.interrupted() {
                return Err(Error::Cancelled);
            }
            let src = format!("{}/{}", remote.trim_end_matches('/'), e.name);
            match e.kind {
                EntryKind::Dir => {
                    let sub = TreeTop::Inside(dir.clone(), &e.name);
                    let e = Some(&e);
                    self.get_tree_inner(&src, sub, e, no_clobber, depth + 1, held, totals)?;
                }
                EntryKind::File => {
                    let target = dir.target(&e.name)?;
                    if target.is_special() {
                        let why = format!(
                            "{} is a symbolic link or special file here; a download never replaces one",
                            escape(&target.shown().display().to_string())
                        );
                        refuse(totals, remote, &e.name, &why);
                        continue;
                    }
                    // as cp -n and rsync --ignore-existing: skipped and counted
                    if no_clobber && target.exists() {
                        totals.skipped += 1;
                        continue;
                    }
                    let r = self.get_one(&src, &target, no_clobber, false)?;
                    totals.files += 1;
                    totals.bytes += r.bytes;
                }
                // symlinks are not followed on the server; others are not files
                _ => eprintln!(
                    "fos: get -r: skipping {} (not a regular file or directory)",
                    escape(&src)
                ),
            }
        }
        // last, as writing its contents changed it: the server's time (and with -p,
        // its mode)
        if let Some(a) = attrs {
            let mode = a.mode.filter(|_| self.preserve);
            if let Err(e) = dir.set_attrs(Some(a.mtime), mode) {
                eprintln!("fos: get -r: {}", escape(&e.to_string()));
            }
        }
        Ok(())
    }

    /// `put`, `put -r`, `reput`; `put - NAME` reads standard input.
    pub(super) fn put(
        &mut self,
        local: &str,
        remote: Option<&str>,
        no_clobber: bool,
        recursive: bool,
        resume: bool,
    ) -> Result<(), Error> {
        if local == STDIO {
            let Some(remote) = remote.filter(|r| !r.ends_with('/')) else {
                return Err(Error::Usage(
                    "put -: name the remote file (put - NAME)".into(),
                ));
            };
            if recursive {
                return Err(Error::Usage("put -r: standard input is not a tree".into()));
            }
            if self.commands_on_stdin {
                return Err(Error::Usage(
                    "put -: standard input carries the commands here; give them with -c".into(),
                ));
            }
            self.put_stream(None, remote, no_clobber)?;
            return Ok(());
        }
        let sources: Vec<PathBuf> = if Path::new(local).exists() || !has_wildcards(local) {
            vec![PathBuf::from(local)]
        } else {
            let found = expand_local(local).map_err(|e| Error::Local(format!("put: {e}")))?;
            if found.is_empty() {
                return Err(Error::Local(format!("put: no local file matches {local}")));
            }
            found
        };
        let many = sources.len() > 1;
        for src in &sources {
            if !src.exists() {
                return Err(Error::Local(format!(
                    "put: local file {:?} does not exist",
                    src.display().to_string()
                )));
            }
            let base = src
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "put: {:?} does not name a file",
                        src.display().to_string()
                    ))
                })?
                .to_string();
            if recursive {
                let dest = remote.map_or(base.clone(), str::to_string);
                self.put_tree(src, &dest, no_clobber)?;
                continue;
            }
            if src.is_dir() {
                return Err(Error::Local(format!(
                    "put: {} is a directory (use put -r)",
                    src.display()
                )));
            }
            let target = match remote {
                None => base,
                Some(r) if r.ends_with('/') => format!("{r}{base}"),
                Some(r) => match self.remote()?.stat(r) {
                    Ok(e) if e.kind == EntryKind::Dir => {
                        format!("{}/{base}", r.trim_end_matches('/'))
                    }
                    _ if many => {
                        return Err(Error::Usage(format!(
                            "put: {local} names several files: {r} must be a directory"
                        )));
                    }
                    _ => r.to_string(),
                },
            };
            // a pipe, FIFO or device: read to its end, its size learnt at the end
            if std::fs::metadata(src).is_ok_and(|m| !m.is_file()) {
                self.put_stream(Some(src), &target, no_clobber)?;
                continue;
            }
            self.put_one(src, &target, no_clobber, resume)?;
        }
        Ok(())
    }

    /// Uploads a stream of unknown size: `src`, or standard input. Its data is read
    /// once, so a failed stream is not retried (nor resumable).
    fn put_stream(
        &mut self,
        src: Option<&Path>,
        remote: &str,
        no_clobber: bool,
    ) -> Result<TransferReport, Error> {
        let label = src.map_or_else(|| "standard input".into(), |p| p.display().to_string());
        let mut input: Box<dyn std::io::Read> = match src {
            None => Box::new(std::io::stdin().lock()),
            Some(p) => Box::new(std::fs::File::open(p).map_err(|e| {
                Error::Local(format!("{}: {}", p.display(), super::local_reason(&e)))
            })?),
        };
        let done = format!("{label} -> {remote}");
        let job = Job::stream("put", &label, &done, false);
        self.one_transfer(job, |r, _, opts| {
            r.put_stream(&mut input, remote, TransferOpts { no_clobber, ..opts })
                .map_err(|e| on_the_server(e, remote, no_clobber))
        })
    }

    fn put_one(
        &mut self,
        local: &Path,
        remote: &str,
        no_clobber: bool,
        resume: bool,
    ) -> Result<TransferReport, Error> {
        let label = local.display().to_string();
        let done = format!("{label} -> {remote}");
        let own_name = local.file_name().and_then(|n| n.to_str());
        let again = resume_command("reput", &label, remote, own_name);
        let job = Job::file("put", again, &label, &done, resume);
        self.one_transfer(job, |r, _, opts| {
            r.put(local, remote, TransferOpts { no_clobber, ..opts })
                .map_err(|e| on_the_server(e, remote, no_clobber))
        })
    }

    fn put_tree(&mut self, local: &Path, remote: &str, no_clobber: bool) -> Result<(), Error> {
        if !local.is_dir() {
            return Err(Error::Local(format!(
                "put -r: {} is not a directory",
                local.display()
            )));
        }
        let label = format!("put -r {} -> {remote}", local.display());
        self.tree(&label, |shell, totals| {
            shell.put_tree_inner(local, remote, no_clobber, 0, totals)
        })
    }

    fn put_tree_inner(
        &mut self,
        local: &Path,
        remote: &str,
        no_clobber: bool,
        depth: usize,
        totals: &mut Totals,
    ) -> Result<(), Error> {
        if depth > MAX_TREE_DEPTH {
            return Err(Error::Local(format!(
                "put -r: {}: tree deeper than {MAX_TREE_DEPTH}",
                local.display()
            )));
        }
        match self.remote()?.mkdir(remote) {
            Ok(()) | Err(Error::Remote(ErrorCode::Exists, _)) => {}
            Err(e) => return Err(e),
        }
        let mut entries: Vec<_> = std::fs::read_dir(local)
            .map_err(|e| Error::Local(format!("{}: {e}", local.display())))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        let dir_md = std::fs::metadata(local).map_err(|e| {
            Error::Local(format!("{}: {}", local.display(), super::local_reason(&e)))
        })?;
        for e in entries {
            if self.interrupted() {
                return Err(Error::Cancelled);
            }
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                eprintln!(
                    "fos: put -r: skipping {} (name is not UTF-8)",
                    e.path().display()
                );
                continue;
            };
            let dst = format!("{}/{name}", remote.trim_end_matches('/'));
            let ft = e
                .file_type()
                .map_err(|err| Error::Local(format!("{}: {err}", e.path().display())))?;
            if ft.is_dir() {
                self.put_tree_inner(&e.path(), &dst, no_clobber, depth + 1, totals)?;
            } else if ft.is_file() {
                let r = match self.put_one(&e.path(), &dst, no_clobber, false) {
                    // the server refuses before any data is sent: skipped and counted
                    Err(Error::Remote(ErrorCode::Exists, _)) if no_clobber => {
                        totals.skipped += 1;
                        continue;
                    }
                    other => other?,
                };
                totals.files += 1;
                totals.bytes += r.size;
            } else {
                eprintln!(
                    "fos: put -r: skipping {} (not a regular file or directory)",
                    e.path().display()
                );
            }
        }
        // last, as uploading its contents changed it: the local time (and with -p, mode)
        if self.remote()?.has_modes() {
            use std::os::unix::fs::PermissionsExt;
            let mtime = dir_md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64);
            let mode = self.preserve.then(|| dir_md.permissions().mode() & 0o7777);
            self.remote()?
                .set_attrs(remote, mode, mtime)
                .map_err(|e| e.about(&format!("put -r {}", local.display())))?;
        }
        Ok(())
    }
}

//! The `sync` command line: `sync push LOCAL [REMOTE]`, `sync pull REMOTE [LOCAL]`,
//! `sync LOCAL REMOTE`, and their flags. Parsing only; nothing here touches a file.

use crate::Error;

/// Which way a sync goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Make the remote directory a copy of the local one.
    Push,
    /// Make the local directory a copy of the remote one.
    Pull,
    /// Changes on either side since the last sync go to the other.
    TwoWay,
}

/// What two-way sync does with a file changed differently on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Leave both sides alone, list it, exit 1 (the default).
    Skip,
    /// Keep the other side's version beside this one as a conflict copy.
    KeepBoth,
    /// The version with the later modification time wins.
    Newer,
    /// The local version wins.
    Local,
    /// The remote version wins.
    Remote,
}

/// A limit on deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxDelete {
    /// At most this many files.
    Count(u64),
    /// At most this percentage of the destination's files.
    Percent(u32),
}

impl MaxDelete {
    /// Whether deleting `n` of `total` files stays within the limit.
    pub fn allows(self, n: u64, total: u64) -> bool {
        match self {
            MaxDelete::Count(c) => n <= c,
            MaxDelete::Percent(p) => n.saturating_mul(100) <= total.saturating_mul(u64::from(p)),
        }
    }
}

impl std::fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxDelete::Count(c) => write!(f, "{c}"),
            MaxDelete::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// One `--exclude` or `--include`, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `true` for `--include`.
    pub include: bool,
    /// The pattern (see `filter`).
    pub pattern: String,
}

/// A parsed `sync` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Direction.
    pub mode: Mode,
    /// The local directory.
    pub local: String,
    /// The remote directory (relative to the session's directory, or absolute).
    pub remote: String,
    /// `-n`: show what would happen, change nothing.
    pub dry_run: bool,
    /// `--delete`: push and pull also delete what the source lacks.
    pub delete: bool,
    /// `--max-delete`; `None`: the default of 50%.
    pub max_delete: Option<MaxDelete>,
    /// `--checksum`: compare content, not size and modification time.
    pub checksum: bool,
    /// `--conflict`.
    pub conflict: Conflict,
    /// `--exclude`/`--include`, in order.
    pub rules: Vec<Rule>,
    /// `-q`: no progress, no per-change lines, no summary.
    pub quiet: bool,
    /// `--no-fsync`: nothing is flushed to disk before it is acknowledged.
    pub no_fsync: bool,
    /// Where the index lives (not a flag: for library callers). Defaults to the XDG
    /// state directory (`index::state_dir`).
    pub state: Option<std::path::PathBuf>,
}

/// The default deletion limit.
pub const DEFAULT_MAX_DELETE: MaxDelete = MaxDelete::Percent(50);

/// The syntax, for usage errors and `help sync`.
pub const USAGE: &str = "sync push LOCAL_DIR [REMOTE_DIR] | sync pull REMOTE_DIR [LOCAL_DIR] | sync LOCAL_DIR REMOTE_DIR  [-n] [--delete] [--max-delete N|P%] [--checksum] [--conflict skip|keep-both|newer|local|remote] [--exclude PAT] [--include PAT] [-q] [--no-fsync]";

fn usage(msg: &str) -> Error {
    Error::Usage(format!("sync: {msg}\nusage: {USAGE}"))
}

fn parse_max_delete(v: &str) -> Result<MaxDelete, Error> {
    let bad = || {
        usage(&format!(
            "--max-delete {v:?}: expected a count or a percentage"
        ))
    };
    match v.strip_suffix('%') {
        Some(p) => {
            let p: u32 = p.parse().map_err(|_| bad())?;
            if p > 100 {
                return Err(bad());
            }
            Ok(MaxDelete::Percent(p))
        }
        None => Ok(MaxDelete::Count(v.parse().map_err(|_| bad())?)),
    }
}

fn parse_conflict(v: &str) -> Result<Conflict, Error> {
    Ok(match v {
        "skip" => Conflict::Skip,
        "keep-both" => Conflict::KeepBoth,
        "newer" => Conflict::Newer,
        "local" => Conflict::Local,
        "remote" => Conflict::Remote,
        _ => {
            return Err(usage(&format!(
                "--conflict {v:?}: expected skip, keep-both, newer, local or remote"
            )));
        }
    })
}

/// Parses the words after `sync`.
pub fn parse(args: &[String]) -> Result<Options, Error> {
    let mut words = Vec::new();
    let mut o = Options {
        mode: Mode::TwoWay,
        local: String::new(),
        remote: String::new(),
        dry_run: false,
        delete: false,
        max_delete: None,
        checksum: false,
        conflict: Conflict::Skip,
        rules: Vec::new(),
        quiet: false,
        no_fsync: false,
        state: None,
    };
    let mut conflict_given = false;
    let mut it = args.iter();
    let mut only_words = false;
    while let Some(a) = it.next() {
        if only_words || !a.starts_with('-') || a == "-" {
            words.push(a.clone());
            continue;
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |flag: &str| -> Result<String, Error> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| usage(&format!("{flag} needs a value"))),
            }
        };
        match name {
            "--" => only_words = true,
            "--dry-run" => o.dry_run = true,
            "--delete" => o.delete = true,
            "--checksum" => o.checksum = true,
            "--quiet" => o.quiet = true,
            "--no-fsync" => o.no_fsync = true,
            "--max-delete" => o.max_delete = Some(parse_max_delete(&value(name)?)?),
            "--conflict" => {
                o.conflict = parse_conflict(&value(name)?)?;
                conflict_given = true;
            }
            "--exclude" | "--include" => {
                let pattern = value(name)?;
                if pattern.is_empty() {
                    return Err(usage(&format!("{name} needs a pattern")));
                }
                o.rules.push(Rule {
                    include: name == "--include",
                    pattern,
                });
            }
            short if !short.starts_with("--") && inline.is_none() => {
                for c in short[1..].chars() {
                    match c {
                        'n' => o.dry_run = true,
                        'q' => o.quiet = true,
                        _ => return Err(usage(&format!("unknown option -{c}"))),
                    }
                }
            }
            other => return Err(usage(&format!("unknown option {other}"))),
        }
    }
    let word = |i: usize| words.get(i).cloned();
    match words.first().map(String::as_str) {
        Some("push") if (2..=3).contains(&words.len()) => {
            o.mode = Mode::Push;
            o.local = words[1].clone();
            o.remote = word(2).unwrap_or_else(|| ".".into());
        }
        Some("pull") if (2..=3).contains(&words.len()) => {
            o.mode = Mode::Pull;
            o.remote = words[1].clone();
            o.local = word(2).unwrap_or_else(|| ".".into());
        }
        Some("push" | "pull") => return Err(usage("wrong number of directories")),
        Some(_) if words.len() == 2 => {
            o.mode = Mode::TwoWay;
            o.local = words[0].clone();
            o.remote = words[1].clone();
        }
        _ => return Err(usage("expected push, pull, or two directories")),
    }
    if o.local.is_empty() || o.remote.is_empty() {
        return Err(usage("a directory name is empty"));
    }
    if conflict_given && o.mode != Mode::TwoWay {
        return Err(usage("--conflict applies to two-way sync only"));
    }
    if o.delete && o.mode == Mode::TwoWay {
        return Err(usage(
            "--delete applies to push and pull (two-way sync always carries deletions over)",
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Options, Error> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn forms_and_flags() {
        let o = p("push src").unwrap();
        assert_eq!(
            (o.mode, o.local.as_str(), o.remote.as_str()),
            (Mode::Push, "src", ".")
        );
        let o = p("pull /r dst -n --delete --max-delete 10 --checksum -q --no-fsync").unwrap();
        assert_eq!(
            (o.mode, o.local.as_str(), o.remote.as_str()),
            (Mode::Pull, "dst", "/r")
        );
        assert!(o.dry_run && o.delete && o.checksum && o.quiet && o.no_fsync);
        assert_eq!(o.max_delete, Some(MaxDelete::Count(10)));
        let o =
            p("--conflict=keep-both a b --exclude *.o --include keep.o --max-delete=5%").unwrap();
        assert_eq!(o.mode, Mode::TwoWay);
        assert_eq!(o.conflict, Conflict::KeepBoth);
        assert_eq!(o.max_delete, Some(MaxDelete::Percent(5)));
        assert_eq!(
            o.rules,
            vec![
                Rule {
                    include: false,
                    pattern: "*.o".into()
                },
                Rule {
                    include: true,
                    pattern: "keep.o".into()
                },
            ]
        );
        let o = p("push -nq -- -odd -dir").unwrap();
        assert_eq!((o.local.as_str(), o.remote.as_str()), ("-odd", "-dir"));
        assert!(o.dry_run && o.quiet);
    }

    #[test]
    fn bad_command_lines() {
        for bad in [
            "",
            "push",
            "push a b c",
            "a",
            "a b c",
            "push a --max-delete",
            "push a --max-delete 101%",
            "push a --max-delete x",
            "a b --conflict maybe",
            "push a b --conflict local",
            "a b --delete",
            "push a -x",
            "push a --frobnicate",
            "push a --exclude=",
        ] {
            assert!(matches!(p(bad), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn deletion_limits() {
        assert!(MaxDelete::Percent(50).allows(50, 100));
        assert!(!MaxDelete::Percent(50).allows(51, 100));
        assert!(MaxDelete::Percent(0).allows(0, 0));
        assert!(MaxDelete::Count(3).allows(3, 1));
        assert!(!MaxDelete::Count(3).allows(4, 1000));
    }
}

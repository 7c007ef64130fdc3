//! Tab completion at the prompt: command names for the first word (and after `help`),
//! remote paths for the commands that name remote files (listed by the server and
//! cached per directory for the session), local paths for the ones that name local
//! files. The word before the cursor is read the way [`super::line`] parses it, and
//! what is inserted is quoted so that it parses back to the same name.
//!
//! Names from the server are untrusted: a name with a control character, a `/`, or an
//! invisible formatting character (bidirectional overrides, zero-width spaces) is never
//! offered, so nothing the server chose can reach the terminal raw. Wildcard characters
//! in a name are inserted as they are (the parser has no way to quote them).

use std::collections::HashMap;

use super::editor::{Complete, Completion};
use super::shell::Shell;
use crate::protocol::EntryKind;

/// Most names kept from one directory listing.
const MAX_NAMES: usize = 10_000;

/// Most remote directories cached at once (the cache starts afresh beyond).
const MAX_DIRS: usize = 64;

/// One name in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The entry's name (no `/`).
    pub name: String,
    /// A directory (completed with a `/` after it, so completion can go on inside).
    pub dir: bool,
}

/// Where names come from: the server and the local file system.
pub trait Source {
    /// The names in remote directory `dir` (as typed: relative to the remote
    /// directory, or absolute from the root; empty for the remote directory itself).
    fn remote(&mut self, dir: &str) -> Vec<Name>;
    /// The names in local directory `dir` (empty: the current directory).
    fn local(&mut self, dir: &str) -> Vec<Name>;
}

/// The word the cursor is in, as the command-line parser will read it.
#[derive(Debug, PartialEq, Eq)]
pub struct Word {
    /// Byte offset where its text starts (its opening quote, if any).
    pub start: usize,
    /// Its value so far, quotes removed.
    pub value: String,
    /// The words of the same command before it.
    pub before: Vec<String>,
}

/// The word that ends at byte `cursor` of `line`; `None` inside a comment or when
/// `cursor` is not a character boundary.
pub fn word_at(line: &str, cursor: usize) -> Option<Word> {
    let text = line.get(..cursor)?;
    let mut before = Vec::new();
    let mut word: Option<(usize, String)> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let w = &mut word.get_or_insert((i, String::new())).1;
                // an unclosed quote is still open at the cursor: the word goes on
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&(_, q @ ('"' | '\\'))) => {
                                w.push(q);
                                chars.next();
                            }
                            _ => w.push('\\'),
                        },
                        c => w.push(c),
                    }
                }
            }
            '\'' => {
                let w = &mut word.get_or_insert((i, String::new())).1;
                for (_, c) in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '\\' => {
                let w = &mut word.get_or_insert((i, String::new())).1;
                if let Some((_, c)) = chars.next() {
                    w.push(c);
                }
            }
            '#' if word.is_none() => return None,
            ';' | '\n' => {
                word = None;
                before.clear();
            }
            c if c.is_whitespace() => {
                if let Some((_, w)) = word.take() {
                    before.push(w);
                }
            }
            c => word.get_or_insert((i, String::new())).1.push(c),
        }
    }
    let (start, value) = word.unwrap_or((cursor, String::new()));
    Some(Word {
        start,
        value,
        before,
    })
}

/// `s` written so that [`super::line::parse`] reads it back as one word, `s`: as it is
/// when nothing in it is special, else in single quotes, else (it has a `'`) in double
/// quotes with `\"` and `\\`.
pub fn quote(s: &str) -> String {
    let special = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ';' | '\\' | '$');
    if !s.is_empty() && !s.starts_with('#') && !s.chars().any(special) {
        return s.to_string();
    }
    if !s.contains('\'') {
        return format!("'{s}'");
    }
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether a name may be offered: something the terminal shows as it is.
fn offerable(name: &str) -> bool {
    let invisible = |c: char| {
        matches!(c as u32,
            0x061C | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF)
    };
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 1024
        && !name.contains('/')
        && !name.chars().any(|c| c.is_control() || invisible(c))
}

/// What an operand of a command names (a column of the shell's table of commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CompletionKind {
    /// A command name.
    Command,
    /// A remote path (`dirs_only`: a directory).
    Remote { dirs_only: bool },
    /// A local path (`dirs_only`: a directory).
    Local { dirs_only: bool },
    /// Nothing that can be completed.
    Nothing,
}

/// What argument `n` (flags not counted) of `cmd` names.
fn kind(cmd: &str, n: usize) -> Option<CompletionKind> {
    super::shell::operand_kind(cmd, n)
}

/// The completion of the word ending at byte `cursor` of `line`.
pub fn complete(
    line: &str,
    cursor: usize,
    commands: &[&str],
    src: &mut dyn Source,
) -> Option<Completion> {
    let word = word_at(line, cursor)?;
    let mut flags_allowed = false;
    let kind = match word.before.split_first() {
        None => CompletionKind::Command,
        Some((cmd, args)) => {
            let mut flags = true;
            let mut n = 0;
            for a in args {
                if flags && a == "--" {
                    flags = false;
                } else if !(flags && a.len() > 1 && a.starts_with('-')) {
                    flags = false;
                    n += 1;
                }
            }
            if flags && word.value.starts_with('-') {
                return None;
            }
            flags_allowed = flags;
            kind(cmd, n)?
        }
    };
    // (completed text, name shown in a listing, whether more can follow)
    let mut found: Vec<(String, String, bool)> = match kind {
        CompletionKind::Nothing => return None,
        CompletionKind::Command => commands
            .iter()
            .filter(|c| c.starts_with(word.value.as_str()))
            .map(|c| (c.to_string(), c.to_string(), false))
            .collect(),
        CompletionKind::Remote { dirs_only } | CompletionKind::Local { dirs_only } => {
            let (dir, prefix) = match word.value.rfind('/') {
                Some(i) => word.value.split_at(i + 1),
                None => ("", word.value.as_str()),
            };
            let names = match kind {
                CompletionKind::Remote { .. } => src.remote(dir),
                _ => src.local(dir),
            };
            names
                .into_iter()
                .filter(|n| offerable(&n.name) && n.name.starts_with(prefix))
                .filter(|n| prefix.starts_with('.') || !n.name.starts_with('.'))
                .filter(|n| n.dir || !dirs_only)
                .map(|n| {
                    let slash = if n.dir { "/" } else { "" };
                    // where an option may still come, `-r` would be read as one
                    let here = if dir.is_empty() && flags_allowed && n.name.starts_with('-') {
                        "./"
                    } else {
                        dir
                    };
                    (
                        format!("{here}{}{slash}", n.name),
                        format!("{}{slash}", n.name),
                        n.dir,
                    )
                })
                .collect()
        }
    };
    found.sort();
    found.dedup();
    let completion = match found.as_slice() {
        [] => return None,
        [(text, _, more)] => Completion {
            start: word.start,
            insert: Some(if *more {
                quote(text)
            } else {
                format!("{} ", quote(text))
            }),
            choices: Vec::new(),
        },
        many => {
            let common = common_prefix(many.iter().map(|(t, _, _)| t.as_str()));
            Completion {
                start: word.start,
                insert: (common.len() > word.value.len()).then(|| quote(common)),
                choices: many.iter().map(|(_, shown, _)| shown.clone()).collect(),
            }
        }
    };
    Some(completion)
}

/// The longest start every string shares (whole characters).
fn common_prefix<'a>(mut all: impl Iterator<Item = &'a str>) -> &'a str {
    let Some(first) = all.next() else {
        return "";
    };
    let mut len = first.len();
    for s in all {
        len = first[..len]
            .char_indices()
            .zip(s.chars())
            .find(|((_, a), b)| a != b)
            .map_or(len.min(s.len()), |((i, _), _)| i);
    }
    &first[..len]
}

/// Remote directory listings already asked for this session, by directory.
#[derive(Debug, Default)]
pub struct Cache {
    dirs: HashMap<String, Vec<Name>>,
}

impl Cache {
    /// Forgets every listing (after a command that may have changed the server's side).
    pub fn clear(&mut self) {
        self.dirs.clear();
    }

    /// The listing of `key`, asking `list` only the first time (a failed listing is
    /// not kept: the next Tab asks again).
    pub fn get(&mut self, key: String, list: impl FnOnce() -> Option<Vec<Name>>) -> Vec<Name> {
        if let Some(names) = self.dirs.get(&key) {
            return names.clone();
        }
        let Some(mut names) = list() else {
            return Vec::new();
        };
        names.retain(|n| offerable(&n.name));
        names.truncate(MAX_NAMES);
        if self.dirs.len() >= MAX_DIRS {
            self.dirs.clear();
        }
        self.dirs.insert(key, names.clone());
        names
    }
}

/// Completion at the shell's prompt: names from its server and the local disk.
pub struct ShellCompleter<'a> {
    /// The shell, for its session and remote directory.
    pub shell: &'a mut Shell,
    /// The session's cache of remote listings.
    pub cache: &'a mut Cache,
}

impl Source for ShellCompleter<'_> {
    fn remote(&mut self, dir: &str) -> Vec<Name> {
        let key = if dir.starts_with('/') {
            dir.to_string()
        } else {
            format!("{}/{dir}", self.shell.cwd.trim_end_matches('/'))
        };
        let shell = &mut *self.shell;
        self.cache.get(key, || {
            let path = match dir.trim_end_matches('/') {
                "" if dir.is_empty() => None,
                "" => Some("/"),
                d => Some(d),
            };
            let listed = shell.remote().and_then(|r| r.ls(path));
            if let Err(crate::Error::Protocol(_)) = &listed {
                // as after any command: a broken connection is not used again
                shell.remote = None;
            }
            let entries = listed.ok()?;
            Some(
                entries
                    .into_iter()
                    .map(|e| Name {
                        dir: e.kind == EntryKind::Dir,
                        name: e.name,
                    })
                    .collect(),
            )
        })
    }

    fn local(&mut self, dir: &str) -> Vec<Name> {
        let path = if dir.is_empty() { "." } else { dir };
        let Ok(entries) = std::fs::read_dir(path) else {
            return Vec::new();
        };
        entries
            .flatten()
            .take(MAX_NAMES)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                // follows symlinks: a link to a directory completes as one
                let dir = std::fs::metadata(e.path()).is_ok_and(|m| m.is_dir());
                Some(Name { name, dir })
            })
            .collect()
    }
}

impl Complete for ShellCompleter<'_> {
    fn complete(&mut self, line: &str, cursor: usize) -> Option<Completion> {
        let commands: Vec<&str> = super::shell::command_names().collect();
        complete(line, cursor, &commands, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::line::parse;

    #[test]
    fn quoting_parses_back_to_the_same_word() {
        for s in [
            "plain.txt",
            "my file.txt",
            "it's here",
            "both ' and \"",
            "back\\slash \"q\"",
            "lone\\slash",
            "dollar$'x'",
            "$HOME",
            "#hash",
            "a#b",
            "semi;colon",
            "tab\there",
            "",
            "ünï code",
            "dir with space/",
            "nbsp\u{a0}here",
        ] {
            let q = quote(s);
            assert_eq!(
                parse(&format!("get {q}")).unwrap(),
                vec![vec!["get", s]],
                "{s:?} -> {q}"
            );
        }
        assert_eq!(quote("plain.txt"), "plain.txt");
        assert_eq!(quote("my file"), "'my file'");
        assert_eq!(quote("it's"), "\"it's\"");
    }

    #[test]
    fn the_word_under_the_cursor_as_the_parser_reads_it() {
        let w = word_at("get 'my fi", 10).unwrap();
        assert_eq!((w.start, w.value.as_str()), (4, "my fi"));
        assert_eq!(w.before, ["get"]);
        let w = word_at(r#"ls; put -r "a \"b" 'c d'x"#, 25).unwrap();
        assert_eq!((w.start, w.value.as_str()), (19, "c dx"));
        assert_eq!(w.before, ["put", "-r", "a \"b"]);
        let w = word_at(r"get my\ fi", 10).unwrap();
        assert_eq!((w.start, w.value.as_str()), (4, "my fi"));
        let w = word_at("cd ", 3).unwrap();
        assert_eq!((w.start, w.value.as_str()), (3, ""));
        assert_eq!(word_at("ls # comm", 9), None);
        assert_eq!(word_at("é", 1), None, "not a character boundary");
    }

    /// A fixed remote and local tree, counting the remote listings asked for.
    #[derive(Default)]
    struct Tree {
        asked: Vec<String>,
        cache: Cache,
        /// The remote directory holds just a file named `-r`.
        dash_only: bool,
    }

    fn names(list: &[(&str, bool)]) -> Vec<Name> {
        list.iter()
            .map(|&(n, dir)| Name {
                name: n.to_string(),
                dir,
            })
            .collect()
    }

    impl Source for Tree {
        fn remote(&mut self, dir: &str) -> Vec<Name> {
            let asked = &mut self.asked;
            let dash_only = self.dash_only;
            self.cache.get(dir.to_string(), || {
                asked.push(dir.to_string());
                Some(match dir {
                    "" if dash_only => names(&[("-r", false)]),
                    "" => names(&[
                        ("some directory", true),
                        ("songs", true),
                        ("report.pdf", false),
                        (".hidden", false),
                        ("evil\u{1b}[31mred", false),
                        ("bidi\u{202e}fdp.exe", false),
                        ("evident", false),
                    ]),
                    "some directory/" => names(&[("inner file.txt", false), ("it's", false)]),
                    _ => return None,
                })
            })
        }
        fn local(&mut self, dir: &str) -> Vec<Name> {
            match dir {
                "" => names(&[
                    ("local file.txt", false),
                    ("lib", true),
                    ("Makefile", false),
                ]),
                _ => Vec::new(),
            }
        }
    }

    const COMMANDS: &[&str] = &[
        "cd", "get", "help", "lcd", "lls", "ls", "mkdir", "put", "pwd",
    ];

    fn run(line: &str, tree: &mut Tree) -> Option<Completion> {
        complete(line, line.len(), COMMANDS, tree)
    }

    fn inserted(line: &str, tree: &mut Tree) -> Option<String> {
        run(line, tree).and_then(|c| c.insert)
    }

    #[test]
    fn command_names() {
        let mut t = Tree::default();
        assert_eq!(inserted("mk", &mut t).as_deref(), Some("mkdir "));
        assert_eq!(inserted("help pw", &mut t).as_deref(), Some("pwd "));
        let c = run("l", &mut t).unwrap();
        assert_eq!(c.insert, None, "lcd, lls, ls share only `l`");
        assert_eq!(c.choices, ["lcd", "lls", "ls"]);
        assert_eq!(inserted("ls; pu", &mut t).as_deref(), Some("put "));
        assert!(run("frobnicate x", &mut t).is_none());
    }

    #[test]
    fn remote_paths_are_quoted_and_go_on_into_directories() {
        let mut t = Tree::default();
        assert_eq!(inserted("cd so", &mut t), None);
        assert_eq!(
            run("cd so", &mut t).unwrap().choices,
            ["some directory/", "songs/"]
        );
        assert_eq!(
            inserted("cd som", &mut t).as_deref(),
            Some("'some directory/'")
        );
        let line = "get 'some directory/'in";
        let c = run(line, &mut t).unwrap();
        assert_eq!(c.start, 4);
        assert_eq!(
            c.insert.as_deref(),
            Some("'some directory/inner file.txt' ")
        );
        assert_eq!(
            inserted("get 'some directory/it", &mut t).as_deref(),
            Some("\"some directory/it's\" ")
        );
        assert_eq!(
            inserted("get -n rep", &mut t).as_deref(),
            Some("report.pdf ")
        );
        assert_eq!(
            inserted("put x rep", &mut t).as_deref(),
            Some("report.pdf "),
            "put's destination"
        );
        // cd offers directories only; dot files only when asked for
        assert!(run("cd rep", &mut t).is_none());
        assert!(run("get .", &mut t).unwrap().insert.as_deref() == Some(".hidden "));
        assert!(run("get -", &mut t).is_none(), "flags are not completed");
        // each directory was listed once
        assert_eq!(t.asked, ["", "some directory/"]);
        t.cache.clear();
        run("cd so", &mut t);
        assert_eq!(t.asked.len(), 3, "a cleared cache asks again");
    }

    #[test]
    fn a_name_that_looks_like_an_option_is_not_read_as_one() {
        let mut t = Tree {
            dash_only: true,
            ..Tree::default()
        };
        assert_eq!(inserted("rm ", &mut t).as_deref(), Some("./-r "));
        assert_eq!(inserted("rm -- ", &mut t).as_deref(), Some("-r "));
        assert_eq!(
            inserted("mv a ", &mut t).as_deref(),
            Some("-r "),
            "no option after an argument"
        );
    }

    #[test]
    fn hostile_remote_names_are_never_offered() {
        let mut t = Tree::default();
        let c = run("get ev", &mut t).unwrap();
        assert_eq!(c.insert.as_deref(), Some("evident "));
        assert!(run("get bidi", &mut t).is_none());
        let all = run("ls ", &mut t).unwrap();
        for name in &all.choices {
            assert!(
                !name.chars().any(|c| c.is_control() || c == '\u{202e}'),
                "{name:?}"
            );
        }
    }

    #[test]
    fn local_paths_for_the_commands_that_take_them() {
        let mut t = Tree::default();
        assert_eq!(
            inserted("put loc", &mut t).as_deref(),
            Some("'local file.txt' ")
        );
        assert_eq!(
            inserted("lcd l", &mut t).as_deref(),
            Some("lib/"),
            "lcd: directories"
        );
        assert_eq!(
            inserted("get report.pdf M", &mut t).as_deref(),
            Some("Makefile ")
        );
        assert!(t.asked.is_empty(), "the server was not asked");
    }

    #[test]
    fn cache_keeps_listings_and_filters_them() {
        let mut cache = Cache::default();
        let mut calls = 0;
        for _ in 0..3 {
            let got = cache.get("/d".into(), || {
                calls += 1;
                Some(names(&[
                    ("ok", false),
                    ("bad\nname", false),
                    ("a/b", false),
                ]))
            });
            assert_eq!(got, names(&[("ok", false)]));
        }
        assert_eq!(calls, 1);
        let failed = cache.get("/gone".into(), || None);
        assert!(failed.is_empty());
        let again = cache.get("/gone".into(), || Some(names(&[("x", false)])));
        assert_eq!(again.len(), 1, "a failed listing is asked again");
    }

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix(["abc", "abd", "ab"].into_iter()), "ab");
        assert_eq!(common_prefix(["日本a", "日本b"].into_iter()), "日本");
        assert_eq!(common_prefix(["x"].into_iter()), "x");
    }
}

//! The command interpreter behind the `fos>` prompt, `-c` and scripts on standard
//! input: parses words ([`super::line`]), runs one command at a time against a
//! [`Remote`], prints results on stdout and errors on stderr (in colour only on a
//! terminal and never with `NO_COLOR`), and maps failures to exit codes.

use std::fs;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) use super::progress::Progress;
use super::progress::Screen;
use super::{ClientConfig, Remote};
use crate::Error;
use crate::error::exit;
use crate::log::{escape, escape_text};
use crate::protocol::{Entry, EntryKind};

/// One command's syntax and explanation, for `help`.
struct Help {
    name: &'static str,
    syntax: &'static str,
    about: &'static str,
}

const HELP: &[Help] = &[
    Help {
        name: "reget",
        syntax: "reget remote [local]",
        about: "Resume an interrupted download (the server checks the part already here); downloads the whole file if there is nothing to resume.",
    },
    Help {
        name: "reput",
        syntax: "reput local [remote]",
        about: "Resume an interrupted upload of the same file (same size and time); uploads the whole file if there is nothing to resume.",
    },
    Help {
        name: "ls",
        syntax: "ls [-l] [path]",
        about: "List a remote directory (or name a file). -l: type, size, modification time (UTC), name; directories first.",
    },
    Help {
        name: "cat",
        syntax: "cat path",
        about: "Show the first 1024 bytes of a remote file (binary files are only described).",
    },
    Help {
        name: "get",
        syntax: "get [-n] [-r] remote [local]",
        about: "Download a file; by default into the local current directory under its remote name. Wildcards (* ? [...]) expand on the server. -n: never replace a local file. -r: a whole directory (symlinks are not followed). `get remote -` writes to standard output; a FIFO or device (/dev/null, a terminal) is written in place, its SHA-256 checked at the end. A local symlink is never replaced.",
    },
    Help {
        name: "put",
        syntax: "put [-n] [-r] local [remote]",
        about: "Upload a file; by default into the remote current directory under its local name. Wildcards (* ? [...]) expand locally. -n: never replace a remote file. -r: a whole directory. `put - NAME` uploads standard input (with -c); a pipe or FIFO is read to its end (such uploads cannot be resumed).",
    },
    Help {
        name: "rm",
        syntax: "rm [-r] [-f] path",
        about: "Remove a remote file (wildcards expand on the server). -r: a directory and everything in it (asks first on a terminal; -f does not). Symlinks are removed, never followed.",
    },
    Help {
        name: "mkdir",
        syntax: "mkdir path",
        about: "Make a remote directory.",
    },
    Help {
        name: "rmdir",
        syntax: "rmdir path",
        about: "Remove an empty remote directory.",
    },
    Help {
        name: "cd",
        syntax: "cd [path]",
        about: "Change the remote directory; without a path, to your root. `/` is your root; `..` never leaves it.",
    },
    Help {
        name: "pwd",
        syntax: "pwd",
        about: "Show the remote directory (relative to your root).",
    },
    Help {
        name: "mv",
        syntax: "mv old new",
        about: "Rename or move within your root (atomic; into `new` if it is a directory; never replaces a directory).",
    },
    Help {
        name: "stat",
        syntax: "stat path",
        about: "Show type, size and modification time of a remote path.",
    },
    Help {
        name: "lcd",
        syntax: "lcd [dir]",
        about: "Change the local directory (default: your home).",
    },
    Help {
        name: "lls",
        syntax: "lls [-l] [dir]",
        about: "List a local directory.",
    },
    Help {
        name: "lpwd",
        syntax: "lpwd",
        about: "Show the local directory.",
    },
    Help {
        name: "passwd",
        syntax: "passwd",
        about: "Change your password (asks for the old one and the new one twice).",
    },
    Help {
        name: "help",
        syntax: "help [command]",
        about: "List the commands, or explain one.",
    },
    Help {
        name: "exit",
        syntax: "exit",
        about: "Leave (also: quit, bye, Ctrl-D).",
    },
];

/// The command names (with the aliases of `exit`), for completion.
pub(super) fn command_names() -> impl Iterator<Item = &'static str> {
    HELP.iter().map(|h| h.name).chain(["quit", "bye"])
}

/// What the interpreter does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Leave.
    Exit,
}

/// Settings of the interpreter itself.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// No progress bars or transfer summaries.
    pub quiet: bool,
    /// Keep going after a failed command (`-k`), exiting with the first failure's code.
    pub keep_going: bool,
    /// Tries for a transfer whose connection fails (reconnecting in between). Defaults to 6.
    pub retries: u32,
}

impl Default for ShellOptions {
    fn default() -> Self {
        ShellOptions {
            quiet: false,
            keep_going: false,
            retries: 6,
        }
    }
}

/// What the shell needs to log in again after a connection failure.
#[derive(Debug, Clone)]
pub struct Login {
    /// `host[:port]`, or several separated by commas (a cluster: a reconnect goes to
    /// another of them).
    pub server: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

/// The interpreter.
pub struct Shell {
    pub(super) remote: Option<Remote>,
    pub(super) login: Option<Login>,
    /// Which server of the login's list the session is (or was last) with.
    member: usize,
    /// The remote directory, kept to return to it after a reconnect.
    pub(super) cwd: String,
    pub(super) cfg: ClientConfig,
    pub(super) opts: ShellOptions,
    color: bool,
    /// Set by Ctrl-C; transfers poll it.
    pub interrupt: Arc<AtomicBool>,
    /// The prompt while the shell waits at it (the signal thread redraws it after Ctrl-C).
    pub prompt: Arc<std::sync::Mutex<Option<String>>>,
    /// Commands come from standard input (a script, the prompt): `put -` cannot read it.
    pub(super) commands_on_stdin: bool,
    /// Shared by the progress bars and the signal thread (resizes, Ctrl-C during a bar).
    pub screen: Screen,
}

impl Shell {
    /// Wraps a logged-in session.
    pub fn new(remote: Remote, cfg: ClientConfig, opts: ShellOptions) -> Shell {
        let color = io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Shell {
            remote: Some(remote),
            login: None,
            member: 0,
            cwd: "/".into(),
            cfg,
            opts,
            color,
            interrupt: Arc::new(AtomicBool::new(false)),
            prompt: Arc::new(std::sync::Mutex::new(None)),
            commands_on_stdin: false,
            screen: Screen::default(),
        }
    }

    /// Lets the shell log in again when a connection fails (transfers retry; other
    /// commands reconnect on their next use).
    pub fn with_login(mut self, login: Login) -> Shell {
        self.login = Some(login);
        self
    }

    /// Says which server of the login's list ([`Login::server`]) the session is with,
    /// so that a reconnect after a failure tries the next one first.
    pub fn with_member(mut self, member: usize) -> Shell {
        self.member = member;
        self
    }

    /// Shares a Ctrl-C flag set elsewhere (the client's signal thread).
    pub fn with_interrupt(mut self, flag: Arc<AtomicBool>) -> Shell {
        self.interrupt = flag;
        self
    }

    /// The session, reconnecting (and returning to the remote directory) if the last
    /// connection failed.
    pub(super) fn remote(&mut self) -> Result<&mut Remote, Error> {
        if self.remote.is_none() {
            let login = self
                .login
                .clone()
                .ok_or_else(|| Error::Connect("not connected".into()))?;
            // several servers (a cluster): the one after the last used goes first, as
            // that one failed (or the session was dropped), and the others follow
            let servers = super::server_list(&login.server)?;
            let first = (self.member + 1) % servers.len();
            let (mut r, at) =
                Remote::connect_from(&self.cfg, &servers, first, &login.user, &login.password)?;
            self.member = at;
            if self.cwd != "/" {
                r.cd(Some(&self.cwd))?;
            }
            self.remote = Some(r);
        }
        self.remote
            .as_mut()
            .ok_or_else(|| Error::Connect("not connected".into()))
    }

    /// Prints an error on stderr (red on a terminal), escaped: it may hold the
    /// server's text.
    pub fn report_error(&self, err: &Error) {
        let msg = format!("fos: {}", escape(&err.to_string()));
        if self.color {
            eprintln!("\x1b[31m{msg}\x1b[0m");
        } else {
            eprintln!("{msg}");
        }
    }

    /// Runs command text (`-c` or a script): stops at the first failure unless
    /// `keep_going`; returns the exit code.
    pub fn run_text(&mut self, text: &str) -> i32 {
        let commands = match super::line::parse(text) {
            Ok(c) => c,
            Err(e) => {
                self.report_error(&e);
                return e.exit_code();
            }
        };
        let mut first_failure = exit::OK;
        for words in commands {
            match self.run(&words) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Exit) => break,
                Err(e) => {
                    self.report_error(&e);
                    if first_failure == exit::OK {
                        first_failure = e.exit_code();
                    }
                    if !self.opts.keep_going || (self.remote.is_none() && self.login.is_none()) {
                        return e.exit_code();
                    }
                }
            }
        }
        first_failure
    }

    /// Reads commands from `input` one line at a time (scripts on standard input),
    /// with the same stop-at-first-failure rule as [`Shell::run_text`].
    pub fn run_script(&mut self, input: impl BufRead) -> i32 {
        self.commands_on_stdin = true;
        let mut first_failure = exit::OK;
        for (n, line) in input.lines().enumerate() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    self.report_error(&Error::Io(e));
                    return exit::FAILED;
                }
            };
            let commands = match super::line::parse(&line) {
                Ok(c) => c,
                Err(e) => {
                    self.report_error(&Error::Usage(format!("line {}: {e}", n + 1)));
                    return exit::USAGE;
                }
            };
            for words in commands {
                match self.run(&words) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Exit) => return first_failure,
                    Err(e) => {
                        self.report_error(&Error::Usage(format!("line {}: {e}", n + 1)));
                        if first_failure == exit::OK {
                            first_failure = e.exit_code();
                        }
                        if !self.opts.keep_going || (self.remote.is_none() && self.login.is_none())
                        {
                            return e.exit_code();
                        }
                    }
                }
            }
        }
        first_failure
    }

    /// The interactive prompt: reads lines until `exit` or end of input; a failed
    /// command is reported and the prompt carries on. With a capable terminal the line
    /// editor reads them ([`super::prompt`]), else plain lines are read.
    pub fn interactive(&mut self) -> i32 {
        self.commands_on_stdin = true;
        if super::editor::usable() {
            return self.interactive_edited();
        }
        let stdin = io::stdin();
        let mut line = String::new();
        loop {
            let prompt = self.prompt_text();
            print!("{prompt}");
            let _ = io::stdout().flush();
            line.clear();
            *self.prompt.lock().unwrap_or_else(|p| p.into_inner()) = Some(prompt);
            let read = stdin.lock().read_line(&mut line);
            *self.prompt.lock().unwrap_or_else(|p| p.into_inner()) = None;
            match read {
                Ok(0) => {
                    println!();
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.report_error(&Error::Io(e));
                    return exit::FAILED;
                }
            }
            self.interrupt.store(false, Ordering::SeqCst);
            if let Some(code) = self.run_line(&line) {
                return code;
            }
        }
        exit::OK
    }

    /// `fos:/dir> `, the remote directory escaped (it comes from the server).
    pub(super) fn prompt_text(&mut self) -> String {
        match self.remote().and_then(|r| r.pwd()) {
            Ok(p) => format!("fos:{}> ", crate::log::escape(&p)),
            Err(_) => "fos> ".to_string(),
        }
    }

    /// Runs one line typed at the prompt, reporting failures; `Some(code)` when the
    /// shell is to leave with that code.
    pub(super) fn run_line(&mut self, line: &str) -> Option<i32> {
        let commands = match super::line::parse(line) {
            Ok(c) => c,
            Err(e) => {
                self.report_error(&e);
                return None;
            }
        };
        for words in commands {
            match self.run(&words) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Exit) => return Some(exit::OK),
                Err(e) => {
                    self.report_error(&e);
                    if self.remote.is_none() && self.login.is_none() {
                        return Some(e.exit_code());
                    }
                }
            }
        }
        None
    }

    /// Leaves politely.
    pub fn close(mut self) {
        if let Some(r) = self.remote.take() {
            r.close();
        }
    }

    /// Runs one command.
    pub fn run(&mut self, words: &[String]) -> Result<Flow, Error> {
        let Some((cmd, args)) = words.split_first() else {
            return Ok(Flow::Continue);
        };
        // a Ctrl-C that cancelled the previous command does not cancel this one
        self.interrupt.store(false, Ordering::SeqCst);
        let result = self.dispatch(cmd, args);
        // a broken connection ends the session: no later command can succeed on it
        if let Err(Error::Protocol(_)) = &result {
            self.remote = None;
        }
        result
    }

    fn dispatch(&mut self, cmd: &str, args: &[String]) -> Result<Flow, Error> {
        let (flags, args) = split_flags(args);
        let has = |f: char| flags.contains(&f);
        let allow = |allowed: &str| -> Result<(), Error> {
            match flags.iter().find(|f| !allowed.contains(**f)) {
                Some(f) => Err(Error::Usage(format!(
                    "{cmd}: unknown option -{f} (see `help {cmd}`)"
                ))),
                None => Ok(()),
            }
        };
        let arity = |min: usize, max: usize| -> Result<(), Error> {
            if args.len() < min || args.len() > max {
                let syntax = HELP
                    .iter()
                    .find(|h| h.name == cmd)
                    .map_or(cmd, |h| h.syntax);
                return Err(Error::Usage(format!("usage: {syntax}")));
            }
            Ok(())
        };
        let arg = |i: usize| args.get(i).map(String::as_str);
        match cmd {
            "exit" | "quit" | "bye" => return Ok(Flow::Exit),
            "help" | "?" => {
                arity(0, 1)?;
                self.help(arg(0))?;
            }
            "pwd" => {
                arity(0, 0)?;
                let p = self.remote()?.pwd()?;
                println!("{}", escape(&p));
            }
            "cd" => {
                arity(0, 1)?;
                self.cwd = self.remote()?.cd(arg(0))?;
            }
            "ls" => {
                allow("l")?;
                arity(0, 1)?;
                let entries = self.remote()?.ls(arg(0))?;
                print_entries(entries, has('l'));
            }
            "stat" => {
                arity(1, 1)?;
                let e = self.remote()?.stat(&args[0])?;
                println!(
                    "{}",
                    long_line(&Entry {
                        name: args[0].clone(),
                        ..e
                    })
                );
            }
            "cat" => {
                arity(1, 1)?;
                let head = self.remote()?.cat(&args[0])?;
                print_cat(&head);
            }
            "mkdir" => {
                arity(1, 1)?;
                self.remote()?.mkdir(&args[0])?;
            }
            "rmdir" => {
                arity(1, 1)?;
                self.remote()?.rmdir(&args[0])?;
            }
            "rm" => {
                allow("rf")?;
                arity(1, 1)?;
                let targets = self.expand_remote(&args[0])?;
                let ask = (has('r') && !has('f'))
                    .then(crate::term::Terminal::stdin)
                    .flatten();
                if let Some(t) = ask
                    && !t.confirm(&format!(
                        "remove {} and everything in it?",
                        escape(&targets.join(", "))
                    ))?
                {
                    return Err(Error::Local("rm: not confirmed".into()));
                }
                for t in &targets {
                    self.remote()?.rm(t, has('r'))?;
                }
            }
            "mv" => {
                arity(2, 2)?;
                self.remote()?.mv(&args[0], &args[1])?;
            }
            "get" | "reget" => {
                allow("nr")?;
                arity(1, 2)?;
                self.get(&args[0], arg(1), has('n'), has('r'), cmd == "reget")?;
            }
            "put" | "reput" => {
                allow("nr")?;
                arity(1, 2)?;
                self.put(&args[0], arg(1), has('n'), has('r'), cmd == "reput")?;
            }
            "lpwd" => {
                arity(0, 0)?;
                println!("{}", std::env::current_dir()?.display());
            }
            "lcd" => {
                arity(0, 1)?;
                let dir = match arg(0) {
                    Some(d) => PathBuf::from(d),
                    None => std::env::var_os("HOME")
                        .map(PathBuf::from)
                        .ok_or_else(|| Error::Local("lcd: HOME is not set".into()))?,
                };
                std::env::set_current_dir(&dir).map_err(|e| {
                    Error::Local(format!(
                        "lcd {}: {}",
                        dir.display(),
                        super::local_reason(&e)
                    ))
                })?;
            }
            "lls" => {
                allow("l")?;
                arity(0, 1)?;
                print_entries(local_list(Path::new(arg(0).unwrap_or(".")))?, has('l'));
            }
            "passwd" => {
                arity(0, 0)?;
                let old = crate::term::read_secret("current password: ")?;
                let new = crate::term::read_secret("new password: ")?;
                if crate::term::read_secret("new password again: ")? != new {
                    return Err(Error::Local(
                        "passwd: the new passwords differ; nothing changed".into(),
                    ));
                }
                self.remote()?.passwd(&old, &new)?;
                println!("password changed");
            }
            other => {
                return Err(Error::Usage(format!(
                    "unknown command {other:?} (type `help` for the list)"
                )));
            }
        }
        Ok(Flow::Continue)
    }

    fn help(&self, cmd: Option<&str>) -> Result<(), Error> {
        match cmd {
            None => {
                println!("commands:");
                for h in HELP {
                    println!(
                        "  {:26} {}",
                        h.syntax,
                        h.about.split(". ").next().unwrap_or("")
                    );
                }
                println!(
                    "quote names with spaces: put \"my file.txt\"; separate commands with ';'"
                );
            }
            Some(name) => {
                let h = HELP
                    .iter()
                    .find(|h| h.name == name)
                    .ok_or_else(|| Error::Usage(format!("help: no command {name:?}")))?;
                println!("{}\n  {}", h.syntax, h.about);
            }
        }
        Ok(())
    }

    /// Where progress bars go: `None` when none are shown (`-q`, or stderr is not a
    /// terminal).
    pub(super) fn show_progress(&self) -> Option<Screen> {
        (!self.opts.quiet && io::stderr().is_terminal()).then(|| self.screen.clone())
    }

    /// Transfer summaries: on stdout, unless quiet; escaped, as they name remote files.
    pub(super) fn say(&self, msg: &str) {
        if !self.opts.quiet {
            println!("{}", escape(msg));
        }
    }
}

/// Splits leading `-x` options (bundled like `-rf`) from the arguments; `--` ends them.
fn split_flags(args: &[String]) -> (Vec<char>, &[String]) {
    let mut flags = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        match a.strip_prefix('-') {
            Some(f) if !f.is_empty() && f.chars().all(|c| c.is_ascii_alphabetic()) => {
                flags.extend(f.chars())
            }
            _ => break,
        }
        i += 1;
    }
    (flags, &args[i..])
}

/// `d         4096 2026-11-24T12:00:00Z name`: directories first, then by name.
fn print_entries(mut entries: Vec<Entry>, long: bool) {
    if long {
        entries.sort_by(|a, b| {
            (a.kind != EntryKind::Dir, &a.name).cmp(&(b.kind != EntryKind::Dir, &b.name))
        });
        let mut out = io::stdout().lock();
        for e in &entries {
            let _ = writeln!(out, "{}", long_line(e));
        }
    } else {
        let mut out = io::stdout().lock();
        for e in &entries {
            let _ = writeln!(out, "{}", crate::log::escape(&e.name));
        }
    }
}

fn long_line(e: &Entry) -> String {
    format!(
        "{} {:>12} {}Z {}",
        e.kind.letter(),
        e.size,
        crate::log::utc_seconds(e.mtime),
        crate::log::escape(&e.name)
    )
}

/// The head of a remote file: byte for byte into a pipe or file, with control
/// characters escaped on a terminal (newlines and tabs kept).
fn print_cat(head: &[u8]) {
    let binary =
        head.contains(&0) || std::str::from_utf8(head).is_err_and(|e| e.error_len().is_some());
    if binary {
        println!("(binary file; use get to download it)");
        return;
    }
    let mut out = io::stdout().lock();
    if out.is_terminal() {
        let _ = out.write_all(escape_text(&String::from_utf8_lossy(head)).as_bytes());
    } else {
        let _ = out.write_all(head);
    }
    if !head.ends_with(b"\n") {
        let _ = out.write_all(b"\n");
    }
}

fn local_list(dir: &Path) -> Result<Vec<Entry>, Error> {
    let md = fs::symlink_metadata(dir).map_err(|e| {
        Error::Local(format!(
            "lls {}: {}",
            dir.display(),
            super::local_reason(&e)
        ))
    })?;
    let one = |name: String, md: &fs::Metadata| {
        let kind = if md.is_dir() {
            EntryKind::Dir
        } else if md.is_file() {
            EntryKind::File
        } else if md.file_type().is_symlink() {
            EntryKind::Link
        } else {
            EntryKind::Other
        };
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        Entry {
            name,
            kind,
            size: md.len(),
            mtime,
        }
    };
    if !md.is_dir() {
        return Ok(vec![one(dir.display().to_string(), &md)]);
    }
    let mut out = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        if let Ok(md) = e.path().symlink_metadata() {
            out.push(one(e.file_name().to_string_lossy().into_owned(), &md));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let args: Vec<String> = ["-rf", "dir"].iter().map(|s| s.to_string()).collect();
        let (f, rest) = split_flags(&args);
        assert_eq!(f, vec!['r', 'f']);
        assert_eq!(rest, &args[1..]);
        let args: Vec<String> = ["--", "-x"].iter().map(|s| s.to_string()).collect();
        let (f, rest) = split_flags(&args);
        assert!(f.is_empty());
        assert_eq!(rest, &args[1..]);
    }

    #[test]
    fn every_command_has_help() {
        for name in [
            "ls", "cat", "get", "put", "rm", "mkdir", "rmdir", "cd", "pwd", "help", "exit", "mv",
            "stat", "lcd", "lls", "lpwd", "passwd",
        ] {
            assert!(HELP.iter().any(|h| h.name == name), "{name}");
        }
    }

    #[test]
    fn long_format() {
        let e = Entry {
            name: "a b".into(),
            kind: EntryKind::Dir,
            size: 4096,
            mtime: 0,
        };
        assert_eq!(long_line(&e), "d         4096 1970-01-01T00:00:00Z a b");
    }
}

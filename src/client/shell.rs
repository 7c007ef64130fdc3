//! The command interpreter behind the `fos>` prompt, `-c` and scripts on standard
//! input: parses words ([`super::line`]), runs one command at a time against a
//! [`Remote`], prints results on stdout and errors on stderr (in colour only on a
//! terminal and never with `NO_COLOR`), and maps failures to exit codes. The loop
//! that feeds it lines (`-c`, a script, the prompt) is `command_loop`'s.

use std::fs;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::complete::CompletionKind;
pub(super) use super::progress::Progress;
use super::progress::Screen;
use super::{ClientConfig, Remote};
use crate::Error;
use crate::log::{escape, escape_text};
use crate::protocol::{Entry, EntryKind, ErrorCode};

/// One command of the shell: everything `dispatch` checks before it runs the command
/// (its options, how many operands), what `help` says of it, what completion offers
/// for its operands and the wire verbs it needs ([`crate::protocol::verbs::VERBS`]).
/// A new command is a row here, an arm of `dispatch` and a [`Remote`] method.
struct Row {
    name: &'static str,
    /// Other names of the same command (`quit` for `exit`).
    aliases: &'static [&'static str],
    /// How `help` writes it; its `[-x]` words are [`Row::flags`].
    syntax: &'static str,
    /// The one-letter options it takes.
    flags: &'static str,
    /// How many operands it takes after its options, at least and at most; `None`:
    /// it reads its words itself (`sync`'s long options, `!`'s command line).
    arity: Option<(usize, usize)>,
    /// The requests of the native protocol it sends.
    // the tests tie the table to the protocol's with it; nothing else needs it yet
    #[cfg_attr(not(test), allow(dead_code))]
    wire: &'static [&'static str],
    /// What each operand names, for completion; the last goes on for any further one.
    operands: &'static [CompletionKind],
    /// Whether it may change what the server lists (the listings cached for
    /// completion are then forgotten).
    changes: bool,
    /// What it does: the first sentence for the list, all of it for `help CMD`.
    about: &'static str,
}

/// As many operands as are given.
const ANY: usize = usize::MAX;

const REMOTE: CompletionKind = CompletionKind::Remote { dirs_only: false };
const REMOTE_DIR: CompletionKind = CompletionKind::Remote { dirs_only: true };
const LOCAL: CompletionKind = CompletionKind::Local { dirs_only: false };
const LOCAL_DIR: CompletionKind = CompletionKind::Local { dirs_only: true };
const COMMAND: CompletionKind = CompletionKind::Command;
const NOTHING: CompletionKind = CompletionKind::Nothing;

/// A command that leaves what the server lists as it was.
const fn row(
    name: &'static str,
    syntax: &'static str,
    flags: &'static str,
    arity: Option<(usize, usize)>,
    wire: &'static [&'static str],
    operands: &'static [CompletionKind],
    about: &'static str,
) -> Row {
    Row {
        name,
        aliases: &[],
        syntax,
        flags,
        arity,
        wire,
        operands,
        changes: false,
        about,
    }
}

/// `row`, of a command that may change what the server lists.
const fn changing(row: Row) -> Row {
    Row {
        changes: true,
        ..row
    }
}

/// The commands in the order `help` lists them: looking around, transfers, changes on
/// the server, the local side, the session.
// one row a line, so that the table reads as one
#[rustfmt::skip]
const COMMANDS: &[Row] = &[
    row("ls", "ls [-l] [-h] [path]", "lh", Some((0, 1)), &["ls"], &[REMOTE], "List a remote directory (or name a file). -l: type, size, modification time (UTC), name; directories first. -h: sizes in KiB, MiB, ... (and implies -l). On a terminal the names are shown in columns, else one per line; a name with control characters is shown as $'...', which reads back as the same name when pasted into a command."),
    row("cd", "cd [path]", "", Some((0, 1)), &["cd"], &[REMOTE_DIR, NOTHING], "Change the remote directory. Without a path, to your root. `/` is your root; `..` never leaves it."),
    row("pwd", "pwd", "", Some((0, 0)), &["pwd"], &[], "Show the remote directory. It is relative to your root."),
    row("stat", "stat path", "", Some((1, 1)), &["stat"], &[REMOTE], "Show a remote path's type, size and time. The time is the modification time, in UTC."),
    row("cat", "cat path", "", Some((1, 1)), &["cat"], &[REMOTE], "Show the first 1024 bytes of a remote file. Binary files are only described."),
    row("get", "get [-n] [-p] [-r] remote [local]", "npr", Some((1, 2)), &["get", "glob", "stat", "ls"], &[REMOTE, LOCAL, NOTHING], "Download a file. By default it goes into the local current directory under its remote name. Wildcards (* ? [...]) expand on the server. -n: never replace a local file. -p: keep the permission bits exactly (else, as cp does, without what your umask clears and never wider than a file replaced). -r: a whole directory (symlinks are not followed), directory times kept. `get remote -` writes to standard output; a FIFO or device (/dev/null, a terminal) is written in place, its SHA-256 checked at the end. A local symlink is never replaced."),
    changing(row("put", "put [-n] [-p] [-r] local [remote]", "npr", Some((1, 2)), &["put", "stat", "mkdir", "setattr"], &[LOCAL, REMOTE, NOTHING], "Upload a file. By default it goes into the remote current directory under its local name. Wildcards (* ? [...]) expand locally. -n: never replace a remote file. -p: keep the permission bits exactly (else without what the server's umask clears, never wider than a file replaced; the server never gives group or others write). -r: a whole directory, directory times kept. `put - NAME` uploads standard input (with -c); a pipe or FIFO is read to its end (such uploads cannot be resumed).")),
    row("reget", "reget [-p] remote [local]", "p", Some((1, 2)), &["get", "glob", "stat"], &[REMOTE, LOCAL, NOTHING], "Resume an interrupted download. The server checks the part already here; with nothing to resume, the whole file is downloaded."),
    changing(row("reput", "reput [-p] local [remote]", "p", Some((1, 2)), &["put", "stat"], &[LOCAL, REMOTE, NOTHING], "Resume an interrupted upload. Only of the same file (same size and time); with nothing to resume, the whole file is uploaded.")),
    changing(row("mkdir", "mkdir [-p] path", "p", Some((1, 1)), &["mkdir", "stat"], &[REMOTE_DIR, NOTHING], "Make a remote directory. -p: its missing parents too, and no error if it exists.")),
    changing(row("mv", "mv old new", "", Some((2, 2)), &["mv"], &[REMOTE], "Rename or move within your root. Atomic; into `new` if it is a directory; never replaces a directory.")),
    changing(row("chmod", "chmod mode path", "", Some((2, 2)), &["glob", "stat", "setattr"], &[NOTHING, REMOTE, NOTHING], "Change the permission bits of a remote file or directory. The mode is octal (644, 0755) or symbolic (u+x, go-w, a=r, +x; clauses joined by commas). The server never gives group or others write, nor setuid, setgid or sticky, and the owner keeps read (and rwx on directories). Wildcards expand on the server.")),
    changing(row("rm", "rm [-r] [-f] path", "rf", Some((1, 1)), &["rm", "glob", "stat"], &[REMOTE], "Remove a remote file. Wildcards expand on the server. -r: a directory and everything in it (asks first on a terminal; -f does not). -f: a path that does not exist is no error. Symlinks are removed, never followed.")),
    changing(row("rmdir", "rmdir path", "", Some((1, 1)), &["rmdir"], &[REMOTE_DIR, NOTHING], "Remove an empty remote directory.")),
    row("df", "df [-h]", "h", Some((0, 0)), &["df"], &[], "Show your usage and quota on the server. In KiB, MiB, ...; uploads in progress count at their full size, as the quota counts them. -h changes nothing (sftp has it)."),
    changing(row("passwd", "passwd", "", Some((0, 0)), &["passwd"], &[], "Change your password. It asks for the old one and the new one twice.")),
    row("lcd", "lcd [dir]", "", Some((0, 1)), &[], &[LOCAL_DIR, NOTHING], "Change the local directory (default: your home)."),
    row("lls", "lls [-l] [-h] [dir]", "lh", Some((0, 1)), &[], &[LOCAL, NOTHING], "List a local directory. The options are those of ls."),
    row("lpwd", "lpwd", "", Some((0, 0)), &[], &[], "Show the local directory."),
    row("!", "!command", "", None, &[], &[], "Run a command in the local shell. The rest of the line is the command (`;` included); `!` alone starts an interactive shell, and leaving it comes back here."),
    changing(row("sync", "sync push|pull|LOCAL REMOTE", "", None, &["manifest"], &[], "Synchronise directories, moving only what changed. `sync push LOCAL_DIR [REMOTE_DIR]` makes the remote directory a copy of the local one, `sync pull REMOTE_DIR [LOCAL_DIR]` the reverse, `sync LOCAL_DIR REMOTE_DIR` carries changes made on either side since the last sync to the other. Flags: -n/--dry-run, --delete (push/pull: also delete what the source lacks), --max-delete N|P% (default 50%), --checksum, --conflict skip|keep-both|newer|local|remote, --exclude PAT, --include PAT (repeatable), -q, --no-fsync. Lines: + new, > updated, - deleted, R renamed, ! conflict; then a summary.")),
    Row { aliases: &["?"], ..row("help", "help [command]", "", Some((0, 1)), &[], &[COMMAND, NOTHING], "List the commands, or explain one.") },
    Row { aliases: &["quit", "bye"], ..row("exit", "exit", "", Some((0, ANY)), &[], &[], "Leave (also: quit, bye, Ctrl-D).") },
];

/// The requests a user reaches through no row of [`COMMANDS`]: the session's own,
/// and the conditional requests `sync` applies its plan with.
#[cfg(test)]
const INTERNAL: &[&str] = &[
    "login", "discover", "bye", "cput", "crm", "cmv", "cmkdir", "crmdir", "cflush", "blocks",
    "cpatch", "fetch",
];

/// The command names (with the aliases that are words: `quit`, `bye`), for completion.
pub(super) fn command_names() -> impl Iterator<Item = &'static str> {
    let names = COMMANDS.iter().map(|c| c.name);
    let words = COMMANDS
        .iter()
        .flat_map(|c| c.aliases.iter().copied())
        .filter(|a| a.chars().all(|c| c.is_ascii_alphabetic()));
    names.chain(words)
}

/// What operand `n` (options not counted) of the command `name` names, for completion.
pub(super) fn operand_kind(name: &str, n: usize) -> Option<CompletionKind> {
    let operands = command(name)?.operands;
    match operands.get(n).or(operands.last())? {
        CompletionKind::Nothing => None,
        kind => Some(*kind),
    }
}

/// Whether the command `name` may change what the server lists (an unknown one may).
pub(super) fn changes_remote(name: &str) -> bool {
    command(name).is_none_or(|c| c.changes)
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
    /// `-p` of the transfer command running: permission bits kept exactly.
    pub(super) preserve: bool,
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
            preserve: false,
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

    /// `fos:/dir> `, the remote directory escaped (it comes from the server).
    pub(super) fn prompt_text(&mut self) -> String {
        match self.remote().and_then(|r| r.pwd()) {
            Ok(p) => format!("fos:{}> ", crate::log::escape(&p)),
            Err(_) => "fos> ".to_string(),
        }
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
        let Some(row) = command(cmd) else {
            return Err(Error::Usage(format!(
                "unknown command {cmd:?} (type `help` for the list)"
            )));
        };
        match row.name {
            // long options of its own: parsed by the sync module
            "sync" => return self.sync(args).map(|()| Flow::Continue),
            "!" => {
                self.local_shell(args.first().map_or("", String::as_str))?;
                return Ok(Flow::Continue);
            }
            _ => {}
        }
        let (flags, args) = options(row, cmd, args)?;
        let has = |f: char| flags.contains(&f);
        let arg = |i: usize| args.get(i).map(String::as_str);
        // what an error of this command is about: the command and its operands
        let about = |path: &str| format!("{cmd} {path}");
        match row.name {
            "exit" => return Ok(Flow::Exit),
            "help" => {
                self.help(arg(0))?;
            }
            "pwd" => {
                let p = self.remote()?.pwd().map_err(|e| e.about(cmd))?;
                println!("{}", escape(&p));
            }
            "cd" => {
                self.cwd = self
                    .remote()?
                    .cd(arg(0))
                    .map_err(|e| e.about(&about(arg(0).unwrap_or("/"))))?;
            }
            "ls" => {
                let entries = self
                    .remote()?
                    .ls(arg(0))
                    .map_err(|e| e.about(&about(arg(0).unwrap_or("."))))?;
                print_entries(entries, Listing::of(has('l'), has('h')));
            }
            "stat" => {
                let e = self
                    .remote()?
                    .stat(&args[0])
                    .map_err(|e| e.about(&about(&args[0])))?;
                println!(
                    "{}",
                    long_line(
                        &Entry {
                            name: args[0].clone(),
                            ..e
                        },
                        false
                    )
                );
            }
            "cat" => {
                let (head, size) = self
                    .remote()?
                    .cat_sized(&args[0])
                    .map_err(|e| e.about(&about(&args[0])))?;
                print_cat(&head, size, &args[0]);
            }
            "mkdir" => {
                let made = match has('p') {
                    true => self.mkdir_parents(&args[0]),
                    false => self.remote()?.mkdir(&args[0]),
                };
                made.map_err(|e| e.about(&about(&args[0])))?;
            }
            "rmdir" => {
                self.remote()?
                    .rmdir(&args[0])
                    .map_err(|e| e.about(&about(&args[0])))?;
            }
            "rm" => {
                self.rm(&args[0], has('r'), has('f'))?;
            }
            "mv" => {
                self.remote()?
                    .mv(&args[0], &args[1])
                    .map_err(|e| e.about(&format!("mv {} {}", args[0], args[1])))?;
            }
            "get" | "reget" => {
                self.preserve = has('p');
                let done = self.get(&args[0], arg(1), has('n'), has('r'), cmd == "reget");
                self.preserve = false;
                done?;
            }
            "put" | "reput" => {
                self.preserve = has('p');
                let done = self.put(&args[0], arg(1), has('n'), has('r'), cmd == "reput");
                self.preserve = false;
                done?;
            }
            "chmod" => {
                self.chmod(&args[0], &args[1])?;
            }
            "lpwd" => {
                let dir = std::env::current_dir().map_err(|e| Error::Io(e).about("lpwd"))?;
                println!("{}", dir.display());
            }
            "lcd" => {
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
                let dir = arg(0).unwrap_or(".");
                let entries = local_list(Path::new(dir)).map_err(|e| e.about(&about(dir)))?;
                print_entries(entries, Listing::of(has('l'), has('h')));
            }
            "df" => {
                let usage = self.remote()?.df().map_err(|e| e.about(cmd))?;
                print!("{}", df_table(&usage));
            }
            "passwd" => {
                let old = crate::term::read_secret("current password: ")?;
                let new = crate::term::read_secret("new password: ")?;
                if crate::term::read_secret("new password again: ")? != new {
                    return Err(Error::Local(
                        "passwd: the new passwords differ; nothing changed".into(),
                    ));
                }
                self.remote()?
                    .passwd(&old, &new)
                    .map_err(|e| e.about(cmd))?;
                println!("password changed");
            }
            other => unreachable!("the row {other:?} has no arm"),
        }
        Ok(Flow::Continue)
    }

    /// `!command`: runs `command` with `sh -c`, or with nothing, an interactive
    /// `$SHELL`. It gets this terminal; when the commands themselves come from standard
    /// input (a script), it gets no standard input, so it cannot eat the script.
    fn local_shell(&mut self, command: &str) -> Result<(), Error> {
        use std::process::{Command, Stdio};
        let mut child = if command.is_empty() {
            Command::new(std::env::var_os("SHELL").unwrap_or_else(|| "/bin/sh".into()))
        } else {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(command);
            c
        };
        if self.commands_on_stdin && !io::stdin().is_terminal() {
            child.stdin(Stdio::null());
        }
        let _ = io::stdout().flush();
        let status = child
            .status()
            .map_err(|e| Error::Local(format!("!{command}: {}", super::local_reason(&e))))?;
        match status.code() {
            Some(0) => Ok(()),
            Some(n) => Err(Error::Local(format!("!{command}: exit status {n}"))),
            None => Err(Error::Local(format!("!{command}: ended by a signal"))),
        }
    }

    /// `chmod MODE PATH`: the new bits for each path the pattern names; a symbolic
    /// mode is applied to each path's current bits.
    fn chmod(&mut self, spec: &str, pattern: &str) -> Result<(), Error> {
        let bad = || {
            Error::Usage(format!(
                "chmod: {spec:?} is not a mode (644, 0755, u+x, go-w, a=r)"
            ))
        };
        if chmod_mode(spec, 0).is_none() {
            return Err(bad());
        }
        let targets = self.expand_remote(pattern).map_err(|e| e.about("chmod"))?;
        let octal = spec.bytes().all(|b| b.is_ascii_digit());
        for t in &targets {
            let about = format!("chmod {spec} {t}");
            let current = match octal {
                true => 0,
                false => self
                    .remote()?
                    .stat(t)
                    .map_err(|e| e.about(&about))?
                    .mode
                    .ok_or_else(|| {
                        Error::Remote(
                            ErrorCode::Unsupported,
                            format!("{about}: this server keeps no permission bits"),
                        )
                    })?,
            };
            let mode = chmod_mode(spec, current).ok_or_else(bad)?;
            self.remote()?
                .set_attrs(t, Some(mode), None)
                .map_err(|e| e.about(&about))?;
        }
        Ok(())
    }

    /// `mkdir -p`: makes `path` and every missing parent; one that exists already must
    /// be a directory.
    fn mkdir_parents(&mut self, path: &str) -> Result<(), Error> {
        let mut prefix = if path.starts_with('/') {
            String::from("/")
        } else {
            String::new()
        };
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            prefix.push_str(part);
            if part == ".." {
                continue;
            }
            match self.remote()?.mkdir(&prefix) {
                Ok(()) => {}
                Err(Error::Remote(ErrorCode::Exists, _)) => {
                    let is_dir = self
                        .remote()?
                        .stat(&prefix)
                        .is_ok_and(|e| e.kind == EntryKind::Dir);
                    // a server without stat (a Python one): its mkdir said enough
                    if !is_dir && self.remote()?.has_verb("stat") {
                        return Err(Error::Remote(
                            ErrorCode::NotADirectory,
                            format!("{prefix} exists and is not a directory"),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `rm [-r] [-f] path`: `-f` makes a missing path no error (and never asks); `-r`
    /// removes trees, asking first on a terminal, but only about paths that exist.
    fn rm(&mut self, pattern: &str, recursive: bool, force: bool) -> Result<(), Error> {
        let cmd = if recursive { "rm -r" } else { "rm" };
        let missing = |e: &Error| matches!(e, Error::Remote(ErrorCode::NotFound, _));
        let targets = match self.expand_remote(pattern) {
            Err(e) if force && missing(&e) => return Ok(()),
            other => other.map_err(|e| e.about(cmd))?,
        };
        let mut existing = Vec::new();
        for t in targets {
            // a Python server cannot stat; its rm -r is refused anyway
            if !recursive || !self.remote()?.has_verb("stat") {
                existing.push(t);
                continue;
            }
            match self.remote()?.stat(&t) {
                Ok(_) => existing.push(t),
                Err(e) if force && missing(&e) => {}
                Err(e) => return Err(e.about(&format!("{cmd} {t}"))),
            }
        }
        let ask = (recursive && !force)
            .then(crate::term::Terminal::stdin)
            .flatten();
        if let Some(t) = ask
            && !existing.is_empty()
            && !t.confirm(&format!(
                "remove {} and everything in it?",
                escape(&existing.join(", "))
            ))?
        {
            return Err(Error::Local("rm: not confirmed".into()));
        }
        for t in &existing {
            match self.remote()?.rm(t, recursive) {
                Ok(()) => {}
                Err(e) if force && missing(&e) => {}
                Err(Error::Remote(ErrorCode::IsADirectory, _)) => {
                    return Err(Error::Remote(
                        ErrorCode::IsADirectory,
                        format!(
                            "rm {t}: is a directory (rm -r removes it and everything in it; rmdir removes it if it is empty)"
                        ),
                    ));
                }
                Err(e) => return Err(e.about(&format!("{cmd} {t}"))),
            }
        }
        Ok(())
    }

    fn help(&self, cmd: Option<&str>) -> Result<(), Error> {
        let text = match cmd {
            None => help_list(),
            Some(name) => help_one(name)?,
        };
        print!("{text}");
        Ok(())
    }

    /// Where progress bars go: `None` when none are shown (`-q`, or stderr is not a
    /// terminal).
    pub(super) fn show_progress(&self) -> Option<Screen> {
        (!self.opts.quiet && io::stderr().is_terminal()).then(|| self.screen.clone())
    }

    /// Transfer summaries: on stderr (stdout carries only what commands print), unless
    /// quiet; escaped, as they name remote files.
    pub(super) fn say(&self, msg: &str) {
        if !self.opts.quiet {
            eprintln!("{}", escape(msg));
        }
    }
}

/// Width `help` keeps within.
const HELP_COLUMNS: usize = 80;

/// The row of a command's name or alias.
fn command(name: &str) -> Option<&'static Row> {
    COMMANDS
        .iter()
        .find(|c| c.name == name || c.aliases.contains(&name))
}

/// The options and the operands of `args` (`cmd` as typed), once they fit the row:
/// every command refuses an option its syntax does not list, as shells' commands do,
/// and a count of operands outside its arity.
fn options<'a>(
    row: &Row,
    cmd: &str,
    args: &'a [String],
) -> Result<(Vec<char>, &'a [String]), Error> {
    let (flags, operands) = split_flags(args);
    if let Some(f) = flags.iter().find(|f| !row.flags.contains(**f)) {
        return Err(Error::Usage(format!(
            "{cmd}: unknown option -{f} (usage: {})",
            row.syntax
        )));
    }
    if let Some((min, max)) = row.arity
        && !(min..=max).contains(&operands.len())
    {
        return Err(Error::Usage(format!("usage: {}", row.syntax)));
    }
    Ok((flags, operands))
}

/// `text` broken into lines of at most `width` columns (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let cols = super::width::str_width(&line);
        if !line.is_empty() && cols + 1 + super::width::str_width(word) > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `help`: every command's syntax in one column and the first sentence of its
/// explanation beside it, wrapped to stay within [`HELP_COLUMNS`].
fn help_list() -> String {
    let col = COMMANDS.iter().map(|h| h.syntax.len()).max().unwrap_or(0);
    let mut out = String::from("commands (help CMD explains one):\n");
    for h in COMMANDS {
        let first = h.about.split(". ").next().unwrap_or("");
        let first = first.strip_suffix('.').unwrap_or(first);
        let lines = wrap(first, HELP_COLUMNS - 3 - col);
        for (i, line) in lines.iter().enumerate() {
            let syntax = if i == 0 { h.syntax } else { "" };
            out.push_str(&format!("  {syntax:col$} {line}\n"));
        }
    }
    out.push_str(
        "names with spaces: put \"my file.txt\" or put my\\ file.txt; commands end at ';'\n",
    );
    out
}

/// `help CMD`: its syntax and its whole explanation, wrapped.
fn help_one(name: &str) -> Result<String, Error> {
    let h = command(name).ok_or_else(|| {
        Error::Usage(format!(
            "help: no command {name:?} (type `help` for the list)"
        ))
    })?;
    let mut out = format!("{}\n", h.syntax);
    for line in wrap(h.about, HELP_COLUMNS - 2) {
        out.push_str(&format!("  {line}\n"));
    }
    Ok(out)
}

/// The one-letter options a syntax line lists (`rm [-r] [-f] path`: `rf`).
#[cfg(test)]
fn flags_of(syntax: &str) -> String {
    syntax
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("[-")?.strip_suffix(']'))
        .filter(|f| f.len() == 1)
        .collect()
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

/// How `ls` and `lls` show entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// Names: in columns on a terminal, else one per line.
    Names,
    /// One entry per line with its type, size and time (`human`: sizes in KiB, ...).
    Long { human: bool },
}

impl Listing {
    /// From the options `-l` and `-h` (which implies `-l`).
    fn of(long: bool, human: bool) -> Listing {
        match (long, human) {
            (_, true) => Listing::Long { human: true },
            (true, false) => Listing::Long { human: false },
            (false, false) => Listing::Names,
        }
    }
}

/// `d         4096 2026-11-24T12:00:00Z name`: directories first, then by name. Names
/// alone go in columns when stdout is a terminal.
fn print_entries(mut entries: Vec<Entry>, how: Listing) {
    let mut out = io::stdout().lock();
    match how {
        Listing::Long { human } => {
            entries.sort_by(|a, b| {
                (a.kind != EntryKind::Dir, &a.name).cmp(&(b.kind != EntryKind::Dir, &b.name))
            });
            for e in &entries {
                let _ = writeln!(out, "{}", long_line(e, human));
            }
        }
        Listing::Names => {
            let names: Vec<String> = entries
                .iter()
                .map(|e| super::line::shown_name(&e.name))
                .collect();
            let width = out
                .is_terminal()
                .then(|| crate::sys::window_size(io::stdout().as_fd()))
                .flatten()
                .map(|(cols, _)| usize::from(cols));
            let text = match width {
                Some(cols) => columns(&names, cols),
                None => names.iter().map(|n| format!("{n}\n")).collect(),
            };
            let _ = out.write_all(text.as_bytes());
        }
    }
}

/// `names` in columns filled top to bottom, as `ls` does on a terminal: as many
/// columns as fit in `width`, two spaces apart.
fn columns(names: &[String], width: usize) -> String {
    const GAP: usize = 2;
    let widths: Vec<usize> = names.iter().map(|n| super::width::str_width(n)).collect();
    let n = names.len();
    if n == 0 {
        return String::new();
    }
    // the width of each column when the names fill `rows` rows
    let col_widths = |rows: usize| -> Vec<usize> {
        (0..n.div_ceil(rows))
            .map(|c| {
                widths[c * rows..((c + 1) * rows).min(n)]
                    .iter()
                    .max()
                    .copied()
                    .unwrap_or(0)
            })
            .collect()
    };
    // the fewest rows whose columns fit; one name per row if none do
    let rows = (1..=n)
        .find(|&rows| {
            let cols = col_widths(rows);
            cols.iter().sum::<usize>() + GAP * cols.len().saturating_sub(1) <= width
        })
        .unwrap_or(n);
    let cols = n.div_ceil(rows);
    let col_width = col_widths(rows);
    let mut out = String::new();
    for r in 0..rows {
        let mut line = String::new();
        for (c, col) in col_width.iter().enumerate() {
            let i = c * rows + r;
            if i >= n {
                break;
            }
            line.push_str(&names[i]);
            let last = c + 1 == cols || (c + 1) * rows + r >= n;
            if !last {
                line.push_str(&" ".repeat(col - widths[i] + GAP));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// One entry on one line: type, size (`human`: in KiB, ...), time, name.
fn long_line(e: &Entry, human: bool) -> String {
    let size = match human {
        true => super::human_bytes(e.size),
        false => e.size.to_string(),
    };
    format!(
        "{}{} {size:>12} {}Z {}",
        e.kind.letter(),
        permissions(e.mode),
        crate::log::utc_seconds(e.mtime),
        super::line::shown_name(&e.name)
    )
}

/// `rwxr-xr-x`, as `ls -l` writes permission bits (setuid `s`/`S`, setgid, sticky
/// `t`/`T`); `?????????` when the server did not say.
fn permissions(mode: Option<u32>) -> String {
    let Some(m) = mode else {
        return "?".repeat(9);
    };
    let mut out = String::with_capacity(9);
    let groups = [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ];
    for (shift, special, on, off) in groups {
        let bits = (m >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(match (bits & 1 != 0, m & special != 0) {
            (true, true) => on,
            (false, true) => off,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    out
}

/// The bits `spec` (`chmod`'s mode: octal, or symbolic clauses like `u+x,go-w`) gives
/// a path whose bits are `current`; `None` if it is neither.
fn chmod_mode(spec: &str, current: u32) -> Option<u32> {
    if !spec.is_empty() && spec.len() <= 4 && spec.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return u32::from_str_radix(spec, 8).ok();
    }
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let op_at = clause.find(['+', '-', '='])?;
        let (who, rest) = clause.split_at(op_at);
        let mut who_bits = if who.is_empty() { 0o7777 } else { 0 };
        for c in who.chars() {
            who_bits |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return None,
            };
        }
        let mut perm = 0;
        for c in rest[1..].chars() {
            perm |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                _ => return None,
            };
        }
        let bits = perm & who_bits;
        mode = match &rest[..1] {
            "+" => mode | bits,
            "-" => mode & !bits,
            _ => (mode & !(who_bits & 0o777)) | bits,
        };
    }
    Some(mode)
}

/// `df`: usage, quota, what is free and the share used, in human units; the largest
/// upload when the server limits it.
fn df_table(u: &super::Usage) -> String {
    let h = super::human_bytes;
    let (quota, free, share) = match u.quota {
        Some(q) => (
            h(q),
            h(q.saturating_sub(u.used)),
            format!(
                "{}%",
                (u.used as f64 * 100.0 / q.max(1) as f64).ceil() as u64
            ),
        ),
        None => ("none".into(), "-".into(), "-".into()),
    };
    let mut out = format!(
        "{:>10} {:>10} {:>10} {:>5}\n{:>10} {quota:>10} {free:>10} {share:>5}\n",
        "Used",
        "Quota",
        "Free",
        "Use%",
        h(u.used)
    );
    if let Some(max) = u.max_file_size {
        out.push_str(&format!("largest upload: {}\n", h(max)));
    }
    out
}

/// The head of a remote file: byte for byte into a pipe or file, with control
/// characters escaped on a terminal (newlines and tabs kept). A file longer than what
/// was shown ends with a marker saying how much was left out (on stderr unless stdout
/// is a terminal, so a pipe gets only the file's bytes).
fn print_cat(head: &[u8], size: Option<u64>, path: &str) {
    let binary =
        head.contains(&0) || std::str::from_utf8(head).is_err_and(|e| e.error_len().is_some());
    if binary {
        println!("(binary file; use get to download it)");
        return;
    }
    let mut out = io::stdout().lock();
    let terminal = out.is_terminal();
    if terminal {
        let _ = out.write_all(escape_text(&String::from_utf8_lossy(head)).as_bytes());
    } else {
        let _ = out.write_all(head);
    }
    if !head.ends_with(b"\n") {
        let _ = out.write_all(b"\n");
    }
    let shown = head.len() as u64;
    let marker = match size {
        Some(size) if size > shown => format!(
            "[... {} more bytes ({} in all) not shown; `get {}` downloads the whole file]",
            size - shown,
            size,
            super::complete::quote(path)
        ),
        // a Python server says no size: a full head may have been cut
        None if shown >= 1020 => format!(
            "[... the file may go on: a Python server shows only its first 1024 bytes; `get {}` downloads the whole file]",
            super::complete::quote(path)
        ),
        _ => return,
    };
    let marker = escape(&marker);
    if terminal {
        let _ = writeln!(out, "{marker}");
    } else {
        let _ = out.flush();
        eprintln!("{marker}");
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
            mode: Some(std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777),
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
    fn options_come_from_the_syntax() {
        assert_eq!(flags_of("rm [-r] [-f] path"), "rf");
        assert_eq!(flags_of("get [-n] [-p] [-r] remote [local]"), "npr");
        assert_eq!(flags_of("cat path"), "");
        assert_eq!(flags_of("help [command]"), "");
    }

    #[test]
    fn every_command_has_help() {
        for name in [
            "ls", "cat", "get", "put", "rm", "mkdir", "rmdir", "cd", "pwd", "help", "exit", "mv",
            "stat", "lcd", "lls", "lpwd", "passwd", "sync",
        ] {
            assert!(COMMANDS.iter().any(|h| h.name == name), "{name}");
        }
    }

    #[test]
    fn every_row_sends_requests_of_the_protocol() {
        for c in COMMANDS {
            for verb in c.wire {
                assert!(
                    crate::protocol::verbs::find(verb).is_some(),
                    "{}: no request {verb}",
                    c.name
                );
            }
        }
        for verb in INTERNAL {
            assert!(crate::protocol::verbs::find(verb).is_some(), "{verb}");
        }
    }

    #[test]
    fn every_request_is_reached_through_a_row_or_internal() {
        for v in crate::protocol::VERBS {
            let rows: Vec<&str> = COMMANDS
                .iter()
                .filter(|c| c.wire.contains(&v.name))
                .map(|c| c.name)
                .collect();
            let internal = INTERNAL.contains(&v.name);
            assert!(!rows.is_empty() || internal, "{}: no row", v.name);
            assert!(
                rows.is_empty() || !internal,
                "{}: internal, but {rows:?}",
                v.name
            );
        }
    }

    #[test]
    fn a_rows_flags_are_those_of_its_syntax_and_names_are_unique() {
        let mut names = Vec::new();
        for c in COMMANDS {
            assert_eq!(c.flags, flags_of(c.syntax), "{}", c.name);
            assert!(c.syntax.starts_with(c.name), "{}", c.syntax);
            if let Some((min, max)) = c.arity {
                assert!(min <= max, "{}", c.name);
            }
            names.push(c.name);
            names.extend(c.aliases);
        }
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "a name stands for two commands");
    }

    #[test]
    fn the_arity_comes_from_the_row() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let refused = |cmd: &str, args: &[&str]| {
            let row = command(cmd).unwrap();
            match options(row, cmd, &words(args)) {
                Err(Error::Usage(msg)) => msg,
                other => panic!("{cmd} {args:?}: {other:?}"),
            }
        };
        for (cmd, few, many, syntax) in [
            ("mv", &["a"][..], &["a", "b", "c"][..], "mv old new"),
            ("stat", &[], &["a", "b"], "stat path"),
            (
                "get",
                &["-r"],
                &["a", "b", "c"],
                "get [-n] [-p] [-r] remote [local]",
            ),
            ("chmod", &["644"], &["644", "a", "b"], "chmod mode path"),
            ("rm", &["-rf"], &["a", "b"], "rm [-r] [-f] path"),
        ] {
            assert_eq!(refused(cmd, few), format!("usage: {syntax}"));
            assert_eq!(refused(cmd, many), format!("usage: {syntax}"));
        }
        assert_eq!(refused("pwd", &["x"]), "usage: pwd");
        assert_eq!(refused("?", &["a", "b"]), "usage: help [command]");
        assert_eq!(
            refused("quit", &["-x"]),
            "quit: unknown option -x (usage: exit)"
        );
        let row = command("get").unwrap();
        let args = words(&["-np", "--", "-a", "b"]);
        let (flags, operands) = options(row, "get", &args).unwrap();
        assert_eq!((flags, operands), (vec!['n', 'p'], &args[2..]));
        assert!(options(command("exit").unwrap(), "exit", &words(&["a", "b"])).is_ok());
    }

    #[test]
    fn completion_and_the_listings_cache_read_the_rows() {
        assert_eq!(operand_kind("ls", 3), Some(REMOTE));
        assert_eq!(operand_kind("cd", 0), Some(REMOTE_DIR));
        assert_eq!(operand_kind("cd", 1), None);
        assert_eq!(operand_kind("put", 0), Some(LOCAL));
        assert_eq!(operand_kind("put", 1), Some(REMOTE));
        assert_eq!(operand_kind("chmod", 0), None);
        assert_eq!(operand_kind("?", 0), Some(COMMAND));
        assert_eq!(operand_kind("pwd", 0), None);
        assert_eq!(operand_kind("frob", 0), None);
        assert!(!changes_remote("?") && !changes_remote("reget"));
        assert!(changes_remote("reput") && changes_remote("frob"));
        let names: Vec<&str> = command_names().collect();
        assert!(names.contains(&"quit") && names.contains(&"!") && !names.contains(&"?"));
    }

    #[test]
    fn long_format() {
        let e = Entry {
            name: "a b".into(),
            kind: EntryKind::Dir,
            size: 4096,
            mtime: 0,
            mode: None,
        };
        assert_eq!(
            long_line(&e, false),
            "d?????????         4096 1970-01-01T00:00:00Z a b"
        );
        let e = Entry {
            mode: Some(0o755),
            ..e
        };
        assert_eq!(
            long_line(&e, false),
            "drwxr-xr-x         4096 1970-01-01T00:00:00Z a b"
        );
        let e = Entry {
            name: "x\u{1b}y".into(),
            kind: EntryKind::File,
            size: 1536,
            ..e
        };
        assert_eq!(
            long_line(&e, true),
            "-rwxr-xr-x      1.5 KiB 1970-01-01T00:00:00Z $'x\\x1by'"
        );
    }

    #[test]
    fn permission_bits_as_ls_writes_them() {
        assert_eq!(permissions(Some(0o644)), "rw-r--r--");
        assert_eq!(permissions(Some(0o4755)), "rwsr-xr-x");
        assert_eq!(permissions(Some(0o1770)), "rwxrwx--T");
        assert_eq!(permissions(None), "?????????");
    }

    #[test]
    fn chmod_modes_octal_and_symbolic() {
        assert_eq!(chmod_mode("755", 0), Some(0o755));
        assert_eq!(chmod_mode("0600", 0o777), Some(0o600));
        assert_eq!(chmod_mode("u+x", 0o644), Some(0o744));
        assert_eq!(chmod_mode("+x", 0o644), Some(0o755));
        assert_eq!(chmod_mode("go-rw", 0o666), Some(0o600));
        assert_eq!(chmod_mode("a=r,u+w", 0o777), Some(0o644));
        assert_eq!(chmod_mode("o=", 0o757), Some(0o750));
        for bad in ["", "9", "88888", "u+q", "z+x", "u", "rwx"] {
            assert_eq!(chmod_mode(bad, 0o644), None, "{bad}");
        }
    }

    #[test]
    fn names_go_in_columns_that_fit() {
        let names: Vec<String> = ["a", "bb", "ccc", "dddd", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(columns(&names, 80), "a  bb  ccc  dddd  e\n");
        // top to bottom, then left to right
        assert_eq!(columns(&names, 10), "a    dddd\nbb   e\nccc\n");
        assert_eq!(columns(&names, 3), "a\nbb\nccc\ndddd\ne\n", "too narrow");
        assert_eq!(columns(&[], 80), "");
        for line in columns(&names, 12).lines() {
            assert!(line.len() <= 12, "{line:?}");
        }
    }

    #[test]
    fn df_in_human_units() {
        let u = super::super::Usage {
            used: 3 << 20,
            quota: Some(10 << 20),
            max_file_size: Some(1 << 30),
        };
        assert_eq!(
            df_table(&u),
            "      Used      Quota       Free  Use%\n   3.0 MiB   10.0 MiB    7.0 MiB   30%\nlargest upload: 1.0 GiB\n"
        );
        let u = super::super::Usage {
            used: 12,
            quota: None,
            max_file_size: None,
        };
        assert_eq!(
            df_table(&u),
            "      Used      Quota       Free  Use%\n      12 B       none          -     -\n"
        );
    }

    #[test]
    fn help_fits_80_columns_and_knows_the_aliases() {
        let list = help_list();
        for line in list.lines() {
            assert!(
                super::super::width::str_width(line) <= HELP_COLUMNS,
                "{line:?}"
            );
        }
        // the summaries start in one column
        let col = COMMANDS.iter().map(|h| h.syntax.len()).max().unwrap();
        for h in COMMANDS {
            let line = list
                .lines()
                .find(|l| l.starts_with(&format!("  {} ", h.syntax)))
                .unwrap_or_else(|| panic!("{} listed", h.name));
            assert_ne!(line.as_bytes()[2 + col + 1], b' ', "{line:?}");
        }
        let names: Vec<_> = COMMANDS.iter().map(|h| h.name).collect();
        let at = |n: &str| names.iter().position(|&x| x == n).unwrap();
        assert!(at("ls") < at("get") && at("get") < at("reget") && at("put") < at("reput"));
        assert!(at("mkdir") < at("lcd") && at("lcd") < at("help") && at("help") < at("exit"));
        assert_eq!(help_one("quit").unwrap(), help_one("exit").unwrap());
        assert_eq!(help_one("bye").unwrap(), help_one("exit").unwrap());
        assert_eq!(help_one("?").unwrap(), help_one("help").unwrap());
        assert!(help_one("frob").is_err());
        for h in COMMANDS {
            for line in help_one(h.name).unwrap().lines() {
                assert!(
                    line.len() <= HELP_COLUMNS || !line.contains(' '),
                    "{line:?}"
                );
            }
        }
    }
}

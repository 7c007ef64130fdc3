//! The client on a pseudo-terminal (util-linux `script`), driven by keystrokes: the
//! prompt's line editor (cursor movement, kill and yank, UTF-8, Ctrl-D, Ctrl-L), its
//! history (Up, Ctrl-R, kept across sessions with mode 0600 and never a password line),
//! Tab completion of commands and of remote and local paths (hostile names never
//! offered), the plain fallback under `TERM=dumb`, and a progress bar that fits 80
//! columns, follows a resize, and leaves one clean line when the transfer is cancelled.
//!
//! Every wait is bounded; what the client did is checked on the server's disk, and what
//! it drew in the terminal's output.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// How long any one thing may take to show up on the terminal.
const WAIT: Duration = Duration::from_secs(20);

/// One client session on a pseudo-terminal, its output collected as it comes.
struct Pty {
    child: Child,
    stdin: Option<ChildStdin>,
    screen: PipeWatch,
    /// The pseudo-terminal's device, as the session wrote it at the start.
    tty_file: PathBuf,
}

impl Pty {
    /// Runs `fos-client ARGS` in `cwd` on a fresh 80x24 pseudo-terminal with `TERM`
    /// set to `term`, history kept under `state`.
    fn start(cwd: &Path, state: &Path, term: &str, args: &str) -> Pty {
        let tty_file = state.join(format!("tty-{}", std::process::id()));
        let _ = fs::remove_file(&tty_file);
        // `exec`: no shell stays between `script` and the client (a Ctrl-C reaches only
        // the client); `tty` tells the test which device to resize
        let command = format!(
            "stty cols 80 rows 24; tty > '{}'; exec {} {args} --cert {}",
            tty_file.display(),
            env!("CARGO_BIN_EXE_fos-client"),
            cert().display()
        );
        let mut child = Command::new("script")
            .args(["-qfec", &command, "/dev/null"])
            .current_dir(cwd)
            .env("FOS_PASSWORD", "p")
            .env("NO_COLOR", "1")
            .env("TERM", term)
            .env("XDG_STATE_HOME", state)
            .env("HOME", state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script (util-linux) runs; make test installs it");
        let stdin = child.stdin.take();
        let screen = PipeWatch::new(child.stdout.take().expect("stdout is piped"));
        Pty {
            child,
            stdin,
            screen,
            tty_file,
        }
    }

    fn len(&self) -> usize {
        self.screen.len()
    }

    fn screen_from(&self, from: usize) -> String {
        self.screen.text_from(from)
    }

    /// Waits (bounded) until `found` holds for the output after `from`.
    fn wait_until(&self, from: usize, what: &str, found: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !found(&self.screen_from(from)) {
            assert!(
                Instant::now() < deadline,
                "no {what} on the terminal: {:?}",
                self.screen_from(from)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for a prompt drawn after a line ended (after `from`).
    fn wait_prompt(&self, from: usize) {
        self.wait_until(from, "prompt", |s| {
            s.find('\n').is_some_and(|nl| s[nl..].contains("fos:/"))
        });
    }

    fn send(&mut self, keys: &[u8]) {
        let stdin = self.stdin.as_mut().expect("the session is running");
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
    }

    /// Types `keys` (ending in Enter) and waits for the next prompt.
    fn line(&mut self, keys: &[u8]) {
        let from = self.len();
        self.send(keys);
        self.wait_prompt(from);
    }

    /// The first prompt.
    fn ready(&self) {
        self.wait_until(0, "first prompt", |s| s.contains("fos:/"));
    }

    /// Sets the terminal's width, as a window manager resizing it would (the kernel
    /// sends SIGWINCH to the client).
    fn resize(&self, cols: u16) {
        let tty = fs::read_to_string(&self.tty_file).expect("the session wrote its tty");
        let status = Command::new("stty")
            .args(["-F", tty.trim(), "cols", &cols.to_string()])
            .status()
            .expect("stty runs");
        assert!(status.success(), "stty -F {tty}");
    }

    /// Closes the keyboard and waits (bounded) for the session to end.
    fn finish(mut self) -> (Option<i32>, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        let code = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.screen.join();
        (code, self.screen_from(0))
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn session(fx: &Fixture, server: &str, term: &str) -> Pty {
    Pty::start(
        &fx.local(),
        &fx.dir.path().join("state"),
        term,
        &format!("--server {server} --user u"),
    )
}

fn history_file(fx: &Fixture) -> PathBuf {
    fx.dir.path().join("state/fos/history")
}

const LEFT: &[u8] = b"\x1b[D";
const UP: &[u8] = b"\x1b[A";

fn keys(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn the_line_editor_moves_cuts_and_recalls() {
    let (fx, server) = quiet_server("editor");
    fs::create_dir_all(fx.dir.path().join("state")).unwrap();
    let mut pty = session(&fx, &server.server_arg(), "xterm");
    pty.ready();
    // Left and insert; Ctrl-A/Ctrl-E; Ctrl-B/Ctrl-F
    pty.line(&keys(&[b"mkdir ac", LEFT, b"b\r"]));
    pty.line(b"kdir d1\x01m\x05x\r");
    pty.line(b"mkdir e3\x02\x02X\x06\x06\x06\r");
    // Ctrl-W twice, Ctrl-U, Ctrl-K, Ctrl-Y
    pty.line(b"mkdir junk more\x17\x17e2\r");
    pty.line(b"rm -r everything\x15mkdir f3\r");
    pty.line(&keys(&[b"mkdir g4 tail", &LEFT.repeat(5), b"\x0b\r"]));
    pty.line(b"mkdir h\x17\x19\x19\r");
    // Home/End/Delete keys as terminals send them; Backspace
    pty.line(b"kdir i5xyz\x1b[Hm\x1b[F\x1b[D\x1b[D\x1b[3~\x7f\r");
    // UTF-8: Left and Backspace take whole characters
    pty.line(&keys(&["mkdir ünï".as_bytes(), LEFT, b"\x7f\r"]));
    // Ctrl-D in a line deletes; it does not run the line
    pty.line(&keys(&[b"mkdir k6z", LEFT, b"\x04\r"]));
    // Up recalls the last line; Ctrl-R finds an older one
    pty.line(&keys(&[UP, b"\x7f7\r"]));
    pty.line(b"\x12d1\x05y\r");
    // Ctrl-L clears the screen and keeps the line
    let from = pty.len();
    pty.line(b"mkdir l8\x0c9\r");
    assert!(pty.screen_from(from).contains("\x1b[H\x1b[2J"));
    // a password on the command line is kept out of the history
    pty.line(b"passwd p hunter2\r");
    pty.line(b"mkdir last\r");
    pty.send(b"\x04");
    let (code, screen) = pty.finish();
    assert_eq!(code, Some(0), "Ctrl-D on an empty line leaves: {screen}");
    let root = fx.storage().join("u");
    for dir in [
        "abc", "d1x", "Xe3", "e2", "f3", "g4", "hh", "i5z", "üï", "k6", "k7", "d1xy", "l89", "last",
    ] {
        assert!(root.join(dir).is_dir(), "{dir} was not made: {screen}");
    }
    for dir in ["junk", "more", "ac", "everything", "tail", "k6z"] {
        assert!(!root.join(dir).exists(), "{dir} was made");
    }
    assert!(!screen.contains("unknown command"), "{screen}");
    assert!(!screen.contains("^L"), "{screen}");
    // the history: this session's lines, mode 0600, no password
    let path = history_file(&fx);
    let text = fs::read_to_string(&path).expect("the history was kept");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(text.starts_with("mkdir abc\n"), "{text}");
    assert!(text.ends_with("mkdir l89\nmkdir last\n"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("passwd"),
        "{text}"
    );
    assert!(!text.contains("everything"), "only the lines run: {text}");

    // a new session recalls the last one's lines; Ctrl-C twice within a second leaves
    let mut pty = session(&fx, &server.server_arg(), "xterm");
    pty.ready();
    pty.line(&keys(&[UP, b"2\r"]));
    pty.send(b"\x03\x03");
    let (code, screen) = pty.finish();
    assert!(root.join("last2").is_dir(), "{screen}");
    assert_eq!(code, Some(130), "{screen}");
}

#[test]
fn tab_completes_commands_and_remote_and_local_paths() {
    let (fx, server) = quiet_server("tab");
    fs::create_dir_all(fx.dir.path().join("state")).unwrap();
    let root = fx.storage().join("u");
    fs::create_dir_all(root.join("some directory")).unwrap();
    fs::write(root.join("some directory/inner file.txt"), "inner").unwrap();
    fs::write(root.join("it's here.txt"), "quoted").unwrap();
    // a name that would colour the terminal red if it were ever drawn raw
    fs::write(root.join("evil\x1b[31mred"), "x").unwrap();
    fs::write(root.join("evident.txt"), "plain").unwrap();
    fs::write(fx.local().join("local file.txt"), "up").unwrap();
    let mut pty = session(&fx, &server.server_arg(), "xterm");
    pty.ready();
    // a command name, then a directory on the server: quoted, and completion goes on in it
    pty.line(b"mkd\tnew\r");
    pty.line(b"get som\tin\t\r");
    pty.line(b"get it\t\r");
    // the hostile name is never offered: `ev` completes to the other one
    pty.line(b"get ev\t\r");
    // the second Tab lists the choices
    let from = pty.len();
    pty.send(b"cd \t\t");
    pty.wait_until(from, "listing", |s| {
        s.contains("new/") && s.contains("some directory/")
    });
    pty.line(b"\x15\r");
    // local paths for put
    pty.line(b"put loc\t\r");
    pty.send(b"\x04");
    let (code, screen) = pty.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert!(root.join("new").is_dir(), "{screen}");
    assert_eq!(
        fs::read(fx.local().join("inner file.txt")).unwrap(),
        b"inner"
    );
    assert_eq!(
        fs::read(fx.local().join("it's here.txt")).unwrap(),
        b"quoted"
    );
    assert_eq!(fs::read(fx.local().join("evident.txt")).unwrap(), b"plain");
    assert_eq!(fs::read(root.join("local file.txt")).unwrap(), b"up");
    assert!(
        !screen.contains("\x1b[31m"),
        "a server's name reached the terminal raw"
    );
    assert!(!screen.contains("evil"), "{screen}");
}

#[test]
fn a_dumb_terminal_gets_plain_lines() {
    let (fx, server) = quiet_server("dumb");
    fs::create_dir_all(fx.dir.path().join("state")).unwrap();
    let mut pty = session(&fx, &server.server_arg(), "dumb");
    pty.wait_until(0, "prompt", |s| s.contains("fos:/> "));
    let from = pty.len();
    pty.send(b"mkdir plain\n");
    pty.wait_until(from, "prompt", |s| s.contains("fos:/> "));
    pty.send(b"exit\n");
    let (code, screen) = pty.finish();
    assert_eq!(code, Some(0), "{screen}");
    assert!(fx.storage().join("u/plain").is_dir());
    assert!(
        !screen.contains("\x1b["),
        "no escape sequences on a dumb terminal: {screen:?}"
    );
    assert!(!history_file(&fx).exists(), "no editor, no history");
}

/// The rows a stretch of terminal output drew: split at `\r` and `\n`, escape
/// sequences removed.
fn rows(output: &str) -> Vec<String> {
    output
        .split(['\r', '\n'])
        .map(|seg| {
            let mut out = String::new();
            let mut chars = seg.chars();
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    // CSI: parameters up to a final letter
                    if chars.next() == Some('[') {
                        for f in chars.by_ref() {
                            if ('@'..='~').contains(&f) {
                                break;
                            }
                        }
                    }
                } else {
                    out.push(c);
                }
            }
            out
        })
        .filter(|r| !r.is_empty())
        .collect()
}

#[test]
fn the_progress_bar_fits_the_terminal_follows_a_resize_and_cancels_cleanly() {
    let fx = Fixture::new("bar");
    let name = "a-rather-long-name-for-a-file-that-takes-a-while.bin";
    fs::create_dir_all(fx.storage().join("u")).unwrap();
    fs::write(fx.storage().join("u").join(name), content(16 << 20, 9)).unwrap();
    fs::create_dir_all(fx.dir.path().join("state")).unwrap();
    let server = LibServer::start(fx.config());
    let proxy = Proxy::start(
        server.addr,
        Faults {
            rate: Some(4 << 20),
            ..Faults::default()
        },
    );
    let mut pty = Pty::start(
        &fx.local(),
        &fx.dir.path().join("state"),
        "xterm",
        &format!("--server {} --user u --no-fsync", proxy.addr),
    );
    pty.ready();
    let from = pty.len();
    pty.send(format!("get {name}\r").as_bytes());
    let bars = |s: &str| rows(s).iter().filter(|r| r.contains("ETA")).count();
    pty.wait_until(from, "progress bar", |s| bars(s) >= 3);
    pty.resize(50);
    let narrow = |s: &str| {
        rows(s)
            .iter()
            .any(|r| r.contains("ETA") && r.chars().count() < 50)
    };
    pty.wait_until(from, "narrow bar", narrow);
    let drawn = bars(&pty.screen_from(from));
    pty.wait_until(from, "redraws", |s| bars(s) >= drawn + 2);
    pty.send(b"\x03");
    pty.wait_until(from, "cancel", |s| s.contains("cancelled"));
    pty.wait_prompt(from);
    pty.send(b"\x04");
    let (code, screen) = pty.finish();
    assert_eq!(code, Some(0), "{screen}");
    let after = &screen[screen.find(&format!("get {name}")).unwrap()..];
    let rows = rows(after);
    let bar_rows: Vec<&String> = rows.iter().filter(|r| r.contains("ETA")).collect();
    let first_narrow = bar_rows
        .iter()
        .position(|r| r.chars().count() < 50)
        .expect("a bar drawn after the resize");
    assert!(first_narrow > 0, "{bar_rows:#?}");
    for (i, r) in bar_rows.iter().enumerate() {
        let width = r.chars().count();
        if i < first_narrow {
            // at 80 columns: the whole width but the last column, the name shortened
            assert_eq!(width, 79, "{r:?}");
            assert!(r.contains('…') && r.contains("while.bin ["), "{r:?}");
        } else {
            assert!(width < 50, "a bar wider than the resized terminal: {r:?}");
        }
    }
    // the cancel: one clean line, no ^C and no fragment of the bar left
    assert!(!after.contains("^C"), "{after:?}");
    assert!(!after.contains("interrupted"), "{after:?}");
    let last_bar = rows.iter().rposition(|r| r.contains("ETA")).unwrap();
    let rest: Vec<&String> = rows[last_bar + 1..]
        .iter()
        .take_while(|r| !r.starts_with("fos:/>"))
        .collect();
    assert_eq!(rest.len(), 1, "{rest:#?}");
    assert!(
        rest[0].starts_with(&format!("fos: get {name}: cancelled;")),
        "{rest:#?}"
    );
    assert!(fx.local().join(format!(".{name}.fos-partial")).exists());
}

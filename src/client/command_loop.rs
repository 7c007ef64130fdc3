//! The shell's one command loop, fed by a line source: the text of `-c`
//! ([`Shell::run_text`]), a script on standard input ([`Shell::run_script`]), or the
//! prompt ([`Shell::interactive`]: plain lines here, the line editor's in
//! [`super::prompt`]). The sources differ in where their lines come from and in two
//! rules (whether a failure ends the run, and how the failing command is named); the
//! parsing, running and reporting of each line is the loop's, written once.
//!
//! The commands themselves are [`Shell::run`]'s.

use std::io::{self, BufRead, Write};
use std::sync::atomic::Ordering;

use super::shell::{Flow, Shell};
use crate::Error;
use crate::error::exit;

/// What a line source gives the loop next.
pub(super) enum Next {
    /// A line of commands.
    Line(String),
    /// The end of the input: leave with the first failure's code (see
    /// [`LineSource::strict`]).
    End,
    /// Leave at once with this code (reading failed, Ctrl-C twice at the prompt).
    Leave(i32),
}

/// How the message of a failing command names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    /// Not at all: at the prompt, it is the line just typed.
    Unnamed,
    /// By its line, `line 3: ...` (a script).
    Line,
    /// By its place when the text holds several, `command 2: ...` (`-c`).
    Command,
}

/// Where the shell's lines come from, and the rules they are run by.
pub(super) trait LineSource {
    /// The next line (the prompt shows the remote directory: it asks the shell).
    fn next_line(&mut self, shell: &mut Shell) -> Next;
    /// How a failing command is named.
    fn label(&self) -> Label;
    /// Whether a failure (a line that does not parse, a command that fails) ends the
    /// run — a failed command only without `-k` — and gives the exit code. At the
    /// prompt it does neither: the failure is reported and the prompt carries on.
    fn strict(&self) -> bool;
}

impl Shell {
    /// Runs command text (`-c` or a script): stops at the first failure unless
    /// `keep_going`; returns the exit code.
    pub fn run_text(&mut self, text: &str) -> i32 {
        self.run_lines(&mut Text(Some(text)))
    }

    /// Reads commands from `input` one line at a time (scripts on standard input),
    /// with the same stop-at-first-failure rule as [`Shell::run_text`].
    pub fn run_script(&mut self, input: impl BufRead) -> i32 {
        self.commands_on_stdin = true;
        self.run_lines(&mut Script(input.lines()))
    }

    /// The interactive prompt: reads lines until `exit` or end of input; a failed
    /// command is reported and the prompt carries on. With a capable terminal the line
    /// editor reads them (`prompt`), else plain lines are read.
    pub fn interactive(&mut self) -> i32 {
        self.commands_on_stdin = true;
        if super::editor::usable() {
            return self.run_lines(&mut super::prompt::EditedPrompt::new());
        }
        self.run_lines(&mut PlainPrompt::default())
    }

    /// The command loop: each line from `src` is parsed and its commands run in turn,
    /// failures reported (escaped, named by `src`'s label); returns the exit code.
    pub(super) fn run_lines(&mut self, src: &mut dyn LineSource) -> i32 {
        let (label, strict) = (src.label(), src.strict());
        let mut first_failure = exit::OK;
        let mut line_no = 0;
        loop {
            let line = match src.next_line(self) {
                Next::Line(line) => line,
                Next::End => return first_failure,
                Next::Leave(code) => return code,
            };
            line_no += 1;
            let commands = match super::line::parse(&line) {
                Ok(c) => c,
                Err(e) => {
                    let e = match label {
                        Label::Line => Error::Usage(format!("line {line_no}: {e}")),
                        Label::Unnamed | Label::Command => e,
                    };
                    self.report_error(&e);
                    if strict {
                        return e.exit_code();
                    }
                    continue;
                }
            };
            let several = commands.len() > 1;
            for (n, words) in commands.iter().enumerate() {
                let e = match self.run(words) {
                    Ok(Flow::Continue) => continue,
                    Ok(Flow::Exit) => return first_failure,
                    Err(e) => e,
                };
                match label {
                    Label::Line => self.report_error(&Error::Usage(format!("line {line_no}: {e}"))),
                    // which of the commands failed, as `line N` does for scripts
                    Label::Command if several => {
                        self.report_error(&Error::Usage(format!("command {}: {e}", n + 1)))
                    }
                    Label::Command | Label::Unnamed => self.report_error(&e),
                }
                if strict && first_failure == exit::OK {
                    first_failure = e.exit_code();
                }
                // with no session and no way to log in again, no later command can work
                let stranded = self.remote.is_none() && self.login.is_none();
                if (strict && !self.opts.keep_going) || stranded {
                    return e.exit_code();
                }
            }
        }
    }
}

/// The text of `-c`: one line, however many commands it holds.
struct Text<'a>(Option<&'a str>);

impl LineSource for Text<'_> {
    fn next_line(&mut self, _: &mut Shell) -> Next {
        self.0.take().map_or(Next::End, |t| Next::Line(t.into()))
    }
    fn label(&self) -> Label {
        Label::Command
    }
    fn strict(&self) -> bool {
        true
    }
}

/// A script read from standard input, one line at a time.
struct Script<B>(io::Lines<B>);

impl<B: BufRead> LineSource for Script<B> {
    fn next_line(&mut self, shell: &mut Shell) -> Next {
        match self.0.next() {
            Some(Ok(line)) => Next::Line(line),
            Some(Err(e)) => {
                shell.report_error(&Error::Io(e));
                Next::Leave(exit::FAILED)
            }
            None => Next::End,
        }
    }
    fn label(&self) -> Label {
        Label::Line
    }
    fn strict(&self) -> bool {
        true
    }
}

/// The prompt without the line editor: plain lines from standard input.
#[derive(Default)]
struct PlainPrompt {
    line: String,
}

impl LineSource for PlainPrompt {
    fn next_line(&mut self, shell: &mut Shell) -> Next {
        let stdin = io::stdin();
        loop {
            let prompt = shell.prompt_text();
            print!("{prompt}");
            let _ = io::stdout().flush();
            self.line.clear();
            *shell.prompt.lock().unwrap_or_else(|p| p.into_inner()) = Some(prompt);
            let read = stdin.lock().read_line(&mut self.line);
            *shell.prompt.lock().unwrap_or_else(|p| p.into_inner()) = None;
            match read {
                Ok(0) => {
                    println!();
                    return Next::End;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    shell.report_error(&Error::Io(e));
                    return Next::Leave(exit::FAILED);
                }
            }
            shell.interrupt.store(false, Ordering::SeqCst);
            return Next::Line(self.line.clone());
        }
    }
    fn label(&self) -> Label {
        Label::Unnamed
    }
    fn strict(&self) -> bool {
        false
    }
}

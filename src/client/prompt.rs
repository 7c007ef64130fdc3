//! The interactive prompt on a capable terminal: lines are read with the line editor
//! ([`super::editor`]), kept in the history ([`super::history`]) and completed with
//! names from the server and the local disk ([`super::complete`]), then run by the
//! shell one by one. Ctrl-C clears the line; twice within a second leaves the client.

use std::time::{Duration, Instant};

use super::complete::{Cache, ShellCompleter};
use super::editor::{Outcome, Terminal};
use super::history::{self, History};
use super::shell::Shell;
use crate::Error;
use crate::error::exit;

/// Exit code after two Ctrl-C at the prompt (128 + SIGINT, as the signal thread uses).
const INTERRUPTED: i32 = 130;

/// Commands after which the remote listings cached for completion still hold.
const READ_ONLY: &[&str] = &[
    "ls", "cat", "cd", "pwd", "stat", "get", "reget", "lcd", "lls", "lpwd", "help", "?", "df", "!",
];

impl Shell {
    /// The editor's prompt loop (see [`Shell::interactive`]).
    pub(super) fn interactive_edited(&mut self) -> i32 {
        let mut term = Terminal::new();
        let mut history = History::open(history::default_path());
        let mut cache = Cache::default();
        let mut last_interrupt: Option<Instant> = None;
        let mut history_failed = false;
        loop {
            let prompt = self.prompt_text();
            let read = {
                let mut completer = ShellCompleter {
                    shell: self,
                    cache: &mut cache,
                };
                term.read_line(&prompt, history.lines(), &mut completer)
            };
            let line = match read {
                Ok(Outcome::Line(line)) => line,
                Ok(Outcome::Eof) => return exit::OK,
                Ok(Outcome::Interrupted) => {
                    let now = Instant::now();
                    if last_interrupt
                        .is_some_and(|l| now.duration_since(l) < Duration::from_secs(1))
                    {
                        return INTERRUPTED;
                    }
                    last_interrupt = Some(now);
                    continue;
                }
                Err(e) => {
                    self.report_error(&Error::Io(e));
                    return exit::FAILED;
                }
            };
            if let Err(e) = history.add(&line)
                && !std::mem::replace(&mut history_failed, true)
            {
                self.report_error(&Error::Local(format!("history not saved: {e}")));
            }
            if may_change_remote(&line) {
                cache.clear();
            }
            if let Some(code) = self.run_line(&line) {
                return code;
            }
        }
    }
}

/// Whether `line` runs a command that may change what the server lists.
fn may_change_remote(line: &str) -> bool {
    match super::line::parse(line) {
        Ok(commands) => commands
            .iter()
            .any(|words| !READ_ONLY.contains(&words[0].as_str())),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_lines_forget_the_cached_listings() {
        assert!(!may_change_remote("ls; cd docs; get a.txt"));
        assert!(may_change_remote("ls; put a.txt"));
        assert!(may_change_remote("mkdir new"));
        assert!(!may_change_remote("   "));
        assert!(!may_change_remote("put 'unterminated"));
    }
}

//! The interactive prompt on a capable terminal: lines are read with the line editor
//! ([`super::editor`]), kept in the history ([`super::history`]) and completed with
//! names from the server and the local disk ([`super::complete`]), and given to the
//! shell's command loop ([`super::command_loop`]) one by one. Ctrl-C clears the
//! line; twice within a second leaves the client.

use std::time::{Duration, Instant};

use super::command_loop::{Label, LineSource, Next};
use super::complete::{Cache, ShellCompleter};
use super::editor::{Outcome, Terminal};
use super::history::{self, History};
use super::shell::Shell;
use crate::Error;
use crate::error::exit;

/// Exit code after two Ctrl-C at the prompt (128 + SIGINT, as the signal thread uses).
const INTERRUPTED: i32 = 130;

/// The prompt on a capable terminal, as a source of the shell's command loop
/// ([`super::command_loop`]).
pub(super) struct EditedPrompt {
    term: Terminal,
    history: History,
    /// Remote listings kept for completion while they hold.
    cache: Cache,
    last_interrupt: Option<Instant>,
    /// The history could not be saved once: said once, not at every line.
    history_failed: bool,
}

impl EditedPrompt {
    /// The editor on the terminal, with the history of earlier sessions.
    pub(super) fn new() -> EditedPrompt {
        EditedPrompt {
            term: Terminal::new(),
            history: History::open(history::default_path()),
            cache: Cache::default(),
            last_interrupt: None,
            history_failed: false,
        }
    }
}

impl LineSource for EditedPrompt {
    fn next_line(&mut self, shell: &mut Shell) -> Next {
        loop {
            let prompt = shell.prompt_text();
            let read = {
                let mut completer = ShellCompleter {
                    shell: &mut *shell,
                    cache: &mut self.cache,
                };
                self.term
                    .read_line(&prompt, self.history.lines(), &mut completer)
            };
            let line = match read {
                Ok(Outcome::Line(line)) => line,
                Ok(Outcome::Eof) => return Next::End,
                Ok(Outcome::Interrupted) => {
                    let now = Instant::now();
                    if self
                        .last_interrupt
                        .is_some_and(|l| now.duration_since(l) < Duration::from_secs(1))
                    {
                        return Next::Leave(INTERRUPTED);
                    }
                    self.last_interrupt = Some(now);
                    continue;
                }
                Err(e) => {
                    shell.report_error(&Error::Io(e));
                    return Next::Leave(exit::FAILED);
                }
            };
            if let Err(e) = self.history.add(&line)
                && !std::mem::replace(&mut self.history_failed, true)
            {
                shell.report_error(&Error::Local(format!("history not saved: {e}")));
            }
            if may_change_remote(&line) {
                self.cache.clear();
            }
            return Next::Line(line);
        }
    }
    fn label(&self) -> Label {
        Label::Unnamed
    }
    fn strict(&self) -> bool {
        false
    }
}

/// Whether `line` runs a command that may change what the server lists.
fn may_change_remote(line: &str) -> bool {
    match super::line::parse(line) {
        Ok(commands) => commands
            .iter()
            .any(|words| super::shell::changes_remote(&words[0])),
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

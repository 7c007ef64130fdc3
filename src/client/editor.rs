//! The interactive prompt's line editor, in three parts: a [`Decoder`] turning the
//! bytes a terminal sends into [`Key`]s (UTF-8, escape sequences), an [`Editor`] that
//! applies keys to the line (cursor movement, kill and yank, history, reverse search,
//! completion) and draws it, and [`Terminal`], which puts the terminal in raw mode
//! (through [`crate::sys`]) for one line and feeds the editor from standard input.
//!
//! The first two are pure: bytes in, screen text out, so they are tested on byte
//! sequences. The line is drawn on one row, scrolled sideways when it is wider than the
//! terminal, and never holds a control character. Completion and the history's storage
//! live elsewhere ([`super::complete`], [`super::history`]); secrets are never read here.

use std::io::{self, BufRead, IsTerminal, Write};
use std::os::fd::AsFd;

use super::width::{char_width, shorten_middle, str_width};

/// A key, decoded from what a terminal sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Enter (`\r` or `\n`).
    Enter,
    /// Tab: complete.
    Tab,
    /// Backspace (DEL or Ctrl-H): delete before the cursor.
    Backspace,
    /// Delete: delete under the cursor.
    Delete,
    /// Left arrow, Ctrl-B.
    Left,
    /// Right arrow, Ctrl-F.
    Right,
    /// Home, Ctrl-A.
    Home,
    /// End, Ctrl-E.
    End,
    /// Up arrow, Ctrl-P: older history.
    Up,
    /// Down arrow, Ctrl-N: newer history.
    Down,
    /// Alt-B, Ctrl-Left: a word left.
    WordLeft,
    /// Alt-F, Ctrl-Right: a word right.
    WordRight,
    /// Ctrl-C.
    Interrupt,
    /// Ctrl-D: end of input on an empty line, else delete under the cursor.
    EndOrDelete,
    /// Ctrl-K: cut to the end of the line.
    KillToEnd,
    /// Ctrl-U: cut to the start of the line.
    KillToStart,
    /// Ctrl-W, Alt-Backspace: cut the blank-separated word before the cursor.
    KillWordBack,
    /// Alt-D: cut the word after the cursor.
    KillWordForward,
    /// Ctrl-Y: paste what was cut last.
    Yank,
    /// Ctrl-T: swap the two characters before the cursor.
    Transpose,
    /// Ctrl-L: clear the screen.
    ClearScreen,
    /// Ctrl-R: search the history backwards.
    SearchBack,
    /// Ctrl-G: leave a search, restoring the line.
    Cancel,
    /// Ctrl-Z: suspend the client.
    Suspend,
    /// Anything else (unknown sequences, other control characters).
    Ignored,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Ground,
    Esc,
    Csi,
    Ss3,
    /// Inside a UTF-8 sequence of this many bytes.
    Utf8(usize),
}

/// Longest escape-sequence parameter text kept (the rest is consumed and ignored).
const MAX_SEQUENCE: usize = 16;

/// Bytes to [`Key`]s, one byte at a time (escape sequences and UTF-8 may arrive split).
#[derive(Debug, Default)]
pub struct Decoder {
    state: State,
    buf: Vec<u8>,
}

impl Decoder {
    /// Takes one byte; returns the key it completes, if any.
    pub fn push(&mut self, b: u8) -> Option<Key> {
        match self.state {
            State::Ground => self.ground(b),
            State::Esc => {
                self.state = State::Ground;
                Some(match b {
                    b'[' => {
                        self.state = State::Csi;
                        self.buf.clear();
                        return None;
                    }
                    b'O' => {
                        self.state = State::Ss3;
                        return None;
                    }
                    0x1b => {
                        self.state = State::Esc;
                        return None;
                    }
                    b'b' | b'B' => Key::WordLeft,
                    b'f' | b'F' => Key::WordRight,
                    b'd' | b'D' => Key::KillWordForward,
                    0x7f | 0x08 => Key::KillWordBack,
                    _ => Key::Ignored,
                })
            }
            State::Csi => match b {
                0x20..=0x3f => {
                    if self.buf.len() < MAX_SEQUENCE {
                        self.buf.push(b);
                    }
                    None
                }
                0x40..=0x7e => {
                    self.state = State::Ground;
                    Some(csi(&self.buf, b))
                }
                // not part of a sequence: the sequence was broken, the byte stands alone
                _ => {
                    self.state = State::Ground;
                    self.ground(b)
                }
            },
            State::Ss3 => {
                self.state = State::Ground;
                Some(match b {
                    b'A' => Key::Up,
                    b'B' => Key::Down,
                    b'C' => Key::Right,
                    b'D' => Key::Left,
                    b'H' => Key::Home,
                    b'F' => Key::End,
                    _ => Key::Ignored,
                })
            }
            State::Utf8(len) => {
                if !(0x80..=0xbf).contains(&b) {
                    // a truncated character: dropped; the byte starts afresh
                    self.state = State::Ground;
                    return self.ground(b);
                }
                self.buf.push(b);
                if self.buf.len() < len {
                    return None;
                }
                self.state = State::Ground;
                let c = std::str::from_utf8(&self.buf)
                    .ok()
                    .and_then(|s| s.chars().next());
                Some(match c {
                    Some(c) if !c.is_control() => Key::Char(c),
                    _ => Key::Ignored,
                })
            }
        }
    }

    fn ground(&mut self, b: u8) -> Option<Key> {
        let start_utf8 = |this: &mut Decoder, len: usize| {
            this.state = State::Utf8(len);
            this.buf.clear();
            this.buf.push(b);
            None
        };
        Some(match b {
            0x01 => Key::Home,
            0x02 => Key::Left,
            0x03 => Key::Interrupt,
            0x04 => Key::EndOrDelete,
            0x05 => Key::End,
            0x06 => Key::Right,
            0x07 => Key::Cancel,
            0x08 | 0x7f => Key::Backspace,
            0x09 => Key::Tab,
            0x0a | 0x0d => Key::Enter,
            0x0b => Key::KillToEnd,
            0x0c => Key::ClearScreen,
            0x0e => Key::Down,
            0x10 => Key::Up,
            0x12 => Key::SearchBack,
            0x14 => Key::Transpose,
            0x15 => Key::KillToStart,
            0x17 => Key::KillWordBack,
            0x19 => Key::Yank,
            0x1a => Key::Suspend,
            0x1b => {
                self.state = State::Esc;
                return None;
            }
            0x20..=0x7e => Key::Char(b as char),
            0xc2..=0xdf => return start_utf8(self, 2),
            0xe0..=0xef => return start_utf8(self, 3),
            0xf0..=0xf4 => return start_utf8(self, 4),
            _ => Key::Ignored,
        })
    }
}

/// A CSI sequence (`ESC [ params final`).
fn csi(params: &[u8], fin: u8) -> Key {
    let text = std::str::from_utf8(params).unwrap_or("");
    let mut nums = text.split(';').map(|n| n.parse::<u32>().ok());
    let first = nums.next().flatten();
    let modifier = nums.next().flatten();
    // xterm modifiers: 3 Alt, 5 Ctrl
    let by_word = matches!(modifier, Some(3 | 5));
    match fin {
        b'A' => Key::Up,
        b'B' => Key::Down,
        b'C' if by_word => Key::WordRight,
        b'D' if by_word => Key::WordLeft,
        b'C' => Key::Right,
        b'D' => Key::Left,
        b'H' => Key::Home,
        b'F' => Key::End,
        b'~' => match first {
            Some(1 | 7) => Key::Home,
            Some(4 | 8) => Key::End,
            Some(3) => Key::Delete,
            _ => Key::Ignored,
        },
        _ => Key::Ignored,
    }
}

/// How reading a line ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Enter: the line.
    Line(String),
    /// Ctrl-D on an empty line, or the terminal went away.
    Eof,
    /// Ctrl-C: the line is dropped.
    Interrupted,
}

/// What the editor wants after a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Keep reading (redraw first).
    Edit,
    /// The line is finished.
    Done(Outcome),
    /// Suspend the process (Ctrl-Z), then redraw.
    Suspend,
}

/// What a completer proposes for the word before the cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// Byte offset in the line where the word starts.
    pub start: usize,
    /// Text to put in place of the line from `start` to the cursor, when completion
    /// can extend the word (already quoted for the command-line parser).
    pub insert: Option<String>,
    /// The names to list when the word is ambiguous (already safe to print).
    pub choices: Vec<String>,
}

/// Proposes completions; the editor asks on Tab.
pub trait Complete {
    /// The completion of the word that ends at byte `cursor` of `line`, if any.
    fn complete(&mut self, line: &str, cursor: usize) -> Option<Completion>;
}

/// An incremental reverse search in progress (Ctrl-R).
#[derive(Debug)]
struct Search {
    query: String,
    /// The history entry shown.
    hit: Option<usize>,
    failed: bool,
    /// The line and cursor before the search, for Ctrl-G.
    saved: (Vec<char>, usize),
}

/// Most choices a listing shows.
const MAX_LISTED: usize = 100;

/// The line being edited and everything the keys act on.
#[derive(Debug, Default)]
pub struct Editor {
    line: Vec<char>,
    cursor: usize,
    /// First character shown (the line scrolls sideways).
    scroll: usize,
    /// What Ctrl-K/U/W cut last, for Ctrl-Y.
    killed: Vec<char>,
    /// The history entry shown (Up/Down), and the new line put aside meanwhile.
    history_pos: Option<usize>,
    stash: Vec<char>,
    search: Option<Search>,
    last_was_tab: bool,
    /// Written before the next redraw: a listing, a screen clear, a bell.
    pending: String,
    decoder: Decoder,
}

impl Editor {
    /// Starts a new, empty line (what was cut stays for Ctrl-Y).
    pub fn reset(&mut self) {
        let killed = std::mem::take(&mut self.killed);
        *self = Editor {
            killed,
            ..Editor::default()
        };
    }

    /// The line as it stands.
    pub fn text(&self) -> String {
        self.line.iter().collect()
    }

    /// The cursor, in characters from the start of the line.
    #[cfg(test)]
    fn cursor(&self) -> usize {
        self.cursor
    }

    /// Feeds one byte; `cols` is the terminal's width (for listings).
    pub fn feed(
        &mut self,
        b: u8,
        history: &[String],
        completer: &mut dyn Complete,
        cols: usize,
    ) -> Step {
        match self.decoder.push(b) {
            Some(key) => self.key(key, history, completer, cols),
            None => Step::Edit,
        }
    }

    /// Applies one key.
    pub fn key(
        &mut self,
        key: Key,
        history: &[String],
        completer: &mut dyn Complete,
        cols: usize,
    ) -> Step {
        if self.search.is_some() {
            match self.search_key(key, history) {
                Some(step) => return step,
                // a key that ends the search and then acts as usual
                None => self.search = None,
            }
        }
        let was_tab = std::mem::replace(&mut self.last_was_tab, false);
        match key {
            Key::Char(c) => self.insert(&[c]),
            Key::Enter => {
                self.cursor = self.line.len();
                return Step::Done(Outcome::Line(self.text()));
            }
            Key::Tab => {
                self.complete(completer, was_tab, cols);
                self.last_was_tab = true;
            }
            Key::Backspace => {
                if self.cursor > 0 {
                    self.cursor -= 1;
                    self.line.remove(self.cursor);
                }
            }
            Key::Delete => self.delete(),
            Key::EndOrDelete if self.line.is_empty() => return Step::Done(Outcome::Eof),
            Key::EndOrDelete => self.delete(),
            Key::Left => self.cursor = self.cursor.saturating_sub(1),
            Key::Right => self.cursor = (self.cursor + 1).min(self.line.len()),
            Key::Home => self.cursor = 0,
            Key::End => self.cursor = self.line.len(),
            Key::WordLeft => self.cursor = self.word_start(self.cursor, |c| c.is_alphanumeric()),
            Key::WordRight => self.cursor = self.word_end(self.cursor),
            Key::Up => self.history_move(history, true),
            Key::Down => self.history_move(history, false),
            Key::Interrupt => {
                self.cursor = self.line.len();
                return Step::Done(Outcome::Interrupted);
            }
            Key::KillToEnd => {
                self.killed = self.line.split_off(self.cursor);
            }
            Key::KillToStart => {
                self.killed = self.line.drain(..self.cursor).collect();
                self.cursor = 0;
            }
            Key::KillWordBack => {
                let start = self.word_start(self.cursor, |c| !c.is_whitespace());
                self.killed = self.line.drain(start..self.cursor).collect();
                self.cursor = start;
            }
            Key::KillWordForward => {
                let end = self.word_end(self.cursor);
                self.killed = self.line.drain(self.cursor..end).collect();
            }
            Key::Yank => self.insert(&self.killed.clone()),
            Key::Transpose => self.transpose(),
            Key::ClearScreen => self.pending.push_str("\x1b[H\x1b[2J"),
            Key::SearchBack => {
                self.search = Some(Search {
                    query: String::new(),
                    hit: None,
                    failed: false,
                    saved: (self.line.clone(), self.cursor),
                })
            }
            Key::Suspend => return Step::Suspend,
            Key::Cancel | Key::Ignored => {}
        }
        Step::Edit
    }

    fn insert(&mut self, chars: &[char]) {
        let bytes: usize = self.line.iter().map(|c| c.len_utf8()).sum::<usize>()
            + chars.iter().map(|c| c.len_utf8()).sum::<usize>();
        if bytes > super::line::MAX_LINE {
            self.pending.push('\x07');
            return;
        }
        for &c in chars.iter().filter(|c| !c.is_control()) {
            self.line.insert(self.cursor, c);
            self.cursor += 1;
        }
    }

    fn delete(&mut self) {
        if self.cursor < self.line.len() {
            self.line.remove(self.cursor);
        }
    }

    /// Start of the word before `from`: back over what is not a word character, then
    /// over word characters.
    fn word_start(&self, from: usize, word: impl Fn(char) -> bool) -> usize {
        let mut i = from;
        while i > 0 && !word(self.line[i - 1]) {
            i -= 1;
        }
        while i > 0 && word(self.line[i - 1]) {
            i -= 1;
        }
        i
    }

    /// End of the word after `from` (words of letters and digits, as readline's Alt-F).
    fn word_end(&self, from: usize) -> usize {
        let mut i = from;
        let n = self.line.len();
        while i < n && !self.line[i].is_alphanumeric() {
            i += 1;
        }
        while i < n && self.line[i].is_alphanumeric() {
            i += 1;
        }
        i
    }

    fn transpose(&mut self) {
        if self.line.len() < 2 || self.cursor == 0 {
            return;
        }
        if self.cursor == self.line.len() {
            self.line.swap(self.cursor - 2, self.cursor - 1);
        } else {
            self.line.swap(self.cursor - 1, self.cursor);
            self.cursor += 1;
        }
    }

    fn history_move(&mut self, history: &[String], older: bool) {
        let pos = match (self.history_pos, older) {
            (None, true) if !history.is_empty() => {
                self.stash = self.line.clone();
                Some(history.len() - 1)
            }
            (Some(p), true) => Some(p.saturating_sub(1)),
            (Some(p), false) if p + 1 < history.len() => Some(p + 1),
            (Some(_), false) => {
                self.history_pos = None;
                self.line = std::mem::take(&mut self.stash);
                self.cursor = self.line.len();
                return;
            }
            _ => return,
        };
        self.history_pos = pos;
        if let Some(entry) = pos.and_then(|p| history.get(p)) {
            self.line = entry.chars().filter(|c| !c.is_control()).collect();
            self.cursor = self.line.len();
        }
    }

    /// A key during a reverse search: `Some` when the search consumed it, `None` when
    /// the key ends the search (accepting the line found) and then acts as usual.
    fn search_key(&mut self, key: Key, history: &[String]) -> Option<Step> {
        let s = self.search.as_mut()?;
        match key {
            Key::Char(c) => {
                s.query.push(c);
                let from = s.hit.unwrap_or(history.len());
                self.search_from(history, from, true);
            }
            Key::Backspace => {
                s.query.pop();
                self.search_from(history, history.len(), true);
            }
            Key::SearchBack => {
                let from = s.hit.unwrap_or(history.len());
                self.search_from(history, from, false);
            }
            Key::Cancel => {
                let (line, cursor) = std::mem::take(&mut s.saved);
                self.line = line;
                self.cursor = cursor;
                self.search = None;
            }
            Key::Enter => {
                self.search = None;
                self.cursor = self.line.len();
                return Some(Step::Done(Outcome::Line(self.text())));
            }
            _ => return None,
        }
        Some(Step::Edit)
    }

    /// Looks for the query in the entries before `from` (or at it, when `inclusive`),
    /// newest first; shows the one found with the cursor on the match.
    fn search_from(&mut self, history: &[String], from: usize, inclusive: bool) {
        let Some(s) = self.search.as_mut() else {
            return;
        };
        let end = if inclusive { from + 1 } else { from }.min(history.len());
        let found = (0..end).rev().find_map(|i| {
            let at = history[i].find(s.query.as_str())?;
            Some((i, history[i][..at].chars().count()))
        });
        match found {
            Some((i, at)) => {
                s.hit = Some(i);
                s.failed = false;
                self.line = history[i].chars().filter(|c| !c.is_control()).collect();
                self.cursor = at.min(self.line.len());
            }
            None => s.failed = true,
        }
    }

    fn complete(&mut self, completer: &mut dyn Complete, again: bool, cols: usize) {
        let text = self.text();
        let cursor_byte: usize = self.line[..self.cursor].iter().map(|c| c.len_utf8()).sum();
        let Some(c) = completer.complete(&text, cursor_byte) else {
            self.pending.push('\x07');
            return;
        };
        let Some(start) = text
            .get(..c.start)
            .filter(|_| c.start <= cursor_byte)
            .map(|s| s.chars().count())
        else {
            self.pending.push('\x07');
            return;
        };
        let current = &text[c.start..cursor_byte];
        match c.insert {
            Some(ins) if ins != current => {
                let tail = self.line.split_off(self.cursor);
                self.line.truncate(start);
                self.cursor = start;
                let ins: Vec<char> = ins.chars().collect();
                self.insert(&ins);
                self.line.extend(tail);
            }
            _ if again && !c.choices.is_empty() => {
                self.pending.push_str("\r\n");
                self.pending.push_str(&listing(&c.choices, cols));
            }
            _ => self.pending.push('\x07'),
        }
    }

    /// Takes what must be written before the next redraw.
    pub fn take_pending(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    /// Draws the prompt and the line on the current row of a `cols`-wide terminal and
    /// puts the cursor in place; never writes into the last column (no wrap).
    pub fn render(&mut self, prompt: &str, cols: usize) -> String {
        let room_all = cols.max(2) - 1;
        let search_prompt;
        let prompt = match &self.search {
            Some(s) => {
                let failed = if s.failed { "failed " } else { "" };
                search_prompt = format!("({failed}reverse-i-search)'{}': ", s.query);
                search_prompt.as_str()
            }
            None => prompt,
        };
        let prompt = if str_width(prompt) > room_all / 2 {
            shorten_middle(prompt, room_all / 2)
        } else {
            prompt.to_string()
        };
        let room = room_all.saturating_sub(str_width(&prompt)).max(1);
        let width = |chars: &[char]| chars.iter().map(|&c| char_width(c)).sum::<usize>();
        if self.scroll > self.cursor {
            self.scroll = self.cursor;
        }
        while self.scroll < self.cursor && width(&self.line[self.scroll..self.cursor]) + 1 > room {
            self.scroll += 1;
        }
        while self.scroll > 0 && width(&self.line[self.scroll - 1..]) < room {
            self.scroll -= 1;
        }
        let mut shown = String::new();
        let mut used = 0;
        for &c in &self.line[self.scroll..] {
            let w = char_width(c);
            if used + w > room {
                break;
            }
            used += w;
            shown.push(c);
        }
        let col = str_width(&prompt) + width(&self.line[self.scroll..self.cursor]);
        let mut out = format!("\r{prompt}{shown}\x1b[K\r");
        if col > 0 {
            out.push_str(&format!("\x1b[{col}C"));
        }
        out
    }
}

/// Names in columns, row by row, each row ending in `\r\n` (raw mode).
fn listing(choices: &[String], cols: usize) -> String {
    let shown = &choices[..choices.len().min(MAX_LISTED)];
    let widest = shown.iter().map(|c| str_width(c)).max().unwrap_or(0);
    let per_row = ((cols.max(2) - 1) / (widest + 2)).max(1);
    let mut out = String::new();
    for row in shown.chunks(per_row) {
        let mut line = String::new();
        for (i, name) in row.iter().enumerate() {
            let name = shorten_middle(name, cols.max(2) - 1);
            line.push_str(&name);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widest + 2 - str_width(&name)));
            }
        }
        out.push_str(&line);
        out.push_str("\r\n");
    }
    if choices.len() > shown.len() {
        out.push_str(&format!("({} more)\r\n", choices.len() - shown.len()));
    }
    out
}

/// Whether the prompt can use the editor: standard input and output are terminals and
/// `TERM` is not `dumb`.
pub fn usable() -> bool {
    io::stdin().is_terminal()
        && io::stdout().is_terminal()
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// Puts the terminal's saved mode back, however the read ends.
struct Restore<'a> {
    fd: std::os::fd::BorrowedFd<'a>,
    saved: crate::sys::TermMode,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = crate::sys::set_term_mode(self.fd, &self.saved, false);
    }
}

/// The editor on the real terminal: standard input in raw mode while a line is read,
/// the line drawn on standard output.
#[derive(Debug, Default)]
pub struct Terminal {
    editor: Editor,
}

impl Terminal {
    /// A terminal editor (check [`usable`] first).
    pub fn new() -> Terminal {
        Terminal::default()
    }

    /// Reads one line after `prompt` (no control characters in it). Bytes typed ahead
    /// beyond the line stay in standard input for whoever reads next (a `y/N`
    /// question, the next line).
    pub fn read_line(
        &mut self,
        prompt: &str,
        history: &[String],
        completer: &mut dyn Complete,
    ) -> io::Result<Outcome> {
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        let saved = crate::sys::term_mode(fd)?;
        crate::sys::set_term_mode(fd, &saved.raw(), false)?;
        let restore = Restore { fd, saved };
        let mut out = io::stdout();
        self.editor.reset();
        let cols =
            || crate::sys::window_size(io::stdout().as_fd()).map_or(80, |(c, _)| usize::from(c));
        write!(out, "{}", self.editor.render(prompt, cols()))?;
        out.flush()?;
        loop {
            let mut step = Step::Edit;
            {
                let mut input = stdin.lock();
                let bytes = match input.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if bytes.is_empty() {
                    step = Step::Done(Outcome::Eof);
                }
                let width = cols();
                let mut used = 0;
                for &b in bytes {
                    used += 1;
                    step = self.editor.feed(b, history, completer, width);
                    if step != Step::Edit {
                        break;
                    }
                }
                input.consume(used);
            }
            let width = cols();
            let mut screen = self.editor.take_pending();
            screen.push_str(&self.editor.render(prompt, width));
            match step {
                Step::Edit => {}
                Step::Done(outcome) => {
                    if outcome == Outcome::Interrupted {
                        screen.push_str("^C");
                    }
                    screen.push_str("\r\n");
                    write!(out, "{screen}")?;
                    out.flush()?;
                    return Ok(outcome);
                }
                Step::Suspend => {
                    write!(out, "\r\n")?;
                    out.flush()?;
                    crate::sys::set_term_mode(fd, &restore.saved, false)?;
                    crate::sys::suspend_self()?;
                    // continued (`fg`): back to raw mode, the line drawn afresh
                    crate::sys::set_term_mode(fd, &restore.saved.raw(), false)?;
                    screen = self.editor.render(prompt, cols());
                }
            }
            write!(out, "{screen}")?;
            out.flush()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A completer that never proposes anything.
    struct NoCompletion;

    impl Complete for NoCompletion {
        fn complete(&mut self, _line: &str, _cursor: usize) -> Option<Completion> {
            None
        }
    }

    fn hist(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| s.to_string()).collect()
    }

    /// Feeds `bytes` to a fresh editor; returns the outcome (if the line ended) and the
    /// editor.
    fn type_into(bytes: &[u8], history: &[String]) -> (Option<Outcome>, Editor) {
        with_completer(bytes, history, &mut NoCompletion)
    }

    fn with_completer(
        bytes: &[u8],
        history: &[String],
        completer: &mut dyn Complete,
    ) -> (Option<Outcome>, Editor) {
        let mut ed = Editor::default();
        for &b in bytes {
            if let Step::Done(o) = ed.feed(b, history, completer, 80) {
                return (Some(o), ed);
            }
        }
        (None, ed)
    }

    fn line_of(bytes: &[u8]) -> String {
        match type_into(bytes, &[]).0 {
            Some(Outcome::Line(l)) => l,
            other => panic!("no line: {other:?}"),
        }
    }

    #[test]
    fn decodes_keys_and_sequences() {
        let mut d = Decoder::default();
        let keys: Vec<Key> = b"a\x1b[A\x1b[B\x1b[C\x1b[D\x1bOH\x1b[F\x1b[3~\x1b[1;5C\x1b[1;5D\x1b[7~\x1b[4~\x01\x05\x7f\x08\t\r\n\x1bb\x1bf\x1b\x7f\x1b[200~\x1b[?1;2c"
            .iter()
            .filter_map(|&b| d.push(b))
            .collect();
        use Key::*;
        assert_eq!(
            keys,
            [
                Char('a'),
                Up,
                Down,
                Right,
                Left,
                Home,
                End,
                Delete,
                WordRight,
                WordLeft,
                Home,
                End,
                Home,
                End,
                Backspace,
                Backspace,
                Tab,
                Enter,
                Enter,
                WordLeft,
                WordRight,
                KillWordBack,
                Ignored,
                Ignored
            ]
        );
    }

    #[test]
    fn decodes_utf8_split_anywhere_and_drops_what_is_broken() {
        let mut d = Decoder::default();
        let keys: Vec<Key> = "é日🦀"
            .bytes()
            .filter_map(|b| d.push(b))
            .collect::<Vec<_>>();
        assert_eq!(keys, [Key::Char('é'), Key::Char('日'), Key::Char('🦀')]);
        // a lead byte followed by ASCII: the broken character is dropped, the ASCII kept
        let keys: Vec<Key> = b"\xe6\x97x\xff\xc2\x85"
            .iter()
            .filter_map(|&b| d.push(b))
            .collect();
        assert_eq!(
            keys,
            [Key::Char('x'), Key::Ignored, Key::Ignored],
            "U+0085 is a control character"
        );
    }

    #[test]
    fn control_characters_never_enter_the_line() {
        // raw control bytes, an escape sequence that is not a key, C1 controls
        assert_eq!(line_of(b"a\x00\x1b[31mb\x1c\x1d\x1e\x1fc\xc2\x9b\r"), "abc");
    }

    #[test]
    fn cursor_movement_and_insertion() {
        assert_eq!(line_of(b"mkdir ac\x1b[Db\r"), "mkdir abc");
        assert_eq!(line_of(b"kdir d\x01m\x05x\r"), "mkdir dx");
        assert_eq!(line_of(b"ab\x02\x02X\x06\x06Y\r"), "XabY");
        assert_eq!(line_of(b"abc\x1b[H1\x1b[F2\x1bOH3\x1b[4~4\r"), "31abc24");
        // Right at the end and Left at the start stay put
        assert_eq!(line_of(b"\x1b[D\x1b[Da\x1b[C\x1b[Cb\r"), "ab");
    }

    #[test]
    fn deleting() {
        assert_eq!(line_of(b"abcd\x1b[D\x1b[D\x7f\r"), "acd");
        assert_eq!(line_of(b"abcd\x1b[D\x1b[D\x1b[3~\r"), "abd");
        assert_eq!(line_of(b"abcd\x1b[D\x1b[D\x04\r"), "abd", "Ctrl-D deletes");
        assert_eq!(
            line_of(b"abcd\x04\r"),
            "abcd",
            "Ctrl-D at the end does nothing"
        );
        assert_eq!(line_of(b"\x7f\x1b[3~x\r"), "x");
    }

    #[test]
    fn ctrl_d_on_an_empty_line_ends_input() {
        assert_eq!(type_into(b"\x04", &[]).0, Some(Outcome::Eof));
        assert_eq!(type_into(b"ab\x7f\x7f\x04", &[]).0, Some(Outcome::Eof));
    }

    #[test]
    fn ctrl_c_interrupts_and_drops_the_line() {
        let (out, ed) = type_into(b"mkdir junk\x03", &[]);
        assert_eq!(out, Some(Outcome::Interrupted));
        assert_eq!(ed.cursor(), 10);
    }

    #[test]
    fn killing_and_yanking() {
        assert_eq!(
            line_of(b"mkdir g4 tail\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x0b\r"),
            "mkdir g4"
        );
        assert_eq!(line_of(b"rm -r everything\x15mkdir f\r"), "mkdir f");
        assert_eq!(line_of(b"mkdir junk more\x17\x17e2\r"), "mkdir e2");
        assert_eq!(
            line_of(b"mkdir a  \x17b\r"),
            "mkdir b",
            "Ctrl-W takes the blanks too"
        );
        assert_eq!(line_of(b"cd docs/sub\x17\x19\x19\r"), "cd docs/subdocs/sub");
        assert_eq!(
            line_of(b"cd docs/sub\x1b\x7f\r"),
            "cd ",
            "Alt-Backspace as Ctrl-W"
        );
        assert_eq!(
            line_of(b"one two\x01\x1bd\r"),
            " two",
            "Alt-D cuts a word forward"
        );
        assert_eq!(line_of(b"ab\x14\r"), "ba");
        assert_eq!(line_of(b"abc\x02\x02\x14\r"), "bac");
    }

    #[test]
    fn word_movement() {
        assert_eq!(line_of(b"get docs/file\x1bbX\r"), "get docs/Xfile");
        assert_eq!(
            line_of(b"get docs/file\x1b[1;5D\x1b[1;5DX\r"),
            "get Xdocs/file"
        );
        assert_eq!(line_of(b"get docs/file\x01\x1bfX\r"), "getX docs/file");
    }

    #[test]
    fn utf8_editing_works_on_characters() {
        assert_eq!(
            line_of(
                "mkdir ünï"
                    .as_bytes()
                    .iter()
                    .chain(b"\x1b[D\x7f\r")
                    .copied()
                    .collect::<Vec<_>>()
                    .as_slice()
            ),
            "mkdir üï"
        );
        let (_, ed) = type_into("日本".as_bytes(), &[]);
        assert_eq!(ed.cursor(), 2);
    }

    #[test]
    fn history_up_and_down() {
        let h = hist(&["ls", "cd docs", "pwd"]);
        let line = |bytes: &[u8]| match type_into(bytes, &h).0 {
            Some(Outcome::Line(l)) => l,
            o => panic!("{o:?}"),
        };
        assert_eq!(line(b"\x1b[A\r"), "pwd");
        assert_eq!(line(b"\x1b[A\x1b[A\r"), "cd docs");
        assert_eq!(
            line(b"\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A\r"),
            "ls",
            "stops at the oldest"
        );
        assert_eq!(
            line(b"\x1b[A\x7fx\r"),
            "pwx",
            "a line from the history can be edited"
        );
        // Down past the newest brings back what was being typed
        assert_eq!(line(b"new\x1b[A\x1b[A\x1b[B\x1b[B\r"), "new");
        assert_eq!(line(b"\x10\x10\x0e\r"), "pwd", "Ctrl-P and Ctrl-N");
        assert_eq!(line_of(b"\x1b[Ax\r"), "x", "no history: Up does nothing");
    }

    #[test]
    fn reverse_search() {
        let h = hist(&["mkdir d1x", "ls docs", "mkdir d2", "pwd"]);
        let run = |bytes: &[u8]| type_into(bytes, &h);
        assert_eq!(run(b"\x12d1\r").0, Some(Outcome::Line("mkdir d1x".into())));
        // newest match first; Ctrl-R again goes further back
        assert_eq!(
            run(b"\x12mkdir\r").0,
            Some(Outcome::Line("mkdir d2".into()))
        );
        assert_eq!(
            run(b"\x12mkdir\x12\r").0,
            Some(Outcome::Line("mkdir d1x".into()))
        );
        // another key accepts the line found and then acts
        assert_eq!(
            run(b"\x12d1\x05y\r").0,
            Some(Outcome::Line("mkdir d1xy".into()))
        );
        // Ctrl-G gives back the line as it was
        assert_eq!(
            run(b"typed\x12docs\x07!\r").0,
            Some(Outcome::Line("typed!".into()))
        );
        // the cursor sits on the match
        let (_, ed) = run(b"\x12docs");
        assert_eq!((ed.text().as_str(), ed.cursor()), ("ls docs", 3));
        let (_, mut ed) = run(b"\x12zzz");
        assert!(
            ed.render("fos:/> ", 80)
                .contains("(failed reverse-i-search)'zzz': ")
        );
    }

    /// Proposes fixed completions, remembering what it was asked.
    struct Fixed(Option<Completion>, Vec<(String, usize)>);

    impl Complete for Fixed {
        fn complete(&mut self, line: &str, cursor: usize) -> Option<Completion> {
            self.1.push((line.to_string(), cursor));
            self.0.clone()
        }
    }

    #[test]
    fn tab_inserts_a_completion_and_lists_on_the_second_press() {
        let mut c = Fixed(
            Some(Completion {
                start: 4,
                insert: Some("'my file.txt' ".into()),
                choices: vec![],
            }),
            vec![],
        );
        let (out, _) = with_completer(b"get my\x01\x05\t\r", &[], &mut c);
        assert_eq!(out, Some(Outcome::Line("get 'my file.txt' ".into())));
        assert_eq!(c.1, [("get my".to_string(), 6)]);
        // in the middle of a line: the text after the cursor stays
        let (out, _) = with_completer(
            b"get my tail\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\t\r",
            &[],
            &mut c,
        );
        assert_eq!(out, Some(Outcome::Line("get 'my file.txt'  tail".into())));
        let mut c = Fixed(
            Some(Completion {
                start: 4,
                insert: None,
                choices: vec!["a.txt".into(), "b.txt".into()],
            }),
            vec![],
        );
        let (_, mut ed) = with_completer(b"get \t", &[], &mut c);
        assert_eq!(ed.take_pending(), "\x07", "the first Tab only rings");
        let (_, mut ed) = with_completer(b"get \t\t", &[], &mut c);
        assert_eq!(ed.take_pending(), "\x07\r\na.txt  b.txt\r\n");
        // a completer's control characters are never inserted
        let mut c = Fixed(
            Some(Completion {
                start: 0,
                insert: Some("l\x1b[2Js ".into()),
                choices: vec![],
            }),
            vec![],
        );
        let (out, _) = with_completer(b"l\t\r", &[], &mut c);
        assert_eq!(out, Some(Outcome::Line("l[2Js ".into())));
    }

    #[test]
    fn clear_screen_is_a_redraw_not_a_character() {
        let (out, mut ed) = type_into(b"ls\x0c", &[]);
        assert_eq!(out, None);
        assert_eq!(ed.take_pending(), "\x1b[H\x1b[2J");
        assert_eq!(ed.text(), "ls");
    }

    #[test]
    fn rendering_fits_and_scrolls_sideways() {
        let mut ed = Editor::default();
        for b in b"ls" {
            ed.feed(*b, &[], &mut NoCompletion, 80);
        }
        assert_eq!(ed.render("fos:/> ", 80), "\rfos:/> ls\x1b[K\r\x1b[9C");
        ed.feed(0x01, &[], &mut NoCompletion, 80);
        assert_eq!(ed.render("fos:/> ", 80), "\rfos:/> ls\x1b[K\r\x1b[7C");
        // a line wider than the terminal: the part around the cursor is shown, and the
        // drawn row never reaches the last column
        let mut ed = Editor::default();
        let long: String = (0..100)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        for b in long.bytes() {
            ed.feed(b, &[], &mut NoCompletion, 40);
        }
        let screen = ed.render("fos:/> ", 40);
        let shown = screen
            .strip_prefix("\r")
            .and_then(|s| s.split("\x1b[K").next())
            .unwrap();
        assert!(str_width(shown) <= 39, "{shown:?}");
        assert!(shown.ends_with(&long[long.len() - 10..]), "{shown:?}");
        assert!(screen.ends_with("\x1b[38C"), "{screen:?}");
        ed.feed(0x01, &[], &mut NoCompletion, 40);
        let screen = ed.render("fos:/> ", 40);
        assert!(screen.starts_with("\rfos:/> abcdef"), "{screen:?}");
        assert!(screen.ends_with("\r\x1b[7C"), "{screen:?}");
        // wide characters count two columns
        let mut ed = Editor::default();
        for b in "日本".bytes() {
            ed.feed(b, &[], &mut NoCompletion, 80);
        }
        assert!(ed.render("> ", 80).ends_with("\r\x1b[6C"));
    }

    #[test]
    fn rendering_survives_any_width() {
        let mut ed = Editor::default();
        for b in "get 日本語 a long line".bytes() {
            ed.feed(b, &[], &mut NoCompletion, 80);
        }
        for cols in 0..40 {
            for _ in 0..3 {
                ed.feed(0x02, &[], &mut NoCompletion, cols);
                let screen = ed.render("fos:/a/long/remote/dir> ", cols);
                let shown = screen[1..].split("\x1b[K").next().unwrap();
                assert!(str_width(shown) < cols.max(2), "{cols}: {screen:?}");
            }
        }
    }

    #[test]
    fn listing_fits_columns() {
        let names: Vec<String> = (0..5).map(|i| format!("name{i}")).collect();
        assert_eq!(
            listing(&names, 20),
            "name0  name1\r\nname2  name3\r\nname4\r\n"
        );
        let many: Vec<String> = (0..150).map(|i| format!("{i}")).collect();
        assert!(listing(&many, 80).ends_with("(50 more)\r\n"));
    }
}

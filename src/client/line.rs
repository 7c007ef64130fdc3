//! Splits command text into commands and words, as a shell does: `;` or a newline
//! ends a command, whitespace separates words, a backslash outside quotes takes the
//! next character literally (`my\ file.txt`; a backslash before a newline joins the
//! lines), double quotes group words (inside them `\"` is a quote and `\\` a
//! backslash), single quotes group words literally, `$'...'` groups words with C-style
//! escapes (`\n`, `\t`, `\xHH`, `\uHHHH`; how names with control characters are shown,
//! so they can be pasted back), and `#` at the start of a word starts a comment that
//! runs to the end of the line. A command that starts with `!` runs the rest of its
//! line in the local shell: it becomes the two words `!` and that text.

use crate::Error;

/// Longest command text accepted at once.
pub const MAX_LINE: usize = 64 * 1024;

/// Parses `text` into commands, each a non-empty list of words.
pub fn parse(text: &str) -> Result<Vec<Vec<String>>, Error> {
    if text.len() > MAX_LINE {
        return Err(Error::Usage(format!(
            "command text longer than {MAX_LINE} bytes"
        )));
    }
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars().peekable();
    let end_word = |word: &mut Option<String>, words: &mut Vec<String>| {
        if let Some(w) = word.take() {
            words.push(w);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '!' if word.is_none() && words.is_empty() => {
                // the rest of the line is for the local shell, as it is
                let mut rest = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '\n' {
                        break;
                    }
                    rest.push(c);
                    chars.next();
                }
                commands.push(vec!["!".to_string(), rest.trim().to_string()]);
            }
            '\\' => match chars.next() {
                None => {
                    return Err(Error::Usage(
                        "a backslash at the end of the line escapes nothing".into(),
                    ));
                }
                // a continued line
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
            },
            '$' if chars.peek() == Some(&'\'') => {
                chars.next();
                let w = word.get_or_insert_with(String::new);
                ansi_c_quoted(&mut chars, w)?;
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => return Err(Error::Usage("unterminated double quote".into())),
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some('"') | Some('\\') => w.push(chars.next().unwrap_or('\\')),
                            _ => w.push('\\'),
                        },
                        Some(c) => w.push(c),
                    }
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => return Err(Error::Usage("unterminated single quote".into())),
                        Some('\'') => break,
                        Some(c) => w.push(c),
                    }
                }
            }
            '#' if word.is_none() => {
                // comment: skip to the end of the line (the newline still ends the command)
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            ';' | '\n' => {
                end_word(&mut word, &mut words);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            c if c.is_whitespace() => end_word(&mut word, &mut words),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut word, &mut words);
    if !words.is_empty() {
        commands.push(words);
    }
    Ok(commands)
}

/// Reads the rest of a `$'...'` word (after its opening quote) into `w`.
fn ansi_c_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    w: &mut String,
) -> Result<(), Error> {
    let unterminated = || Error::Usage("unterminated $'...' quote".into());
    loop {
        match chars.next().ok_or_else(unterminated)? {
            '\'' => return Ok(()),
            '\\' => {
                let c = chars.next().ok_or_else(unterminated)?;
                let simple = match c {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    'e' | 'E' => Some('\u{1b}'),
                    'a' => Some('\u{7}'),
                    'b' => Some('\u{8}'),
                    'f' => Some('\u{c}'),
                    'v' => Some('\u{b}'),
                    '\\' | '\'' | '"' | '?' => Some(c),
                    _ => None,
                };
                if let Some(s) = simple {
                    w.push(s);
                    continue;
                }
                let digits = match c {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    // as bash does: an unknown escape stays as it is
                    other => {
                        w.push('\\');
                        w.push(other);
                        continue;
                    }
                };
                let mut hex = String::new();
                while hex.len() < digits && chars.peek().is_some_and(char::is_ascii_hexdigit) {
                    hex.extend(chars.next());
                }
                let value = u32::from_str_radix(&hex, 16)
                    .map_err(|_| Error::Usage(format!("\\{c} needs hex digits in $'...'")))?;
                // \x gives one byte: beyond ASCII it would be half a character
                let ch = (c != 'x' || value < 0x80)
                    .then(|| char::from_u32(value))
                    .flatten()
                    .ok_or_else(|| {
                        Error::Usage(format!("\\{c}{hex} is not a character in $'...'"))
                    })?;
                w.push(ch);
            }
            c => w.push(c),
        }
    }
}

/// Whether a name shows as it is: no control characters, no invisible formatting ones
/// (bidirectional overrides, zero-width characters) that would make it look like
/// another.
fn shows_as_is(c: char) -> bool {
    !(c.is_control()
        || matches!(c as u32,
            0x061C | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF))
}

/// A name for printing: as it is, unless it holds a control or invisible character;
/// then written as `$'...'` with those characters escaped, which [`parse`] reads back
/// as the same name (so it can be pasted into a command).
pub fn shown_name(name: &str) -> String {
    if name.chars().all(shows_as_is) {
        return name.to_string();
    }
    let mut out = String::from("$'");
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && !shows_as_is(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if !shows_as_is(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<Vec<String>> {
        parse(s).unwrap()
    }

    #[test]
    fn words_and_commands() {
        assert_eq!(
            p("ls; cd d\npwd"),
            vec![vec!["ls"], vec!["cd", "d"], vec!["pwd"]]
        );
        assert_eq!(p("  put   a  b  "), vec![vec!["put", "a", "b"]]);
        assert!(p(" ; ;\n").is_empty());
    }

    #[test]
    fn quotes() {
        assert_eq!(p(r#"put "my file.txt""#), vec![vec!["put", "my file.txt"]]);
        assert_eq!(
            p(r#"put "a \"q\" \\ \n""#),
            vec![vec!["put", r#"a "q" \ \n"#]]
        );
        assert_eq!(
            p("get 'data/2026-*' 'x;y'"),
            vec![vec!["get", "data/2026-*", "x;y"]]
        );
        assert_eq!(p(r#"mkdir "";"#), vec![vec!["mkdir", ""]]);
        assert_eq!(p(r#"a"b c"d"#), vec![vec!["ab cd"]]);
        assert!(parse(r#"put "open"#).is_err());
        assert!(parse("put 'open").is_err());
    }

    #[test]
    fn comments() {
        assert_eq!(
            p("# header\nls # trailing\npwd"),
            vec![vec!["ls"], vec!["pwd"]]
        );
        assert_eq!(p("put a#b"), vec![vec!["put", "a#b"]]);
        assert_eq!(p("put '#x'"), vec![vec!["put", "#x"]]);
    }

    #[test]
    fn backslashes_escape_as_in_a_shell() {
        assert_eq!(
            p(r"get docs/my\ file.txt"),
            vec![vec!["get", "docs/my file.txt"]]
        );
        assert_eq!(
            p(r"put a\;b \#c \\d"),
            vec![vec!["put", "a;b", "#c", "\\d"]]
        );
        assert_eq!(p(r#"put \"q\' x"#), vec![vec!["put", "\"q'", "x"]]);
        assert_eq!(
            p("mkdir a\\\nb"),
            vec![vec!["mkdir", "ab"]],
            "a continued line"
        );
        assert!(parse("put a\\").is_err(), "a backslash at the very end");
    }

    #[test]
    fn ansi_c_quotes_and_shown_names_round_trip() {
        assert_eq!(
            p(r"get $'a\tb\x1bc\u00e9'"),
            vec![vec!["get", "a\tb\u{1b}cé"]]
        );
        assert_eq!(p(r"get x$'\n'y"), vec![vec!["get", "x\ny"]]);
        assert!(parse(r"get $'\xff'").is_err(), "half a character");
        assert!(parse("get $'open").is_err());
        for name in [
            "plain",
            "esc\u{1b}[2Jx",
            "new\nline",
            "it's\u{7}",
            "back\\slash\u{1}",
            "bidi\u{202e}txt",
            "c1\u{85}",
            "tab\there",
        ] {
            let shown = shown_name(name);
            assert!(
                !shown.chars().any(|c| c.is_control()),
                "{name:?} -> {shown}"
            );
            assert_eq!(
                parse(&format!("get {shown}")).unwrap(),
                vec![vec!["get", name]],
                "{name:?} -> {shown}"
            );
        }
        assert_eq!(
            shown_name("my file.txt"),
            "my file.txt",
            "only what needs it"
        );
        assert_eq!(shown_name("a\u{1b}b"), r"$'a\x1bb'");
    }

    #[test]
    fn a_bang_runs_the_rest_of_the_line_locally() {
        assert_eq!(
            p("!ls -l; echo 'x'\npwd"),
            vec![vec!["!", "ls -l; echo 'x'"], vec!["pwd"]]
        );
        assert_eq!(
            p("cd a; ! uname"),
            vec![vec!["cd", "a"], vec!["!", "uname"]]
        );
        assert_eq!(p("!"), vec![vec!["!", ""]]);
        assert_eq!(p("put a!b"), vec![vec!["put", "a!b"]]);
    }
}

//! Splits command text into commands and words: `;` or a newline ends a command,
//! whitespace separates words, double quotes group words (inside them `\"` is a quote
//! and `\\` a backslash), single quotes group words literally, and `#` at the start of
//! a word starts a comment that runs to the end of the line.

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
}

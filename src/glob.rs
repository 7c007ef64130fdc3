//! Shell-style wildcards for one path component: `*` (any run), `?` (one character),
//! `[abc]`, `[a-z]` and `[!a-z]`/`[^a-z]` (a set). A leading `.` in a name is only
//! matched by a pattern that starts with `.`, as in the shell.
//!
//! A pattern is compiled once ([`Pattern::new`]) and run as a set of states over the
//! name, one pass, no backtracking: matching costs at most (pattern length + 1) x
//! (name length + 1) steps, whatever the pattern (`*a*a*a*b`, a thousand unclosed
//! `[`). Patterns from the network are bounded as well ([`check`]), and a caller can
//! give the matching of many names one budget of steps ([`Pattern::matches_within`]).

/// Longest wildcard component a client may send, in bytes: a name is at most 255.
pub const MAX_COMPONENT: usize = 255;
/// Longest whole pattern, in bytes (as long as a path may be).
pub const MAX_PATTERN: usize = 4096;
/// Most wildcard components in one pattern.
pub const MAX_WILD_COMPONENTS: usize = 16;
/// Matching steps one server-side expansion may spend over all names it looks at
/// (tens of milliseconds of CPU); beyond it the pattern is refused as too costly.
pub const MAX_STEPS: u64 = 16_000_000;
/// Steps of that budget one directory listing costs a server-side expansion. A listing
/// (opened beneath the root, read, every entry stat'ed) costs far more than matching a
/// name, and `..` lets a pattern list the same directories again and again
/// (`*/../*/..`): such a pattern must run out of budget, not take seconds of CPU.
pub const LIST_STEPS: u64 = 4096;

/// Whether `s` contains any wildcard character.
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Checks a pattern from a client against the bounds: at most `MAX_PATTERN` bytes,
/// no NUL, at most `MAX_WILD_COMPONENTS` components with wildcards, each at most
/// `MAX_COMPONENT` bytes. The error says which bound, for the reply.
pub fn check(pattern: &str) -> Result<(), &'static str> {
    if pattern.len() > MAX_PATTERN {
        return Err("pattern longer than 4096 bytes");
    }
    if pattern.contains('\0') {
        return Err("pattern contains a NUL byte");
    }
    let mut wild = 0;
    for comp in pattern.split('/').filter(|c| has_wildcards(c)) {
        if comp.len() > MAX_COMPONENT {
            return Err("wildcard component longer than 255 bytes");
        }
        wild += 1;
    }
    if wild > MAX_WILD_COMPONENTS {
        return Err("more than 16 components with wildcards");
    }
    Ok(())
}

/// Whether `name` matches `pattern` (compiles it each time; see `Pattern` to match
/// many names).
pub fn matches(pattern: &str, name: &str) -> bool {
    Pattern::new(pattern).matches(name)
}

/// The matching spent its budget of steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooCostly;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
    Class {
        negate: bool,
        items: Vec<(char, char)>,
    },
}

impl Token {
    /// Whether this (non-star) token consumes `c`.
    fn accepts(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == c,
            Token::Any => true,
            Token::Star => false,
            Token::Class { negate, items } => {
                items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negate
            }
        }
    }
}

/// A compiled wildcard pattern for one path component.
#[derive(Debug, Clone)]
pub struct Pattern {
    tokens: Vec<Token>,
    /// The pattern starts with `.` (only then may it match a hidden name).
    dot: bool,
}

impl Pattern {
    /// Compiles `pattern`. Never fails: an unclosed `[` is an ordinary character.
    pub fn new(pattern: &str) -> Pattern {
        let p: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::with_capacity(p.len());
        let mut i = 0;
        while i < p.len() {
            let (token, len) = match p[i] {
                // `**` is `*`: one state, so runs of stars cost nothing extra
                '*' if tokens.last() == Some(&Token::Star) => {
                    i += 1;
                    continue;
                }
                '*' => (Token::Star, 1),
                '?' => (Token::Any, 1),
                '[' => class(&p[i..]).unwrap_or((Token::Char('['), 1)),
                c => (Token::Char(c), 1),
            };
            tokens.push(token);
            i += len;
        }
        Pattern {
            tokens,
            dot: pattern.starts_with('.'),
        }
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let mut unlimited = u64::MAX;
        self.matches_within(name, &mut unlimited).unwrap_or(false)
    }

    /// Whether `name` matches, spending steps from `budget` (one per live state per
    /// character, and one per character); [`TooCostly`] once it is spent.
    pub fn matches_within(&self, name: &str, budget: &mut u64) -> Result<bool, TooCostly> {
        if name.starts_with('.') && !self.dot {
            return Ok(false);
        }
        let n = self.tokens.len();
        // state i: the first i tokens have matched the name so far
        let mut cur = States::new(n + 1);
        let mut next = States::new(n + 1);
        self.enter(&mut cur, 0);
        for c in name.chars() {
            next.clear();
            let mut steps = 1;
            for i in cur.iter() {
                steps += 1;
                match self.tokens.get(i) {
                    Some(Token::Star) => self.enter(&mut next, i),
                    Some(t) if t.accepts(c) => self.enter(&mut next, i + 1),
                    _ => {}
                }
            }
            *budget = budget.checked_sub(steps).ok_or(TooCostly)?;
            if next.is_empty() {
                return Ok(false);
            }
            std::mem::swap(&mut cur, &mut next);
        }
        Ok(cur.contains(n))
    }

    /// Adds state `i`, and the state after it if token `i` is a star (which may match
    /// nothing). Stars never follow stars, so one step is the whole closure.
    fn enter(&self, set: &mut States, i: usize) {
        set.insert(i);
        if self.tokens.get(i) == Some(&Token::Star) {
            set.insert(i + 1);
        }
    }
}

/// A set of states, as bits.
#[derive(Debug)]
struct States(Vec<u64>);

impl States {
    fn new(n: usize) -> States {
        States(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn clear(&mut self) {
        self.0.iter_mut().for_each(|w| *w = 0);
    }
    fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(k, &word)| {
            let mut w = word;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(k * 64 + bit)
            })
        })
    }
}

/// Parses the class at the start of `p` (which begins with `[`): the token and its
/// length in characters, or `None` if the class is not closed.
fn class(p: &[char]) -> Option<(Token, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(1), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let &lo = p.get(i)?;
        if lo == ']' && !first {
            return Some((Token::Class { negate, items }, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            items.push((lo, p[i + 2]));
            i += 3;
        } else {
            items.push((lo, lo));
            i += 1;
        }
    }
}

/// Most paths one pattern may expand to.
pub const MAX_MATCHES: usize = 10_000;

/// Expands a pattern against the local file system (for `put`): wildcards may appear
/// in any component; the result is sorted. A component without wildcards is taken
/// literally and must exist.
pub fn expand_local(pattern: &str) -> std::io::Result<Vec<std::path::PathBuf>> {
    use std::path::PathBuf;
    let mut bases: Vec<PathBuf> = vec![if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in &bases {
            if !has_wildcards(comp) {
                next.push(base.join(comp));
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let compiled = Pattern::new(comp);
            for e in rd.flatten() {
                if let Some(name) = e.file_name().to_str()
                    && compiled.matches(name)
                {
                    next.push(base.join(name));
                }
            }
            if next.len() > MAX_MATCHES {
                return Err(std::io::Error::other(format!(
                    "{pattern}: more than {MAX_MATCHES} matches"
                )));
            }
        }
        bases = next;
    }
    let mut out: Vec<PathBuf> = bases
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("*.log", "a.log"));
        assert!(!matches("*.log", "a.log.1"));
        assert!(matches("2026-*", "2026-01-02"));
        assert!(matches("?.txt", "a.txt") && !matches("?.txt", "ab.txt"));
        assert!(matches("[ab]*", "beta") && !matches("[ab]*", "gamma"));
        assert!(matches("f[0-9][!0-9]", "f1x") && !matches("f[0-9][!0-9]", "f12"));
        assert!(matches("f[^a]", "fb") && !matches("f[^a]", "fa"));
        assert!(matches("[]]", "]"));
        assert!(matches("a[", "a["), "unclosed bracket is literal");
        assert!(matches("*", "anything") && !matches("*", ".hidden"));
        assert!(matches(".*", ".hidden"));
        assert!(matches("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaab"));
        assert!(!matches("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaa"));
        assert!(matches("", "") && !matches("", "x"));
        assert!(matches("é*", "été"));
    }

    /// The plain recursive definition, exponential but obviously right.
    fn reference(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| reference(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && reference(&p[1..], &n[1..]),
            Some('[') => match class(p) {
                Some((t, len)) => !n.is_empty() && t.accepts(n[0]) && reference(&p[len..], &n[1..]),
                None => n.first() == Some(&'[') && reference(&p[1..], &n[1..]),
            },
            Some(c) => n.first() == Some(c) && reference(&p[1..], &n[1..]),
        }
    }

    #[test]
    fn agrees_with_the_recursive_definition() {
        let mut x = 0x2545_f491_u32;
        let mut pick = |alphabet: &[char], max: u32| -> String {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = x % (max + 1);
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    alphabet[x as usize % alphabet.len()]
                })
                .collect()
        };
        for _ in 0..20_000 {
            let p = pick(&['a', 'b', '*', '?', '[', ']', '!', '-'], 8);
            let n = pick(&['a', 'b', '[', ']', '!', '-'], 8);
            let want = reference(
                &p.chars().collect::<Vec<_>>(),
                &n.chars().collect::<Vec<_>>(),
            );
            assert_eq!(matches(&p, &n), want, "pattern {p:?} name {n:?}");
        }
    }

    #[test]
    fn cost_is_linear_in_pattern_times_name() {
        let brackets = "[".repeat(255);
        let a = "a".repeat(255);
        for (pattern, name) in [
            (format!("*{}x", "[".repeat(4094)), brackets.clone()),
            (format!("*{}", "[a".repeat(2047)), a.clone()),
            (format!("{}b", "*a".repeat(2047)), a.clone()),
            (format!("{}x", "*?".repeat(2047)), a.clone()),
            (format!("*{}", "[!]".repeat(1365)), brackets.clone()),
        ] {
            let mut budget = u64::MAX;
            let got = Pattern::new(&pattern).matches_within(&name, &mut budget);
            assert_eq!(got, Ok(false), "{pattern}");
            let spent = u64::MAX - budget;
            let bound = (pattern.chars().count() as u64 + 2) * (name.len() as u64 + 1);
            assert!(
                spent <= bound,
                "{spent} steps for a {}-char pattern",
                pattern.len()
            );
        }
        // one budget over many names: spent, then refused
        let p = Pattern::new(&"*?".repeat(100));
        let mut budget = 1_000_000;
        let outcome: Result<Vec<bool>, TooCostly> = (0..1000)
            .map(|_| p.matches_within(&a, &mut budget))
            .collect();
        assert_eq!(outcome, Err(TooCostly));
    }

    #[test]
    fn client_patterns_are_bounded() {
        assert!(check("*.log").is_ok());
        assert!(
            check(&format!("{}/*.log", "d/".repeat(2000))).is_ok(),
            "long literal part"
        );
        assert!(check(&format!("*{}", "[".repeat(254))).is_ok());
        assert!(
            check(&format!("*{}", "[".repeat(255))).is_err(),
            "component over 255"
        );
        assert!(
            check(&"*/".repeat(17)).is_err(),
            "too many wildcard components"
        );
        assert!(check(&"a".repeat(4097)).is_err());
        assert!(check("a\0*").is_err());
    }

    #[test]
    fn detection() {
        assert!(has_wildcards("*.log") && has_wildcards("a?") && has_wildcards("[x]"));
        assert!(!has_wildcards("plain.txt"));
    }
}

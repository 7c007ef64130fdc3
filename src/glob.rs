//! Shell-style wildcards for one path component: `*` (any run), `?` (one character),
//! `[abc]`, `[a-z]` and `[!a-z]`/`[^a-z]` (a set). A leading `.` in a name is only
//! matched by a pattern that starts with `.`, as in the shell. Matching is iterative
//! (no backtracking blow-up on `*a*a*a*b`).

/// Whether `s` contains any wildcard character.
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Whether `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // where to resume after the last `*`: (pattern index after it, name index)
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => match class(&p[pi..], n[ni]) {
                Some((true, len)) => Some(pi + len),
                Some((false, _)) => None,
                // an unclosed `[` is an ordinary character
                None => (n[ni] == '[').then_some(pi + 1),
            },
            Some(&c) => (c == n[ni]).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                // let the last `*` swallow one more character and retry
                pi = sp;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class at the start of `p` (which begins with `[`); returns
/// whether it matched and the class's length, or `None` if the class is not closed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(1), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &lo = p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = p[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
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
            for e in rd.flatten() {
                if let Some(name) = e.file_name().to_str()
                    && matches(comp, name)
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

    #[test]
    fn detection() {
        assert!(has_wildcards("*.log") && has_wildcards("a?") && has_wildcards("[x]"));
        assert!(!has_wildcards("plain.txt"));
    }
}

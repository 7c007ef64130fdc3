//! `--exclude` and `--include`: which paths a sync considers at all.
//!
//! Rules are tried in the order given and the first that matches decides; a path no
//! rule matches is included. A pattern without `/` is matched against the last name
//! of the path (so `*.o` anywhere, `build` at any depth); one with a `/` inside is
//! matched against the whole relative path, name by name (a leading `/` is allowed
//! and means the same); a trailing `/` matches directories only. Wildcards are the
//! shell's (`*`, `?`, `[...]`, see `glob`). An excluded directory is not
//! descended. Excluded paths are never copied and never deleted on either side.

use super::options::Rule;
use crate::glob;

/// The compiled rules.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    rules: Vec<Compiled>,
}

#[derive(Debug, Clone)]
struct Compiled {
    include: bool,
    dir_only: bool,
    /// Names to match against the whole path, or one name for the last component.
    parts: Vec<String>,
    anchored: bool,
}

impl Filter {
    /// Compiles `rules`.
    pub fn new(rules: &[Rule]) -> Filter {
        let rules = rules
            .iter()
            .map(|r| {
                let dir_only = r.pattern.ends_with('/');
                let p = r.pattern.trim_end_matches('/');
                let anchored = p.trim_start_matches('/').contains('/') || p.starts_with('/');
                let parts = p
                    .trim_start_matches('/')
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                Compiled {
                    include: r.include,
                    dir_only,
                    parts,
                    anchored,
                }
            })
            .collect();
        Filter { rules }
    }

    /// Whether the relative `path` (names joined by `/`) is left out.
    pub fn excluded(&self, path: &str, is_dir: bool) -> bool {
        for r in &self.rules {
            if r.dir_only && !is_dir {
                continue;
            }
            let hit = if r.anchored {
                let names: Vec<&str> = path.split('/').collect();
                names.len() == r.parts.len()
                    && names.iter().zip(&r.parts).all(|(n, p)| glob::matches(p, n))
            } else {
                let name = path.rsplit('/').next().unwrap_or(path);
                r.parts.first().is_some_and(|p| glob::matches(p, name))
            };
            if hit {
                return !r.include;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(rules: &[(bool, &str)]) -> Filter {
        Filter::new(
            &rules
                .iter()
                .map(|(include, p)| Rule {
                    include: *include,
                    pattern: p.to_string(),
                })
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn rules_match_names_paths_and_directories() {
        let flt = f(&[
            (true, "keep.o"),
            (false, "*.o"),
            (false, "/docs/tmp"),
            (false, "cache/"),
        ]);
        assert!(flt.excluded("a/b/x.o", false));
        assert!(!flt.excluded("a/keep.o", false), "an earlier include wins");
        assert!(flt.excluded("docs/tmp", true));
        assert!(!flt.excluded("x/docs/tmp", true), "anchored");
        assert!(flt.excluded("deep/cache", true));
        assert!(!flt.excluded("deep/cache", false), "directories only");
        assert!(!flt.excluded("src/main.rs", false));
        assert!(!Filter::default().excluded("anything", false));
    }
}

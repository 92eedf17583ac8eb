//! Globs of the config file (`ignore`, `except`): `*` any run of characters within one path
//! component, `?` one character, `[abc]`, `[a-z]`, `[!a-z]` one of (or none of) a set, `\x`
//! the character x itself, and `**` as a whole component: any number of components (none
//! included; a final `**` one at least: `cache/**` is what lies below cache). Matched against bytes; bytes that are not UTF-8 match `?`, `*` and negated
//! sets as U+FFFD.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Lit(char),
    One,
    Star,
    Set {
        neg: bool,
        ranges: Vec<(char, char)>,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    /// `**`: any number of whole components
    Any,
    Pat(Vec<Tok>),
}

/// A compiled glob. `Glob::path` splits at `/` (a `*` stays within a component);
/// `Glob::name` matches a whole string in which `/` is an ordinary character (comm).
#[derive(Clone, Debug, PartialEq)]
pub struct Glob {
    text: String,
    segs: Vec<Seg>,
    /// `Glob::name`: one pattern over the whole string
    flat: bool,
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn tokens(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        out.push(match c {
            '*' => {
                // `a**b` within a component is `a*b`
                if out.last() == Some(&Tok::Star) {
                    continue;
                }
                Tok::Star
            }
            '?' => Tok::One,
            '\\' => match it.next() {
                Some(e) => Tok::Lit(e),
                None => return Err("a trailing \\ escapes nothing".into()),
            },
            '[' => {
                let neg = matches!(it.peek(), Some('!' | '^'));
                if neg {
                    it.next();
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let Some(mut a) = it.next() else {
                        return Err("unclosed [ (a set needs its ])".into());
                    };
                    if a == ']' && !first {
                        break;
                    }
                    first = false;
                    if a == '\\' {
                        a = it.next().ok_or("unclosed [ (a set needs its ])")?;
                    }
                    if it.peek() == Some(&'-') {
                        let mut look = it.clone();
                        look.next();
                        match look.peek() {
                            Some(&']') | None => ranges.push((a, a)),
                            Some(&b) => {
                                it.next();
                                it.next();
                                if b < a {
                                    return Err(format!("bad range {a}-{b} in a set"));
                                }
                                ranges.push((a, b));
                            }
                        }
                    } else {
                        ranges.push((a, a));
                    }
                }
                Tok::Set { neg, ranges }
            }
            c => Tok::Lit(c),
        });
    }
    Ok(out)
}

impl Glob {
    /// A glob over paths: components split at `/`, `**` as a component spans any number.
    pub fn path(text: &str) -> Result<Glob, String> {
        if text.is_empty() {
            return Err("an empty glob".into());
        }
        let segs = text
            .split('/')
            .map(|s| {
                if s == "**" {
                    Ok(Seg::Any)
                } else {
                    tokens(s).map(Seg::Pat)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Glob {
            text: text.to_string(),
            segs,
            flat: false,
        })
    }

    /// A glob over a name in which `/` is an ordinary character (a command name).
    pub fn name(text: &str) -> Result<Glob, String> {
        if text.is_empty() {
            return Err("an empty glob".into());
        }
        Ok(Glob {
            text: text.to_string(),
            segs: vec![Seg::Pat(tokens(text)?)],
            flat: true,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the whole of `s` matches.
    pub fn matches(&self, s: &[u8]) -> bool {
        let s = String::from_utf8_lossy(s);
        if self.flat {
            if let Some(Seg::Pat(p)) = self.segs.first() {
                let c: Vec<char> = s.chars().collect();
                return seg_match(p, &c);
            }
        }
        let comps: Vec<Vec<char>> = s.split('/').map(|c| c.chars().collect()).collect();
        segs_match(&self.segs, &comps)
    }

    /// Whether any one component of the path `s` matches (a unit name in a cgroup path).
    pub fn matches_component(&self, s: &[u8]) -> bool {
        s.split(|&c| c == b'/')
            .any(|c| !c.is_empty() && self.matches(c))
    }
}

fn segs_match(pat: &[Seg], comps: &[Vec<char>]) -> bool {
    match pat.split_first() {
        None => comps.is_empty(),
        // a final `**` (`cache/**`) is what lies below: one component at least
        Some((Seg::Any, [])) => !comps.is_empty(),
        Some((Seg::Any, rest)) => (0..=comps.len()).any(|k| segs_match(rest, &comps[k..])),
        Some((Seg::Pat(p), rest)) => match comps.split_first() {
            Some((c, more)) => seg_match(p, c) && segs_match(rest, more),
            None => false,
        },
    }
}

fn seg_match(p: &[Tok], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((Tok::Star, rest)) => (0..=s.len()).any(|k| seg_match(rest, &s[k..])),
        Some((t, rest)) => match s.split_first() {
            Some((&c, more)) => one(t, c) && seg_match(rest, more),
            None => false,
        },
    }
}

fn one(t: &Tok, c: char) -> bool {
    match t {
        Tok::Lit(l) => *l == c,
        Tok::One => true,
        Tok::Set { neg, ranges } => ranges.iter().any(|&(a, b)| a <= c && c <= b) != *neg,
        Tok::Star => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(g: &str, s: &str) -> bool {
        Glob::path(g).unwrap().matches(s.as_bytes())
    }

    #[test]
    fn components() {
        assert!(m("*.tmp", "a.tmp"));
        assert!(!m("*.tmp", "d/a.tmp"));
        assert!(m("cache/**", "cache/x"));
        assert!(m("cache/**", "cache/x/y"));
        assert!(!m("cache/**", "cache"));
        assert!(!m("cache/**", "cachex/y"));
        assert!(m("**/x", "x"));
        assert!(m("**/x", "a/b/x"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/1/2/b"));
        assert!(!m("a/**/b", "a/1/2/c"));
        assert!(m("/usr/bin/*", "/usr/bin/rsync"));
        assert!(!m("/usr/bin/*", "/usr/bin/x/rsync"));
        assert!(m("/usr/bin/rsync", "/usr/bin/rsync"));
        assert!(!m("/usr/bin/rsync", "/usr/bin/rsync2"));
        assert!(m("log?.[0-9]", "log1.7"));
        assert!(!m("log?.[0-9]", "log1.x"));
        assert!(m("[!a]b", "xb"));
        assert!(!m("[!a]b", "ab"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "x"));
        assert!(m("a**b", "axxb"));
        assert!(m("[]x]", "]"));
        assert!(m("[a-]", "-"));
    }

    #[test]
    fn names_and_units() {
        let g = Glob::name("backup*").unwrap();
        assert!(g.matches(b"backup-run"));
        assert!(g.matches(b"backup/1"));
        assert!(!g.matches(b"xbackup"));
        let u = Glob::name("backup*.service").unwrap();
        assert!(u.matches_component(b"/system.slice/backup-db.service"));
        assert!(!u.matches_component(b"/system.slice/cron.service"));
        // bytes that are not UTF-8 do not panic, and match wildcards
        assert!(Glob::path("a*").unwrap().matches(b"a\xff\xfe"));
    }

    #[test]
    fn bad_globs() {
        for bad in ["", "a[b", "[", "x\\", "[z-a]", "[!"] {
            assert!(Glob::path(bad).is_err(), "{bad:?}");
        }
    }
}

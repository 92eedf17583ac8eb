//! The config file (`watch --config FILE`, `check-config`): per-tree owner, allowed users,
//! ops, --fix, ignored paths and exceptions, validated into the rules one agent applies to
//! every tree. A bad file is one `FILE:LINE:COL: what is wrong` (`ConfigError`).

pub mod glob;

use std::fmt;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::config::{all_ops, parse_ops};
use crate::kernel::abi::OP_NAMES;
use crate::users::{group_name, parse_owner, parse_user, user_name, Uids};
use glob::Glob;

/// Where `check-config` looks without FILE (and the systemd unit's --config).
pub const DEFAULT_FILE: &str = "/etc/ownwatch/ownwatch.toml";

/// At most this many trees (the kernel's per-uid tree masks are 64 bits).
pub const MAX_TREES: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    ops: Option<Spanned<String>>,
    fix: Option<bool>,
    #[serde(default)]
    tree: Vec<Spanned<TreeDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeDef {
    path: Spanned<String>,
    owner: Option<Spanned<String>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    ops: Option<Spanned<String>>,
    fix: Option<bool>,
    #[serde(default)]
    ignore: Vec<Spanned<String>>,
    #[serde(default)]
    except: Vec<Spanned<ExceptDef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptDef {
    exe: Option<Spanned<String>>,
    comm: Option<Spanned<String>>,
    unit: Option<Spanned<String>>,
    cgroup: Option<Spanned<String>>,
}

/// A bad config file: where and what. Shown as `FILE:LINE:COL: message`, alone on its line.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// An exception: a write whose writer matches every given key is allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct Except {
    /// the writer's executable (absolute path glob)
    pub exe: Option<Glob>,
    /// its command name
    pub comm: Option<Glob>,
    /// a systemd unit: any component of its cgroup path
    pub unit: Option<Glob>,
    /// its whole cgroup path
    pub cgroup: Option<Glob>,
}

/// What an exception is matched against: the writer as the event shows it.
pub struct Writer<'a> {
    pub exe: Option<&'a [u8]>,
    pub comm: &'a [u8],
    pub cgroup: Option<&'a [u8]>,
}

impl Except {
    pub fn matches(&self, w: &Writer) -> bool {
        let path = |g: &Option<Glob>, v: Option<&[u8]>| {
            g.as_ref().is_none_or(|g| v.is_some_and(|v| g.matches(v)))
        };
        path(&self.exe, w.exe)
            && self.comm.as_ref().is_none_or(|g| g.matches(w.comm))
            && self
                .unit
                .as_ref()
                .is_none_or(|g| w.cgroup.is_some_and(|c| g.matches_component(c)))
            && path(&self.cgroup, w.cgroup)
    }
}

impl fmt::Display for Except {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (k, g) in [
            ("exe", &self.exe),
            ("comm", &self.comm),
            ("unit", &self.unit),
            ("cgroup", &self.cgroup),
        ] {
            if let Some(g) = g {
                write!(f, "{sep}{k}={g}")?;
                sep = " ";
            }
        }
        Ok(())
    }
}

/// What user space decides per tree, beyond who may write there (the kernel drops the
/// writes of users allowed in every tree; the rest is decided here).
#[derive(Clone, Debug, PartialEq)]
pub struct TreeFilter {
    /// ops reported in this tree (bits over `enum ow_op`)
    pub ops: u32,
    /// paths relative to the root whose events are not reported
    pub ignore: Vec<Glob>,
    pub except: Vec<Except>,
}

impl Default for TreeFilter {
    fn default() -> Self {
        TreeFilter {
            ops: all_ops(),
            ignore: Vec::new(),
            except: Vec::new(),
        }
    }
}

impl TreeFilter {
    pub fn wants_op(&self, op: u32) -> bool {
        op < 32 && self.ops & (1 << op) != 0
    }

    /// `rel` (a path relative to the root, "" for the root itself) or a directory above it
    /// matches an ignore glob. A glob without `/` matches a name at any depth.
    pub fn ignores(&self, rel: &[u8]) -> bool {
        if self.ignore.is_empty() || rel.is_empty() {
            return false;
        }
        let mut end = 0;
        loop {
            let next = rel[end..].iter().position(|&c| c == b'/').map(|i| end + i);
            let prefix = &rel[..next.unwrap_or(rel.len())];
            let name = &prefix[prefix.iter().rposition(|&c| c == b'/').map_or(0, |i| i + 1)..];
            if self.ignore.iter().any(|g| {
                if g.as_str().contains('/') {
                    g.matches(prefix)
                } else {
                    g.matches(name)
                }
            }) {
                return true;
            }
            match next {
                Some(i) => end = i + 1,
                None => return false,
            }
        }
    }

    pub fn excepts(&self, w: &Writer) -> bool {
        self.except.iter().any(|e| e.matches(w))
    }
}

/// One tree's effective rules.
#[derive(Clone, Debug)]
pub struct TreeRule {
    /// canonical
    pub path: PathBuf,
    pub owner: (u32, u32),
    /// users allowed besides the owner
    pub allow: Vec<u32>,
    pub fix: bool,
    pub filter: TreeFilter,
}

impl TreeRule {
    /// Everyone whose writes are allowed: the owner and `allow`.
    pub fn allowed(&self) -> Uids {
        let mut a: Uids = self.allow.iter().copied().collect();
        a.insert(self.owner.0);
        a
    }
}

/// Command-line options that win over the file, in every tree.
#[derive(Default, Clone, Debug)]
pub struct Overrides {
    pub owner: Option<String>,
    pub allow: Vec<String>,
    pub ops: Option<String>,
    pub fix: bool,
}

/// Reads and validates `file`; a bad file is a `ConfigError`, a file that cannot be read or
/// a bad override a plain error.
pub fn load(file: &Path, ov: &Overrides) -> anyhow::Result<Vec<TreeRule>> {
    let text = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let text = String::from_utf8(text).map_err(|e| {
        let (line, col) = line_col(
            &String::from_utf8_lossy(e.as_bytes()),
            e.utf8_error().valid_up_to(),
        );
        ConfigError {
            file: file.to_path_buf(),
            line,
            col,
            message: "not UTF-8".into(),
        }
    })?;
    let ov_owner = ov.owner.as_deref().map(parse_owner).transpose()?;
    let ov_allow = ov
        .allow
        .iter()
        .map(|a| parse_user(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ov_ops = ov.ops.as_deref().map(parse_ops).transpose()?;
    let mut rules = parse(&text).map_err(|(span, message)| {
        let (line, col) = line_col(&text, span.start);
        ConfigError {
            file: file.to_path_buf(),
            line,
            col,
            message,
        }
    })?;
    for r in &mut rules {
        if let Some((u, g)) = ov_owner {
            r.0.owner = (u, g.unwrap_or(r.1));
        }
        if !ov_allow.is_empty() {
            r.0.allow = ov_allow.clone();
        }
        if let Some(m) = ov_ops {
            r.0.filter.ops = m;
        }
        r.0.fix |= ov.fix;
    }
    Ok(rules.into_iter().map(|(r, _)| r).collect())
}

type Bad = (Range<usize>, String);

fn at<T>(s: &Spanned<T>, msg: impl Into<String>) -> Bad {
    (s.span(), msg.into())
}

fn ops_of(s: &Spanned<String>) -> Result<u32, Bad> {
    parse_ops(s.get_ref()).map_err(|e| at(s, format!("ops: {e}")))
}

fn glob_of(
    s: &Spanned<String>,
    what: &str,
    mk: fn(&str) -> Result<Glob, String>,
) -> Result<Glob, Bad> {
    mk(s.get_ref()).map_err(|e| at(s, format!("{what}: bad glob {:?}: {e}", s.get_ref())))
}

/// The file's text -> each tree's rules and the gid of its directory (the default group of
/// an override `--owner USER`), or the span and message of the first thing wrong.
fn parse(text: &str) -> Result<Vec<(TreeRule, u32)>, Bad> {
    let def: FileDef = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        (span, e.message().trim().replace('\n', " "))
    })?;
    let ops = match &def.ops {
        Some(s) => ops_of(s)?,
        None => all_ops(),
    };
    let fix = def.fix.unwrap_or(false);
    if def.tree.is_empty() {
        return Err((0..0, "no [[tree]]: nothing to watch".into()));
    }
    if def.tree.len() > MAX_TREES {
        return Err((
            def.tree[MAX_TREES].span(),
            format!("at most {MAX_TREES} trees, got {}", def.tree.len()),
        ));
    }
    let mut out: Vec<(TreeRule, u32)> = Vec::new();
    let mut ids: Vec<(u64, u64)> = Vec::new();
    for t in &def.tree {
        let t = t.get_ref();
        let p = t.path.get_ref();
        if !p.starts_with('/') {
            return Err(at(&t.path, format!("path {p:?} is not absolute")));
        }
        let md = std::fs::metadata(p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => at(&t.path, format!("{p}: no such directory")),
            _ => at(&t.path, format!("{p}: {e}")),
        })?;
        if !md.is_dir() {
            return Err(at(&t.path, format!("{p}: not a directory")));
        }
        if ids.contains(&(md.dev(), md.ino())) {
            return Err(at(
                &t.path,
                format!("{p}: the same directory as an earlier tree"),
            ));
        }
        ids.push((md.dev(), md.ino()));
        let path = std::fs::canonicalize(p).map_err(|e| at(&t.path, format!("{p}: {e}")))?;
        let owner = match &t.owner {
            Some(o) => {
                let (u, g) =
                    parse_owner(o.get_ref()).map_err(|e| at(o, format!("owner: {e:#}")))?;
                (u, g.unwrap_or(md.gid()))
            }
            None if md.uid() == 0 => {
                return Err(at(
                    &t.path,
                    format!(
                        "{p} is owned by root, so root's writes would be allowed and nothing \
                         reported: give owner = \"USER\" (the user the tree belongs to)"
                    ),
                ))
            }
            None => (md.uid(), md.gid()),
        };
        let allow = t
            .allow
            .iter()
            .map(|a| parse_user(a.get_ref()).map_err(|e| at(a, format!("allow: {e:#}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let ops = match &t.ops {
            Some(s) => ops_of(s)?,
            None => ops,
        };
        let mut ignore = Vec::new();
        for g in &t.ignore {
            if g.get_ref().starts_with('/') {
                return Err(at(
                    g,
                    format!(
                        "ignore: {:?} is absolute; ignore globs are relative to the tree",
                        g.get_ref()
                    ),
                ));
            }
            ignore.push(glob_of(g, "ignore", Glob::path)?);
        }
        let mut except = Vec::new();
        for e in &t.except {
            let d = e.get_ref();
            let opt =
                |s: &Option<Spanned<String>>, what: &str, mk: fn(&str) -> Result<Glob, String>| {
                    s.as_ref().map(|s| glob_of(s, what, mk)).transpose()
                };
            if let Some(u) = &d.unit {
                if u.get_ref().contains('/') {
                    return Err(at(u, "unit: a unit name has no /; use cgroup for a path"));
                }
            }
            for (s, what) in [(&d.exe, "exe"), (&d.cgroup, "cgroup")] {
                if let Some(s) = s {
                    if !s.get_ref().starts_with('/') {
                        return Err(at(s, format!("{what}: {:?} is not absolute", s.get_ref())));
                    }
                }
            }
            let x = Except {
                exe: opt(&d.exe, "exe", Glob::path)?,
                comm: opt(&d.comm, "comm", Glob::name)?,
                unit: opt(&d.unit, "unit", Glob::name)?,
                cgroup: opt(&d.cgroup, "cgroup", Glob::path)?,
            };
            if x.exe.is_none() && x.comm.is_none() && x.unit.is_none() && x.cgroup.is_none() {
                return Err(at(
                    e,
                    "an exception needs at least one of exe, comm, unit, cgroup",
                ));
            }
            except.push(x);
        }
        out.push((
            TreeRule {
                path,
                owner,
                allow,
                fix: t.fix.unwrap_or(fix),
                filter: TreeFilter {
                    ops,
                    ignore,
                    except,
                },
            },
            md.gid(),
        ));
    }
    Ok(out)
}

fn ops_text(mask: u32) -> String {
    if mask == all_ops() {
        return "all".into();
    }
    OP_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

fn named(id: u32, name: Option<String>) -> String {
    match name {
        Some(n) => format!("{id} ({n})"),
        None => format!("{id}"),
    }
}

/// The effective rules, one block per tree, then what the kernel filters.
pub fn render(rules: &[TreeRule]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for r in rules {
        let _ = writeln!(s, "tree {}", r.path.display());
        let _ = writeln!(
            s,
            "  owner   {}:{}",
            named(r.owner.0, user_name(r.owner.0)),
            named(r.owner.1, group_name(r.owner.1))
        );
        let allow: Vec<String> = r.allow.iter().map(|&u| named(u, user_name(u))).collect();
        let _ = writeln!(
            s,
            "  allow   {}",
            if allow.is_empty() {
                "-".to_string()
            } else {
                allow.join(", ")
            }
        );
        let _ = writeln!(s, "  ops     {}", ops_text(r.filter.ops));
        let _ = writeln!(s, "  fix     {}", r.fix);
        let ignore: Vec<&str> = r.filter.ignore.iter().map(Glob::as_str).collect();
        let _ = writeln!(
            s,
            "  ignore  {}",
            if ignore.is_empty() {
                "-".to_string()
            } else {
                ignore.join(" ")
            }
        );
        if r.filter.except.is_empty() {
            let _ = writeln!(s, "  except  -");
        }
        for e in &r.filter.except {
            let _ = writeln!(s, "  except  {e}");
        }
        s.push('\n');
    }
    let (ops, everywhere) = kernel_view(rules);
    let mut every: Vec<u32> = everywhere.into_iter().collect();
    every.sort_unstable();
    let every: Vec<String> = every.iter().map(|&u| named(u, user_name(u))).collect();
    let _ = writeln!(
        s,
        "kernel: ops {}; writes dropped there: by {}",
        ops_text(ops),
        if every.is_empty() {
            "nobody (no user is allowed in every tree)".to_string()
        } else {
            every.join(", ")
        }
    );
    s
}

/// What the kernel can decide for all trees at once: the union of the ops, and the users
/// allowed in every tree.
pub fn kernel_view(rules: &[TreeRule]) -> (u32, Uids) {
    let ops = rules.iter().fold(0, |m, r| m | r.filter.ops);
    let mut every: Option<Uids> = None;
    for r in rules {
        let a = r.allowed();
        every = Some(match every {
            None => a,
            Some(e) => e.intersection(&a).copied().collect(),
        });
    }
    (ops, every.unwrap_or_default())
}

/// `ownwatch check-config [FILE]`.
pub fn check(file: Option<&Path>) -> anyhow::Result<u8> {
    let file = file.unwrap_or(Path::new(DEFAULT_FILE));
    let rules = load(file, &Overrides::default())?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(render(&rules).as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::anyhow!("writing the rules: {e}"))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (usize, usize, String) {
        let (span, msg) = parse(text).expect_err("an error");
        let (l, c) = line_col(text, span.start);
        (l, c, msg)
    }

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("é\nü", 3), (2, 1));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn a_whole_file() {
        let d = dir();
        let p = d.path().display().to_string();
        let text = format!(
            "ops = \"create,mkdir\"\nfix = true\n[[tree]]\npath = \"{p}\"\nowner = \"4242:4243\"\n\
             allow = [\"4244\"]\nignore = [\"cache/**\", \"*.tmp\"]\n[[tree.except]]\n\
             exe = \"/usr/bin/rsync\"\n[[tree.except]]\ncomm = \"backup*\"\nunit = \"b.service\"\n"
        );
        let r = parse(&text).map_err(|e| e.1).unwrap();
        assert_eq!(r.len(), 1);
        let t = &r[0].0;
        assert_eq!(t.owner, (4242, 4243));
        assert_eq!(t.allow, vec![4244]);
        assert!(t.fix);
        assert_eq!(t.filter.ops, parse_ops("create,mkdir").unwrap());
        assert_eq!(t.filter.except.len(), 2);
        assert!(t.filter.ignores(b"cache/x/y"));
        assert!(t.filter.ignores(b"a/b.tmp"));
        assert!(t.filter.ignores(b"x.tmp/inner"));
        assert!(!t.filter.ignores(b"cache"));
        assert!(!t.filter.ignores(b"a/b.tmpx"));
        let w = Writer {
            exe: Some(b"/usr/bin/rsync"),
            comm: b"rsync",
            cgroup: None,
        };
        assert!(t.filter.excepts(&w));
        let w = Writer {
            exe: Some(b"/usr/bin/cp"),
            comm: b"backup-x",
            cgroup: Some(b"/system.slice/b.service"),
        };
        assert!(t.filter.excepts(&w));
        let w = Writer {
            exe: Some(b"/usr/bin/cp"),
            comm: b"backup-x",
            cgroup: Some(b"/system.slice/c.service"),
        };
        assert!(!t.filter.excepts(&w));
        let out = render(&r.into_iter().map(|x| x.0).collect::<Vec<_>>());
        assert!(out.contains("  ops     create,mkdir\n"), "{out}");
        assert!(out.contains("  except  exe=/usr/bin/rsync\n"), "{out}");
        assert!(
            out.contains("  except  comm=backup* unit=b.service\n"),
            "{out}"
        );
    }

    #[test]
    fn the_example_file_has_known_keys_and_good_globs() {
        // (its paths and users are the reader's to make: not validated here)
        let def: FileDef = toml::from_str(include_str!("../../contrib/ownwatch.toml")).unwrap();
        assert_eq!(def.tree.len(), 2);
        ops_of(def.ops.as_ref().unwrap()).unwrap();
        for t in &def.tree {
            let t = t.get_ref();
            for g in &t.ignore {
                glob_of(g, "ignore", Glob::path).unwrap();
            }
            if let Some(o) = &t.ops {
                ops_of(o).unwrap();
            }
        }
    }

    #[test]
    fn errors_point_at_the_value() {
        let d = dir();
        let p = d.path().display().to_string();
        let (l, c, m) = err(&format!("[[tree]]\npath = \"{p}\"\nownr = \"x\"\n"));
        assert_eq!((l, c), (3, 1), "{m}");
        assert!(m.contains("unknown field `ownr`"), "{m}");
        let (l, c, m) = err(&format!(
            "[[tree]]\npath = \"{p}\"\nowner = \"no-such-user-owt\"\n"
        ));
        assert_eq!((l, c), (3, 9), "{m}");
        assert!(m.contains("unknown user"), "{m}");
        let (l, c, m) = err("[[tree]]\n  path = \"/no/such/owt\"\n");
        assert_eq!((l, c), (2, 10), "{m}");
        assert!(m.ends_with("no such directory"), "{m}");
        let (l, c, m) = err(&format!(
            "[[tree]]\npath = \"{p}\"\nowner = \"1\"\nignore = [\"ok\", \"a[b\"]\n"
        ));
        assert_eq!((l, c), (4, 17), "{m}");
        assert!(m.contains("unclosed ["), "{m}");
        let (l, _, m) = err(&format!(
            "[[tree]]\npath = \"{p}\"\nowner = \"1\"\nops = \"mkdir,frob\"\n"
        ));
        assert_eq!(l, 4);
        assert!(m.contains("unknown op \"frob\""), "{m}");
        let (l, _, m) = err(&format!(
            "[[tree]]\npath = \"{p}\"\nowner = \"1\"\n[[tree.except]]\n"
        ));
        assert_eq!(l, 4, "{m}");
        assert!(m.contains("at least one"), "{m}");
        let (_, _, m) = err("fix = true\n");
        assert!(m.contains("no [[tree]]"), "{m}");
        let (l, _, m) = err("fix = 3\n");
        assert_eq!(l, 1);
        assert!(m.contains("bool"), "{m}");
    }
}

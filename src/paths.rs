//! Paths as bytes (a path on Linux need not be UTF-8): joining, normalising, which tree a path
//! is in, its last component.

/// `path` equals `dir` or lies below it (component-wise).
/// A `dir` that is not absolute (the empty path of a root given up) holds nothing.
pub fn is_under(path: &[u8], dir: &[u8]) -> bool {
    if dir.first() != Some(&b'/') {
        return false;
    }
    if dir == b"/" {
        return path.first() == Some(&b'/');
    }
    path.starts_with(dir) && (path.len() == dir.len() || path[dir.len()] == b'/')
}

/// Joins an absolute directory and a path below it ("" or "/x/y" or "x/y").
pub fn join(dir: &[u8], rest: &[u8]) -> Vec<u8> {
    // (one allocation: the agent joins a mount point and a path for every event)
    let mut out = Vec::with_capacity(dir.len() + 1 + rest.len());
    join_into(&mut out, dir, rest);
    out
}

/// `join` into `out` (emptied first): a buffer the caller reuses.
pub fn join_into(out: &mut Vec<u8>, dir: &[u8], rest: &[u8]) {
    let rest = trim_leading_slashes(rest);
    out.clear();
    out.extend_from_slice(dir);
    if rest.is_empty() {
        return;
    }
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(rest);
}

pub fn trim_leading_slashes(mut p: &[u8]) -> &[u8] {
    while let Some(rest) = p.strip_prefix(b"/") {
        p = rest;
    }
    p
}

/// "/" followed by the names root-first.
pub fn names_path<N: AsRef<[u8]>>(names: &[N]) -> Vec<u8> {
    let len = names.iter().map(|n| n.as_ref().len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(len.max(1));
    names_path_into(&mut out, names);
    out
}

/// `names_path` into `out` (emptied first): a buffer the caller reuses.
pub fn names_path_into<N: AsRef<[u8]>>(out: &mut Vec<u8>, names: &[N]) {
    out.clear();
    for n in names.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(n.as_ref());
    }
    if out.is_empty() {
        out.push(b'/');
    }
}

/// Lexical normalisation: ".", "..", repeated slashes. Used only when nothing is left on disk
/// to resolve against.
pub fn normalize(p: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.split(|&c| c == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::new();
    for c in parts {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Index of the innermost watched root that holds `path`.
pub fn tree_of(path: &[u8], roots: &[Vec<u8>]) -> Option<usize> {
    roots
        .iter()
        .enumerate()
        .filter(|(_, r)| is_under(path, r))
        .max_by_key(|(_, r)| r.len())
        .map(|(i, _)| i)
}

/// Last component of a path string, ignoring trailing slashes.
pub fn final_component(s: &[u8]) -> &[u8] {
    let mut end = s.len();
    while end > 1 && s[end - 1] == b'/' {
        end -= 1;
    }
    let s = &s[..end];
    match s.iter().rposition(|&c| c == b'/') {
        Some(i) => &s[i + 1..],
        None => s,
    }
}

/// `p` without its last `k` components; None if it has fewer.
pub fn strip_components(p: &[u8], k: usize) -> Option<&[u8]> {
    let mut end = p.len();
    for _ in 0..k {
        end = p[..end].iter().rposition(|&c| c == b'/')?;
    }
    Some(if end == 0 { b"/" } else { &p[..end] })
}

pub fn parent_of(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|&c| c == b'/') {
        Some(0) => b"/",
        Some(i) => &p[..i],
        None => p,
    }
}

/// "/proc/self/fd/3", "/proc/123/fd/3": how an O_TMPFILE file is linked without
/// CAP_DAC_READ_SEARCH.
pub fn is_proc_fd(s: &[u8]) -> bool {
    let Some(rest) = s.strip_prefix(b"/proc/") else {
        return false;
    };
    let mut parts = rest.split(|&c| c == b'/');
    let who = parts.next().unwrap_or_default();
    let okwho = who == b"self" || (!who.is_empty() && who.iter().all(u8::is_ascii_digit));
    okwho
        && parts.next() == Some(b"fd")
        && parts
            .next()
            .is_some_and(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit))
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_helpers() {
        assert_eq!(normalize(b"/a/./b/../c//d/"), b"/a/c/d");
        assert_eq!(normalize(b"/../.."), b"/");
        assert_eq!(join(b"/", b"x"), b"/x");
        assert_eq!(join(b"/a", b"/x/y"), b"/a/x/y");
        assert_eq!(join(b"/a", b""), b"/a");
        assert!(is_under(b"/srv/app", b"/srv/app"));
        assert!(is_under(b"/srv/app/x", b"/srv/app"));
        assert!(!is_under(b"/srv/apple", b"/srv/app"));
        assert!(is_under(b"/x", b"/"));
        let roots = vec![b"/srv".to_vec(), b"/srv/app".to_vec()];
        assert_eq!(tree_of(b"/srv/app/x", &roots), Some(1));
        assert_eq!(tree_of(b"/srv/x", &roots), Some(0));
        assert_eq!(tree_of(b"/etc", &roots), None);
    }

    /// A reused buffer holds the join alone, whatever it held before.
    #[test]
    fn joined_into_a_used_buffer() {
        let mut buf = b"/a/long/path/from/an/earlier/event".to_vec();
        for (dir, rest) in [
            (&b"/"[..], &b"x"[..]),
            (b"/a", b"/x/y"),
            (b"/a", b""),
            (b"/a/", b"//b"),
        ] {
            join_into(&mut buf, dir, rest);
            assert_eq!(buf, join(dir, rest));
        }
        assert_eq!(buf, b"/a/b");
    }

    #[test]
    fn components_stripped() {
        assert_eq!(strip_components(b"/a/b/c", 0).unwrap(), b"/a/b/c");
        assert_eq!(strip_components(b"/a/b/c", 1).unwrap(), b"/a/b");
        assert_eq!(strip_components(b"/a/b/c", 3).unwrap(), b"/");
        assert!(strip_components(b"/a/b/c", 4).is_none());
    }

    #[test]
    fn proc_fd_links() {
        assert!(is_proc_fd(b"/proc/self/fd/3"));
        assert!(is_proc_fd(b"/proc/4242/fd/10"));
        assert!(!is_proc_fd(b"/proc/self/fd/"));
        assert!(!is_proc_fd(b"/proc/self/fd/3/x"));
        assert!(!is_proc_fd(b"/proc/self/cwd"));
        assert!(!is_proc_fd(b"/srv/proc/self/fd/3"));
    }
}

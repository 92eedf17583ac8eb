//! Who did it: the raw identity the kernel captured at the write -> event fields.
//! Pure functions, unit-tested.

/// NUL-separated command line -> arguments. A missing final NUL (cut short, or a process that
/// rewrote its argv) keeps the last piece.
pub fn split_argv(raw: &[u8]) -> Vec<Vec<u8>> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&c| c == 0).map(<[u8]>::to_vec).collect()
}

/// The kernel names pseudo-terminals "pts3"; people and `ps` say "pts/3".
pub fn tty_name(kernel: &[u8]) -> String {
    let s = String::from_utf8_lossy(kernel);
    match s.strip_prefix("pts") {
        Some(n) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => format!("pts/{n}"),
        _ => s.into_owned(),
    }
}

/// A container id in a cgroup path: a 64-hex-digit name, bare or as systemd scopes name them
/// (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope).
pub fn container_id(cgroup: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(cgroup).ok()?;
    for comp in s.split('/').rev() {
        let comp = comp.strip_suffix(".scope").unwrap_or(comp);
        let id = comp.rsplit(['-', ':']).next().unwrap_or(comp);
        if id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Some(id.to_ascii_lowercase());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv() {
        assert_eq!(
            split_argv(b"mkdir\0-p\0a b\0"),
            vec![b"mkdir".to_vec(), b"-p".to_vec(), b"a b".to_vec()]
        );
        assert_eq!(
            split_argv(b"x\0\0y\0"),
            vec![b"x".to_vec(), b"".to_vec(), b"y".to_vec()]
        );
        assert_eq!(split_argv(b"cut-sho"), vec![b"cut-sho".to_vec()]);
        assert!(split_argv(b"").is_empty());
    }

    #[test]
    fn ttys() {
        assert_eq!(tty_name(b"pts3"), "pts/3");
        assert_eq!(tty_name(b"tty1"), "tty1");
        assert_eq!(tty_name(b"ttyS0"), "ttyS0");
        assert_eq!(tty_name(b"ptsx"), "ptsx");
    }

    #[test]
    fn containers() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            container_id(format!("/system.slice/docker-{id}.scope").as_bytes()).as_deref(),
            Some(id)
        );
        assert_eq!(
            container_id(format!("/kubepods/besteffort/pod1/cri-containerd-{id}.scope").as_bytes())
                .as_deref(),
            Some(id)
        );
        assert_eq!(
            container_id(format!("/docker/{id}").as_bytes()).as_deref(),
            Some(id)
        );
        assert_eq!(
            container_id(format!("/machine.slice/libpod-{id}.scope/container").as_bytes())
                .as_deref(),
            Some(id)
        );
        assert_eq!(
            container_id(b"/user.slice/user-1000.slice/session-3.scope"),
            None
        );
        assert_eq!(container_id(b"/"), None);
    }
}

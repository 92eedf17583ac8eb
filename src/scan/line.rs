//! One scan line: an offender's path, kind, owner, mode, mtime, tree and what `--fix` did,
//! through the shared JSON writer.

use crate::fix;
use crate::output::json::{self, Obj};
use crate::output::mode_str;
use crate::output::timefmt::rfc3339;

pub(super) fn kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "dir",
        libc::S_IFLNK => "symlink",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "char",
        libc::S_IFBLK => "block",
        _ => "unknown",
    }
}

/// A name as a JSON value: a string, or null when there is none.
pub(super) fn json_name(name: Option<String>) -> Box<[u8]> {
    let mut v = Vec::new();
    json::opt_str(name.as_deref(), &mut v);
    v.into_boxed_slice()
}

/// One offender line, fields in the documented order.
pub(super) fn entry_line(
    out: &mut Vec<u8>,
    path: &[u8],
    st: &libc::stat,
    user_json: &[u8],
    group_json: &[u8],
    tree: &[u8],
    fixed: Option<&Result<fix::Given, String>>,
) {
    let mut o = Obj::new(out);
    o.bytes("path", path);
    o.str("kind", kind(st.st_mode));
    o.num("uid", st.st_uid);
    o.num("gid", st.st_gid);
    o.raw("user", user_json);
    o.raw("group", group_json);
    o.str("mode", &mode_str(st.st_mode));
    let mtime = st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128;
    o.str("mtime", &rfc3339(mtime));
    o.bytes("tree", tree);
    match fixed {
        None => {}
        Some(Ok(g)) => {
            o.bool("fixed", true);
            if g.setid_cleared {
                o.bool("setid_cleared", true);
            }
        }
        Some(Err(e)) => {
            o.bool("fixed", false);
            o.str("fix_error", e);
        }
    }
    o.end();
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_of(mode: u32, uid: u32, gid: u32, mtime: i64, nsec: i64) -> libc::stat {
        // SAFETY: all-zero is a valid libc::stat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_mode = mode;
        st.st_uid = uid;
        st.st_gid = gid;
        st.st_mtime = mtime;
        st.st_mtime_nsec = nsec;
        st
    }

    /// The line of `path` in the tree that is its parent directory, with these names (as JSON)
    /// and this outcome of --fix.
    fn line(path: &[u8], st: &libc::stat, names: [&[u8]; 2], fixed: Option<FixResult>) -> String {
        let tree = &path[..path.iter().rposition(|&c| c == b'/').unwrap()];
        let mut out = Vec::new();
        entry_line(&mut out, path, st, names[0], names[1], tree, fixed.as_ref());
        String::from_utf8(out).unwrap()
    }

    type FixResult = Result<fix::Given, String>;

    #[test]
    fn line_fields_in_order() {
        let st = stat_of(libc::S_IFREG | 0o4755, 0, 4343, 1_795_614_135, 123_456_789);
        assert_eq!(
            line(b"/srv/app/x", &st, [b"\"root\"", b"null"], None),
            "{\"path\":\"/srv/app/x\",\"kind\":\"file\",\"uid\":0,\"gid\":4343,\"user\":\"root\",\
             \"group\":null,\"mode\":\"4755\",\"mtime\":\"2026-11-25T13:42:15.123456789Z\",\
             \"tree\":\"/srv/app\"}\n"
        );
    }

    #[test]
    fn fix_fields_and_odd_bytes() {
        let st = stat_of(libc::S_IFLNK | 0o777, 1, 2, 0, 0);
        let g = json_name(Some("g".into()));
        let failed = Err("EPERM: Operation not permitted".to_string());
        assert_eq!(
            line(b"/t/a\"\n\xff", &st, [b"null", &g], Some(failed)),
            "{\"path\":\"/t/a\\\"\\n\u{fffd}\",\"path_b64\":\"L3QvYSIK/w==\",\"kind\":\"symlink\",\
             \"uid\":1,\"gid\":2,\"user\":null,\"group\":\"g\",\"mode\":\"0777\",\
             \"mtime\":\"1970-01-01T00:00:00.000000000Z\",\"tree\":\"/t\",\"fixed\":false,\
             \"fix_error\":\"EPERM: Operation not permitted\"}\n"
        );
        let given = fix::Given {
            chowned: true,
            setid_cleared: true,
        };
        assert_eq!(
            line(b"/t/b", &st, [b"null", &json_name(None)], Some(Ok(given))),
            "{\"path\":\"/t/b\",\"kind\":\"symlink\",\"uid\":1,\"gid\":2,\"user\":null,\
             \"group\":null,\"mode\":\"0777\",\"mtime\":\"1970-01-01T00:00:00.000000000Z\",\
             \"tree\":\"/t\",\"fixed\":true,\"setid_cleared\":true}\n"
        );
    }

    #[test]
    fn kinds() {
        assert_eq!(kind(libc::S_IFIFO), "fifo");
        assert_eq!(kind(libc::S_IFSOCK), "socket");
        assert_eq!(kind(libc::S_IFCHR), "char");
        assert_eq!(kind(libc::S_IFBLK), "block");
        assert_eq!(kind(libc::S_IFDIR), "dir");
    }
}

//! Users and groups: `--owner`/`--allow` values by name or number, and uid/gid -> name for
//! events (cached: NSS lookups are far slower than an event).

use std::rc::Rc;

use rustc_hash::{FxHashMap, FxHashSet};

use anyhow::{bail, Context, Result};
use nix::unistd::{Gid, Group, Uid, User};

/// A set of uids (who may write in a tree). Looked up for every event, so with Fx hashing,
/// not SipHash: the keys are our own uids, not input an attacker picks.
pub type Uids = FxHashSet<u32>;

/// An id given by name or number. A number needs no passwd/group entry (service uids often
/// have none inside containers), a name must exist.
fn parse_id(
    s: &str,
    what: &str,
    by_name: impl Fn(&str) -> nix::Result<Option<u32>>,
) -> Result<u32> {
    if s.is_empty() {
        bail!("empty {what} name");
    }
    if let Ok(n) = s.parse::<u32>() {
        if n == u32::MAX {
            bail!("{}id {n} is not a valid {what}", &what[..1]);
        }
        return Ok(n);
    }
    match by_name(s).with_context(|| format!("looking up {what} {s:?}"))? {
        Some(id) => Ok(id),
        None => bail!("unknown {what} {s:?}"),
    }
}

pub fn parse_user(s: &str) -> Result<u32> {
    parse_id(s, "user", |n| {
        User::from_name(n).map(|u| u.map(|u| u.uid.as_raw()))
    })
}

pub fn parse_group(s: &str) -> Result<u32> {
    parse_id(s, "group", |n| {
        Group::from_name(n).map(|g| g.map(|g| g.gid.as_raw()))
    })
}

/// `USER[:GROUP]`; without a group, the user's primary group when it has a passwd entry.
pub fn parse_owner(s: &str) -> Result<(u32, Option<u32>)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = parse_user(u)?;
    let gid = match g {
        Some(g) => Some(parse_group(g)?),
        None => User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.gid.as_raw()),
    };
    Ok((uid, gid))
}

pub fn user_name(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

pub fn group_name(gid: u32) -> Option<String> {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

#[derive(Default)]
pub struct Names {
    // (looked up three times per event: a hash of a u32 by multiplication, not SipHash)
    users: FxHashMap<u32, Option<Rc<str>>>,
    groups: FxHashMap<u32, Option<Rc<str>>>,
    /// the last two users and the last group asked for, in front of the maps: a writer's
    /// events ask for the same few (its fsuid and login uid, its fsgid)
    last_users: [Option<(u32, Option<Rc<str>>)>; 2],
    last_group: Option<(u32, Option<Rc<str>>)>,
}

/// Names looked up once and shared by every event that shows them.
impl Names {
    pub fn user(&mut self, uid: u32) -> Option<Rc<str>> {
        for (id, name) in self.last_users.iter().flatten() {
            if *id == uid {
                return name.clone();
            }
        }
        let name = self
            .users
            .entry(uid)
            .or_insert_with(|| user_name(uid).map(Rc::from))
            .clone();
        self.last_users.swap(0, 1);
        self.last_users[0] = Some((uid, name.clone()));
        name
    }

    pub fn group(&mut self, gid: u32) -> Option<Rc<str>> {
        if let Some((id, name)) = &self.last_group {
            if *id == gid {
                return name.clone();
            }
        }
        let name = self
            .groups
            .entry(gid)
            .or_insert_with(|| group_name(gid).map(Rc::from))
            .clone();
        self.last_group = Some((gid, name.clone()));
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_any_order_of_asking_are_the_system_s() {
        let mut n = Names::default();
        let want_user = |uid| user_name(uid).map(Rc::<str>::from);
        let want_group = |gid| group_name(gid).map(Rc::<str>::from);
        // (0 is root; 4242424 is most likely no one: None, and remembered as such)
        for uid in [0, 0, 4242424, 0, 4242424, 65534, 0, 65534, 65534, 4242424] {
            assert_eq!(n.user(uid), want_user(uid), "user {uid}");
            assert_eq!(n.group(uid), want_group(uid), "group {uid}");
        }
        assert_eq!(n.user(0).as_deref(), Some("root"));
    }

    #[test]
    fn users_by_number_and_name() {
        assert_eq!(parse_user("4242").unwrap(), 4242);
        assert_eq!(parse_user("root").unwrap(), 0);
        assert!(parse_user("no-such-user-ownwatch").is_err());
        assert!(parse_user("").is_err());
        assert!(parse_user("4294967295").is_err());
    }

    #[test]
    fn owner_with_and_without_group() {
        assert_eq!(parse_owner("4242:4343").unwrap(), (4242, Some(4343)));
        assert_eq!(parse_owner("root").unwrap(), (0, Some(0)));
        assert_eq!(parse_owner("4242").unwrap(), (4242, None));
        assert!(parse_owner("4242:no-such-group-ownwatch").is_err());
    }
}

//! User names to ids, from `/etc/passwd` (the host is root when this is asked).

/// `(uid, gid)` of `name`, when `/etc/passwd` lists it.
pub fn lookup(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_zero_and_an_unknown_name_is_none() {
        assert_eq!(lookup("root"), Some((0, 0)));
        assert_eq!(lookup("no-such-user-here"), None);
    }
}

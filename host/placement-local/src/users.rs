//! User names to ids, through the C library's user database (`getpwnam_r`: `/etc/passwd` and
//! whatever else the host's NSS configuration names), asked only when the host is root.

/// `(uid, gid)` of `name`, when the user database knows it.
pub fn lookup(name: &str) -> Option<(u32, u32)> {
    let user = nix::unistd::User::from_name(name).ok().flatten()?;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_zero_and_an_unknown_name_is_none() {
        assert_eq!(lookup("root"), Some((0, 0)));
        assert_eq!(lookup("no-such-user-here"), None);
        // A name that is not a valid C string is unknown, not a panic.
        assert_eq!(lookup("nul\0inside"), None);
    }
}

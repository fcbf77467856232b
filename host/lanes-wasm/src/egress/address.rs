//! Which addresses a lane may reach without naming them: public unicast only. Loopback,
//! private, shared (CGNAT), link-local, unspecified, multicast, broadcast and the cloud metadata
//! endpoints are refused unless a grant allows them (an IP-literal grant names one address; an
//! `http_private` grant lets a name resolve to private ranges, never to metadata).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// A public unicast address.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, fc00::/7.
    Private,
    /// 100.64.0.0/10 (carrier-grade NAT).
    Shared,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// Cloud instance metadata endpoints (169.254.169.254, 100.100.100.200, fd00:ec2::254).
    Metadata,
    /// 0.0.0.0, ::, multicast, broadcast, reserved: never a sensible destination.
    Unroutable,
}

impl AddressClass {
    /// The class of `ip` (an IPv4-mapped IPv6 address is classified as its IPv4 address).
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => Self::of_v6(v6),
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Self {
        let [a, b, ..] = ip.octets();
        if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
            Self::Metadata
        } else if ip.is_loopback() {
            Self::Loopback
        } else if ip.is_private() {
            Self::Private
        } else if a == 100 && (64..128).contains(&b) {
            Self::Shared
        } else if ip.is_link_local() {
            Self::LinkLocal
        } else if ip.is_unspecified()
            || ip.is_multicast()
            || ip.is_broadcast()
            || a >= 240
            || a == 0
        {
            Self::Unroutable
        } else {
            Self::Public
        }
    }

    fn of_v6(ip: Ipv6Addr) -> Self {
        let segments = ip.segments();
        if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
            Self::Metadata
        } else if ip.is_loopback() {
            Self::Loopback
        } else if ip.is_unspecified() || ip.is_multicast() {
            Self::Unroutable
        } else if segments[0] & 0xfe00 == 0xfc00 {
            Self::Private
        } else if segments[0] & 0xffc0 == 0xfe80 {
            Self::LinkLocal
        } else if let Some(v4) = embedded_v4(ip) {
            // NAT64 / 6to4-style embeddings reach the embedded IPv4 host.
            match Self::of_v4(v4) {
                Self::Public => Self::Public,
                other => other,
            }
        } else {
            Self::Public
        }
    }

    /// Name used in denial evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::Shared => "shared",
            Self::LinkLocal => "link_local",
            Self::Metadata => "metadata",
            Self::Unroutable => "unroutable",
        }
    }
}

/// The IPv4 address carried by a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let from = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(from(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(from(s[1], s[2]));
    }
    None
}

/// How far a matched grant lets a request go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses only.
    Public,
    /// Also loopback, private, shared and link-local (an `http_private` grant); never metadata
    /// or unroutable addresses.
    Private,
    /// The grant names the address itself (an IP literal): whatever it is.
    Named,
}

impl Reach {
    /// Name used in denial evidence.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Named => "named",
        }
    }

    /// Whether an address of `class` may be connected to.
    pub fn allows(self, class: AddressClass) -> bool {
        match self {
            Self::Named => true,
            Self::Private => !matches!(class, AddressClass::Metadata | AddressClass::Unroutable),
            Self::Public => class == AddressClass::Public,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn class(text: &str) -> AddressClass {
        AddressClass::of(text.parse().unwrap())
    }

    #[test]
    fn classifies_the_ranges_a_lane_must_not_reach_by_name() {
        for (ip, expected) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.8.9.10", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("fd12::1", AddressClass::Private),
            ("100.64.0.1", AddressClass::Shared),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::Metadata),
            ("100.100.100.200", AddressClass::Metadata),
            ("fd00:ec2::254", AddressClass::Metadata),
            ("::ffff:169.254.169.254", AddressClass::Metadata),
            ("64:ff9b::a9fe:a9fe", AddressClass::Metadata),
            ("2002:7f00:1::", AddressClass::Loopback),
            ("0.0.0.0", AddressClass::Unroutable),
            ("::", AddressClass::Unroutable),
            ("224.0.0.1", AddressClass::Unroutable),
            ("255.255.255.255", AddressClass::Unroutable),
            ("93.184.216.34", AddressClass::Public),
            ("172.32.0.1", AddressClass::Public),
            ("2606:4700::1111", AddressClass::Public),
        ] {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn reach_decides_per_class() {
        assert!(Reach::Public.allows(AddressClass::Public));
        assert!(!Reach::Public.allows(AddressClass::Loopback));
        assert!(Reach::Private.allows(AddressClass::Loopback));
        assert!(Reach::Private.allows(AddressClass::Private));
        assert!(!Reach::Private.allows(AddressClass::Metadata));
        assert!(!Reach::Private.allows(AddressClass::Unroutable));
        assert!(Reach::Named.allows(AddressClass::Metadata));
    }
}

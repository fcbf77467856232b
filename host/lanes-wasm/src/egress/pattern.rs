//! Outbound grant patterns: `scheme://host[:port][/path-prefix]`, one syntax for HTTP and
//! WebSocket.
//!
//! * `scheme` is `http` or `https` (outbound HTTP), or `ws` or `wss` (host-owned WebSocket
//!   connections). A pattern allows its own scheme only: `ws://h` never matches an `http://h`
//!   request and `http://h` never matches a `ws://h` connection.
//! * `host` is a DNS name (matched case-insensitively, a trailing dot ignored), an IP literal
//!   (`127.0.0.1`, `[::1]`), `*.example.com` (any subdomain at any depth, not `example.com`
//!   itself) or `*` (any host).
//! * `port` is a number or `*`; omitted means the scheme's default port (80 for `http` and `ws`,
//!   443 for `https` and `wss`).
//! * `path-prefix`, when present, matches whole segments: `/api` allows `/api` and `/api/v1`,
//!   not `/apix`. A request path with a `.` or `..` segment (also percent-encoded) never matches
//!   a pattern that has a prefix, so a prefix cannot be escaped by server-side normalisation.
//!
//! Queries, fragments and user info are refused in patterns: a grant names where a request may
//! go, nothing else.

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

/// A pattern could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "http grant {pattern:?} is invalid: {reason}; write scheme://host[:port][/path-prefix] \
     (scheme http, https, ws or wss, host a name, an IP literal, *.domain or *, port a number \
     or *)"
)]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The scheme a pattern or a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
    /// WebSocket.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

impl Scheme {
    /// Parses `http` / `https` / `ws` / `wss` (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "http" => Some(Self::Http),
            "https" => Some(Self::Https),
            "ws" => Some(Self::Ws),
            "wss" => Some(Self::Wss),
            _ => None,
        }
    }

    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http | Self::Ws => 80,
            Self::Https | Self::Wss => 443,
        }
    }

    /// `http`, `https`, `ws` or `wss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }

    /// `http` or `https`: a scheme of outbound HTTP (`wasi:http`).
    pub fn is_http(self) -> bool {
        matches!(self, Self::Http | Self::Https)
    }

    /// `ws` or `wss`: a scheme of the host-owned WebSocket client.
    pub fn is_websocket(self) -> bool {
        matches!(self, Self::Ws | Self::Wss)
    }

    /// `https` or `wss`: spoken over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Https | Self::Wss)
    }
}

/// Which hosts a pattern covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// Any host.
    Any,
    /// Subdomains of this (lowercase) domain, at any depth.
    Subdomains(String),
    /// Exactly this (lowercase) name.
    Name(String),
    /// Exactly this address: the grant names it, so it may be private or loopback.
    Ip(IpAddr),
}

/// Which ports a pattern covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortPattern {
    /// Any port.
    Any,
    /// Exactly this port.
    Exact(u16),
}

/// One parsed grant pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpPattern {
    /// The scheme it allows.
    pub scheme: Scheme,
    /// The hosts it allows.
    pub host: HostPattern,
    /// The ports it allows.
    pub port: PortPattern,
    /// The path prefix (whole segments, no trailing slash), or none for any path.
    pub path_prefix: Option<String>,
}

/// The parts of a request URL the grant check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget {
    /// The request's scheme.
    pub scheme: Scheme,
    /// The host: a lowercase name without trailing dot, or an IP literal.
    pub host: TargetHost,
    /// The port (the scheme's default when the URL names none).
    pub port: u16,
    /// The path (without query); `/` when empty.
    pub path: String,
}

/// A request's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    /// A DNS name (lowercase, no trailing dot).
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl fmt::Display for TargetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl fmt::Display for RequestTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme.as_str(),
            self.host,
            self.port,
            self.path
        )
    }
}

/// Lowercases a DNS name and drops one trailing dot.
fn normal_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Parses a host as an IP literal (`[v6]` or v4) or a name.
fn parse_host(host: &str) -> Option<TargetHost> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse().ok().map(TargetHost::Ip);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(TargetHost::Ip(ip));
    }
    let name = normal_name(host);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then_some(TargetHost::Name(name))
}

impl RequestTarget {
    /// The grant-relevant parts of an outgoing request's (or connection's) URI; `None` when it
    /// has no usable scheme or host (such a request is denied). The scheme may be any
    /// [`Scheme`]: each transport keeps only its own (outbound HTTP `http`/`https`, WebSocket
    /// `ws`/`wss`).
    pub fn from_uri(uri: &http::Uri) -> Option<Self> {
        let scheme = Scheme::parse(uri.scheme_str()?)?;
        let host = parse_host(uri.host()?)?;
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        let path = match uri.path() {
            "" => "/".to_owned(),
            path => path.to_owned(),
        };
        Some(Self {
            scheme,
            host,
            port,
            path,
        })
    }
}

impl HttpPattern {
    /// Parses one pattern.
    pub fn parse(pattern: &str) -> Result<Self, PatternError> {
        let fail = |reason: &str| PatternError {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or_else(|| fail("it has no scheme://"))?;
        let scheme = Scheme::parse(scheme)
            .ok_or_else(|| fail("the scheme is not http, https, ws or wss"))?;
        if rest.contains(['?', '#', '@']) {
            return Err(fail("queries, fragments and user info are not allowed"));
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], Some(&rest[at..])),
            None => (rest, None),
        };
        let (host, port) = split_port(authority).ok_or_else(|| fail("the port is invalid"))?;
        let host = match host {
            "" => return Err(fail("the host is empty")),
            "*" => HostPattern::Any,
            wildcard if wildcard.starts_with("*.") => match parse_host(&wildcard[2..]) {
                Some(TargetHost::Name(domain)) => HostPattern::Subdomains(domain),
                _ => return Err(fail("`*.` must be followed by a domain name")),
            },
            other if other.contains('*') => {
                return Err(fail(
                    "`*` is allowed only as the whole host or as a `*.` prefix",
                ));
            }
            other => match parse_host(other) {
                Some(TargetHost::Name(name)) => HostPattern::Name(name),
                Some(TargetHost::Ip(ip)) => HostPattern::Ip(ip),
                None => return Err(fail("the host is not a valid name or IP literal")),
            },
        };
        let port = match port {
            None => PortPattern::Exact(scheme.default_port()),
            Some("*") => PortPattern::Any,
            Some(port) => PortPattern::Exact(
                port.parse::<u16>()
                    .ok()
                    .filter(|port| *port != 0)
                    .ok_or_else(|| fail("the port is not a number from 1 to 65535 or *"))?,
            ),
        };
        let path_prefix = match path.map(|p| p.trim_end_matches('/')) {
            None | Some("") => None,
            Some(prefix) if has_dot_segment(prefix) => {
                return Err(fail("the path prefix has a . or .. segment"));
            }
            Some(prefix) if prefix.contains('*') => {
                return Err(fail("the path prefix cannot hold wildcards"));
            }
            Some(prefix) => Some(prefix.to_owned()),
        };
        Ok(Self {
            scheme,
            host,
            port,
            path_prefix,
        })
    }

    /// Whether this pattern allows a request to `target`.
    pub fn matches(&self, target: &RequestTarget) -> bool {
        if self.scheme != target.scheme {
            return false;
        }
        let host_ok = match (&self.host, &target.host) {
            (HostPattern::Any, _) => true,
            (HostPattern::Name(name), TargetHost::Name(host)) => name == host,
            (HostPattern::Subdomains(domain), TargetHost::Name(host)) => is_subdomain(host, domain),
            (HostPattern::Ip(ip), TargetHost::Ip(host)) => same_ip(*ip, *host),
            _ => false,
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(port) => port == target.port,
        };
        host_ok && port_ok && self.path_allows(&target.path)
    }

    fn path_allows(&self, path: &str) -> bool {
        let Some(prefix) = &self.path_prefix else {
            return true;
        };
        if has_dot_segment(path) {
            return false;
        }
        path == prefix
            || path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }

    /// Whether this pattern names `target`'s address explicitly (an IP-literal grant), which is
    /// what lets a request reach a loopback, private, link-local or metadata address.
    pub fn names_address_of(&self, target: &RequestTarget) -> bool {
        matches!((&self.host, &target.host), (HostPattern::Ip(ip), TargetHost::Ip(host)) if same_ip(*ip, *host))
    }

    /// The requests both patterns allow, as one pattern, or none when they share nothing.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        if self.scheme != other.scheme {
            return None;
        }
        let host = intersect_hosts(&self.host, &other.host)?;
        let port = match (self.port, other.port) {
            (PortPattern::Any, port) | (port, PortPattern::Any) => port,
            (PortPattern::Exact(a), PortPattern::Exact(b)) => {
                (a == b).then_some(PortPattern::Exact(a))?
            }
        };
        let path_prefix = match (&self.path_prefix, &other.path_prefix) {
            (None, prefix) | (prefix, None) => prefix.clone(),
            (Some(a), Some(b)) => {
                let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
                let nested = long == short
                    || long
                        .strip_prefix(short.as_str())
                        .is_some_and(|rest| rest.starts_with('/'));
                if !nested {
                    return None;
                }
                Some(long.clone())
            }
        };
        Some(Self {
            scheme: self.scheme,
            host,
            port,
            path_prefix,
        })
    }
}

fn intersect_hosts(a: &HostPattern, b: &HostPattern) -> Option<HostPattern> {
    use HostPattern::{Any, Ip, Name, Subdomains};
    match (a, b) {
        (Any, other) | (other, Any) => Some(other.clone()),
        (Name(x), Name(y)) => (x == y).then(|| Name(x.clone())),
        (Ip(x), Ip(y)) => same_ip(*x, *y).then_some(Ip(*x)),
        (Subdomains(d), Name(n)) | (Name(n), Subdomains(d)) => {
            is_subdomain(n, d).then(|| Name(n.clone()))
        }
        (Subdomains(x), Subdomains(y)) => {
            if x == y || is_subdomain(x, y) {
                Some(Subdomains(x.clone()))
            } else if is_subdomain(y, x) {
                Some(Subdomains(y.clone()))
            } else {
                None
            }
        }
        (Ip(_), _) | (_, Ip(_)) => None,
    }
}

/// Whether `name` is a subdomain (at any depth) of `domain`, not `domain` itself.
fn is_subdomain(name: &str, domain: &str) -> bool {
    name.strip_suffix(domain)
        .and_then(|head| head.strip_suffix('.'))
        .is_some_and(|head| !head.is_empty())
}

/// Compares addresses, treating an IPv4-mapped IPv6 address as its IPv4 address.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Splits `host[:port]`, with `[v6]` hosts; `None` when a port is present but empty.
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest {
            "" => Some((host, None)),
            rest => rest
                .strip_prefix(':')
                .filter(|p| !p.is_empty())
                .map(|p| (host, Some(p))),
        };
    }
    match authority.rsplit_once(':') {
        None => Some((authority, None)),
        Some((_, "")) => None,
        Some((host, port)) => Some((host, Some(port))),
    }
}

/// Whether a path has a `.` or `..` segment, literally or percent-encoded, or an encoded slash.
fn has_dot_segment(path: &str) -> bool {
    let lowered = path.to_ascii_lowercase();
    if lowered.contains("%2f") || lowered.contains("%5c") || lowered.contains('\\') {
        return true;
    }
    lowered
        .replace("%2e", ".")
        .split('/')
        .any(|segment| segment == "." || segment == "..")
}

impl fmt::Display for HttpPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Subdomains(domain) => write!(f, "*.{domain}")?,
            HostPattern::Name(name) => f.write_str(name)?,
            HostPattern::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            HostPattern::Ip(ip) => write!(f, "{ip}")?,
        }
        match self.port {
            PortPattern::Any => f.write_str(":*")?,
            PortPattern::Exact(port) if port == self.scheme.default_port() => {}
            PortPattern::Exact(port) => write!(f, ":{port}")?,
        }
        if let Some(prefix) = &self.path_prefix {
            f.write_str(prefix)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn p(text: &str) -> HttpPattern {
        HttpPattern::parse(text).unwrap()
    }

    fn t(url: &str) -> RequestTarget {
        RequestTarget::from_uri(&url.parse().unwrap()).unwrap()
    }

    #[test]
    fn exact_hosts_match_case_insensitively_on_the_default_port() {
        let grant = p("https://API.example.com");
        assert!(grant.matches(&t("https://api.example.com/x")));
        assert!(grant.matches(&t("https://api.example.com.:443/x")));
        assert!(!grant.matches(&t("https://api.example.com:8443/x")));
        assert!(!grant.matches(&t("http://api.example.com/x")));
        assert!(!grant.matches(&t("https://evil-api.example.com/x")));
    }

    #[test]
    fn subdomain_wildcards_cover_subdomains_only() {
        let grant = p("https://*.example.com");
        assert!(grant.matches(&t("https://a.example.com/")));
        assert!(grant.matches(&t("https://a.b.example.com/")));
        assert!(!grant.matches(&t("https://example.com/")));
        assert!(!grant.matches(&t("https://aexample.com/")));
        assert!(!grant.matches(&t("https://example.com.evil.org/")));
    }

    #[test]
    fn port_wildcards_and_explicit_ports() {
        assert!(p("http://127.0.0.1:*").matches(&t("http://127.0.0.1:9999/")));
        assert!(p("http://127.0.0.1:8080").matches(&t("http://127.0.0.1:8080/")));
        assert!(!p("http://127.0.0.1:8080").matches(&t("http://127.0.0.1:8081/")));
        assert!(p("http://[::1]:*").matches(&t("http://[::1]:1/")));
        assert!(p("http://*:*").matches(&t("http://anything.test:5/")));
    }

    #[test]
    fn path_prefixes_match_whole_segments_and_refuse_dot_segments() {
        let grant = p("https://h.test/api/");
        assert_eq!(grant.path_prefix.as_deref(), Some("/api"));
        assert!(grant.matches(&t("https://h.test/api")));
        assert!(grant.matches(&t("https://h.test/api/v1?x=1")));
        assert!(!grant.matches(&t("https://h.test/apix")));
        assert!(!grant.matches(&t("https://h.test/api/../admin")));
        assert!(!grant.matches(&t("https://h.test/api/%2E%2e/admin")));
        assert!(!grant.matches(&t("https://h.test/api%2fadmin")));
        assert!(!grant.matches(&t("https://h.test/")));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        for (text, reason) in [
            ("example.com", "no scheme"),
            ("ftp://example.com", "not http, https, ws or wss"),
            ("https://", "host is empty"),
            ("https://ex*ample.com", "`*` is allowed only"),
            ("https://*.", "`*.` must be followed"),
            ("https://example.com:0", "port is not a number"),
            ("https://example.com:http", "port is not a number"),
            ("https://example.com:", "port is invalid"),
            ("https://example.com/a?b", "queries"),
            ("https://user@example.com", "user info"),
            ("https://example.com/a/../b", ". or .. segment"),
            ("https://exa mple.com", "not a valid name"),
        ] {
            let error = HttpPattern::parse(text).unwrap_err();
            assert!(error.to_string().contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn intersection_keeps_only_what_both_allow() {
        let i = |a: &str, b: &str| p(a).intersect(&p(b)).map(|x| x.to_string());
        assert_eq!(
            i("https://*:*", "https://api.example.com").as_deref(),
            Some("https://api.example.com")
        );
        assert_eq!(
            i("https://*.example.com", "https://a.example.com:*/v1").as_deref(),
            Some("https://a.example.com/v1")
        );
        assert_eq!(
            i("https://*.example.com", "https://*.b.example.com").as_deref(),
            Some("https://*.b.example.com")
        );
        assert_eq!(
            i("https://a.test/x", "https://a.test/x/y").as_deref(),
            Some("https://a.test/x/y")
        );
        assert_eq!(i("https://a.test/x", "https://a.test/y"), None);
        assert_eq!(i("http://*:*", "https://*:*"), None);
        assert_eq!(i("https://a.test:1", "https://a.test:2"), None);
        assert_eq!(
            i("http://*:*", "http://127.0.0.1:*").as_deref(),
            Some("http://127.0.0.1:*")
        );
        assert_eq!(i("http://localhost:*", "http://127.0.0.1:*"), None);
    }

    #[test]
    fn ip_literal_grants_name_their_address() {
        let grant = p("http://127.0.0.1:*");
        assert!(grant.names_address_of(&t("http://127.0.0.1:80/")));
        assert!(grant.names_address_of(&t("http://[::ffff:127.0.0.1]:80/")));
        assert!(!grant.names_address_of(&t("http://localhost:80/")));
        assert!(!p("http://*:*").names_address_of(&t("http://127.0.0.1:80/")));
    }

    #[test]
    fn websocket_patterns_match_only_websocket_targets_and_default_their_ports() {
        let ws = p("ws://127.0.0.1:*");
        assert!(ws.matches(&t("ws://127.0.0.1:9/echo")));
        assert!(!ws.matches(&t("http://127.0.0.1:9/echo")));
        assert!(!p("http://127.0.0.1:*").matches(&t("ws://127.0.0.1:9/echo")));
        let wss = p("wss://stream.example.com/v1");
        assert_eq!(wss.port, PortPattern::Exact(443));
        assert!(wss.matches(&t("wss://stream.example.com/v1/ticks?x=1")));
        assert!(!wss.matches(&t("ws://stream.example.com:443/v1")));
        assert!(!wss.matches(&t("https://stream.example.com/v1")));
        assert_eq!(t("ws://h.test/").port, 80);
        assert_eq!(t("WSS://h.test/").port, 443);
        assert_eq!(p("ws://*:*").intersect(&p("http://*:*")), None);
        assert!(Scheme::Wss.is_tls() && Scheme::Wss.is_websocket() && !Scheme::Wss.is_http());
        assert!(Scheme::Http.is_http() && !Scheme::Http.is_websocket() && !Scheme::Http.is_tls());
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "https://api.example.com",
            "http://127.0.0.1:*",
            "https://*.example.com:8443/v1",
            "http://[::1]:8080/x",
            "https://*:*",
            "ws://127.0.0.1:*/echo",
            "wss://stream.example.com",
        ] {
            assert_eq!(p(text).to_string(), text);
            assert_eq!(p(&p(text).to_string()), p(text));
        }
    }
}

//! Absolute `http`/`https` URLs split the way wasi:http wants them (scheme, authority,
//! path-with-query), and relative references resolved against them (RFC 3986 §5.2), which is
//! what following a redirect's `Location` needs. Deliberately small: no IDNA, no userinfo.

use std::fmt;

use super::HttpError;

/// The scheme of an outbound request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain-text HTTP (default port 80).
    Http,
    /// HTTP over TLS (default port 443).
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An absolute `http://` or `https://` URL, parsed with [`Url::parse`]. The host is lowercased,
/// the fragment dropped, and bytes that may not appear in a request target (spaces, non-ASCII,
/// quotes, ...) percent-encoded, so what [`Url::path_with_query`] returns can go on the wire.
///
/// ```
/// use execution_plane_sdk::http::{Scheme, Url};
///
/// let url = Url::parse("https://API.example.com:8443/v1/items?q=a b#top").unwrap();
/// assert_eq!(url.scheme(), Scheme::Https);
/// assert_eq!(url.authority(), "api.example.com:8443");
/// assert_eq!(url.path_with_query(), "/v1/items?q=a%20b");
/// assert_eq!(url.join("../health").unwrap().to_string(), "https://api.example.com:8443/health");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    scheme: Scheme,
    host: String,
    port: Option<u16>,
    path_with_query: String,
}

impl Url {
    /// Parses an absolute `http`/`https` URL; anything else is [`HttpError::InvalidUrl`] with
    /// the reason.
    pub fn parse(text: &str) -> Result<Self, HttpError> {
        let invalid = |reason: &str| HttpError::InvalidUrl {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_control());
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return Err(invalid(
                "it is not an absolute URL; write it as http://host/path or https://host/path",
            ));
        };
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else {
            return Err(invalid("the scheme must be http or https"));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (host, port) = split_authority(authority).map_err(invalid)?;
        let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
        let mut path_with_query = String::with_capacity(tail.len() + 1);
        if !tail.starts_with('/') {
            path_with_query.push('/');
        }
        encode_target(tail, &mut path_with_query);
        Ok(Self {
            scheme,
            host,
            port,
            path_with_query,
        })
    }

    /// Resolves `reference` (a redirect's `Location`: absolute, `//host/...`, `/path`,
    /// `relative/path`, `?query`) against this URL, per RFC 3986 §5.2.
    pub fn join(&self, reference: &str) -> Result<Self, HttpError> {
        let reference =
            reference.trim_matches(|c: char| c.is_ascii_whitespace() || c.is_ascii_control());
        let reference = reference
            .split_once('#')
            .map_or(reference, |(before, _)| before);
        if has_scheme(reference) {
            return Self::parse(reference);
        }
        if reference.starts_with("//") {
            return Self::parse(&format!("{}:{reference}", self.scheme));
        }
        let (base_path, _) = split_query(&self.path_with_query);
        let target = if reference.is_empty() {
            self.path_with_query.clone()
        } else if reference.starts_with('?') {
            format!("{base_path}{reference}")
        } else {
            let (path, query) = split_query(reference);
            let merged = if path.is_empty() {
                base_path.to_owned()
            } else if path.starts_with('/') {
                path.to_owned()
            } else {
                let directory = base_path.rfind('/').map_or("/", |i| &base_path[..=i]);
                format!("{directory}{path}")
            };
            format!("{}{query}", remove_dot_segments(&merged))
        };
        Self::parse(&format!("{}://{}{target}", self.scheme, self.authority()))
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host, lowercased; an IPv6 literal keeps its brackets (`[::1]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port the URL names, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The port the request goes to: the named one or the scheme's default.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(self.scheme.default_port())
    }

    /// `host[:port]`, as wasi:http's `set-authority` and the `Host` header want it.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// The request target: the path (at least `/`) and the query, without the fragment.
    pub fn path_with_query(&self) -> &str {
        &self.path_with_query
    }

    /// Whether `other` has the same scheme, host and port (the same origin): credentials
    /// should not follow a redirect to a different one.
    pub fn same_origin(&self, other: &Self) -> bool {
        self.scheme == other.scheme
            && self.host == other.host
            && self.effective_port() == other.effective_port()
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        f.write_str(&self.path_with_query)
    }
}

/// `host[:port]` → the lowercased host and the port; the error is the reason.
fn split_authority(authority: &str) -> Result<(String, Option<u16>), &'static str> {
    if authority.is_empty() {
        return Err("it has no host; write it as http://host/path");
    }
    if authority.contains('@') {
        return Err("credentials in the URL are not supported; send an Authorization header");
    }
    let (host, port) = if let Some(literal) = authority.strip_prefix('[') {
        let Some((address, after)) = literal.split_once(']') else {
            return Err("the IPv6 host has no closing `]`");
        };
        if address.is_empty()
            || !address
                .chars()
                .all(|c| c.is_ascii_hexdigit() || ":.".contains(c))
        {
            return Err("the IPv6 host is not an IPv6 address");
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("unexpected text after the IPv6 host")?,
            ),
        };
        (&authority[..address.len() + 2], port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("it has no host; write it as http://host/path");
    }
    if !host.is_ascii() {
        return Err("the host is not ASCII; use its punycode (xn--) form");
    }
    if !host.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err("the host has characters a host name cannot have");
    }
    let port = match port {
        None | Some("") => None,
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => Some(
            digits
                .parse::<u16>()
                .map_err(|_| "the port is over 65535")?,
        ),
        Some(_) => return Err("the port is not a number"),
    };
    Ok((host.to_ascii_lowercase(), port))
}

/// Appends `target` (path and query) to `out`, percent-encoding the bytes a request target may
/// not carry; existing `%XX` escapes are kept.
fn encode_target(target: &str, out: &mut String) {
    for byte in target.bytes() {
        if byte.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// Whether `reference` starts with `scheme:` (RFC 3986 §3.1), i.e. is absolute.
fn has_scheme(reference: &str) -> bool {
    let Some((scheme, _)) = reference.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// `path?query` → (`path`, `?query` or empty).
fn split_query(target: &str) -> (&str, &str) {
    match target.find('?') {
        Some(i) => target.split_at(i),
        None => (target, ""),
    }
}

/// RFC 3986 §5.2.4: resolves `.` and `..` segments of an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => {
                if *segment == ".." {
                    output.pop();
                }
                // A trailing `.` or `..` leaves the path ending in a slash.
                if index == last {
                    output.push("");
                }
            }
            other => output.push(other),
        }
    }
    format!("/{}", output.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn reason(text: &str) -> String {
        match Url::parse(text) {
            Err(HttpError::InvalidUrl { reason, .. }) => reason,
            other => panic!("expected InvalidUrl for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn parse_splits_scheme_authority_and_path_with_query() {
        let u = url("http://example.com:8080/a/b?x=1&y=2");
        assert_eq!(u.scheme(), Scheme::Http);
        assert_eq!(u.host(), "example.com");
        assert_eq!(u.port(), Some(8080));
        assert_eq!(u.authority(), "example.com:8080");
        assert_eq!(u.path_with_query(), "/a/b?x=1&y=2");
        assert_eq!(u.to_string(), "http://example.com:8080/a/b?x=1&y=2");
    }

    #[test]
    fn parse_defaults_the_path_to_slash_and_keeps_a_bare_query() {
        assert_eq!(url("https://example.com").path_with_query(), "/");
        assert_eq!(url("https://example.com?q=1").path_with_query(), "/?q=1");
        assert_eq!(url("https://example.com#frag").path_with_query(), "/");
    }

    #[test]
    fn parse_lowercases_scheme_and_host_but_not_the_path() {
        let u = url("HTTPS://Example.COM/Path?Q=A");
        assert_eq!(u.scheme(), Scheme::Https);
        assert_eq!(u.to_string(), "https://example.com/Path?Q=A");
    }

    #[test]
    fn parse_drops_the_fragment_and_encodes_unsafe_bytes() {
        assert_eq!(
            url("http://h/a b/é?q=\"x\"#frag").path_with_query(),
            "/a%20b/%C3%A9?q=%22x%22"
        );
        assert_eq!(url("http://h/a%20b").path_with_query(), "/a%20b");
    }

    #[test]
    fn parse_accepts_ipv6_literals_with_and_without_port() {
        let u = url("http://[::1]:9000/x");
        assert_eq!((u.host(), u.port()), ("[::1]", Some(9000)));
        assert_eq!(u.authority(), "[::1]:9000");
        assert_eq!(url("https://[2001:DB8::1]/").host(), "[2001:db8::1]");
    }

    #[test]
    fn parse_treats_an_empty_port_as_absent_and_knows_default_ports() {
        let u = url("http://h:/x");
        assert_eq!((u.port(), u.effective_port()), (None, 80));
        assert_eq!(url("https://h/").effective_port(), 443);
    }

    #[test]
    fn parse_trims_surrounding_whitespace() {
        assert_eq!(url("  http://h/x \n").to_string(), "http://h/x");
    }

    #[test]
    fn parse_refuses_what_is_not_an_absolute_http_url_with_the_reason() {
        assert!(reason("example.com/x").contains("not an absolute URL"));
        assert!(reason("/relative").contains("not an absolute URL"));
        assert!(reason("ftp://h/x").contains("http or https"));
        assert!(reason("http:///x").contains("no host"));
        assert!(reason("http://:80/x").contains("no host"));
        assert!(reason("http://user:pw@h/").contains("credentials"));
        assert!(reason("http://h:99999/").contains("65535"));
        assert!(reason("http://h:8o/").contains("not a number"));
        assert!(reason("http://a:1:2/").contains("not a number"));
        assert!(reason("http://bücher.de/").contains("punycode"));
        assert!(reason("http://a b/").contains("characters"));
        assert!(reason("http://[::1/").contains("closing"));
        assert!(reason("http://[zz]/").contains("IPv6"));
        assert!(reason("http://[::1]x/").contains("after the IPv6"));
    }

    #[test]
    fn invalid_url_error_keeps_the_text_it_was_given() {
        let Err(HttpError::InvalidUrl { url, .. }) = Url::parse("nope") else {
            panic!()
        };
        assert_eq!(url, "nope");
    }

    #[test]
    fn join_resolves_the_rfc_3986_examples() {
        // RFC 3986 §5.4.1, with an http base (fragments are dropped on requests).
        let base = url("http://a/b/c/d;p?q");
        for (reference, expected) in [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            ("..g", "http://a/b/c/..g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
        ] {
            assert_eq!(
                base.join(reference).unwrap().to_string(),
                expected,
                "{reference}"
            );
        }
    }

    #[test]
    fn join_takes_absolute_and_scheme_relative_locations_as_they_are() {
        let base = url("https://a.example:8443/x/y");
        assert_eq!(
            base.join("http://b.example/z").unwrap().to_string(),
            "http://b.example/z"
        );
        assert_eq!(
            base.join("//c.example/w").unwrap().to_string(),
            "https://c.example/w"
        );
        assert_eq!(
            base.join("/root?k=v").unwrap().to_string(),
            "https://a.example:8443/root?k=v"
        );
    }

    #[test]
    fn join_refuses_a_location_with_another_scheme() {
        let err = url("http://a/").join("ftp://b/file").unwrap_err();
        assert!(matches!(err, HttpError::InvalidUrl { .. }), "{err:?}");
    }

    #[test]
    fn same_origin_compares_scheme_host_and_effective_port() {
        let a = url("http://h/x");
        assert!(a.same_origin(&url("http://H:80/y")));
        assert!(!a.same_origin(&url("https://h/x")));
        assert!(!a.same_origin(&url("http://h:8080/x")));
        assert!(!a.same_origin(&url("http://other/x")));
    }
}

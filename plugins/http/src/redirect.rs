//! Following a redirect: each hop is a new request (so the host checks it against the
//! lane's grants again), with the method and body rules of RFC 9110 §15.4 as browsers and
//! common clients apply them, and credentials kept to the origin they were meant for: a hop
//! that leaves the origin carries only the headers known to be safe anywhere, plus those the
//! payload names in `cross_origin_headers`.

use execution_plane_sdk::http::{self, HttpError, Method};

/// Statuses that redirect when they carry a `Location`.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Headers that describe the body; dropped when a redirect drops the body.
const BODY_HEADERS: [&str; 4] = [
    "content-type",
    "content-length",
    "content-encoding",
    "content-language",
];

/// Headers that carry no credential and are forwarded when a hop leaves the origin. Anything
/// else (`authorization`, `cookie`, `x-api-key`, any custom header that might hold a secret)
/// stays with the origin it was sent to, unless the payload names it in
/// `cross_origin_headers`. The body headers only travel with a body (307/308).
pub const SAFE_ACROSS_ORIGINS: [&str; 9] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-encoding",
    "content-language",
    "content-length",
    "content-type",
    "user-agent",
];

/// The request that follows `current` after a `status` response with `location`:
/// `location` resolved against the current URL; 303 (and 301/302 after a POST) switch to GET
/// without a body; 307/308 repeat the method and body. A hop to another origin keeps only
/// [`SAFE_ACROSS_ORIGINS`] and the headers named in `keep` (lowercase names).
pub fn follow(
    current: &http::Request,
    status: u16,
    location: &str,
    keep: &[String],
) -> Result<http::Request, HttpError> {
    let url = current.url().join(location)?;
    let switch_to_get = match status {
        303 => current.method() != &Method::Head,
        301 | 302 => current.method() == &Method::Post,
        _ => false,
    };
    let same_origin = current.url().same_origin(&url);
    let method = if switch_to_get {
        Method::Get
    } else {
        current.method().clone()
    };
    let mut next = http::Request::new(method, url);
    for (name, value) in current.headers() {
        let drop_with_body = switch_to_get && is_one_of(name, &BODY_HEADERS);
        let travels = same_origin
            || is_one_of(name, &SAFE_ACROSS_ORIGINS)
            || keep.iter().any(|kept| name.eq_ignore_ascii_case(kept));
        if !drop_with_body && travels {
            next = next.header(name.clone(), value.clone());
        }
    }
    if !switch_to_get {
        next = next.body(current.body_bytes().to_vec());
    }
    Ok(next)
}

fn is_one_of(name: &str, names: &[&str]) -> bool {
    names
        .iter()
        .any(|candidate| name.eq_ignore_ascii_case(candidate))
}

#[cfg(test)]
mod tests {
    use execution_plane_sdk::http::Url;

    use super::*;

    fn request(method: Method, url: &str) -> http::Request {
        http::Request::new(method, Url::parse(url).unwrap())
            .header("Content-Type", "application/json")
            .header("Authorization", "Bearer t")
            .header("x-trace", "1")
            .body("{\"a\":1}")
    }

    fn names(request: &http::Request) -> Vec<&str> {
        request.headers().iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn only_the_five_redirect_statuses_redirect() {
        for status in [301, 302, 303, 307, 308] {
            assert!(is_redirect(status), "{status}");
        }
        for status in [200, 300, 304, 305, 306, 309, 400] {
            assert!(!is_redirect(status), "{status}");
        }
    }

    #[test]
    fn see_other_switches_any_method_but_head_to_get_without_body() {
        for method in [Method::Post, Method::Put, Method::Delete, Method::Get] {
            let next = follow(&request(method, "http://h/a"), 303, "/b", &[]).unwrap();
            assert_eq!(next.method(), &Method::Get);
            assert!(next.body_bytes().is_empty());
            assert_eq!(names(&next), ["Authorization", "x-trace"]);
        }
        let head = follow(&request(Method::Head, "http://h/a"), 303, "/b", &[]).unwrap();
        assert_eq!(head.method(), &Method::Head);
    }

    #[test]
    fn moved_and_found_switch_post_to_get_and_keep_other_methods() {
        for status in [301, 302] {
            let next = follow(&request(Method::Post, "http://h/a"), status, "/b", &[]).unwrap();
            assert_eq!(next.method(), &Method::Get);
            assert!(next.body_bytes().is_empty());
            let next = follow(&request(Method::Put, "http://h/a"), status, "/b", &[]).unwrap();
            assert_eq!(next.method(), &Method::Put);
            assert_eq!(next.body_bytes(), b"{\"a\":1}");
            assert_eq!(names(&next), ["Content-Type", "Authorization", "x-trace"]);
        }
    }

    #[test]
    fn temporary_and_permanent_redirects_repeat_method_and_body() {
        for status in [307, 308] {
            let next = follow(&request(Method::Post, "http://h/a"), status, "/b", &[]).unwrap();
            assert_eq!(next.method(), &Method::Post);
            assert_eq!(next.body_bytes(), b"{\"a\":1}");
        }
    }

    #[test]
    fn relative_locations_resolve_against_the_current_url() {
        let current = request(Method::Get, "https://h:8443/api/v1/items?page=2");
        for (location, expected) in [
            ("next", "https://h:8443/api/v1/next"),
            ("../v2/items", "https://h:8443/api/v2/items"),
            ("/login?back=1", "https://h:8443/login?back=1"),
            ("?page=3", "https://h:8443/api/v1/items?page=3"),
            ("//cdn.example/x", "https://cdn.example/x"),
            ("http://other.example/y", "http://other.example/y"),
        ] {
            let next = follow(&current, 302, location, &[]).unwrap();
            assert_eq!(next.url().to_string(), expected, "{location}");
        }
    }

    #[test]
    fn credentials_stay_on_their_origin() {
        let current = request(Method::Get, "http://h/a")
            .header("X-Api-Key", "k")
            .header("Accept", "text/plain")
            .header("User-Agent", "lane");
        let same = follow(&current, 307, "http://h:80/b", &[]).unwrap();
        assert_eq!(
            names(&same),
            [
                "Content-Type",
                "Authorization",
                "x-trace",
                "X-Api-Key",
                "Accept",
                "User-Agent"
            ]
        );
        for location in ["http://other/b", "https://h/b", "http://h:81/b"] {
            let next = follow(&current, 307, location, &[]).unwrap();
            assert_eq!(
                names(&next),
                ["Content-Type", "Accept", "User-Agent"],
                "{location}"
            );
        }
    }

    #[test]
    fn the_payload_may_name_headers_to_keep_across_origins() {
        let current = request(Method::Post, "http://h/a").header("X-Api-Key", "k");
        let next = follow(&current, 308, "http://other/b", &["x-api-key".to_owned()]).unwrap();
        assert_eq!(names(&next), ["Content-Type", "X-Api-Key"]);
        assert_eq!(next.body_bytes(), b"{\"a\":1}");
        // A hop that drops the body drops its headers even when named.
        let next = follow(
            &current,
            303,
            "http://other/b",
            &["content-type".to_owned()],
        )
        .unwrap();
        assert!(names(&next).is_empty(), "{:?}", names(&next));
    }

    #[test]
    fn a_location_that_is_not_http_is_an_invalid_url() {
        let err = follow(
            &request(Method::Get, "http://h/a"),
            302,
            "ftp://h/file",
            &[],
        )
        .unwrap_err();
        assert!(matches!(err, HttpError::InvalidUrl { .. }), "{err:?}");
    }
}

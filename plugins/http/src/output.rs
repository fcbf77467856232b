//! The success output: status, headers (lowercased, repeats joined), body as text or base64,
//! the final URL and the redirects followed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use execution_plane_sdk::http::{Response, Url};
use execution_plane_sdk::{Map, Value, json};

/// The output object for `response`, fetched from `url` after following `redirects`. The
/// body moves into the output (a UTF-8 body is not copied), so a large response needs as
/// little of the lane's memory as it can.
pub fn shape(response: Response, url: &Url, redirects: &[String]) -> Value {
    let headers = headers(&response.headers);
    let (body, encoding) = body(response.body);
    json!({
        "status_code": response.status,
        "headers": headers,
        "body": body,
        "body_encoding": encoding,
        "url": url.to_string(),
        "redirects": redirects,
    })
}

/// Header names lowercased; a repeated name's values joined with `", "` in arrival order.
pub fn headers(fields: &[(String, String)]) -> Map<String, Value> {
    let mut joined: Map<String, Value> = Map::new();
    for (name, value) in fields {
        let name = name.to_ascii_lowercase();
        let text = match joined.get(&name).and_then(Value::as_str) {
            Some(earlier) => format!("{earlier}, {value}"),
            None => value.clone(),
        };
        joined.insert(name, Value::from(text));
    }
    joined
}

/// The body as a UTF-8 string (the same buffer), or base64 when it is not UTF-8; with its
/// encoding's name.
pub fn body(bytes: Vec<u8>) -> (String, &'static str) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, "utf8"),
        Err(error) => (STANDARD.encode(error.as_bytes()), "base64"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_lowercased_and_repeats_joined_in_order() {
        let fields = [
            ("Content-Type".to_owned(), "text/plain".to_owned()),
            ("Set-Cookie".to_owned(), "a=1".to_owned()),
            ("set-cookie".to_owned(), "b=2".to_owned()),
        ];
        assert_eq!(
            Value::Object(headers(&fields)),
            json!({"content-type": "text/plain", "set-cookie": "a=1, b=2"})
        );
    }

    #[test]
    fn utf8_bodies_are_text_and_others_base64() {
        assert_eq!(
            body(b"{\"ok\":true}".to_vec()),
            ("{\"ok\":true}".to_owned(), "utf8")
        );
        assert_eq!(body(Vec::new()), (String::new(), "utf8"));
        assert_eq!(body(vec![0xff, 0x00, 0x10]), ("/wAQ".to_owned(), "base64"));
    }

    #[test]
    fn shape_carries_status_headers_body_url_and_redirects() {
        let response = Response {
            status: 404,
            headers: vec![("X-A".into(), "1".into())],
            body: b"nope".to_vec(),
        };
        let url = Url::parse("http://h/final").unwrap();
        assert_eq!(
            shape(response, &url, &["http://h/final".to_owned()]),
            json!({
                "status_code": 404,
                "headers": {"x-a": "1"},
                "body": "nope",
                "body_encoding": "utf8",
                "url": "http://h/final",
                "redirects": ["http://h/final"],
            })
        );
    }
}

//! Tests of [`super::framing`]: every chunking of a stream yields the same frames, and every
//! malformed or oversize stream is refused with the right error.

use serde_json::json;

use super::framing::{FrameDecoder, Framing, FramingError, MAX_HEADER_BYTES, encode_frame};

const MAX: usize = 1024;

/// Frames from `bytes` pushed as one chunk, checked against one byte at a time and against
/// every split into two chunks; `finish` must find nothing left.
fn frames(framing: Framing, bytes: &[u8]) -> Vec<Vec<u8>> {
    let whole = decode(framing, &[bytes]);
    let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode(framing, &one_by_one), whole, "one byte at a time");
    for split in 0..=bytes.len() {
        let (head, tail) = bytes.split_at(split);
        assert_eq!(decode(framing, &[head, tail]), whole, "split at {split}");
    }
    whole
}

fn decode(framing: Framing, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut decoder = FrameDecoder::new(framing, MAX);
    let mut frames = Vec::new();
    for chunk in chunks {
        frames.extend(decoder.push(chunk).unwrap());
    }
    assert_eq!(decoder.finish().unwrap(), None);
    frames
}

/// The first error `bytes` produces, pushed one byte at a time.
fn error_of(framing: Framing, max: usize, bytes: &[u8]) -> FramingError {
    let mut decoder = FrameDecoder::new(framing, max);
    for byte in bytes.chunks(1) {
        if let Err(error) = decoder.push(byte) {
            return error;
        }
    }
    decoder.finish().unwrap_err()
}

#[test]
fn ndjson_frame_is_compact_json_and_a_newline() {
    assert_eq!(
        encode_frame(Framing::Ndjson, &json!({"a": "x\ny"})),
        b"{\"a\":\"x\\ny\"}\n".to_vec()
    );
}

#[test]
fn content_length_frame_counts_body_bytes() {
    assert_eq!(
        encode_frame(Framing::ContentLength, &json!({"k": "é"})),
        b"Content-Length: 10\r\n\r\n{\"k\":\"\xc3\xa9\"}".to_vec()
    );
}

#[test]
fn encoded_frames_decode_back_in_both_framings() {
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "a"}),
        json!({"x": []}),
    ];
    for framing in [Framing::Ndjson, Framing::ContentLength] {
        let wire: Vec<u8> = messages
            .iter()
            .flat_map(|m| encode_frame(framing, m))
            .collect();
        let decoded: Vec<serde_json::Value> = frames(framing, &wire)
            .iter()
            .map(|frame| serde_json::from_slice(frame).unwrap())
            .collect();
        assert_eq!(decoded, messages, "{framing:?}");
    }
}

#[test]
fn ndjson_two_lines_in_one_chunk_are_two_frames() {
    assert_eq!(
        frames(Framing::Ndjson, b"{\"a\":1}\n{\"b\":2}\n"),
        vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]
    );
}

#[test]
fn ndjson_crlf_is_stripped_and_blank_lines_are_skipped() {
    assert_eq!(
        frames(Framing::Ndjson, b"\r\n{\"a\":1}\r\n\n  \t\r\n{\"b\":2}\n"),
        vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]
    );
}

#[test]
fn ndjson_unterminated_last_line_is_returned_by_finish() {
    let mut decoder = FrameDecoder::new(Framing::Ndjson, MAX);
    assert_eq!(
        decoder.push(b"{\"a\":1}\n{\"b\"").unwrap(),
        vec![b"{\"a\":1}".to_vec()]
    );
    assert!(decoder.push(b":2}\r").unwrap().is_empty());
    assert_eq!(decoder.finish().unwrap(), Some(b"{\"b\":2}".to_vec()));
    assert_eq!(decoder.finish().unwrap(), None);
}

#[test]
fn ndjson_line_at_the_limit_passes_and_one_over_is_too_large() {
    let at_limit = [vec![b'1'; MAX], b"\r\n".to_vec()].concat();
    assert_eq!(frames(Framing::Ndjson, &at_limit), vec![vec![b'1'; MAX]]);
    let over = [vec![b'1'; MAX + 1], b"\n".to_vec()].concat();
    for bytes in [&over[..], &over[..MAX + 2 - 1]] {
        assert_eq!(
            error_of(Framing::Ndjson, MAX, bytes),
            FramingError::FrameTooLarge { max: MAX }
        );
    }
    let mut decoder = FrameDecoder::new(Framing::Ndjson, MAX);
    assert!(decoder.push(&over).is_err());
}

#[test]
fn ndjson_endless_line_is_refused_before_it_is_buffered() {
    let mut decoder = FrameDecoder::new(Framing::Ndjson, 4);
    assert!(decoder.push(b"12345").unwrap().is_empty()); // room for a trailing \r
    assert_eq!(
        decoder.push(b"6"),
        Err(FramingError::FrameTooLarge { max: 4 })
    );
}

#[test]
fn frames_before_an_error_are_returned_and_the_error_comes_next() {
    let mut decoder = FrameDecoder::new(Framing::Ndjson, 4);
    assert_eq!(
        decoder.push(b"1\n123456789\n2\n").unwrap(),
        vec![b"1".to_vec()]
    );
    let error = FramingError::FrameTooLarge { max: 4 };
    assert_eq!(decoder.push(b"3\n"), Err(error.clone()));
    assert_eq!(decoder.finish(), Err(error.clone()));
    assert!(error.to_string().contains("larger than the 4-byte limit"));
}

#[test]
fn content_length_two_frames_in_one_chunk_with_other_headers() {
    let wire =
        b"Content-Length: 7\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n\
                 {\"a\":1}content-length:2\r\n\r\n{}";
    assert_eq!(
        frames(Framing::ContentLength, wire),
        vec![b"{\"a\":1}".to_vec(), b"{}".to_vec()]
    );
}

#[test]
fn content_length_accepts_bare_newlines_case_and_spacing() {
    assert_eq!(
        frames(
            Framing::ContentLength,
            b"CONTENT-LENGTH:2\n\n{}cOnTeNt-LeNgTh :  2 \r\n\r\n[]"
        ),
        vec![b"{}".to_vec(), b"[]".to_vec()]
    );
}

#[test]
fn content_length_skips_blank_lines_between_frames_and_allows_empty_bodies() {
    assert_eq!(
        frames(
            Framing::ContentLength,
            b"Content-Length: 2\r\n\r\n{}\r\n\r\nContent-Length: 0\r\n\r\n"
        ),
        vec![b"{}".to_vec(), Vec::new()]
    );
}

#[test]
fn content_length_repeated_equal_values_are_accepted() {
    assert_eq!(
        frames(
            Framing::ContentLength,
            b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
        ),
        vec![b"{}".to_vec()]
    );
}

#[test]
fn content_length_malformed_headers_are_refused() {
    for (wire, expected) in [
        (
            &b"Content-Type: x\r\n\r\n{}"[..],
            FramingError::MissingContentLength,
        ),
        (
            b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n",
            FramingError::ConflictingContentLength {
                first: 2,
                second: 3,
            },
        ),
        (
            b"Content-Length 2\r\n\r\n",
            FramingError::MalformedHeader {
                line: "Content-Length 2".into(),
            },
        ),
        (
            b": 2\r\n\r\n",
            FramingError::MalformedHeader { line: ": 2".into() },
        ),
        (
            b"{\"id\":1}\n",
            FramingError::MalformedHeader {
                line: "{\"id\"".into(),
            },
        ),
    ] {
        let error = error_of(Framing::ContentLength, MAX, wire);
        if let FramingError::MalformedHeader { .. } = expected {
            assert!(
                matches!(error, FramingError::MalformedHeader { .. }),
                "{error:?}"
            );
        } else {
            assert_eq!(error, expected);
        }
    }
    for value in [
        "abc",
        "-1",
        "+5",
        "",
        "1.5",
        "2 2",
        "99999999999999999999999999",
    ] {
        let wire = format!("Content-Length: {value}\r\n\r\n");
        assert_eq!(
            error_of(Framing::ContentLength, MAX, wire.as_bytes()),
            FramingError::InvalidContentLength {
                value: value.trim().into()
            }
        );
    }
    let line = error_of(Framing::ContentLength, MAX, b"\xff\xfe\r\n");
    assert!(
        matches!(line, FramingError::MalformedHeader { .. }),
        "{line:?}"
    );
}

#[test]
fn content_length_over_the_limit_is_refused_before_the_body() {
    let mut decoder = FrameDecoder::new(Framing::ContentLength, 10);
    assert_eq!(
        decoder.push(b"Content-Length: 11\r\n\r\n"),
        Err(FramingError::FrameTooLarge { max: 10 })
    );
    let mut decoder = FrameDecoder::new(Framing::ContentLength, 10);
    let at_limit = decoder
        .push(b"Content-Length: 10\r\n\r\n0123456789")
        .unwrap();
    assert_eq!(at_limit, vec![b"0123456789".to_vec()]);
}

#[test]
fn endless_header_block_is_refused_at_the_bound() {
    let wire = [b"X-Padding: ".to_vec(), vec![b'a'; MAX_HEADER_BYTES]].concat();
    assert_eq!(
        error_of(Framing::ContentLength, MAX, &wire),
        FramingError::HeaderTooLarge {
            max: MAX_HEADER_BYTES
        }
    );
    let mut decoder = FrameDecoder::new(Framing::ContentLength, MAX);
    assert!(decoder.push(&wire).is_err());
}

#[test]
fn content_length_stream_ending_mid_frame_is_truncated() {
    for (wire, buffered) in [
        (&b"Content-Len"[..], 11),
        (b"Content-Length: 5\r\n", 19),
        (b"Content-Length: 5\r\n\r\n{}", 2),
    ] {
        let mut decoder = FrameDecoder::new(Framing::ContentLength, MAX);
        assert!(decoder.push(wire).unwrap().is_empty());
        let error = decoder.finish().unwrap_err();
        assert_eq!(error, FramingError::Truncated { buffered });
        assert!(error.to_string().contains("ended inside a frame"));
        assert_eq!(
            decoder.finish(),
            Ok(None),
            "the decoder is empty afterwards"
        );
    }
}

#[test]
fn framing_errors_say_what_to_check() {
    let text = FramingError::MissingContentLength.to_string();
    assert!(
        text.contains("no Content-Length header") && text.contains("NDJSON"),
        "{text}"
    );
    let text = FramingError::ConflictingContentLength {
        first: 1,
        second: 2,
    }
    .to_string();
    assert!(text.contains("disagree (1 and 2)"), "{text}");
}

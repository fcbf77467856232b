//! An incremental `text/event-stream` parser: bytes arrive in arbitrary chunks (a frame, a line
//! or even a CRLF pair may be split across reads) and complete frames come out.
//!
//! It follows the WHATWG event-stream rules the server's frames need: lines end in LF, CRLF or
//! CR; a line starting with `:` is a comment (keep-alives); `field: value` drops one leading
//! space from the value; several `data` lines join with `\n`; a blank line dispatches the frame;
//! a frame with no `data` is not dispatched; a leading byte-order mark is ignored.
//!
//! ```
//! use ep_remote::sse::SseParser;
//!
//! let mut parser = SseParser::new();
//! assert!(parser.push(b"event: result\r\nda").is_empty());
//! let frames = parser.push(b"ta: {}\r\n\r\n");
//! assert_eq!(frames[0].event, "result");
//! assert_eq!(frames[0].data, "{}");
//! ```

/// One dispatched event-stream frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseFrame {
    /// The `event` field (`message` when the frame named none).
    pub event: String,
    /// The `data` lines joined with `\n`.
    pub data: String,
    /// The `id` field, when present.
    pub id: Option<String>,
}

/// Turns chunks of an event stream into [`SseFrame`]s, keeping partial lines between pushes.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line being read (not yet terminated).
    line: Vec<u8>,
    /// The previous chunk ended in CR: a LF at the start of the next one belongs to it.
    after_cr: bool,
    /// Whether the stream's first bytes were looked at for a byte-order mark.
    started: bool,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
    /// Bytes held in the pending line and frame, to bound memory.
    pending: usize,
}

/// A frame or line grew past the parser's limit (a server that never ends a frame).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event-stream frame exceeds {limit} bytes without ending")]
pub struct FrameTooLarge {
    /// The limit in bytes.
    pub limit: usize,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes buffered in an unfinished line or frame.
    pub fn pending_bytes(&self) -> usize {
        self.pending + self.line.len()
    }

    /// Whether a frame was started (a field was read) but not yet dispatched.
    pub fn has_partial_frame(&self) -> bool {
        !self.line.is_empty() || self.event.is_some() || self.data.is_some() || self.id.is_some()
    }

    /// Feeds one chunk; returns the frames it completed, in order.
    pub fn push(&mut self, mut chunk: &[u8]) -> Vec<SseFrame> {
        let mut frames = Vec::new();
        if !self.started && !chunk.is_empty() {
            // A BOM may itself be split; only strip it when it is whole in the first chunk.
            if let Some(rest) = chunk.strip_prefix(b"\xEF\xBB\xBF".as_slice()) {
                chunk = rest;
            }
            self.started = true;
        }
        for &byte in chunk {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' => self.end_line(&mut frames),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut frames);
                }
                other => self.line.push(other),
            }
        }
        frames
    }

    /// Like [`SseParser::push`], but refuses to buffer more than `limit` bytes of one frame.
    pub fn push_limited(
        &mut self,
        chunk: &[u8],
        limit: usize,
    ) -> Result<Vec<SseFrame>, FrameTooLarge> {
        let frames = self.push(chunk);
        if self.pending_bytes() > limit {
            return Err(FrameTooLarge { limit });
        }
        Ok(frames)
    }

    fn end_line(&mut self, frames: &mut Vec<SseFrame>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(frames);
            return;
        }
        if line.first() == Some(&b':') {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let (field, value) = match text.find(':') {
            Some(at) => {
                let value = &text[at + 1..];
                (&text[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            // `retry` and unknown fields do not matter to this client.
            _ => {}
        }
        self.pending += line.len();
    }

    fn dispatch(&mut self, frames: &mut Vec<SseFrame>) {
        let event = self.event.take();
        let id = self.id.take();
        self.pending = 0;
        if let Some(data) = self.data.take() {
            frames.push(SseFrame {
                event: event
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "message".to_owned()),
                data,
                id,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn frame(event: &str, data: &str) -> SseFrame {
        SseFrame {
            event: event.to_owned(),
            data: data.to_owned(),
            id: None,
        }
    }

    fn parse_in_chunks(text: &[u8], size: usize) -> Vec<SseFrame> {
        let mut parser = SseParser::new();
        text.chunks(size).flat_map(|c| parser.push(c)).collect()
    }

    const STREAM: &[u8] = b": keep-alive\n\nevent: execution_event\ndata: {\"a\":1}\n\n: keep-alive\n\nevent: result\ndata: {\"status\":\"succeeded\"}\n\n";

    #[test]
    fn frames_come_out_whole_however_the_bytes_are_split() {
        let expected = vec![
            frame("execution_event", "{\"a\":1}"),
            frame("result", "{\"status\":\"succeeded\"}"),
        ];
        for size in 1..=STREAM.len() {
            assert_eq!(parse_in_chunks(STREAM, size), expected, "chunk size {size}");
        }
    }

    #[test]
    fn crlf_and_lone_cr_line_endings_are_lines() {
        let crlf = b"event: result\r\ndata: x\r\n\r\n";
        for size in 1..=crlf.len() {
            assert_eq!(
                parse_in_chunks(crlf, size),
                vec![frame("result", "x")],
                "{size}"
            );
        }
        assert_eq!(
            parse_in_chunks(b"event: a\rdata: y\r\r", 3),
            vec![frame("a", "y")]
        );
    }

    #[test]
    fn multi_line_data_joins_with_newlines() {
        let text = b"data: one\ndata:two\ndata:\ndata:  four\n\n";
        assert_eq!(
            parse_in_chunks(text, 4),
            vec![frame("message", "one\ntwo\n\n four")]
        );
    }

    #[test]
    fn comments_and_frames_without_data_are_not_dispatched() {
        let text = b": hello\n: keep-alive\n\nevent: lonely\n\nid: 7\nretry: 10\n\n";
        assert!(parse_in_chunks(text, 5).is_empty());
    }

    #[test]
    fn id_field_and_byte_order_mark() {
        let text = b"\xEF\xBB\xBFid: 9\nevent: e\ndata: d\n\n";
        assert_eq!(
            parse_in_chunks(text, text.len()),
            vec![SseFrame {
                event: "e".to_owned(),
                data: "d".to_owned(),
                id: Some("9".to_owned()),
            }]
        );
    }

    #[test]
    fn a_field_without_colon_has_an_empty_value() {
        assert_eq!(parse_in_chunks(b"data\n\n", 1), vec![frame("message", "")]);
    }

    #[test]
    fn unterminated_frame_stays_pending() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"event: result\ndata: {\"partial\"").is_empty());
        assert!(parser.has_partial_frame());
        assert!(parser.push_limited(b"aaaa", 8).is_err());
    }
}

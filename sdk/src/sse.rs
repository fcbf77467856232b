//! An incremental, bounded parser for `text/event-stream` (server-sent events), so a lane that
//! reads an SSE response can turn it into events without a dependency and without trusting the
//! server to keep its lines or events small.
//!
//! [`SseParser`] follows the WHATWG [event stream interpretation] exactly: it strips one leading
//! UTF-8 BOM, ends lines at CRLF, LF or CR, decodes each line as UTF-8 (invalid bytes become
//! U+FFFD), ignores comments and unknown fields, joins `data` lines with LF and dispatches an
//! event at each blank line. Feed it the body's chunks as they arrive; a chunk may end anywhere
//! (inside a line, a UTF-8 sequence, the BOM, or between a CR and its LF). Two limits bound
//! its memory: the length of one line and the size of one event's data; going over either is an
//! [`SseError`].
//!
//! ```
//! use execution_plane_sdk::sse::{SseEvent, SseParser};
//!
//! let mut parser = SseParser::new();
//! // Nothing is dispatched until the blank line that ends the event has arrived.
//! assert!(parser.push(b"event: quote\nid: 7\ndata: YHOO\ndata: +2")?.is_empty());
//! let events = parser.push(b"\n\ndata: partial")?;
//! assert_eq!(
//!     events,
//!     vec![SseEvent {
//!         event: "quote".to_owned(),
//!         data: "YHOO\n+2".to_owned(),
//!         id: "7".to_owned(),
//!     }]
//! );
//! // The ID to send as `Last-Event-ID` when reconnecting.
//! assert_eq!(parser.last_event_id(), "7");
//! // At the end of the body an unfinished event is discarded, as the spec says.
//! assert!(parser.finish());
//! # Ok::<(), execution_plane_sdk::sse::SseError>(())
//! ```
//!
//! [event stream interpretation]: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

use std::borrow::Cow;
use std::fmt;
use std::mem;

/// The default longest line, 64 KiB: far above what real servers send, small enough for a guest.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

/// The default largest event data, 1 MiB: room for big JSON payloads, still a bound.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// The UTF-8 byte order mark; the UTF-8 decode the spec uses drops one at the stream's start.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event: what a browser's `MessageEvent` would carry, minus the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type: the block's last `event` field, or `message` when it had none.
    pub event: String,
    /// The `data` field values joined with LF (no trailing LF); may be empty.
    pub data: String,
    /// The last event ID when the event was dispatched (it carries over from earlier events);
    /// empty when the server never sent one or reset it.
    pub id: String,
}

/// Why the parser refused the stream: the server sent more than a limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SseError {
    /// A line (without its line ending) is longer than the line limit.
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// One event's data (the `data` values joined with LF) is larger than the event limit.
    EventTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LineTooLong { limit } => write!(
                f,
                "the event stream sent a line longer than the {limit}-byte line limit; raise \
                 max_line_bytes (SseParser::with_limits) if the server's lines are that long"
            ),
            Self::EventTooLarge { limit } => write!(
                f,
                "the event stream sent an event whose data is over the {limit}-byte event limit; \
                 raise max_event_bytes (SseParser::with_limits) or ask the server for smaller \
                 events"
            ),
        }
    }
}

impl std::error::Error for SseError {}

/// The state of one `text/event-stream` being read: feed it chunks with [`SseParser::push`]
/// and take the events it dispatches.
///
/// After an error the stream's framing is lost: every later `push` returns the same error
/// until [`SseParser::reset_for_reconnect`], so a caller that keeps feeding never gets
/// events made of a half-dropped line.
#[derive(Debug, Clone)]
pub struct SseParser {
    max_line_bytes: usize,
    max_event_bytes: usize,
    /// The current line so far, without its ending (at the stream's start: the BOM prefix).
    line: Vec<u8>,
    /// No byte of this connection is past the BOM yet, so one may still be stripped.
    at_stream_start: bool,
    /// The last chunk ended with CR: a LF starting the next chunk ends no further line.
    after_cr: bool,
    /// The spec's data buffer: each `data` value followed by LF.
    data: String,
    /// The spec's event type buffer.
    event_type: String,
    /// The spec's last event ID buffer: set by `id` fields, committed at each blank line.
    id_buffer: String,
    /// The spec's last event ID string, the buffer as of the last blank line.
    last_event_id: String,
    retry_ms: Option<u64>,
    /// A field line has been seen since the last blank line.
    in_block: bool,
    /// The error that broke the stream, returned again until a reset.
    failed: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default limits ([`DEFAULT_MAX_LINE_BYTES`], [`DEFAULT_MAX_EVENT_BYTES`]).
    #[must_use]
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that refuses lines over `max_line_bytes` and event data over `max_event_bytes`,
    /// for streams known to be smaller (or larger) than the defaults allow.
    #[must_use]
    pub fn with_limits(max_line_bytes: usize, max_event_bytes: usize) -> Self {
        Self {
            max_line_bytes,
            max_event_bytes,
            line: Vec::new(),
            at_stream_start: true,
            after_cr: false,
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry_ms: None,
            in_block: false,
            failed: None,
        }
    }

    /// Parses the next chunk of the stream and returns the events it completed, in order.
    ///
    /// On an error the events completed earlier in the same chunk are lost with the chunk; use
    /// [`SseParser::push_each`] to receive them before the error.
    ///
    /// # Errors
    ///
    /// [`SseError`] when the stream goes over a limit, and again on every later call until
    /// [`SseParser::reset_for_reconnect`].
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        self.push_each(chunk, |event| events.push(event))?;
        Ok(events)
    }

    /// Parses the next chunk of the stream and hands each completed event to `on_event` as it
    /// is dispatched, without collecting them.
    ///
    /// # Errors
    ///
    /// As [`SseParser::push`]; the events before the error have been handed over.
    pub fn push_each(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(SseEvent),
    ) -> Result<(), SseError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let result = self.feed(chunk, &mut on_event);
        if let Err(error) = result {
            self.discard_partial();
            self.failed = Some(error);
        }
        result
    }

    /// Ends the stream: per the spec, an event not yet ended by a blank line is discarded (a
    /// last `data` line without the blank line after it is never dispatched). Returns `true`
    /// when something was discarded, i.e. the stream was cut inside an event. The parser is then
    /// ready for a new connection, as after [`SseParser::reset_for_reconnect`].
    pub fn finish(&mut self) -> bool {
        let truncated = self.in_block || !self.line.is_empty();
        self.reset_for_reconnect();
        truncated
    }

    /// Prepares for a new connection of the same stream: drops the partial line and event (and
    /// any error) but keeps [`last_event_id`](Self::last_event_id) and
    /// [`retry_ms`](Self::retry_ms); the new connection may start with a BOM again.
    ///
    /// An `id` field of the unfinished event is dropped with it, so the ID kept is the one the
    /// last dispatched block left, which is what a client sends as `Last-Event-ID`.
    pub fn reset_for_reconnect(&mut self) {
        self.discard_partial();
        self.at_stream_start = true;
        self.failed = None;
    }

    /// The last event ID as of the last blank line (it persists across events and changes only
    /// when a block has an `id` field); send it as `Last-Event-ID` when reconnecting, unless
    /// empty.
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time in milliseconds from the last valid `retry` field (ASCII digits
    /// only), so a client knows how long to wait before reconnecting; `None` until one arrives.
    #[must_use]
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Splits the chunk into lines, processes each complete one and keeps the rest.
    fn feed(&mut self, chunk: &[u8], on_event: &mut dyn FnMut(SseEvent)) -> Result<(), SseError> {
        let mut rest = self.skip_bom(chunk);
        if self.after_cr
            && let Some((&first, tail)) = rest.split_first()
        {
            self.after_cr = false;
            if first == b'\n' {
                rest = tail;
            }
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
            let (content, ending) = rest.split_at(end);
            let ends_with_cr = ending.first() == Some(&b'\r');
            rest = ending.get(1..).unwrap_or_default();
            self.complete_line(content, on_event)?;
            if ends_with_cr {
                match rest.split_first() {
                    Some((b'\n', tail)) => rest = tail,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.check_line_len(rest.len())?;
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// Consumes the bytes of a leading BOM, keeping a partial one in `line` across chunks; bytes
    /// that turn out not to be a BOM stay in `line` as the start of the first line.
    fn skip_bom<'a>(&mut self, mut chunk: &'a [u8]) -> &'a [u8] {
        while self.at_stream_start {
            let Some((&byte, tail)) = chunk.split_first() else {
                break;
            };
            if BOM.get(self.line.len()) != Some(&byte) {
                self.at_stream_start = false;
                break;
            }
            self.line.push(byte);
            chunk = tail;
            if self.line.len() == BOM.len() {
                self.line.clear();
                self.at_stream_start = false;
            }
        }
        chunk
    }

    /// Refuses a line whose buffered part plus `more` bytes would be over the line limit.
    fn check_line_len(&self, more: usize) -> Result<(), SseError> {
        if self.line.len().saturating_add(more) > self.max_line_bytes {
            return Err(SseError::LineTooLong {
                limit: self.max_line_bytes,
            });
        }
        Ok(())
    }

    /// Processes the buffered part of the line plus `content`, its last part.
    fn complete_line(
        &mut self,
        content: &[u8],
        on_event: &mut dyn FnMut(SseEvent),
    ) -> Result<(), SseError> {
        self.check_line_len(content.len())?;
        self.at_stream_start = false;
        if self.line.is_empty() {
            return self.process_line(content, on_event);
        }
        let mut line = mem::take(&mut self.line);
        line.extend_from_slice(content);
        let result = self.process_line(&line, on_event);
        line.clear();
        self.line = line; // keep the allocation for the next long line
        result
    }

    /// One complete line, per the spec: blank dispatches, `:` starts a comment, else a field.
    fn process_line(
        &mut self,
        line: &[u8],
        on_event: &mut dyn FnMut(SseEvent),
    ) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(on_event);
            return Ok(());
        }
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(0) => return Ok(()),
            Some(colon) => {
                let (name, colon_and_value) = line.split_at(colon);
                let value = colon_and_value.get(1..).unwrap_or_default();
                (name, value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        self.in_block = true;
        match name {
            b"event" => replace(&mut self.event_type, &decode(value)),
            b"data" => {
                let value = decode(value);
                // The LF pushed after the last value is removed at dispatch, so it is not
                // counted: the limit bounds the data as the event carries it.
                if self.data.len().saturating_add(value.len()) > self.max_event_bytes {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                self.data.push_str(&value);
                self.data.push('\n');
            }
            // A NUL byte is exactly a U+0000 in the decoded value.
            b"id" if !value.contains(&0) => {
                replace(&mut self.id_buffer, &decode(value));
            }
            b"retry" => {
                if let Some(ms) = parse_retry(value) {
                    self.retry_ms = Some(ms);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The spec's "dispatch the event" at a blank line.
    fn dispatch(&mut self, on_event: &mut dyn FnMut(SseEvent)) {
        self.in_block = false;
        // Committed even when no event follows, so `id: 5` plus a blank line moves the ID on.
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event = if self.event_type.is_empty() {
            "message".to_owned()
        } else {
            mem::take(&mut self.event_type)
        };
        on_event(SseEvent {
            event,
            data: mem::take(&mut self.data),
            id: self.last_event_id.clone(),
        });
    }

    /// Drops the partial line and event, freeing what a large one held.
    fn discard_partial(&mut self) {
        self.line = Vec::new();
        self.after_cr = false;
        self.data = String::new();
        self.event_type.clear();
        self.id_buffer.clone_from(&self.last_event_id);
        self.in_block = false;
    }
}

/// Sets `buffer` to `value`, reusing its allocation.
/// The spec's UTF-8 decode of a field value (invalid bytes become U+FFFD). Valid text, which
/// is nearly all of it, takes `str::from_utf8`'s word-at-a-time path rather than the lossy
/// decoder's byte loop.
fn decode(value: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(value) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value),
    }
}

fn replace(buffer: &mut String, value: &str) {
    buffer.clear();
    buffer.push_str(value);
}

/// A `retry` value: base-ten ASCII digits only (no sign, no space), saturating at `u64::MAX`.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |ms, digit| {
        ms.saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn event(event: &str, data: &str, id: &str) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
            id: id.to_owned(),
        }
    }

    fn message(data: &str) -> SseEvent {
        event("message", data, "")
    }

    fn parse(input: &[u8]) -> Vec<SseEvent> {
        SseParser::new().push(input).unwrap()
    }

    fn parse_in_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(parser.push(chunk).unwrap());
        }
        events
    }

    /// A stream with a bit of everything: BOM, all line endings, comments, ids, retry, types,
    /// multi-byte UTF-8, an empty block and an unfinished last event.
    const RICH: &[u8] =
        "\u{FEFF}: hello\r\nretry: 1500\rid: 1\ndata: caf\u{e9} \u{20ac}\u{1F600}\r\n\
        data:second\r\n\r\nevent: add\revent: upd\ndata\r\rid: 2\n\n\nid\r\ndata:  x\n\r\
        data: cut"
            .as_bytes();

    fn rich_events() -> Vec<SseEvent> {
        vec![
            event("message", "caf\u{e9} \u{20ac}\u{1F600}\nsecond", "1"),
            event("upd", "", "1"),
            event("message", " x", ""),
        ]
    }

    #[test]
    fn data_line_and_blank_line_give_one_message_event() {
        assert_eq!(parse(b"data: hello\n\n"), vec![message("hello")]);
    }

    #[test]
    fn spec_three_messages_example_joins_data_lines() {
        let stream = b"data: This is the first message.\n\n\
            data: This is the second message, it\ndata: has two lines.\n\n\
            data: This is the third message.\n\n";
        assert_eq!(
            parse(stream),
            vec![
                message("This is the first message."),
                message("This is the second message, it\nhas two lines."),
                message("This is the third message."),
            ]
        );
    }

    #[test]
    fn spec_stock_example_is_one_event_with_three_lines() {
        assert_eq!(
            parse(b"data: YHOO\ndata: +2\ndata: 10\n\n"),
            vec![message("YHOO\n+2\n10")]
        );
    }

    #[test]
    fn spec_event_field_example_sets_each_event_type() {
        let stream = b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\n\
            event: add\ndata: 113411\n\n";
        assert_eq!(
            parse(stream),
            vec![
                event("add", "73857293", ""),
                event("remove", "2153", ""),
                event("add", "113411", ""),
            ]
        );
    }

    #[test]
    fn spec_id_example_sets_then_resets_the_id_and_drops_the_unfinished_block() {
        let mut parser = SseParser::new();
        let stream =
            b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n";
        assert_eq!(
            parser.push(stream).unwrap(),
            vec![
                event("message", "first event", "1"),
                event("message", "second event", ""),
            ]
        );
        assert_eq!(parser.last_event_id(), "");
        assert!(parser.finish(), "the third block is discarded at the end");
        // With the blank line the spec says the third block would fire, leading space kept.
        assert_eq!(
            parse(b"data:  third event\n\n"),
            vec![message(" third event")]
        );
    }

    #[test]
    fn spec_data_without_colon_example_gives_empty_and_newline_data() {
        let mut parser = SseParser::new();
        assert_eq!(
            parser.push(b"data\n\ndata\ndata\n\ndata:").unwrap(),
            vec![message(""), message("\n")]
        );
        assert!(parser.finish());
    }

    #[test]
    fn spec_space_after_colon_is_optional() {
        assert_eq!(
            parse(b"data:test\n\ndata: test\n\n"),
            vec![message("test"), message("test")]
        );
    }

    #[test]
    fn only_one_leading_space_is_removed_and_trailing_space_is_kept() {
        assert_eq!(
            parse(b"data:   two spaces left \n\n"),
            vec![message("  two spaces left ")]
        );
    }

    #[test]
    fn value_may_contain_colons() {
        assert_eq!(parse(b"data: a: b:c\n\n"), vec![message("a: b:c")]);
    }

    #[test]
    fn leading_bom_is_stripped_once() {
        assert_eq!(parse(b"\xEF\xBB\xBFdata: a\n\n"), vec![message("a")]);
        // A second BOM is part of the first field name, which is then unknown.
        assert_eq!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), vec![]);
    }

    #[test]
    fn bom_split_across_chunks_is_stripped() {
        let chunks: [&[u8]; 4] = [b"\xEF", b"\xBB", b"\xBF", b"data: a\n\n"];
        assert_eq!(parse_in_chunks(chunks), vec![message("a")]);
        let chunks: [&[u8]; 2] = [b"\xEF\xBB", b"\xBFdata: a\n\n"];
        assert_eq!(parse_in_chunks(chunks), vec![message("a")]);
    }

    #[test]
    fn bom_later_in_the_stream_is_not_stripped() {
        let chunks: [&[u8]; 2] = [b"data: a\n\n", b"\xEF\xBB\xBFdata: b\n\n"];
        assert_eq!(parse_in_chunks(chunks), vec![message("a")]);
        assert_eq!(
            parse(b"data: \xEF\xBB\xBFb\n\n"),
            vec![message("\u{FEFF}b")]
        );
    }

    #[test]
    fn partial_bom_is_kept_as_line_bytes() {
        // `EF BB` then `\n`: a line of two invalid bytes (an unknown field), then a blank line.
        let chunks: [&[u8]; 2] = [b"\xEF\xBB", b"\n\ndata: a\n\n"];
        assert_eq!(parse_in_chunks(chunks), vec![message("a")]);
        // `EF` then `d`: the field name is `\u{FFFD}data`, unknown.
        assert_eq!(parse(b"\xEFdata: a\n\ndata: b\n\n"), vec![message("b")]);
    }

    #[test]
    fn stream_starting_with_blank_line_is_not_confused_with_a_bom() {
        assert_eq!(parse(b"\n\ndata: a\n\n"), vec![message("a")]);
    }

    #[test]
    fn cr_lf_and_crlf_all_end_lines() {
        assert_eq!(
            parse(b"data: a\rdata: b\ndata: c\r\n\r\n"),
            vec![message("a\nb\nc")]
        );
        assert_eq!(
            parse(b"data: a\r\rdata: b\n\n"),
            vec![message("a"), message("b")]
        );
        assert_eq!(
            parse(b"data: a\n\rdata: b\r\n\n"),
            vec![message("a"), message("b")]
        );
        // LF CR is two line endings, not one.
        assert_eq!(parse(b"data: a\n\r"), vec![message("a")]);
    }

    #[test]
    fn cr_at_chunk_end_and_lf_at_next_chunk_start_are_one_line_end() {
        let chunks: [&[u8]; 4] = [b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"];
        assert_eq!(parse_in_chunks(chunks), vec![message("a\nb")]);
    }

    #[test]
    fn cr_at_chunk_end_survives_an_empty_chunk() {
        let chunks: [&[u8]; 4] = [b"data: a\r", b"", b"\ndata: b\r", b"\n\n"];
        assert_eq!(parse_in_chunks(chunks), vec![message("a\nb")]);
    }

    #[test]
    fn cr_at_chunk_end_followed_by_cr_is_a_blank_line() {
        let chunks: [&[u8]; 3] = [b"data: a\r", b"\rdata: b\r", b"\r"];
        assert_eq!(parse_in_chunks(chunks), vec![message("a"), message("b")]);
    }

    #[test]
    fn one_push_of_the_rich_stream_gives_the_expected_events() {
        let mut parser = SseParser::new();
        assert_eq!(parser.push(RICH).unwrap(), rich_events());
        assert_eq!(parser.retry_ms(), Some(1500));
        assert!(parser.finish(), "`data: cut` is unfinished");
    }

    #[test]
    fn byte_at_a_time_gives_the_same_events_as_one_push() {
        assert_eq!(parse_in_chunks(RICH.chunks(1)), rich_events());
    }

    #[test]
    fn every_split_into_two_or_three_chunks_gives_the_same_events() {
        for first in 0..=RICH.len() {
            let (head, tail) = RICH.split_at(first);
            assert_eq!(
                parse_in_chunks([head, tail]),
                rich_events(),
                "split at {first}"
            );
            for second in 0..=tail.len() {
                let (middle, last) = tail.split_at(second);
                assert_eq!(
                    parse_in_chunks([head, middle, last]),
                    rich_events(),
                    "split at {first} and {}",
                    first + second
                );
            }
        }
    }

    #[test]
    fn multibyte_utf8_split_across_chunks_is_decoded_whole() {
        let text = "data: \u{e9}\u{20ac}\u{1F600}\n\n".as_bytes();
        // Split inside the 2-, 3- and 4-byte sequences.
        for split in [7, 9, 10, 12, 13, 14] {
            let (head, tail) = text.split_at(split);
            assert_eq!(
                parse_in_chunks([head, tail]),
                vec![message("\u{e9}\u{20ac}\u{1F600}")],
                "split at {split}"
            );
        }
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(
            parse(b"data: a\xFFb\xE2\x82\n\n"),
            vec![message("a\u{FFFD}b\u{FFFD}")]
        );
    }

    #[test]
    fn comments_are_ignored() {
        let mut parser = SseParser::new();
        let events = parser
            .push(b":\n: keep-alive\n:data: no\n\ndata: a\n: inside\ndata: b\n\n: trailing\n")
            .unwrap();
        assert_eq!(events, vec![message("a\nb")]);
        assert!(
            !parser.finish(),
            "a trailing comment is no unfinished event"
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_names_are_case_sensitive() {
        assert_eq!(
            parse(b"Data: no\nfoo: bar\nevent : no\ndata: a\n\n"),
            vec![message("a")]
        );
    }

    #[test]
    fn field_without_colon_has_an_empty_value() {
        assert_eq!(parse(b"event: x\nevent\ndata: a\n\n"), vec![message("a")]);
    }

    #[test]
    fn valid_retry_sets_the_reconnection_time_and_dispatches_nothing() {
        let mut parser = SseParser::new();
        assert_eq!(parser.retry_ms(), None);
        assert_eq!(parser.push(b"retry: 3000\n\n").unwrap(), vec![]);
        assert_eq!(parser.retry_ms(), Some(3000));
        assert_eq!(parser.push(b"retry:0\n").unwrap(), vec![]);
        assert_eq!(
            parser.retry_ms(),
            Some(0),
            "set as soon as the field is read"
        );
    }

    #[test]
    fn invalid_retry_values_are_ignored() {
        let mut parser = SseParser::new();
        parser.push(b"retry: 3000\n").unwrap();
        for invalid in [
            &b"retry: 3s\n"[..],
            b"retry: -1\n",
            b"retry: +5\n",
            b"retry: 1.5\n",
            b"retry:  5\n",
            b"retry: 5 \n",
            b"retry:\n",
            b"retry\n",
            b"retry: \xD9\xA3\n", // ARABIC-INDIC DIGIT THREE is not an ASCII digit
        ] {
            parser.push(invalid).unwrap();
            assert_eq!(parser.retry_ms(), Some(3000), "{invalid:?}");
        }
    }

    #[test]
    fn huge_retry_saturates() {
        let mut parser = SseParser::new();
        parser.push(b"retry: 99999999999999999999999999\n").unwrap();
        assert_eq!(parser.retry_ms(), Some(u64::MAX));
    }

    #[test]
    fn id_persists_across_events_until_another_id_field() {
        let events = parse(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n");
        assert_eq!(
            events,
            vec![
                event("message", "a", "1"),
                event("message", "b", "1"),
                event("message", "c", "2"),
                event("message", "d", ""),
            ]
        );
    }

    #[test]
    fn id_with_null_is_ignored() {
        let mut parser = SseParser::new();
        let events = parser
            .push(b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n")
            .unwrap();
        assert_eq!(
            events,
            vec![event("message", "a", "1"), event("message", "b", "1")]
        );
        assert_eq!(parser.last_event_id(), "1");
    }

    #[test]
    fn id_in_a_block_without_data_still_moves_the_last_event_id() {
        let mut parser = SseParser::new();
        assert_eq!(parser.push(b"id: 5\n\n").unwrap(), vec![]);
        assert_eq!(parser.last_event_id(), "5");
        assert_eq!(
            parser.push(b"data: x\n\n").unwrap(),
            vec![event("message", "x", "5")]
        );
    }

    #[test]
    fn last_event_id_changes_only_when_the_block_ends() {
        let mut parser = SseParser::new();
        parser.push(b"id: 1\n\nid: 2\ndata: a\n").unwrap();
        assert_eq!(parser.last_event_id(), "1");
        parser.push(b"\n").unwrap();
        assert_eq!(parser.last_event_id(), "2");
    }

    #[test]
    fn reset_for_reconnect_keeps_id_and_retry_and_drops_the_partial_event() {
        let mut parser = SseParser::new();
        let events = parser
            .push(b"retry: 2000\nid: 7\ndata: a\n\nevent: x\nid: 8\ndata: par")
            .unwrap();
        assert_eq!(events, vec![event("message", "a", "7")]);
        parser.reset_for_reconnect();
        assert_eq!(
            parser.last_event_id(),
            "7",
            "the unfinished block's id is dropped"
        );
        assert_eq!(parser.retry_ms(), Some(2000));
        // The new connection may start with a BOM; nothing of the old partial event remains.
        assert_eq!(
            parser.push(b"\xEF\xBB\xBFtial\ndata: b\n\n").unwrap(),
            vec![event("message", "b", "7")]
        );
    }

    #[test]
    fn reset_for_reconnect_forgets_a_pending_cr() {
        let mut parser = SseParser::new();
        parser.push(b"data: a\r").unwrap();
        parser.reset_for_reconnect();
        // The LF is the new connection's first line end, a blank line (with nothing to send).
        assert_eq!(parser.push(b"\ndata: b\n\n").unwrap(), vec![message("b")]);
    }

    #[test]
    fn empty_blocks_dispatch_nothing_and_reset_the_event_type() {
        assert_eq!(
            parse(b"\n\n\nevent: x\n\nid\n\ndata: a\n\n"),
            vec![message("a")]
        );
    }

    #[test]
    fn event_type_does_not_carry_over_to_the_next_event() {
        assert_eq!(
            parse(b"event: x\ndata: a\n\ndata: b\n\nevent:\ndata: c\n\n"),
            vec![event("x", "a", ""), message("b"), message("c")]
        );
    }

    #[test]
    fn finish_discards_a_last_event_without_blank_line() {
        let mut parser = SseParser::new();
        assert_eq!(
            parser.push(b"data: a\n\ndata: b\n").unwrap(),
            vec![message("a")]
        );
        assert!(parser.finish());
        assert_eq!(parser.push(b"\n").unwrap(), vec![], "data: b was discarded");
    }

    #[test]
    fn finish_after_a_complete_event_reports_nothing_discarded() {
        let mut parser = SseParser::new();
        parser.push(b"data: a\n\n").unwrap();
        assert!(!parser.finish());
        assert!(!SseParser::new().finish());
    }

    #[test]
    fn push_each_hands_over_events_in_order() {
        let mut parser = SseParser::default();
        let mut seen = Vec::new();
        parser
            .push_each(b"data: a\n\ndata: b\n\n", |event| seen.push(event.data))
            .unwrap();
        assert_eq!(seen, ["a", "b"]);
    }

    #[test]
    fn line_at_the_limit_is_accepted() {
        let mut parser = SseParser::with_limits(8, 100);
        assert_eq!(parser.push(b"data: ab\n\n").unwrap(), vec![message("ab")]);
    }

    #[test]
    fn line_over_the_limit_is_refused() {
        let mut parser = SseParser::with_limits(8, 100);
        assert_eq!(
            parser.push(b"data: abc\n\n"),
            Err(SseError::LineTooLong { limit: 8 })
        );
    }

    #[test]
    fn endless_line_without_newline_is_caught_while_buffering() {
        let mut parser = SseParser::with_limits(16, 100);
        parser.push(b"data: 0123456789").unwrap();
        assert_eq!(parser.push(b"x"), Err(SseError::LineTooLong { limit: 16 }));
    }

    #[test]
    fn long_line_split_over_chunks_is_refused_when_it_ends() {
        let mut parser = SseParser::with_limits(8, 100);
        parser.push(b"data:").unwrap();
        assert_eq!(
            parser.push(b" abcd\n"),
            Err(SseError::LineTooLong { limit: 8 })
        );
    }

    #[test]
    fn event_data_at_the_limit_is_accepted() {
        let mut parser = SseParser::with_limits(100, 5);
        assert_eq!(
            parser.push(b"data: ab\ndata: cd\n\n").unwrap(),
            vec![message("ab\ncd")]
        );
    }

    #[test]
    fn event_data_over_the_limit_is_refused() {
        let mut parser = SseParser::with_limits(100, 5);
        assert_eq!(
            parser.push(b"data: ab\ndata: cde\n\n"),
            Err(SseError::EventTooLarge { limit: 5 })
        );
    }

    #[test]
    fn many_empty_data_lines_count_against_the_event_limit() {
        let mut parser = SseParser::with_limits(100, 3);
        assert_eq!(
            parser.push(b"data\ndata\ndata\ndata\ndata\n"),
            Err(SseError::EventTooLarge { limit: 3 })
        );
    }

    #[test]
    fn after_an_error_the_parser_refuses_until_reset() {
        let mut parser = SseParser::with_limits(8, 100);
        parser.push(b"id: 1\n\n").unwrap();
        let error = Err(SseError::LineTooLong { limit: 8 });
        assert_eq!(parser.push(b"data: toolong\n\n"), error);
        assert_eq!(parser.push(b"data: a\n\n"), error);
        parser.reset_for_reconnect();
        assert_eq!(
            parser.push(b"data: a\n\n").unwrap(),
            vec![event("message", "a", "1")]
        );
    }

    #[test]
    fn push_each_delivers_events_before_the_error() {
        let mut parser = SseParser::with_limits(100, 2);
        let mut seen = Vec::new();
        let result = parser.push_each(b"data: a\n\ndata: abc\n\n", |event| seen.push(event));
        assert_eq!(result, Err(SseError::EventTooLarge { limit: 2 }));
        assert_eq!(seen, vec![message("a")]);
    }

    #[test]
    fn zero_limits_refuse_any_content_but_not_blank_lines() {
        let mut parser = SseParser::with_limits(0, 0);
        assert_eq!(parser.push(b"\n\r\n\r").unwrap(), vec![]);
        assert_eq!(parser.push(b"d"), Err(SseError::LineTooLong { limit: 0 }));
    }

    #[test]
    fn error_messages_name_the_limit_and_what_to_change() {
        let line = SseError::LineTooLong { limit: 65536 }.to_string();
        assert!(line.contains("65536-byte line limit"), "{line}");
        assert!(line.contains("max_line_bytes"), "{line}");
        let event = SseError::EventTooLarge { limit: 1024 }.to_string();
        assert!(event.contains("1024-byte event limit"), "{event}");
        assert!(event.contains("max_event_bytes"), "{event}");
    }
}

//! Frames on the wire: messages become bytes in one of the two framings JSON-RPC peers use,
//! and a byte stream that arrives in arbitrary chunks becomes whole frames again, with every
//! buffer bounded so a misbehaving peer cannot exhaust the lane's memory.

use std::fmt;

use serde_json::Value;

/// The largest Content-Length header block accepted (8 KiB); real blocks are a few dozen bytes.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// How messages are delimited on the byte stream; the peer decides, the lane must match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// One compact JSON message per line (newline-delimited JSON), as upstream's stdio lane.
    Ndjson,
    /// `Content-Length: N\r\n\r\n` followed by N bytes of JSON, as the Language Server Protocol.
    ContentLength,
}

/// The bytes that carry `message` in `framing`; compact JSON never contains a raw newline, so
/// an NDJSON frame is always exactly one line.
#[must_use]
pub fn encode_frame(framing: Framing, message: &Value) -> Vec<u8> {
    let body = message.to_string();
    match framing {
        Framing::Ndjson => {
            let mut frame = body.into_bytes();
            frame.push(b'\n');
            frame
        }
        Framing::ContentLength => {
            let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
            frame.extend_from_slice(body.as_bytes());
            frame
        }
    }
}

/// Why the peer's byte stream cannot be split into frames. Every one is fatal: the frame
/// boundary is lost, so the decoder reports the same error from then on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingError {
    /// A frame (an NDJSON line or a declared Content-Length) is over the decoder's limit.
    FrameTooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// A Content-Length header block grew past [`MAX_HEADER_BYTES`] without ending.
    HeaderTooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// A header line is not `Name: value` with a token name (or not UTF-8).
    MalformedHeader {
        /// The line (cut to 100 characters).
        line: String,
    },
    /// A header block ended without a `Content-Length` header.
    MissingContentLength,
    /// A `Content-Length` value is not a decimal byte count.
    InvalidContentLength {
        /// The value as sent.
        value: String,
    },
    /// Two `Content-Length` headers in one block disagree.
    ConflictingContentLength {
        /// The first value.
        first: usize,
        /// The value that disagrees with it.
        second: usize,
    },
    /// The stream ended in the middle of a Content-Length frame.
    Truncated {
        /// How many bytes of the unfinished frame (header or body) had arrived.
        buffered: usize,
    },
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CHECK: &str = "check that the peer uses Content-Length framing";
        match self {
            Self::FrameTooLarge { max } => write!(
                f,
                "a frame from the peer is larger than the {max}-byte limit; raise the decoder's \
                 max_frame_bytes or ask the peer for smaller messages"
            ),
            Self::HeaderTooLarge { max } => write!(
                f,
                "a header block from the peer is over {max} bytes without ending in a blank \
                 line; {CHECK}"
            ),
            Self::MalformedHeader { line } => {
                write!(
                    f,
                    "the peer sent a header line {line:?} that is not `Name: value`; {CHECK}"
                )
            }
            Self::MissingContentLength => write!(
                f,
                "a header block from the peer has no Content-Length header; {CHECK}, or switch \
                 the lane to NDJSON"
            ),
            Self::InvalidContentLength { value } => write!(
                f,
                "the peer's Content-Length {value:?} is not a decimal byte count; {CHECK}"
            ),
            Self::ConflictingContentLength { first, second } => write!(
                f,
                "the peer sent Content-Length headers that disagree ({first} and {second}), so \
                 the frame's end is unknown; fix the peer"
            ),
            Self::Truncated { buffered } => write!(
                f,
                "the peer's stream ended inside a frame ({buffered} bytes of it arrived); the \
                 peer stopped or was cut off mid-message"
            ),
        }
    }
}

impl std::error::Error for FramingError {}

/// Splits a byte stream into frames, whatever the chunk boundaries; holds at most one partial
/// frame, never more than `max_frame_bytes` (+1 for an NDJSON `\r`) or [`MAX_HEADER_BYTES`].
///
/// NDJSON: lines end in `\n`; a trailing `\r` is dropped and blank lines (only spaces, tabs or
/// `\r`) are skipped. Content-Length: header lines `Name: value` end in `\r\n` (a bare `\n` is
/// accepted too), the block ends at an empty line; `Content-Length` is matched
/// case-insensitively, other headers are ignored, repeated equal values are accepted, and blank
/// lines between frames are skipped.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    framing: Framing,
    max_frame_bytes: usize,
    /// NDJSON: the unterminated line. Content-Length: the current header line, then the body.
    buffer: Vec<u8>,
    /// Content-Length: the declared length of the body being read, once its headers ended.
    body_length: Option<usize>,
    /// Content-Length: the length declared so far in the current header block.
    declared: Option<usize>,
    /// Content-Length: whether a header line of the current block has been read.
    in_header_block: bool,
    /// Content-Length: bytes of the current header block so far, for [`MAX_HEADER_BYTES`].
    header_bytes: usize,
    /// The error that ended the stream, reported again on every later call.
    failed: Option<FramingError>,
}

impl FrameDecoder {
    /// A decoder for `framing` that refuses frames over `max_frame_bytes` bytes.
    #[must_use]
    pub fn new(framing: Framing, max_frame_bytes: usize) -> Self {
        Self {
            framing,
            max_frame_bytes,
            buffer: Vec::new(),
            body_length: None,
            declared: None,
            in_header_block: false,
            header_bytes: 0,
            failed: None,
        }
    }

    /// Feeds the next chunk and returns the frames it completed, in order.
    ///
    /// On a framing error the frames completed before it in this chunk are still returned, and
    /// the error comes from the next call (`push` or [`FrameDecoder::finish`]), so no good frame
    /// is lost; after that every call returns the same error.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>, FramingError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let mut frames = Vec::new();
        let outcome = match self.framing {
            Framing::Ndjson => self.push_ndjson(chunk, &mut frames),
            Framing::ContentLength => self.push_content_length(chunk, &mut frames),
        };
        match outcome {
            Ok(()) => Ok(frames),
            Err(error) => {
                self.failed = Some(error.clone());
                if frames.is_empty() {
                    Err(error)
                } else {
                    Ok(frames)
                }
            }
        }
    }

    /// Ends the stream: returns an unterminated last NDJSON line as a frame (as line readers
    /// do), `Ok(None)` when nothing was left, or [`FramingError::Truncated`] for a partial
    /// Content-Length frame. The decoder is empty afterwards.
    pub fn finish(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let buffer = std::mem::take(&mut self.buffer);
        match self.framing {
            Framing::Ndjson => {
                let mut frames = Vec::new();
                self.line(buffer, &mut frames)?;
                Ok(frames.pop())
            }
            Framing::ContentLength => {
                let buffered = if self.body_length.is_some() {
                    buffer.len()
                } else {
                    self.header_bytes
                };
                let partial = self.body_length.is_some() || self.in_header_block;
                self.body_length = None;
                self.declared = None;
                self.in_header_block = false;
                self.header_bytes = 0;
                if partial || !buffer.is_empty() {
                    Err(FramingError::Truncated { buffered })
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// NDJSON: completes the lines this chunk ends and keeps the unterminated rest.
    fn push_ndjson(
        &mut self,
        mut chunk: &[u8],
        frames: &mut Vec<Vec<u8>>,
    ) -> Result<(), FramingError> {
        while let Some(end) = chunk.iter().position(|&byte| byte == b'\n') {
            let (piece, rest) = chunk.split_at(end);
            chunk = rest.get(1..).unwrap_or_default();
            self.check_line_room(piece.len())?;
            let mut line = std::mem::take(&mut self.buffer);
            line.extend_from_slice(piece);
            self.line(line, frames)?;
        }
        self.check_line_room(chunk.len())?;
        self.buffer.extend_from_slice(chunk);
        Ok(())
    }

    /// NDJSON: refuses `more` bytes of the current line before copying them if the line would
    /// pass the limit (one extra byte is room for a `\r` that [`FrameDecoder::line`] drops).
    fn check_line_room(&self, more: usize) -> Result<(), FramingError> {
        if self.buffer.len().saturating_add(more) > self.max_frame_bytes.saturating_add(1) {
            return Err(FramingError::FrameTooLarge {
                max: self.max_frame_bytes,
            });
        }
        Ok(())
    }

    /// NDJSON: one complete line becomes a frame unless it is blank.
    fn line(&self, mut line: Vec<u8>, frames: &mut Vec<Vec<u8>>) -> Result<(), FramingError> {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > self.max_frame_bytes {
            return Err(FramingError::FrameTooLarge {
                max: self.max_frame_bytes,
            });
        }
        if !line.iter().all(|byte| matches!(byte, b' ' | b'\t' | b'\r')) {
            frames.push(line);
        }
        Ok(())
    }

    /// Content-Length: reads header bytes one at a time and bodies in bulk.
    fn push_content_length(
        &mut self,
        mut chunk: &[u8],
        frames: &mut Vec<Vec<u8>>,
    ) -> Result<(), FramingError> {
        loop {
            if let Some(length) = self.body_length {
                let wanted = length.saturating_sub(self.buffer.len()).min(chunk.len());
                let (body, rest) = chunk.split_at(wanted);
                self.buffer.extend_from_slice(body);
                chunk = rest;
                if self.buffer.len() < length {
                    return Ok(());
                }
                frames.push(std::mem::take(&mut self.buffer));
                self.body_length = None;
                continue;
            }
            let Some((&byte, rest)) = chunk.split_first() else {
                return Ok(());
            };
            chunk = rest;
            self.header_byte(byte)?;
        }
    }

    /// Content-Length: one byte of a header block.
    fn header_byte(&mut self, byte: u8) -> Result<(), FramingError> {
        self.header_bytes += 1;
        if self.header_bytes > MAX_HEADER_BYTES {
            return Err(FramingError::HeaderTooLarge {
                max: MAX_HEADER_BYTES,
            });
        }
        if byte != b'\n' {
            self.buffer.push(byte);
            return Ok(());
        }
        let line = std::mem::take(&mut self.buffer);
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        if !line.is_empty() {
            self.in_header_block = true;
            return self.header_line(line);
        }
        self.header_bytes = 0;
        if !self.in_header_block {
            return Ok(()); // a blank line between frames
        }
        self.in_header_block = false;
        let length = self
            .declared
            .take()
            .ok_or(FramingError::MissingContentLength)?;
        if length > self.max_frame_bytes {
            return Err(FramingError::FrameTooLarge {
                max: self.max_frame_bytes,
            });
        }
        self.buffer.reserve_exact(length);
        self.body_length = Some(length);
        Ok(())
    }

    /// Content-Length: one `Name: value` line; only `Content-Length` matters.
    fn header_line(&mut self, line: &[u8]) -> Result<(), FramingError> {
        let malformed = || FramingError::MalformedHeader {
            line: String::from_utf8_lossy(line).chars().take(100).collect(),
        };
        let text = std::str::from_utf8(line).map_err(|_| malformed())?;
        let (name, value) = text.split_once(':').ok_or_else(malformed)?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(malformed());
        }
        if !name.eq_ignore_ascii_case("content-length") {
            return Ok(());
        }
        let value = value.trim();
        let length = Some(value)
            .filter(|value| !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()))
            .and_then(|value| value.parse::<usize>().ok())
            .ok_or_else(|| FramingError::InvalidContentLength {
                value: value.chars().take(100).collect(),
            })?;
        match self.declared {
            Some(first) if first != length => Err(FramingError::ConflictingContentLength {
                first,
                second: length,
            }),
            _ => {
                self.declared = Some(length);
                Ok(())
            }
        }
    }
}

/// Whether `byte` may appear in a header name (an HTTP token), so a JSON line sent to a
/// Content-Length decoder is reported as malformed instead of being skipped as a header.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

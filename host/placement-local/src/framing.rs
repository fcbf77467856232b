//! stdout split into lines as it arrives (inventory §8.8): `\n`, `\r\n` and a lone `\r` end a
//! line and are stripped; a `\r` that is the last byte of a chunk is held back until the next
//! chunk says whether a `\n` follows; at the end the remaining fragment is a line of its own
//! (unless empty). A line longer than any buffer is kept whole up to `max_line_bytes`, and
//! delivered intact; beyond that the stream fails with a typed overflow.

/// A line grew past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a stdout line reached {seen} bytes without an end, over the {limit}-byte limit (max_recoverable_line_bytes)"
)]
pub struct Overflow {
    /// Bytes of the line seen so far.
    pub seen: usize,
    /// The limit.
    pub limit: usize,
}

/// The framing state of one stream.
#[derive(Debug)]
pub struct LineFraming {
    partial: Vec<u8>,
    held_cr: bool,
    max_line_bytes: usize,
}

impl LineFraming {
    /// Framing that keeps a line whole up to `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            partial: Vec::new(),
            held_cr: false,
            max_line_bytes,
        }
    }

    /// The lines `chunk` completes, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>, Overflow> {
        let mut lines = Vec::new();
        self.push_each(chunk, |line| lines.push(line.to_vec()))?;
        Ok(lines)
    }

    /// Hands each line `chunk` completes to `line`, in order, without copying it: a line that
    /// lies within `chunk` is a slice of it; one that began in an earlier chunk is the joined
    /// fragment. Lines handed before an overflow stay handed.
    pub fn push_each(&mut self, chunk: &[u8], mut line: impl FnMut(&[u8])) -> Result<(), Overflow> {
        if chunk.is_empty() {
            // Nothing arrived: a held `\r` still waits for a byte that says what it ends.
            return Ok(());
        }
        let mut rest = chunk;
        if self.held_cr {
            self.held_cr = false;
            line(&self.partial);
            self.partial.clear();
            if rest.first() == Some(&b'\n') {
                rest = &rest[1..];
            }
        }
        while let Some(at) = memchr::memchr2(b'\n', b'\r', rest) {
            let ends_in_cr = rest[at] == b'\r';
            if ends_in_cr && at + 1 == rest.len() {
                // The chunk ends in `\r`: a `\n` may follow in the next one.
                self.partial.extend_from_slice(&rest[..at]);
                self.check()?;
                self.held_cr = true;
                return Ok(());
            }
            if self.partial.is_empty() {
                self.check_len(at)?;
                line(&rest[..at]);
            } else {
                self.partial.extend_from_slice(&rest[..at]);
                self.check()?;
                line(&self.partial);
                self.partial.clear();
            }
            let skip = if ends_in_cr && rest[at + 1] == b'\n' {
                2
            } else {
                1
            };
            rest = &rest[at + skip..];
        }
        self.partial.extend_from_slice(rest);
        self.check()
    }

    fn check_len(&self, len: usize) -> Result<(), Overflow> {
        if len > self.max_line_bytes {
            return Err(Overflow {
                seen: len,
                limit: self.max_line_bytes,
            });
        }
        Ok(())
    }

    fn check(&self) -> Result<(), Overflow> {
        self.check_len(self.partial.len())
    }

    /// The last fragment, at the end of the stream (none when empty).
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        self.held_cr = false;
        let rest = std::mem::take(&mut self.partial);
        (!rest.is_empty()).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn frame(chunks: &[&[u8]]) -> Vec<String> {
        let mut framing = LineFraming::new(1 << 20);
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(framing.push(chunk).unwrap());
        }
        out.extend(framing.flush());
        out.into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn every_terminator_ends_a_line_and_is_stripped() {
        assert_eq!(frame(&[b"a\nb\r\nc\rd"]), ["a", "b", "c", "d"]);
        assert_eq!(frame(&[b"a\n\nb\n"]), ["a", "", "b"]);
    }

    #[test]
    fn a_trailing_cr_waits_for_the_next_chunk() {
        assert_eq!(frame(&[b"a\r", b"\nb"]), ["a", "b"]);
        assert_eq!(frame(&[b"a\r", b"b"]), ["a", "b"]);
        assert_eq!(frame(&[b"a\r"]), ["a"]);
        assert_eq!(frame(&[b"par", b"tial", b"\n"]), ["partial"]);
    }

    #[test]
    fn the_trailing_fragment_is_kept_exactly() {
        assert_eq!(
            frame(&[b"one\ntwo without end"]),
            ["one", "two without end"]
        );
        assert!(frame(&[b""]).is_empty());
    }

    #[test]
    fn any_split_of_the_input_frames_the_same_lines() {
        let input: &[u8] = b"one\r\ntwo\rthree\n\nfour\r\r\nfive\rsix";
        let whole = frame(&[input]);
        assert_eq!(
            whole,
            ["one", "two", "three", "", "four", "", "five", "six"]
        );
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(frame(&[a, b]), whole, "split at {at}");
            for second in at..=input.len() {
                let (b, c) = input[at..].split_at(second - at);
                assert_eq!(frame(&[a, b, c]), whole, "split at {at} and {second}");
            }
        }
    }

    #[test]
    fn a_long_line_is_delivered_whole_then_overflows_past_the_limit() {
        let mut framing = LineFraming::new(64);
        let line = vec![b'x'; 64];
        // Four 16-byte chunks: one 64-byte line, intact.
        for piece in line.chunks(16) {
            assert!(framing.push(piece).unwrap().is_empty());
        }
        assert_eq!(framing.push(b"\n").unwrap(), [line]);
        let overflow = framing.push(&[b'y'; 65]).unwrap_err();
        assert_eq!(
            overflow,
            Overflow {
                seen: 65,
                limit: 64
            }
        );
    }
}

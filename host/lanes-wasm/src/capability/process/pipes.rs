//! A child's pipes as `wasi:io` streams, read and written on the guest's own task.
//!
//! `wasmtime-wasi`'s `AsyncReadStream` / `AsyncWriteStream` run a worker task per stream that
//! moves bytes through a channel, so every line a JSON-RPC peer answers costs two extra task
//! wake-ups (pipe → worker → guest) and every line sent one more. These streams touch the pipe
//! directly: a non-blocking attempt when the guest reads or writes, and the pipe's own readiness
//! when it waits (`ready`). Memory stays bounded the same way: one chunk read ahead at most, and
//! at most [`STDIN_BUDGET`](super::STDIN_BUDGET) bytes accepted and not yet written.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// The most one read takes from the pipe (a pipe holds 64 KiB by default on Linux).
const READ_CHUNK: usize = 64 << 10;

/// A pipe the guest reads: stdout or stderr.
pub(super) struct PipeReader<R> {
    pipe: R,
    /// Read from the pipe and not yet handed to the guest.
    ahead: Bytes,
    /// Where reads land before they are copied out (kept, so a read allocates nothing new).
    scratch: Vec<u8>,
    /// The pipe ended (end of file) or failed; the failure is reported once, then `Closed`.
    ended: bool,
    failed: Option<io::Error>,
}

impl<R: AsyncRead + Unpin + Send> PipeReader<R> {
    pub(super) fn new(pipe: R) -> Self {
        Self {
            pipe,
            ahead: Bytes::new(),
            scratch: Vec::new(),
            ended: false,
            failed: None,
        }
    }

    /// Whether a read now returns something other than "nothing yet".
    fn settled(&self) -> bool {
        !self.ahead.is_empty() || self.ended || self.failed.is_some()
    }

    /// One read from the pipe into `ahead`, if it has anything (or has ended).
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.settled() {
            return Poll::Ready(());
        }
        self.scratch.resize(READ_CHUNK, 0);
        let mut buffer = ReadBuf::new(&mut self.scratch);
        match Pin::new(&mut self.pipe).poll_read(cx, &mut buffer) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(())) if buffer.filled().is_empty() => self.ended = true,
            Poll::Ready(Ok(())) => self.ahead = Bytes::copy_from_slice(buffer.filled()),
            Poll::Ready(Err(error)) => self.failed = Some(error),
        }
        Poll::Ready(())
    }
}

#[async_trait::async_trait]
impl<R: AsyncRead + Unpin + Send + 'static> Pollable for PipeReader<R> {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| self.fill(cx)).await;
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> InputStream for PipeReader<R> {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.ahead.is_empty() && size > 0 {
            // Whatever the pipe has now, without waiting; the guest waits through `ready`.
            let _ = self.fill(&mut Context::from_waker(Waker::noop()));
        }
        if !self.ahead.is_empty() {
            let take = size.min(self.ahead.len());
            return Ok(self.ahead.split_to(take));
        }
        if let Some(error) = self.failed.take() {
            self.ended = true;
            return Err(StreamError::LastOperationFailed(error.into()));
        }
        if self.ended {
            return Err(StreamError::Closed);
        }
        Ok(Bytes::new())
    }
}

/// A pipe the guest writes: stdin.
pub(super) struct PipeWriter<W> {
    pipe: W,
    /// Accepted from the guest and not yet written to the pipe.
    pending: BytesMut,
    /// Bytes accepted and not yet written before `check_write` says "full".
    budget: usize,
    /// The guest asked for a flush that has not completed.
    flushing: bool,
    /// A write or flush failed; reported once, then `Closed`.
    failed: Option<io::Error>,
    closed: bool,
}

impl<W: AsyncWrite + Unpin + Send> PipeWriter<W> {
    pub(super) fn new(pipe: W, budget: usize) -> Self {
        Self {
            pipe,
            pending: BytesMut::new(),
            budget,
            flushing: false,
            failed: None,
            closed: false,
        }
    }

    /// Writes what is pending (then flushes, if asked) as far as the pipe takes it now.
    fn progress(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while !self.pending.is_empty() && self.failed.is_none() && !self.closed {
            match Pin::new(&mut self.pipe).poll_write(cx, &self.pending) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => self.closed = true,
                Poll::Ready(Ok(written)) => self.pending.advance(written),
                Poll::Ready(Err(error)) => self.failed = Some(error),
            }
        }
        if self.flushing && self.failed.is_none() && !self.closed {
            match Pin::new(&mut self.pipe).poll_flush(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => self.failed = Some(error),
            }
        }
        self.flushing = false;
        Poll::Ready(())
    }

    /// Tries to move bytes on without waiting.
    fn nudge(&mut self) {
        let _ = self.progress(&mut Context::from_waker(Waker::noop()));
    }

    /// The error of a failed or closed stream, if it is one.
    fn broken(&mut self) -> StreamResult<()> {
        if let Some(error) = self.failed.take() {
            self.closed = true;
            return Err(StreamError::LastOperationFailed(error.into()));
        }
        if self.closed {
            return Err(StreamError::Closed);
        }
        Ok(())
    }

    /// What the guest may write now: nothing while a flush is outstanding.
    fn room(&self) -> usize {
        if self.flushing {
            return 0;
        }
        self.budget.saturating_sub(self.pending.len())
    }
}

#[async_trait::async_trait]
impl<W: AsyncWrite + Unpin + Send + 'static> Pollable for PipeWriter<W> {
    async fn ready(&mut self) {
        std::future::poll_fn(|cx| {
            let progressed = self.progress(cx);
            // Ready as soon as there is room (or the stream broke), even with bytes in flight.
            if self.room() > 0 || self.failed.is_some() || self.closed {
                Poll::Ready(())
            } else {
                progressed
            }
        })
        .await;
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> OutputStream for PipeWriter<W> {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.broken()?;
        if bytes.len() > self.room() {
            return Err(StreamError::trap(
                "wrote more bytes than check-write allowed",
            ));
        }
        self.pending.extend_from_slice(&bytes);
        self.nudge();
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.broken()?;
        self.flushing = true;
        self.nudge();
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.nudge();
        self.broken()?;
        Ok(self.room())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn reads_what_the_pipe_has_then_reports_its_end() {
        let (mut ours, theirs) = tokio::io::duplex(16);
        let mut reader = PipeReader::new(theirs);
        assert!(reader.read(10).unwrap().is_empty(), "nothing written yet");
        ours.write_all(b"hello world").await.unwrap();
        reader.ready().await;
        assert_eq!(&reader.read(5).unwrap()[..], b"hello");
        assert_eq!(&reader.read(100).unwrap()[..], b" world");
        drop(ours);
        reader.ready().await;
        assert!(matches!(reader.read(1), Err(StreamError::Closed)));
    }

    #[tokio::test]
    async fn writes_past_a_full_pipe_wait_for_room_and_arrive_in_order() {
        let (theirs, mut ours) = tokio::io::duplex(8);
        let mut writer = PipeWriter::new(theirs, 32);
        let message: Vec<u8> = (0..200u8).collect();
        let reading = tokio::spawn(async move {
            let mut got = vec![0; 200];
            ours.read_exact(&mut got).await.unwrap();
            got
        });
        let mut rest = Bytes::from(message.clone());
        while !rest.is_empty() {
            writer.ready().await;
            let room = writer.check_write().unwrap();
            assert!(room <= 32, "the budget bounds what is accepted: {room}");
            let chunk = rest.split_to(room.min(rest.len()));
            writer.write(chunk).unwrap();
        }
        writer.flush().unwrap();
        writer.ready().await;
        assert_eq!(reading.await.unwrap(), message);
    }

    #[tokio::test]
    async fn writing_more_than_allowed_is_an_error_not_a_buffer() {
        let (theirs, _ours) = tokio::io::duplex(4);
        let mut writer = PipeWriter::new(theirs, 8);
        assert!(writer.write(Bytes::from(vec![0; 9])).is_err());
    }

    #[tokio::test]
    async fn a_closed_reader_makes_the_next_write_fail() {
        let (theirs, ours) = tokio::io::duplex(4);
        let mut writer = PipeWriter::new(theirs, 64);
        drop(ours);
        writer.write(Bytes::from_static(b"x")).unwrap_or(());
        writer.ready().await;
        assert!(writer.check_write().is_err());
    }
}

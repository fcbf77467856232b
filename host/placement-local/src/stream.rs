//! A streaming run (inventory §8.9, as a streaming execution): the process's stdout as
//! `process.stdout` events, one per line (§8.8 framing; `stdout_mode: raw` gives
//! `process.data` chunks), stderr as `process.stderr` chunks, and one final event: `process.exit`
//! with the normalized exit (`status: failed` with `semantic_runtime_failed` when it is not a
//! success, the stderr tail attached), or `process.error` for a timeout, a line over
//! `max_recoverable_line_bytes` or a consumer that stopped reading for `headless_timeout_ms`.
//!
//! The run reads only as fast as the consumer takes events (at most [`MAX_BUFFERED_EVENTS`]
//! wait), so a slow consumer slows the process instead of growing memory. Dropping the stream
//! ends the process and its group.

use std::collections::VecDeque;
use std::time::Duration;

use ep_contracts::boundary::{ExecutionEvent, ExecutionRef, ExecutionRequest, Map};
use ep_contracts::{Failure, FailureClass};
use ep_lane_api::{EventStream, ExecutionContext, Input};
use futures::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::exit::Exit;
use crate::framing::LineFraming;
use crate::lane::{Prepared, launch_failure};
use crate::payload::{StdoutMode, StreamOptions};
use crate::pty::{CTRL_C, CTRL_D, OnTerminal};
use crate::run::{DRAIN_AFTER_KILL, Spawned, TERM_GRACE, spawn};
use rustix::process::Signal;

/// Most events in one batch (a read's lines are split into batches of at most this many).
pub const BATCH_EVENTS: usize = 64;
/// Batches waiting for the consumer before the run stops reading the process.
const BUFFERED_BATCHES: usize = 4;
/// Most events waiting for the consumer: beyond them the process waits for it.
pub const MAX_BUFFERED_EVENTS: usize = BATCH_EVENTS * BUFFERED_BATCHES;
/// Event types.
pub const STDOUT: &str = "process.stdout";
/// The lines of one read (`stdout_mode: line_batch`).
pub const STDOUT_LINES: &str = "process.stdout_lines";
/// Raw stdout chunks.
pub const DATA: &str = "process.data";
/// stderr chunks.
pub const STDERR: &str = "process.stderr";
/// The final event of a process that exited.
pub const EXIT: &str = "process.exit";
/// The final event of a run that failed (timeout, overflow, headless, launch).
pub const ERROR: &str = "process.error";

/// `bytes` under `key` as text, or under `<key>_base64` (with `key` null) when not UTF-8.
pub(crate) fn insert_bytes(map: &mut Map, key: &str, bytes: &[u8]) {
    use base64::Engine as _;
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            map.insert(key.to_owned(), text.into());
        }
        Err(_) => {
            map.insert(key.to_owned(), Value::Null);
            map.insert(
                format!("{key}_base64"),
                base64::engine::general_purpose::STANDARD
                    .encode(bytes)
                    .into(),
            );
        }
    }
}

fn event(execution_ref: &ExecutionRef, kind: &str, payload: Map) -> ExecutionEvent {
    ExecutionEvent::new(execution_ref.clone(), kind, payload)
}

fn failure_payload(failure: &Failure) -> Map {
    let mut payload = Map::new();
    payload.insert("status".to_owned(), "failed".into());
    payload.insert("error".to_owned(), failure.to_value());
    payload
}

fn one(event: ExecutionEvent) -> EventStream {
    Box::pin(futures::stream::iter([event]))
}

/// The stream of a request refused before anything ran: one final `process.error` event with
/// the failure (a policy denial is reported to the execution's evidence by the lane).
pub(crate) fn refused(request: &ExecutionRequest, failure: &Failure) -> EventStream {
    one(event(
        &request.execution_ref,
        ERROR,
        failure_payload(failure),
    ))
}

/// The stream of a played-back scenario: each stdout frame as one line, each stderr frame as a
/// chunk, then the exit; `evidence` (the scenario's) rides on the last event.
pub(crate) fn played(
    request: &ExecutionRequest,
    scenario: &crate::simulation::Scenario,
    evidence: Vec<Value>,
) -> EventStream {
    let reference = &request.execution_ref;
    let mut events = Vec::new();
    for frame in &scenario.stdout {
        let mut payload = Map::new();
        payload.insert("line".to_owned(), frame.clone().into());
        events.push(event(reference, STDOUT, payload));
    }
    for frame in &scenario.stderr {
        let mut payload = Map::new();
        payload.insert("chunk".to_owned(), frame.clone().into());
        events.push(event(reference, STDERR, payload));
    }
    let tail = scenario.stderr.concat();
    if let Some((kind, payload)) = final_event(Stop::Exited(scenario.exit.clone()), tail.as_bytes())
    {
        let mut last = event(reference, kind, payload);
        last.evidence = evidence;
        events.push(last);
    }
    Box::pin(futures::stream::iter(events))
}

/// A started process: on pipes, or on a terminal.
enum Running {
    Pipes(Spawned),
    Terminal(OnTerminal),
}

/// Starts `prepared` and streams it.
pub(crate) fn start(
    prepared: Prepared,
    request: &ExecutionRequest,
    ctx: ExecutionContext,
) -> EventStream {
    let execution_ref = request.execution_ref.clone();
    let started = match prepared.asked.pty {
        Some(size) => crate::pty::spawn(&prepared.invocation, size).map(Running::Terminal),
        None => spawn(&prepared.invocation).map(Running::Pipes),
    };
    let running = match started {
        Ok(running) => running,
        Err(error) => {
            return one(event(
                &execution_ref,
                ERROR,
                failure_payload(&launch_failure(&error)),
            ));
        }
    };
    let (events, receiver) = mpsc::channel(BUFFERED_BATCHES);
    let limit = prepared.limit(&ctx);
    tokio::spawn(pump(prepared, running, limit, ctx, execution_ref, events));
    batched(receiver)
}

/// The events of `receiver`'s batches, in order. Events travel in batches (the lines of one
/// read), so the consumer wakes once a read, not once a line.
fn batched(receiver: mpsc::Receiver<Vec<ExecutionEvent>>) -> EventStream {
    Box::pin(
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|batch| (batch, receiver))
        })
        .flat_map(futures::stream::iter),
    )
}

/// How the pump's loop ended.
enum Stop {
    Exited(Exit),
    Failed(Failure),
    /// The consumer is gone: nobody to tell.
    Gone,
}

/// Hands events to the consumer, waiting at most the headless timeout for room.
struct Sender {
    events: mpsc::Sender<Vec<ExecutionEvent>>,
    headless: Duration,
    execution_ref: ExecutionRef,
}

impl Sender {
    async fn send(&self, kind: &str, payload: Map) -> Result<(), Stop> {
        self.send_all(vec![event(&self.execution_ref, kind, payload)])
            .await
    }

    async fn send_all(&self, batch: Vec<ExecutionEvent>) -> Result<(), Stop> {
        if batch.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(self.headless, self.events.send(batch)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) => Err(Stop::Failed(
                Failure::new(
                    FailureClass::Timeout,
                    "the consumer stopped reading the stream for longer than headless_timeout_ms",
                )
                .with_detail("cause", "headless")
                .with_detail("headless_timeout_ms", self.headless.as_millis() as u64),
            )),
        }
    }
}

/// Feeds the stream from the running process until it ends or the run must stop, then sends
/// the final event (in room kept from the start: a consumer that stopped reading still learns
/// why its stream ended when it comes back).
async fn pump(
    prepared: Prepared,
    running: Running,
    limit: Duration,
    ctx: ExecutionContext,
    execution_ref: ExecutionRef,
    events: mpsc::Sender<Vec<ExecutionEvent>>,
) {
    let _slot = prepared.slot;
    let _lease = prepared.lease;
    let options = prepared.asked.stream;
    let Ok(last) = events.clone().reserve_owned().await else {
        match running {
            Running::Pipes(mut spawned) => spawned.terminate().await,
            Running::Terminal(terminal) => terminal.signal(Signal::KILL),
        }
        return;
    };
    let sender = Sender {
        events,
        headless: options.headless_timeout,
        execution_ref,
    };
    let run = Run {
        sender: &sender,
        invocation: &prepared.invocation,
        options,
        limit,
        ctx: &ctx,
    };
    let (stop, stderr_tail) = match running {
        Running::Pipes(spawned) => run.on_pipes(spawned).await,
        Running::Terminal(terminal) => (run.on_terminal(terminal).await, Vec::new()),
    };
    if let Some((kind, payload)) = final_event(stop, &stderr_tail) {
        last.send(vec![event(&sender.execution_ref, kind, payload)]);
    }
}

/// What both loops read from.
struct Run<'a> {
    sender: &'a Sender,
    invocation: &'a crate::run::Invocation,
    options: StreamOptions,
    limit: Duration,
    ctx: &'a ExecutionContext,
}

impl Run<'_> {
    /// The loop of a process on pipes; how it stopped, and its stderr tail.
    async fn on_pipes(&self, mut spawned: Spawned) -> (Stop, Vec<u8>) {
        let (sender, options, limit, ctx) = (self.sender, self.options, self.limit, self.ctx);
        let mut stdout = spawned.child.stdout.take();
        let mut stderr = spawned.child.stderr.take();
        let mut stdin = spawned.child.stdin.take();
        if let Some(pipe) = stdin.as_mut() {
            let bytes = self.invocation.stdin.clone().unwrap_or_default();
            let _ = pipe.write_all(&bytes).await;
        }
        if self.invocation.close_stdin {
            stdin = None;
        }
        let mut input = ctx.input.take();
        let mut framing = LineFraming::new(options.max_line_bytes);
        let mut tail: VecDeque<u8> = VecDeque::new();
        let deadline = tokio::time::Instant::now() + limit;
        let (mut out_buf, mut err_buf) = (vec![0u8; 64 * 1024], vec![0u8; 16 * 1024]);
        let mut exited: Option<Exit> = None;
        // Once the process exited, its output is read for at most this long more.
        let mut drain_until = deadline;
        let stop = loop {
            if exited.is_some() && stdout.is_none() && stderr.is_none() {
                break None;
            }
            let step = tokio::select! {
                read = read_some(&mut stdout, &mut out_buf) => match read {
                    Some(chunk) => stdout_events(sender, &mut framing, options.stdout_mode, chunk).await,
                    None => {
                        stdout = None;
                        flush_events(sender, &mut framing, options.stdout_mode).await
                    }
                },
                read = read_some(&mut stderr, &mut err_buf) => match read {
                    Some(chunk) => {
                        tail.extend(chunk.iter().copied());
                        while tail.len() > options.stderr_tail_bytes {
                            tail.pop_front();
                        }
                        let mut payload = Map::new();
                        insert_bytes(&mut payload, "chunk", &chunk);
                        sender.send(STDERR, payload).await
                    }
                    None => {
                        stderr = None;
                        Ok(())
                    }
                },
                status = spawned.child.wait(), if exited.is_none() => {
                    exited = Some(status.map_or(Exit::Code(-1), Exit::of));
                    // What it left in its group goes; the pipes then close (bounded below).
                    spawned.kill_group();
                    drain_until = tokio::time::Instant::now() + DRAIN_AFTER_KILL;
                    Ok(())
                }
                () = tokio::time::sleep_until(deadline), if exited.is_none() => Err(timed_out(limit)),
                () = tokio::time::sleep_until(drain_until), if exited.is_some() => {
                    // The process is gone but something still holds a pipe open: stop reading.
                    stdout = None;
                    stderr = None;
                    Ok(())
                }
                next = next_input(&mut input) => {
                    match next {
                        Some(Input::Data(bytes)) => {
                            if let Some(pipe) = stdin.as_mut()
                                && pipe.write_all(&bytes).await.is_err()
                            {
                                // The process closed its stdin: later input has nowhere to go.
                                stdin = None;
                            }
                        }
                        Some(Input::End) => stdin = None,
                        Some(Input::Interrupt) => spawned.interrupt(),
                        None => input = None,
                    }
                    Ok(())
                }
                () = sender.events.closed() => Err(Stop::Gone),
                () = ctx.cancel.cancelled() => Err(cancelled()),
            };
            if let Err(stop) = step {
                break Some(stop);
            }
        };
        drop(stdin);
        let stop = match stop {
            None => Stop::Exited(exited.unwrap_or(Exit::Code(-1))),
            Some(stop) => {
                if exited.is_none() {
                    spawned.terminate().await;
                }
                spawned.kill_group();
                stop
            }
        };
        (stop, tail.into_iter().collect())
    }
    /// The loop of a process on a terminal: what the terminal shows is its stdout (stderr is the
    /// same terminal); input goes to the terminal, the end of input as Ctrl-D, an interrupt as
    /// Ctrl-C.
    async fn on_terminal(&self, mut terminal: OnTerminal) -> Stop {
        let (sender, options, limit, ctx) = (self.sender, self.options, self.limit, self.ctx);
        if let Some(bytes) = self.invocation.stdin.clone() {
            let _ = terminal.input.send(bytes).await;
            if self.invocation.close_stdin {
                let _ = terminal.input.send(vec![CTRL_D]).await;
            }
        }
        let mut input = ctx.input.take();
        let mut framing = LineFraming::new(options.max_line_bytes);
        let deadline = tokio::time::Instant::now() + limit;
        let mut drain_until = deadline;
        let mut exited: Option<Exit> = None;
        let mut open = true;
        let stop = loop {
            if exited.is_some() && !open {
                break None;
            }
            let step = tokio::select! {
                chunk = terminal.output.recv(), if open => match chunk {
                    Some(chunk) => stdout_events(sender, &mut framing, options.stdout_mode, chunk).await,
                    None => {
                        open = false;
                        flush_events(sender, &mut framing, options.stdout_mode).await
                    }
                },
                exit = &mut terminal.exited, if exited.is_none() => {
                    exited = Some(exit.unwrap_or(Exit::Code(-1)));
                    terminal.signal(Signal::KILL);
                    drain_until = tokio::time::Instant::now() + DRAIN_AFTER_KILL;
                    Ok(())
                }
                () = tokio::time::sleep_until(deadline), if exited.is_none() => Err(timed_out(limit)),
                () = tokio::time::sleep_until(drain_until), if exited.is_some() => {
                    open = false;
                    Ok(())
                }
                next = next_input(&mut input) => {
                    let keys = match next {
                        Some(Input::Data(bytes)) => Some(bytes),
                        Some(Input::End) => Some(vec![CTRL_D]),
                        Some(Input::Interrupt) => Some(vec![CTRL_C]),
                        None => {
                            input = None;
                            None
                        }
                    };
                    if let Some(keys) = keys {
                        let _ = terminal.input.send(keys).await;
                    }
                    Ok(())
                }
                () = sender.events.closed() => Err(Stop::Gone),
                () = ctx.cancel.cancelled() => Err(cancelled()),
            };
            if let Err(stop) = step {
                break Some(stop);
            }
        };
        match stop {
            None => Stop::Exited(exited.unwrap_or(Exit::Code(-1))),
            Some(stop) => {
                if exited.is_none() {
                    terminal.signal(Signal::TERM);
                    if tokio::time::timeout(TERM_GRACE, &mut terminal.exited)
                        .await
                        .is_err()
                    {
                        terminal.signal(Signal::KILL);
                    }
                }
                terminal.signal(Signal::KILL);
                stop
            }
        }
    }
}

/// The last event of a run that stopped with `stop` (none when the consumer is gone).
fn final_event(stop: Stop, stderr_tail: &[u8]) -> Option<(&'static str, Map)> {
    match stop {
        Stop::Gone => None,
        Stop::Failed(failure) => Some((ERROR, failure_payload(&failure))),
        Stop::Exited(exit) => {
            let mut payload = Map::new();
            payload.insert("exit".to_owned(), exit.to_value());
            insert_bytes(&mut payload, "stderr_tail", stderr_tail);
            if exit.succeeded() {
                payload.insert("status".to_owned(), "succeeded".into());
            } else {
                let failure = Failure::new(
                    FailureClass::SemanticRuntimeFailed,
                    "the process exited unsuccessfully",
                )
                .with_detail("cause", "exit_status")
                .with_detail("exit", exit.to_value());
                payload.extend(failure_payload(&failure));
            }
            Some((EXIT, payload))
        }
    }
}

fn timed_out(limit: Duration) -> Stop {
    Stop::Failed(
        Failure::new(FailureClass::Timeout, "execution timed out")
            .with_detail("cause", "deadline")
            .with_detail("timeout_ms", limit.as_millis() as u64),
    )
}

fn cancelled() -> Stop {
    Stop::Failed(
        Failure::new(FailureClass::Cancellation, "the execution was cancelled")
            .with_detail("cause", "cancelled"),
    )
}

/// The next input from the caller (none once the channel is gone; with no channel it waits
/// forever, so `select!` takes the other branches).
async fn next_input(input: &mut Option<tokio::sync::mpsc::Receiver<Input>>) -> Option<Input> {
    match input {
        None => std::future::pending().await,
        Some(receiver) => receiver.recv().await,
    }
}

/// The next chunk of `pipe` (none at its end, or when it is closed already: then it waits
/// forever, so `select!` takes the other branches).
async fn read_some(
    pipe: &mut Option<impl tokio::io::AsyncRead + Unpin>,
    buffer: &mut [u8],
) -> Option<Vec<u8>> {
    match pipe {
        None => std::future::pending().await,
        Some(pipe) => match pipe.read(buffer).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(buffer[..n].to_vec()),
        },
    }
}

async fn stdout_events(
    sender: &Sender,
    framing: &mut LineFraming,
    mode: StdoutMode,
    chunk: Vec<u8>,
) -> Result<(), Stop> {
    if mode == StdoutMode::Raw {
        let mut payload = Map::new();
        insert_bytes(&mut payload, "chunk", &chunk);
        return sender.send(DATA, payload).await;
    }
    let overflowed = |overflow: crate::framing::Overflow| {
        Stop::Failed(
            Failure::new(FailureClass::ProtocolFramingFailed, overflow.to_string())
                .with_detail("cause", "buffer_overflow")
                .with_detail("seen_bytes", overflow.seen as u64)
                .with_detail("max_recoverable_line_bytes", overflow.limit as u64),
        )
    };
    if mode == StdoutMode::LineBatch {
        let mut batch = LineBatch::default();
        let framed = framing.push_each(&chunk, |line| batch.push(line));
        // Lines framed before an overflow are delivered before the failure.
        send_line_batch(sender, batch).await?;
        return framed.map_err(overflowed);
    }
    let mut events = Vec::new();
    let framed = framing.push_each(&chunk, |line| {
        let mut payload = Map::new();
        insert_bytes(&mut payload, "line", line);
        events.push(event(&sender.execution_ref, STDOUT, payload));
    });
    let mut events = events.into_iter();
    loop {
        let batch: Vec<ExecutionEvent> = events.by_ref().take(BATCH_EVENTS).collect();
        if batch.is_empty() {
            break;
        }
        sender.send_all(batch).await?;
    }
    framed.map_err(overflowed)
}

/// The lines of one read, for one `process.stdout_lines` event: as text while every line is
/// UTF-8, as bytes (sent as base64) once one is not.
#[derive(Default)]
struct LineBatch {
    texts: Vec<Value>,
    bytes: Option<Vec<Vec<u8>>>,
}

impl LineBatch {
    fn push(&mut self, line: &[u8]) {
        if let Some(bytes) = self.bytes.as_mut() {
            bytes.push(line.to_vec());
            return;
        }
        match std::str::from_utf8(line) {
            Ok(text) => self.texts.push(Value::String(text.to_owned())),
            Err(_) => {
                let mut bytes: Vec<Vec<u8>> = self
                    .texts
                    .drain(..)
                    .map(|text| text.as_str().unwrap_or_default().as_bytes().to_vec())
                    .collect();
                bytes.push(line.to_vec());
                self.bytes = Some(bytes);
            }
        }
    }

    /// The event's payload: `lines` as text, or, when one of them is not UTF-8, every line as
    /// base64 in `lines_base64`; none when the batch is empty.
    fn into_payload(self) -> Option<Map> {
        use base64::Engine as _;
        let mut payload = Map::new();
        match self.bytes {
            Some(bytes) => {
                let encoded: Vec<Value> = bytes
                    .iter()
                    .map(|line| {
                        base64::engine::general_purpose::STANDARD
                            .encode(line)
                            .into()
                    })
                    .collect();
                payload.insert("lines_base64".to_owned(), Value::Array(encoded));
            }
            None if self.texts.is_empty() => return None,
            None => {
                payload.insert("lines".to_owned(), Value::Array(self.texts));
            }
        }
        Some(payload)
    }
}

/// One `process.stdout_lines` event for `batch` (none when it is empty).
async fn send_line_batch(sender: &Sender, batch: LineBatch) -> Result<(), Stop> {
    match batch.into_payload() {
        Some(payload) => sender.send(STDOUT_LINES, payload).await,
        None => Ok(()),
    }
}

async fn flush_events(
    sender: &Sender,
    framing: &mut LineFraming,
    mode: StdoutMode,
) -> Result<(), Stop> {
    match framing.flush() {
        Some(line) if mode == StdoutMode::LineBatch => {
            let mut batch = LineBatch::default();
            batch.push(&line);
            send_line_batch(sender, batch).await
        }
        Some(line) if mode == StdoutMode::Line => {
            let mut payload = Map::new();
            insert_bytes(&mut payload, "line", &line);
            sender.send(STDOUT, payload).await
        }
        _ => Ok(()),
    }
}

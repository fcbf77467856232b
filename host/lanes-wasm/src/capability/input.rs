//! The `input` capability (ABI 0.2.0): the caller's input to a running stream, as a pollable
//! and a non-blocking take, so a lane waits on its transport and on its caller at once. Always
//! linked (a lane reads only its own caller's input); outside a stream nothing arrives. The
//! node records each input as `execution.input` evidence before it reaches the lane.

use std::sync::Arc;

use ep_lane_api::{Input, InputSlot};
use tokio::sync::{Mutex, mpsc};
use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::p2::{DynPollable, Pollable};

use crate::bindings::v2_0::input;
use crate::state::LaneState;

/// Links `input` (the WASI base links it: no grant).
pub(crate) fn link(linker: &mut Linker<LaneState>) -> wasmtime::Result<()> {
    input::add_to_linker::<LaneState, HasSelf<LaneState>>(linker, |state| state)
}

/// One execution's input: the receiving end of the node's channel, when the execution has one.
#[derive(Clone, Default)]
pub(crate) struct InputState {
    inner: Arc<Mutex<Inbox>>,
}

#[derive(Default)]
struct Inbox {
    receiver: Option<mpsc::Receiver<Input>>,
    /// An input received while waiting, not taken yet.
    waiting: Option<Input>,
    /// `end` was taken (or the node dropped its sender): nothing more arrives.
    ended: bool,
}

impl InputState {
    /// Connects the store to the execution's input channel (a stream's).
    pub(crate) fn attach(&self, slot: &InputSlot) {
        if let Some(receiver) = slot.take()
            && let Ok(mut inbox) = self.inner.try_lock()
        {
            inbox.receiver = Some(receiver);
        }
    }

    /// The next input if one is waiting.
    async fn take(&self) -> Option<Input> {
        let mut inbox = self.inner.lock().await;
        let item = match inbox.waiting.take() {
            Some(item) => Some(item),
            None if inbox.ended => None,
            None => match inbox.receiver.as_mut().map(mpsc::Receiver::try_recv) {
                Some(Ok(item)) => Some(item),
                Some(Err(mpsc::error::TryRecvError::Disconnected)) => {
                    inbox.ended = true;
                    None
                }
                Some(Err(mpsc::error::TryRecvError::Empty)) | None => None,
            },
        };
        if matches!(item, Some(Input::End)) {
            inbox.ended = true;
            inbox.receiver = None;
        }
        item
    }
}

/// The pollable's parent: ready when an input is waiting.
struct InputReady(Arc<Mutex<Inbox>>);

#[async_trait::async_trait]
impl Pollable for InputReady {
    async fn ready(&mut self) {
        let mut inbox = self.0.lock().await;
        if inbox.waiting.is_some() {
            return;
        }
        let received = match (inbox.ended, inbox.receiver.as_mut()) {
            (false, Some(receiver)) => receiver.recv().await,
            _ => None,
        };
        match received {
            Some(item) => inbox.waiting = Some(item),
            None => {
                // Nothing will ever arrive: never ready (the guest's deadline still applies).
                inbox.ended = true;
                drop(inbox);
                std::future::pending::<()>().await;
            }
        }
    }
}

impl input::Host for LaneState {
    async fn subscribe(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let ready = InputReady(Arc::clone(&self.caps.input.inner));
        let table = self.table_mut();
        let parent = table.push(ready)?;
        wasmtime_wasi::p2::subscribe(table, parent)
    }

    async fn take(&mut self) -> wasmtime::Result<Option<input::InputItem>> {
        Ok(self.caps.input.take().await.map(|item| match item {
            Input::Data(bytes) => input::InputItem::Data(bytes),
            Input::End => input::InputItem::End,
            Input::Interrupt => input::InputItem::Interrupt,
        }))
    }
}

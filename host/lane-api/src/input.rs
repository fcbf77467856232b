//! A caller's input to a running execution: bytes for its stdin, the end of its input, an
//! interrupt. The node holds the sending end in its table of executions in flight; the lane
//! takes the receiving end from its [`crate::ExecutionContext`] once, when it starts.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

/// Inputs waiting for a lane to take them before a sender waits.
pub const INPUT_BUFFER: usize = 64;

/// One input to a running execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes for the execution's input (a process's stdin).
    Data(Vec<u8>),
    /// No more input (a process's stdin is closed: EOF).
    End,
    /// Interrupt the execution (a process gets SIGINT; on a terminal, Ctrl-C).
    Interrupt,
}

impl Input {
    /// `data`, `end` or `interrupt`, as evidence and the API name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Data(_) => "data",
            Self::End => "end",
            Self::Interrupt => "interrupt",
        }
    }
}

/// The lane's end of an execution's input channel; empty when the execution takes no input.
/// Cloning shares it: whichever clone takes it first has it.
#[derive(Debug, Clone, Default)]
pub struct InputSlot(Arc<Mutex<Option<mpsc::Receiver<Input>>>>);

impl InputSlot {
    /// A channel: the sender for the node, the slot for the lane.
    pub fn channel() -> (mpsc::Sender<Input>, Self) {
        let (sender, receiver) = mpsc::channel(INPUT_BUFFER);
        (sender, Self(Arc::new(Mutex::new(Some(receiver)))))
    }

    /// The receiving end, the first time it is asked for.
    pub fn take(&self) -> Option<mpsc::Receiver<Input>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn the_receiver_is_taken_once_and_gets_what_was_sent() {
        let (sender, slot) = InputSlot::channel();
        let shared = slot.clone();
        sender.send(Input::Data(b"hi".to_vec())).await.unwrap();
        let mut receiver = shared.take().unwrap();
        assert!(slot.take().is_none(), "taken already");
        assert_eq!(receiver.recv().await, Some(Input::Data(b"hi".to_vec())));
        assert!(InputSlot::default().take().is_none());
        assert_eq!(Input::Interrupt.kind(), "interrupt");
    }
}

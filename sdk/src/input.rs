//! The caller's input to a running stream: what `POST /v1/executions/{ref}/input` (or
//! `execution-plane exec --stream --stdin`) sends arrives here, in order. [`take`] never blocks;
//! to wait for input and a transport at once, poll [`subscribe`]'s pollable with the
//! transport's (`wasi:io/poll`), as [`crate::websocket`] does.
//!
//! ```no_run
//! use execution_plane_sdk::input::{self, Input};
//!
//! match input::take() {
//!     Some(Input::Data(bytes)) => { /* send them on */ let _ = bytes; }
//!     Some(Input::End) => { /* the caller has nothing more to say */ }
//!     Some(Input::Interrupt) => { /* stop the current operation */ }
//!     None => { /* nothing waiting */ }
//! }
//! ```
//!
//! In native tests, [`testing::push_input`](crate::testing::push_input) queues what `take`
//! returns.

/// One input from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes (text arrives as its UTF-8 bytes).
    Data(Vec<u8>),
    /// The caller's input has ended; nothing arrives after it.
    End,
    /// The caller asks the lane to stop what it is doing (Ctrl-C).
    Interrupt,
}

std::thread_local! {
    /// `End` was taken: nothing more arrives.
    static ENDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The next input if one is waiting, without blocking.
pub fn take() -> Option<Input> {
    #[cfg(target_arch = "wasm32")]
    let item = {
        use crate::bindings::execution_plane::lane0_2_0::input::{InputItem, take};
        take().map(|item| match item {
            InputItem::Data(bytes) => Input::Data(bytes),
            InputItem::End => Input::End,
            InputItem::Interrupt => Input::Interrupt,
        })
    };
    #[cfg(not(target_arch = "wasm32"))]
    let item = crate::testing::take_input();
    if item == Some(Input::End) {
        ENDED.with(|ended| ended.set(true));
    }
    item
}

/// Whether the caller's input has ended (`End` was taken).
pub fn ended() -> bool {
    ENDED.with(std::cell::Cell::get)
}

/// A pollable ready when [`take`] has an input (never ready again once `End` was taken).
#[cfg(target_arch = "wasm32")]
pub fn subscribe() -> crate::bindings::wasi::io::poll::Pollable {
    crate::bindings::execution_plane::lane0_2_0::input::subscribe()
}

/// Blocks until an input arrives and returns it (`None` once the input has ended; natively,
/// when nothing is queued).
pub fn wait() -> Option<Input> {
    if ended() {
        return None;
    }
    #[cfg(target_arch = "wasm32")]
    {
        loop {
            if let Some(item) = take() {
                return Some(item);
            }
            subscribe().block();
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        take()
    }
}

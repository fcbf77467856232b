//! JSON-RPC 2.0 for lanes that talk to a peer over a byte stream (a process's stdio, a socket):
//! encode requests with allocated ids, frame them, split the peer's bytes back into frames,
//! classify each message and answer the peer's own requests. Pure: no I/O, so it runs the same
//! in a component and in native tests.
//!
//! ```
//! use execution_plane_sdk::json;
//! use execution_plane_sdk::jsonrpc::{
//!     self, FrameDecoder, Framing, Inbound, PeerReply, ReplyError, Session,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut session = Session::new();
//! let (id, request) = session.request(&json!({"method": "sum", "params": [1, 2]}))?;
//! assert_eq!(id, json!(0));
//! let outbound = jsonrpc::encode_frame(Framing::ContentLength, &request);
//! assert!(outbound.starts_with(b"Content-Length: "));
//!
//! // Bytes from the peer arrive in chunks split anywhere; the decoder reassembles frames.
//! let mut decoder = FrameDecoder::new(Framing::ContentLength, 1 << 20);
//! let framed = |body: &str| format!("Content-Length: {}\r\n\r\n{body}", body.len());
//! let wire = framed(r#"{"jsonrpc":"2.0","id":"p1","method":"ask"}"#)
//!     + &framed(r#"{"jsonrpc":"2.0","id":0,"result":3}"#);
//! let (first, second) = wire.as_bytes().split_at(30);
//! let mut frames = decoder.push(first)?;
//! frames.extend(decoder.push(second)?);
//! decoder.finish()?; // a frame cut off at the end of the stream is an error
//!
//! let mut answers = Vec::new();
//! for frame in frames {
//!     match session.receive(&frame).inbound {
//!         Inbound::Response { id, result } => assert_eq!((id, result), (json!(0), Ok(json!(3)))),
//!         Inbound::PeerRequest { id, .. } => {
//!             let reply = jsonrpc::peer_reply(&id, PeerReply::Error(ReplyError::Unsupported));
//!             answers.push(jsonrpc::encode_frame(Framing::ContentLength, &reply));
//!         }
//!         Inbound::Notification(_) | Inbound::Ignored(_) => {}
//!         Inbound::ProtocolError(error) => return Err(error.into()),
//!     }
//! }
//! assert_eq!(answers.len(), 1);
//! assert!(session.pending().is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! The pieces also work alone: [`Codec`] encodes, [`classify`] classifies, [`Pending`]
//! correlates and [`FrameDecoder`] frames. The rules are upstream's (`Protocols.JsonRpc.Adapter`),
//! with these deliberate differences:
//!
//! * Every message built here carries `"jsonrpc": "2.0"` (upstream's requests omitted it, and
//!   JSON-RPC 2.0 requires it); a request with another version is refused.
//! * Malformed input is an error instead of a crash or a silent pass-through: a request without
//!   a string `method`, with scalar `params`, with an id that is not a string or number, or a
//!   notification with a non-null `id`.
//! * Batches (a JSON array) are not supported: [`ProtocolError::Batch`].
//! * An object that matches no rule is handed back as [`Inbound::Ignored`] (upstream dropped
//!   it), so a lane can log it; ignoring it stays one match arm.
//! * A peer-reply error object keeps only `code`, `message` and `data`, and a handler reason of
//!   `null` leaves `data` out ([`ReplyError`]).
//! * Request ids are correlated by [`Pending`] with their JSON type (`1`, `1.0` and `"1"`
//!   differ); a response nobody waits for is [`ProtocolError::UnexpectedResponse`].
//! * The ready signal is reported once, for the first matching message ([`Session`]).
//! * Frames are bounded (`max_frame_bytes`, [`MAX_HEADER_BYTES`]) and Content-Length framing is
//!   available next to upstream's newline-delimited JSON.

mod correlation;
mod framing;
#[cfg(test)]
mod framing_tests;
mod inbound;
mod message;
mod reply;
mod session;

pub use correlation::Pending;
pub use framing::{FrameDecoder, Framing, FramingError, MAX_HEADER_BYTES, encode_frame};
pub use inbound::{Inbound, ProtocolError, classify, classify_value};
pub use message::{Codec, EncodeError, VERSION, encode_once};
pub use reply::{METHOD_NOT_FOUND, PeerReply, ReplyError, SERVER_ERROR, peer_reply};
pub use session::{Received, Session};

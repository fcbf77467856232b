//! Built-in verifiers: the honest local weak and local sandboxed target verifiers, and the
//! Ed25519 authority verifier.

pub mod ed25519_authority;
pub mod local_sandboxed;
pub mod local_weak;
pub(crate) mod replay;

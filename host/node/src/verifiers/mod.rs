//! Built-in verifiers: the honest local weak target verifier and the Ed25519 authority verifier.

pub mod ed25519_authority;
pub mod local_weak;
pub(crate) mod replay;

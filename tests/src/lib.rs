//! Shared parts of the end-to-end tests: the node conformance suite every runtime client must
//! pass ([`conformance`]), the fake-lane nodes it runs against ([`fixtures`]) and the helper
//! binaries tests start as processes ([`binaries`]). The tests themselves live in `tests/`.

pub mod binaries;
pub mod conformance;
pub mod fixtures;

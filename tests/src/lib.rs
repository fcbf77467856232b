//! Shared parts of the end-to-end tests: the node conformance suite every runtime client must
//! pass ([`conformance`]) and the fake-lane nodes it runs against ([`fixtures`]). The tests
//! themselves live in `tests/`.

pub mod conformance;
pub mod fixtures;

//! Built-in evidence sinks: in-memory, and the append-only hash-chained JSON-lines file.

pub mod file_chain;
pub mod memory;

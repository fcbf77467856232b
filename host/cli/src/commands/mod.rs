//! One module per top-level command.

pub mod authority;
pub mod contracts;
pub mod describe;
pub mod evidence;
pub mod exec;
pub mod lanes;
pub mod remote;
pub mod serve;

//! The local process placement: the `process` lane, which runs a governed request's command as a
//! child process of the host (inventory §8.5–§8.7), deny by default under the operator's
//! [`ProcessPolicy`]. Unsandboxed it claims nothing (`local-process-weak`); with a
//! [`sandbox::Sandbox`] its processes are confined by the kernel (`local-process-sandboxed`).
//!
//! * [`payload`]: the request's payload, read in upstream's order;
//! * [`policy`]: what the operator grants (commands, working directories, variables, users,
//!   output and process caps);
//! * [`run`]: one process run to its end, killed with its group when out of time;
//! * [`exit`]: how it ended, normalized;
//! * [`framing`]: stdout split into lines as it arrives;
//! * [`stream`]: a streaming run, its output as events;
//! * [`simulation`]: a scenario played back with nothing spawned (`lower_simulation`);
//! * [`launch`]: [`LocalLauncher`], the lane API's process launcher (a process for a wasm lane
//!   to speak to over its stdio), under the same policy, slots and sandbox as the lane;
//! * [`sandbox`]: the `local-process-sandboxed` class (Landlock, seccomp, rlimits, a uid of
//!   its own), applied by a launcher and attested only from a probe that saw it hold.

pub mod exit;
pub mod framing;
mod lane;
pub mod launch;
pub mod payload;
pub mod policy;
pub mod pty;
pub mod run;
pub mod sandbox;
pub mod simulation;
pub mod stream;
mod users;

pub use lane::{DEFAULT_TIMEOUT, MAX_TIMEOUT, PROCESS_LANE_ID, ProcessLane};
pub use launch::LocalLauncher;
pub use policy::ProcessPolicy;

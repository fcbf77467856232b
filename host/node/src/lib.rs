//! Execution Plane node: registration tables, governed admission, dispatch and evidence.

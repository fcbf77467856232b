//! `ep-jsonrpc-peer`: the stdio JSON-RPC 2.0 peer of `ep-test-servers` as a process, for tests
//! of clients that spawn their server (see `ep_test_servers::jsonrpc::run_stdio_peer` for the
//! arguments and methods).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = ep_test_servers::jsonrpc::run_stdio_peer(&args);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

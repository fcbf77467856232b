//! The sandbox launcher on its own, for hosts and tests that embed the process lane without
//! the `execution-plane` binary (which carries the same launcher).

fn main() {
    ep_placement_local::sandbox::launcher::run_if_launcher();
    eprintln!(
        "usage: ep-sandbox-exec {} SPEC PROGRAM [ARGS…] | {} SPEC",
        ep_placement_local::sandbox::launcher::EXEC_ARG,
        ep_placement_local::sandbox::launcher::PROBE_ARG
    );
    std::process::exit(2);
}

//! The sandbox's seccomp filter: a deny list of what a governed command never needs and what
//! Landlock does not cover. Everything else is allowed (the filesystem and TCP are Landlock's).
//!
//! * administration of the machine (mounts, modules, reboot, swap, clocks, host names, kexec,
//!   quotas, accounting, the kernel log);
//! * looking into or steering other processes (`ptrace`, `process_vm_*`, `kcmp`, pidfd fd
//!   stealing) and the kernel's larger attack surfaces (`bpf`, `perf_event_open`, `userfaultfd`,
//!   `io_uring_*` — whose operations seccomp could not see —, keyrings, handle-based opens);
//! * new namespaces (`unshare`, `setns`, `clone` with a namespace flag; `clone3` answers ENOSYS so
//!   libc falls back to `clone`, whose flags the filter can read);
//! * sockets other than Unix ones, unless TCP is granted: then TCP sockets only (no UDP, no raw
//!   or packet sockets, no netlink).
//!
//! A denied call fails with `EPERM` (the program sees an ordinary error and can report it).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Why the filter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("the seccomp filter could not be built: {0}")]
pub struct FilterError(String);

fn error(error: impl std::fmt::Display) -> FilterError {
    FilterError(error.to_string())
}

/// Calls denied whatever their arguments.
fn denied_calls() -> Vec<i64> {
    let mut calls = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_kcmp,
        libc::SYS_pidfd_getfd,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_mount_setattr,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_quotactl,
        libc::SYS_acct,
        libc::SYS_syslog,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_vhangup,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_personality,
        libc::SYS_fanotify_init,
        libc::SYS_lookup_dcookie,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_uselib,
        libc::SYS_ustat,
        libc::SYS_sysfs,
        libc::SYS__sysctl,
    ]);
    calls
}

/// The namespace flags `clone` may not carry.
const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
];

fn condition(
    arg: u8,
    op: SeccompCmpOp,
    value: impl TryInto<u64>,
) -> Result<SeccompCondition, FilterError> {
    let value = value
        .try_into()
        .map_err(|_| FilterError("a negative constant".to_owned()))?;
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(error)
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, FilterError> {
    SeccompRule::new(conditions).map_err(error)
}

/// `clone` with any namespace flag.
fn clone_rules() -> Result<Vec<SeccompRule>, FilterError> {
    // On x86_64 and aarch64 the flags are clone's first argument.
    NAMESPACE_FLAGS
        .iter()
        .map(|flag| {
            let flag = u64::try_from(*flag).map_err(error)?;
            rule(vec![
                SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )
                .map_err(error)?,
            ])
        })
        .collect()
}

/// `socket` calls to deny: every family but Unix, or (with TCP granted) every family but Unix
/// and IP, and IP sockets that are not streams.
fn socket_rules(tcp_granted: bool) -> Result<Vec<SeccompRule>, FilterError> {
    let mut rules = Vec::new();
    let mut other_family = vec![condition(0, SeccompCmpOp::Ne, libc::AF_UNIX)?];
    if tcp_granted {
        other_family.push(condition(0, SeccompCmpOp::Ne, libc::AF_INET)?);
        other_family.push(condition(0, SeccompCmpOp::Ne, libc::AF_INET6)?);
        // The socket type's low bits; SOCK_NONBLOCK and SOCK_CLOEXEC sit above them.
        for family in [libc::AF_INET, libc::AF_INET6] {
            for kind in (0..16).filter(|kind| *kind != libc::SOCK_STREAM) {
                rules.push(rule(vec![
                    condition(0, SeccompCmpOp::Eq, family)?,
                    condition(1, SeccompCmpOp::MaskedEq(0xf), kind)?,
                ])?);
            }
        }
    }
    rules.push(rule(other_family)?);
    Ok(rules)
}

fn arch() -> Result<TargetArch, FilterError> {
    std::env::consts::ARCH.try_into().map_err(error)
}

/// The filters to load, in order: the deny list (EPERM), then `clone3` (ENOSYS).
pub fn filters(tcp_granted: bool) -> Result<Vec<BpfProgram>, FilterError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = denied_calls()
        .into_iter()
        .map(|call| (call, Vec::new()))
        .collect();
    rules.insert(libc::SYS_clone, clone_rules()?);
    rules.insert(libc::SYS_socket, socket_rules(tcp_granted)?);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch()?,
    )
    .map_err(error)?;
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch()?,
    )
    .map_err(error)?;
    [deny, clone3]
        .into_iter()
        .map(|filter| BpfProgram::try_from(filter).map_err(error))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn both_variants_compile() {
        for tcp in [false, true] {
            let filters = super::filters(tcp).unwrap();
            assert_eq!(filters.len(), 2);
            assert!(filters.iter().all(|program| !program.is_empty()));
        }
    }
}

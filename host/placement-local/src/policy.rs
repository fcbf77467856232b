//! The operator's process policy, deny by default: which commands may run, in which directories,
//! with which variables, as which users, with how much output and how many at once. A request
//! outside it fails `policy_denied` naming what was refused, and leaves a `capability.denied`
//! evidence record; nothing is spawned.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::payload::ProcessRequest;
use crate::sandbox::SandboxPolicy;

/// Host variables passed to every process unless it asks for `clear_env`.
pub const DEFAULT_INHERIT_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];
/// The search path for command names.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Most bytes kept of stdout, and of stderr, per process.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1 << 20;
/// Most processes running at once.
pub const DEFAULT_MAX_PROCESSES: usize = 64;

/// The `[process]` policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessPolicy {
    /// Commands that may run: absolute paths, or names looked up on `path`. Empty: none.
    pub commands: Vec<String>,
    /// Directories a process may run in (each, or anything below it); the first is where a
    /// request without `cwd` runs. Empty: none.
    pub cwd: Vec<PathBuf>,
    /// Variables a request may set: exact names, or a prefix ending in `*`. Empty: none.
    pub env: Vec<String>,
    /// Host variables every process gets unless it asks for `clear_env`.
    pub inherit_env: Vec<String>,
    /// The search path for command names (never the host's or the request's `PATH`).
    pub path: String,
    /// Users a process may run as; only a host running as root can switch.
    pub users: Vec<String>,
    /// Most bytes kept of stdout, and of stderr; the rest is read and dropped.
    pub max_output_bytes: u64,
    /// Most processes running at once; beyond it an execution fails `placement_unavailable`.
    pub max_processes: usize,
    /// What a sandboxed process may reach (`local-process-sandboxed`).
    pub sandbox: SandboxPolicy,
}

impl Default for ProcessPolicy {
    fn default() -> Self {
        Self {
            commands: Vec::new(),
            cwd: Vec::new(),
            env: Vec::new(),
            inherit_env: DEFAULT_INHERIT_ENV
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            path: DEFAULT_PATH.to_owned(),
            users: Vec::new(),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_processes: DEFAULT_MAX_PROCESSES,
            sandbox: SandboxPolicy::default(),
        }
    }
}

/// What the policy refused, and why (each names the policy key that would grant it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The command is not granted.
    #[error("command {command:?} is not granted; add it to [process] commands")]
    Command {
        /// The command asked for.
        command: String,
    },
    /// A relative path with a `/` names nothing the policy can check.
    #[error("command {command:?} is a relative path; name a command or give an absolute path")]
    RelativeCommand {
        /// The command asked for.
        command: String,
    },
    /// The working directory is outside every granted root.
    #[error("working directory {cwd:?} is outside [process] cwd")]
    Cwd {
        /// The directory asked for.
        cwd: String,
    },
    /// No working directory is granted at all.
    #[error("no working directory is granted; set [process] cwd")]
    NoCwd,
    /// A variable the request may not set.
    #[error("variable {name:?} may not be set; add it to [process] env")]
    Env {
        /// The variable's name.
        name: String,
    },
    /// A user the policy does not grant.
    #[error("running as user {user:?} is not granted; add it to [process] users")]
    User {
        /// The user asked for.
        user: String,
    },
}

impl Denied {
    /// The capability the denial is about, as evidence names it.
    pub fn capability(&self) -> &'static str {
        match self {
            Self::Command { .. } | Self::RelativeCommand { .. } => "process.command",
            Self::Cwd { .. } | Self::NoCwd => "process.cwd",
            Self::Env { .. } => "process.env",
            Self::User { .. } => "process.user",
        }
    }
}

/// What the policy let through: the program (not yet known to exist), the directory, the
/// variables a request sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The program: the request's absolute path, or the name resolved on the policy's path
    /// (`None` when the name is on no directory of it).
    pub program: Option<PathBuf>,
    /// The working directory.
    pub cwd: PathBuf,
}

impl ProcessPolicy {
    /// Checks `request` against the policy: command, working directory, variables, user.
    pub fn check(&self, request: &ProcessRequest) -> Result<Granted, Denied> {
        let program = self.check_command(&request.command)?;
        let cwd = self.check_cwd(request.cwd.as_deref())?;
        if let Some(name) = request.env.keys().find(|name| !self.env_granted(name)) {
            return Err(Denied::Env { name: name.clone() });
        }
        if let Some(user) = &request.user
            && !self.users.iter().any(|granted| granted == user)
        {
            return Err(Denied::User { user: user.clone() });
        }
        Ok(Granted { program, cwd })
    }

    fn env_granted(&self, name: &str) -> bool {
        self.env
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => pattern == name,
            })
    }

    /// `name` on the policy's search path: the first directory holding a file of that name.
    fn lookup(&self, name: &str) -> Option<PathBuf> {
        self.path
            .split(':')
            .filter(|dir| !dir.is_empty())
            .map(|dir| Path::new(dir).join(name))
            .find(|candidate| candidate.is_file())
    }

    /// The command if granted: by name, by absolute path, or as a name whose resolution is a
    /// granted path (and the other way round); symlinks resolved on both sides.
    fn check_command(&self, command: &str) -> Result<Option<PathBuf>, Denied> {
        let denied = || Denied::Command {
            command: command.to_owned(),
        };
        let program = if command.starts_with('/') {
            Some(PathBuf::from(command))
        } else if command.contains('/') {
            return Err(Denied::RelativeCommand {
                command: command.to_owned(),
            });
        } else {
            self.lookup(command)
        };
        let canonical = |path: &Path| std::fs::canonicalize(path).ok();
        let resolved = program.as_deref().and_then(canonical);
        let granted = self.commands.iter().any(|entry| {
            if entry == command {
                return true;
            }
            let entry_path = if entry.starts_with('/') {
                Some(PathBuf::from(entry))
            } else {
                self.lookup(entry)
            };
            match (entry_path.as_deref().and_then(canonical), &resolved) {
                (Some(entry), Some(resolved)) => entry == *resolved,
                _ => false,
            }
        });
        if granted { Ok(program) } else { Err(denied()) }
    }

    /// The working directory if it is a granted root or below one (a relative `cwd` is taken
    /// from the first root); no `cwd` runs in the first root.
    fn check_cwd(&self, cwd: Option<&str>) -> Result<PathBuf, Denied> {
        let first = self.cwd.first().ok_or(Denied::NoCwd)?;
        let asked = match cwd {
            None => return Ok(first.clone()),
            Some(cwd) if Path::new(cwd).is_absolute() => PathBuf::from(cwd),
            Some(cwd) => first.join(cwd),
        };
        // An existing directory is compared with its symlinks resolved; a missing one
        // lexically (it fails as `cwd not found` if granted).
        let seen = std::fs::canonicalize(&asked).unwrap_or_else(|_| lexical(&asked));
        let inside = self.cwd.iter().any(|root| {
            let root = std::fs::canonicalize(root).unwrap_or_else(|_| lexical(root));
            seen.starts_with(&root)
        });
        if inside {
            Ok(asked)
        } else {
            Err(Denied::Cwd {
                cwd: asked.display().to_string(),
            })
        }
    }
}

/// `path` with `.` dropped and `..` applied, without touching the filesystem.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn request(value: serde_json::Value) -> ProcessRequest {
        match value {
            serde_json::Value::Object(map) => ProcessRequest::parse(&map).unwrap(),
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let policy = ProcessPolicy::default();
        assert_eq!(
            policy.check(&request(json!({"command": "sh"}))),
            Err(Denied::Command {
                command: "sh".to_owned()
            })
        );
    }

    #[test]
    fn commands_match_by_name_by_path_and_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let policy = ProcessPolicy {
            commands: vec!["sh".to_owned()],
            cwd: vec![dir.path().to_owned()],
            ..ProcessPolicy::default()
        };
        let granted = policy.check(&request(json!({"command": "sh"}))).unwrap();
        assert!(granted.program.unwrap().ends_with("sh"));
        assert_eq!(granted.cwd, dir.path());
        // The same program by its path (and /bin is /usr/bin on merged-usr systems).
        let sh = policy.lookup("sh").unwrap();
        assert!(policy.check(&request(json!({"command": sh}))).is_ok());
        for command in ["bash-not-granted", "/usr/bin/env", "./sh"] {
            let denied = policy
                .check(&request(json!({"command": command})))
                .unwrap_err();
            assert_eq!(denied.capability(), "process.command", "{command}");
        }
    }

    #[test]
    fn the_working_directory_stays_inside_a_granted_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("inner")).unwrap();
        let policy = ProcessPolicy {
            commands: vec!["sh".to_owned()],
            cwd: vec![dir.path().join("inner")],
            ..ProcessPolicy::default()
        };
        let ask = |cwd: &str| policy.check(&request(json!({"command": "sh", "cwd": cwd})));
        assert!(ask(dir.path().join("inner").to_str().unwrap()).is_ok());
        assert!(
            ask("sub").is_ok(),
            "relative: below the first root (missing: fails later)"
        );
        for outside in [dir.path().to_str().unwrap(), "../", "/etc", "sub/../../"] {
            assert_eq!(
                ask(outside).unwrap_err().capability(),
                "process.cwd",
                "{outside}"
            );
        }
        // A symlink inside the root that points out of it is outside.
        std::os::unix::fs::symlink("/etc", dir.path().join("inner/escape")).unwrap();
        assert!(ask("escape").is_err());
        let none = ProcessPolicy {
            cwd: Vec::new(),
            ..policy.clone()
        };
        assert_eq!(
            none.check(&request(json!({"command": "sh"}))),
            Err(Denied::NoCwd)
        );
    }

    #[test]
    fn variables_and_users_need_a_grant() {
        let dir = tempfile::tempdir().unwrap();
        let policy = ProcessPolicy {
            commands: vec!["sh".to_owned()],
            cwd: vec![dir.path().to_owned()],
            env: vec!["ONLY_ME".to_owned(), "APP_*".to_owned()],
            users: vec!["nobody".to_owned()],
            ..ProcessPolicy::default()
        };
        let env = |env| policy.check(&request(json!({"command": "sh", "env": env})));
        assert!(env(json!({"ONLY_ME": "1", "APP_MODE": "x"})).is_ok());
        assert_eq!(
            env(json!({"LD_PRELOAD": "/tmp/x.so"})),
            Err(Denied::Env {
                name: "LD_PRELOAD".to_owned()
            })
        );
        let user = |user| policy.check(&request(json!({"command": "sh", "user": user})));
        assert!(user("nobody").is_ok());
        assert_eq!(user("root").unwrap_err().capability(), "process.user");
    }
}

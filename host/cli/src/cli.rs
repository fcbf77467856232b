//! Command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Execution Plane node host: runs governed executions with tamper-evident evidence.
#[derive(Debug, Parser)]
#[command(name = "execution-plane", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List and validate contract documents.
    #[command(subcommand)]
    Contracts(ContractsCommand),
    /// Check evidence logs.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Development authority keys and refs.
    #[command(subcommand)]
    Authority(AuthorityCommand),
    /// Print the node descriptor (as JSON) of the configured node.
    Describe(DescribeArgs),
    /// Check and list WebAssembly lane plugins (`<name>.wasm` + `<name>.toml`).
    #[command(subcommand)]
    Lanes(LanesCommand),
    /// Run one execution in an in-process node and print its ExecutionResult as JSON (exit 0
    /// when it succeeded, 1 when it failed or was rejected).
    Exec(Box<ExecArgs>),
    /// Serve the node over HTTP (docs/api.md) until SIGINT/SIGTERM; SIGHUP reloads the policy
    /// and the plugin directory.
    Serve(ServeArgs),
}

/// `serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Service configuration file (TOML, docs/config.md); the embedded defaults apply when
    /// absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address, overriding `[server] listen` (e.g. `127.0.0.1:0` for any free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Log format on stderr, overriding `[log] format`.
    #[arg(long, value_name = "FORMAT", value_parser = ["human", "json"])]
    pub log_format: Option<String>,
}

/// `exec`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The lane to run (a built-in lane such as `http`, or one from `--plugins`).
    #[arg(long)]
    pub lane: String,
    /// The operation, when the lane has several.
    #[arg(long)]
    pub operation: Option<String>,
    /// The request payload: a JSON object, `@file`, or `@-` for stdin.
    #[arg(long)]
    pub payload: String,
    /// A plugin directory; a plugin with the lane's id replaces the built-in lane. Default: the
    /// config's `[plugins] dir` when it exists (`./plugins` on the defaults), as `serve` does.
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// Operator policy (TOML) capping lane grants and limits. Default: the config's `[policy]
    /// file`, else the built-in default policy (no outbound HTTP).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Service configuration file, the one `serve` reads (docs/config.md): its node id, trust
    /// store, state directory, policy and plugin directory apply. The embedded defaults (state
    /// in `./.execution-plane`) apply when absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Evidence log (hash-chained JSON lines, its head signed with the node key in `data_dir`);
    /// default `<data_dir>/evidence/evidence.jsonl`, the log `serve` writes.
    #[arg(long)]
    pub evidence: Option<PathBuf>,
    /// Let the lane reach URLs matching `scheme://host[:port][/path-prefix]` on public
    /// addresses (an IP literal reaches exactly that address); repeatable.
    #[arg(long = "allow-http", value_name = "PATTERN")]
    pub allow_http: Vec<String>,
    /// Like `--allow-http`, but the name may resolve to loopback or private addresses.
    #[arg(long = "allow-http-private", value_name = "PATTERN")]
    pub allow_http_private: Vec<String>,
    /// Let the process lane, or a wasm lane granted `process` (`jsonrpc`), run this command (a
    /// name looked up on the policy's path, or an absolute path), on top of the config's
    /// `[process] commands`; repeatable.
    #[arg(long = "allow-command", value_name = "COMMAND")]
    pub allow_command: Vec<String>,
    /// Let a process (of the process lane or of a wasm lane) run in this directory (or below
    /// it), on top of the config's `[process] cwd`; the first given is where it runs without a
    /// `cwd`; repeatable.
    #[arg(long = "allow-cwd", value_name = "DIR")]
    pub allow_cwd: Vec<PathBuf>,
    /// Direct lower-lane-owner mode: skip governed admission (no authority ref).
    #[arg(long, conflicts_with_all = ["authority_key", "class"])]
    pub direct: bool,
    /// Governed mode: the Ed25519 secret key (from `authority keygen`) that signs the
    /// authority ref; its public key must be in the configured trust store.
    #[arg(long, value_name = "FILE")]
    pub authority_key: Option<PathBuf>,
    /// Governed mode: an acceptable attestation class, in order of preference (repeatable;
    /// default: the wasm engine class).
    #[arg(long = "class", value_name = "CLASS")]
    pub class: Vec<String>,
    /// The execution's deadline in milliseconds (the lane's limits cap it).
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Answer from this lower-simulation scenario (a JSON file: `scenario_ref`, `status`,
    /// `raw_payload`, …) instead of running: the kernel answers an `http` or `process` request
    /// and the lane is never called (`metadata.lower_simulation`; an omitted
    /// `no_egress_policy` is the default lower boundary policy).
    #[arg(long, value_name = "FILE", conflicts_with = "stream")]
    pub simulate: Option<PathBuf>,
    /// Run on a host started with `serve` (e.g. `http://127.0.0.1:8787`) instead of an
    /// in-process node; the host's own lanes, policy and evidence apply.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with_all = [
            "plugins", "policy", "evidence", "allow_http", "allow_http_private",
            "allow_command", "allow_cwd"
        ]
    )]
    pub remote: Option<String>,
    /// Stream the execution: print each event as a JSON line as it arrives, then the result
    /// as the last line (in process, or on the host with `--remote`).
    #[arg(long)]
    pub stream: bool,
    /// With `--stream`: forward this command's stdin to the running execution as it arrives,
    /// and its end as the end of the execution's input (like `docker exec -i`); a process
    /// payload keeps its stdin open with `"close_stdin": false`.
    #[arg(long, requires = "stream")]
    pub stdin: bool,
    /// With `--remote --direct`: file holding the host's operator token (a host accepts direct
    /// requests only from its operator); default: `$EXECUTION_PLANE_OPERATOR_TOKEN`, else
    /// `.execution-plane/operator-token`.
    #[arg(long, value_name = "FILE", requires = "remote")]
    pub operator_token_file: Option<PathBuf>,
}

/// `contracts ...`
#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// List every contract name with its kind.
    List,
    /// Validate a JSON document and print its normalized form.
    Validate {
        /// Contract name (see `contracts list`), e.g. `execution_route.v1`.
        contract: String,
        /// The document; `-` or nothing reads stdin.
        file: Option<PathBuf>,
    },
}

/// `evidence ...`
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Verify an evidence log: its hash chain, its head anchor and (with `--key`) the head's
    /// signature; names the first problem and exits 1.
    Verify {
        /// The JSON-lines evidence file (its head is `<file>.head`).
        file: PathBuf,
        /// Check the head's signature with the node's key: its key file (`serve` keeps it in
        /// `.execution-plane/node-key.json`), or its public key as `serve` prints it (base64),
        /// inline or in a file. A head not signed by that key is a failure.
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
        /// Accept a log whose head file is missing and check its chain alone (records cut from
        /// the end, or removed and re-chained, then go unseen).
        #[arg(long)]
        allow_unanchored: bool,
    },
    /// Write a fresh head for a log whose chain is intact but whose head is missing, unsigned,
    /// signed by another key or behind the log: a deliberate decision after checking it. The
    /// log gets an `evidence.reanchored` record saying what was re-anchored.
    Reanchor {
        /// The JSON-lines evidence file.
        file: PathBuf,
        /// The node key file to sign the new head with (`.execution-plane/node-key.json` for
        /// `serve`'s log); without it the head is unsigned.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

/// `authority ...`
#[derive(Debug, Subcommand)]
pub enum AuthorityCommand {
    /// Generate an Ed25519 signing key; prints the trust-store entry for it.
    Keygen {
        /// Key id recorded in refs and the trust store.
        #[arg(long)]
        key_id: String,
        /// Where to write the secret key file (created with mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a single-use authority ref for one admission request; prints the request with its
    /// `authority_ref` set, ready to send (`--ref-only` prints the ref alone).
    Sign {
        /// Secret key file from `authority keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Node id the ref is for.
        #[arg(long)]
        audience: String,
        /// The whole admission request (an `AdmissionRequest` JSON document); `-` reads stdin.
        /// Everything in it but `authority_ref` is signed: lane, operation, payload, metadata
        /// (egress narrowing included), acceptable classes, request id.
        #[arg(long, conflicts_with_all = ["payload", "lane"], required_unless_present = "payload")]
        request: Option<PathBuf>,
        /// Instead of --request: a request payload (a JSON object, `-` reads stdin) for a new
        /// governed request to `--lane`, accepting `--class`.
        #[arg(long, requires = "lane")]
        payload: Option<PathBuf>,
        /// The lane of the request built from --payload.
        #[arg(long)]
        lane: Option<String>,
        /// Acceptable attestation classes of the request built from --payload (repeatable;
        /// default the wasm engine class).
        #[arg(long)]
        class: Vec<String>,
        /// Print only the ref, not the signed request.
        #[arg(long)]
        ref_only: bool,
        /// Seconds the ref stays valid.
        #[arg(long, default_value_t = 300)]
        ttl: u64,
        /// Ref id (minted when absent).
        #[arg(long = "ref")]
        reference: Option<String>,
    },
}

/// `describe`
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Service configuration file (the one `serve` reads, docs/config.md); the embedded
    /// defaults apply when absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Describe the node of a host started with `serve` instead.
    #[arg(long, value_name = "URL", conflicts_with = "config")]
    pub remote: Option<String>,
}

/// How an operator command reaches a running host.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// The host's URL (e.g. `http://127.0.0.1:8787`).
    #[arg(long, value_name = "URL")]
    pub remote: String,
    /// File holding the host's operator token; default: `$EXECUTION_PLANE_OPERATOR_TOKEN`,
    /// else `.execution-plane/operator-token` (where `serve` writes it on its defaults).
    #[arg(long, value_name = "FILE")]
    pub operator_token_file: Option<PathBuf>,
}

/// `lanes ...`
#[derive(Debug, Subcommand)]
pub enum LanesCommand {
    /// Load one plugin with its manifest; print its lane id, digest, capabilities, imports and
    /// the effective grants and limits as JSON.
    Check {
        /// The component; its manifest is `<same stem>.toml` beside it.
        file: PathBuf,
        /// Operator policy (TOML); the built-in default policy applies when absent.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// List the lanes a host on its configuration would serve (the built-in lanes and the
    /// config's plugin directory, under its policy), one line each, then one `refused` line per
    /// lane left out with why; exit 1 if a plugin is refused. With `--plugins`, only that
    /// directory's plugins (exit 1 if any is refused). With `--remote`, the lanes a running host
    /// serves (JSON; operator token).
    List {
        /// Only the plugins of this directory.
        #[arg(long, conflicts_with_all = ["remote", "config"])]
        plugins: Option<PathBuf>,
        /// Operator policy (TOML), overriding the config's `[policy] file` (default: the
        /// built-in default policy).
        #[arg(long, conflicts_with = "remote")]
        policy: Option<PathBuf>,
        /// Service configuration file (the one `serve` reads); the embedded defaults apply when
        /// absent.
        #[arg(long, conflicts_with = "remote")]
        config: Option<PathBuf>,
        /// The running host to ask instead (e.g. `http://127.0.0.1:8787`).
        #[arg(long, value_name = "URL")]
        remote: Option<String>,
        /// File holding the host's operator token (see `lanes reload`).
        #[arg(long, value_name = "FILE", requires = "remote")]
        operator_token_file: Option<PathBuf>,
        /// The host's state directory (`data_dir`, default `.execution-plane`): its withdrawn
        /// and quarantined lane digests are listed and marked.
        #[arg(long, value_name = "DIR", conflicts_with = "remote")]
        state_dir: Option<PathBuf>,
    },
    /// Make a running host reload its policy and plugin directory (like SIGHUP); prints its
    /// report as JSON.
    Reload(OperatorArgs),
    /// Make a running host roll a lane back to its previous generation; prints the digests.
    Rollback {
        /// The lane id.
        lane: String,
        /// The host and its token.
        #[command(flatten)]
        operator: OperatorArgs,
    },
    /// Make a running host re-admit a lane digest a rollback withdrew or quarantined (listed
    /// under `withdrawn` by `lanes list --remote`); its plugin file is then reloaded.
    Reinstate {
        /// The lane id.
        lane: String,
        /// The digest (`sha256:…`).
        digest: String,
        /// The host and its token.
        #[command(flatten)]
        operator: OperatorArgs,
    },
}

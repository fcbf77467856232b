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
    /// Verify the hash chain of an evidence log; names the first bad record.
    Verify {
        /// The JSON-lines evidence file.
        file: PathBuf,
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
    /// Sign an authority ref for a request payload; prints the ref as JSON.
    Sign {
        /// Secret key file from `authority keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Node id the ref is for.
        #[arg(long)]
        audience: String,
        /// The request payload (a JSON object); `-` reads stdin.
        #[arg(long)]
        payload: PathBuf,
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
    /// Host configuration file (TOML); the embedded defaults apply when absent.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `lanes ...`
#[derive(Debug, Subcommand)]
pub enum LanesCommand {
    /// Load one plugin with its manifest; print its lane id, digest, capabilities and the
    /// effective grants and limits as JSON.
    Check {
        /// The component; its manifest is `<same stem>.toml` beside it.
        file: PathBuf,
        /// Operator policy (TOML); the built-in default policy applies when absent.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Load every `*.wasm` plugin of a directory; one line per plugin, exit 1 if any is refused.
    List {
        /// The plugin directory.
        #[arg(long)]
        plugins: PathBuf,
        /// Operator policy (TOML); the built-in default policy applies when absent.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
}

//! `zonekeeper check` (stub).
use std::process::ExitCode;

use clap::Args;

use crate::cli::Fail;
use crate::config::Config;

#[derive(Args)]
pub struct CheckArgs {
    /// Domain to check.
    pub domain: String,
    /// Declared nameserver: NAME[/ADDR[,ADDR…]]; repeat for each server.
    #[arg(long = "ns", required = true)]
    pub ns: Vec<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Permit loopback/private/reserved probe targets.
    #[arg(long)]
    pub allow_private: bool,
    /// Check policy profile (TOML).
    #[arg(long)]
    pub profile: Option<std::path::PathBuf>,
}

pub fn run(_cfg: Config, _args: CheckArgs) -> Result<ExitCode, Fail> {
    Err(Fail("check: not implemented yet".into()))
}

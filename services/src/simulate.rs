//! `saoma simulate`: a realistic, deterministic population and lifecycle traffic.

use crate::config::Settings;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Number of inspections to drive.
    #[arg(long, default_value_t = 100)]
    pub inspections: usize,
    /// Seed: the same seed gives the same population and traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Base URL of a running `saoma serve`.
    #[arg(long)]
    pub url: Option<String>,
}

pub async fn run(_args: SimulateArgs, _settings: &Settings) -> anyhow::Result<()> {
    anyhow::bail!("simulate is being built")
}

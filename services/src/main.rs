//! `saoma`: the command line of the service.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use saoma_services::config::Settings;
use std::path::PathBuf;

/// The ingest allocates and frees many small JSON values per command on several threads;
/// mimalloc does that with far less contention and fragmentation than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "saoma",
    version,
    about = "扫码入企 audit trail: signed, hash-chained inspection events"
)]
struct Cli {
    /// Configuration file (TOML); `SAOMA_*` environment variables override it.
    #[arg(long, global = true, env = "SAOMA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (embedded SQLite in ./saoma-data/ unless a database URL is configured).
    Serve,
    /// Drive a running `saoma serve` with a realistic, deterministic population and traffic.
    Simulate(saoma_services::simulate::SimulateArgs),
    /// Replay the whole log, checking every hash, chain link and signature, into reports.
    Replay(saoma_services::replay::ReplayArgs),
    /// Write the log, its checkpoints and keys into a bundle that `saoma verify` checks offline.
    Export(saoma_services::audit::ExportArgs),
    /// Check an export bundle offline: every hash, signature, chain link, key and checkpoint.
    /// Exit 0 only when everything holds; 2 naming the first broken position.
    Verify(saoma_services::audit::VerifyArgs),
    /// The same checks against the configured store, and its rows against the service's tree
    /// and signed checkpoints. Exit 0 only when everything holds; 2 naming the first broken
    /// position.
    Audit(saoma_services::audit::AuditArgs),
    /// Empty the history, warning and satisfaction views; `saoma serve` (running or at its next
    /// start) rebuilds them from the whole log.
    RebuildViews,
    /// Officer device tools: make a key, sign a command.
    #[command(subcommand)]
    Device(saoma_services::device::DeviceCommand),
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SAOMA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Ends the process with `code` unless it is 0.
fn exit(code: i32) -> anyhow::Result<()> {
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Device(command) = cli.command {
        return saoma_services::device::run(command);
    }
    let settings = Settings::load(cli.config.as_deref()).context("loading settings")?;
    init_tracing(&settings.log_format);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => saoma_services::serve::run(settings).await,
            Command::Simulate(args) => saoma_services::simulate::run(args, &settings).await,
            Command::RebuildViews => {
                let store = saoma_services::serve::open_store(&settings).await?;
                store.reset_views().await?;
                println!("views emptied; saoma serve rebuilds them from the log");
                Ok(())
            }
            Command::Replay(args) => {
                let summary = saoma_services::replay::run(&settings, &args).await?;
                if args.stats {
                    return Ok(());
                }
                println!(
                    "replayed {} events ({} inspections, {} warnings) into {}",
                    summary.checked.events,
                    summary.inspections,
                    summary.warnings,
                    args.out.display()
                );
                Ok(())
            }
            Command::Export(args) => {
                let manifest = saoma_services::audit::run_export(&settings, &args).await?;
                println!(
                    "exported {} events and {} checkpoints (tree of {} events) into {}",
                    manifest.events,
                    manifest.checkpoints,
                    manifest.tree_size,
                    args.out.display()
                );
                Ok(())
            }
            Command::Verify(args) => exit(saoma_services::audit::run_verify(&args).await?),
            Command::Audit(args) => exit(saoma_services::audit::run_audit(&settings, &args).await?),
            Command::Device(_) => unreachable!("handled before the runtime starts"),
        }
    })
}

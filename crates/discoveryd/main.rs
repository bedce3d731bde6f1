//! `discoveryd`: one discovery node. Parses flags, loads the configuration, starts the
//! node, waits for SIGTERM or SIGINT, and shuts down cleanly (in-flight requests finish,
//! the stores are flushed), exiting 0.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use discovery_server::{telemetry, Node, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "discoveryd",
    version,
    about = "A discovery server speaking the airlift discovery protocol (Presto, Trino)",
    after_help = "Examples:\n  \
        discoveryd                                   one node, defaults: environment 'test', port 8411, data in ./data\n  \
        discoveryd --config etc/config.properties    an airlift etc/ directory (node.properties beside it is read too)\n  \
        discoveryd --set node.environment=production --set http-server.http.port=8411\n\n\
        Logs go to stdout; RUST_LOG (or log.level) sets the level, and debug logs every request."
)]
struct Cli {
    /// airlift-style properties file (key=value lines, # comments).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Override one configuration key; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    overrides: Vec<(String, String)>,

    /// Start even though the data directory is damaged (store.repair=true): what was lost
    /// is logged, and lookups wait until the node has caught up with a ready peer.
    #[arg(long)]
    repair: bool,
}

fn parse_override(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected KEY=VALUE, got '{text}'")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("discoveryd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    if cli.repair {
        cli.overrides.push(("store.repair".into(), "true".into()));
    }
    let loaded = Settings::load(cli.config.as_deref(), &cli.overrides)?;
    telemetry::init(&loaded.settings.log_level).map_err(anyhow::Error::msg)?;
    for note in &loaded.notes {
        tracing::info!("{note}");
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    if cli.config.is_none() {
        tracing::info!(
            "no --config given: using the built-in defaults (see README, Configuration)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime.block_on(serve(loaded.settings));
    // A flush given up on at shutdown (a failing disk) may still hold a blocking thread:
    // do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let data_dir = settings.data_dir.clone();
    let environment = settings.environment.clone();
    let node = Node::start(settings).await?;
    // One line per listener; scripts and the test harness read the addresses from them
    // (with port 0 these are the only place the ports are told).
    if let Some(addr) = node.https_addr() {
        tracing::info!(
            node_id = %node.node_id(),
            %environment,
            data_dir = %data_dir.display(),
            "discoveryd listening on https://{addr}"
        );
    }
    if let Some(addr) = node.http_addr() {
        tracing::info!(
            node_id = %node.node_id(),
            %environment,
            data_dir = %data_dir.display(),
            "discoveryd listening on http://{addr}"
        );
    }
    let signal = wait_for_signal().await?;
    tracing::info!("{signal} received: shutting down");
    node.shutdown().await?;
    tracing::info!("shutdown complete");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}

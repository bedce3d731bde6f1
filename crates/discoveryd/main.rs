//! `discoveryd`: one discovery node. Parses flags, loads the configuration, starts the
//! node, waits for SIGTERM or SIGINT, and shuts down cleanly (in-flight requests finish,
//! the stores are flushed), exiting 0.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use discovery_server::{telemetry, LoadOptions, Node, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "discoveryd",
    version,
    about = "A discovery server speaking the airlift discovery protocol (Presto, Trino)",
    after_help = "Examples:\n  \
        discoveryd                                   one node, defaults: environment 'test', 127.0.0.1:8411, data in ./data\n  \
        discoveryd --set node.bind-ip=0.0.0.0        the same, listening on all interfaces\n  \
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

    /// Refuse to start on any configuration key this server does not know (by default
    /// only near misses of known keys are refused and other unknown keys are warned
    /// about, since an airlift etc/ holds many foreign ones). Keys airlift discovery has
    /// and this server accepts without using still pass.
    #[arg(long)]
    strict_config: bool,
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
    let options = LoadOptions {
        strict: cli.strict_config,
    };
    let loaded = Settings::load_with(cli.config.as_deref(), &cli.overrides, options)?;
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
        // The bare command is what a developer runs; without a word, "connection
        // refused" from another host would be a puzzle.
        if loaded.settings.bind_ip.is_loopback() {
            tracing::info!(
                "binding {} only (no --config); --set node.bind-ip=0.0.0.0 binds all interfaces",
                loaded.settings.bind_ip
            );
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let restarts = restarts_so_far();
    let served = runtime.block_on(serve(loaded.settings, restarts < MAX_STORAGE_RESTARTS));
    // A flush given up on at shutdown (a failing disk) may still hold a blocking thread:
    // do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match served? {
        Ended::Stopped => Ok(()),
        Ended::Restart { ports } => Err(restart_in_place(&ports, restarts + 1)),
    }
}

/// How a node's run ended.
enum Ended {
    /// A signal: the node shut down.
    Stopped,
    /// The storage engine cannot recover in process: the node shut down to be started
    /// again on the same ports (`--set` overrides, so a port 0 start keeps its ports).
    Restart { ports: Vec<(&'static str, u16)> },
}

/// In-place restarts after a storage failure, counted across them in this variable so a
/// disk that fails again and again cannot make the node restart forever.
const RESTARTS_VARIABLE: &str = "DISCOVERYD_STORAGE_RESTARTS";
const MAX_STORAGE_RESTARTS: u32 = 3;

fn restarts_so_far() -> u32 {
    std::env::var(RESTARTS_VARIABLE)
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

/// Replaces this process with a fresh start of the same binary, arguments and
/// environment (the same pid, so a supervisor sees nothing), plus the ports it listened
/// on. Returns only if that fails.
fn restart_in_place(ports: &[(&'static str, u16)], restarts: u32) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    for (key, port) in ports {
        args.push("--set".into());
        args.push(format!("{key}={port}").into());
    }
    tracing::warn!(restarts, "restarting in place to reopen the storage");
    // /proc/self/exe is this very binary even if the file was replaced since it started.
    let error = std::process::Command::new("/proc/self/exe")
        .args(args)
        .env(RESTARTS_VARIABLE, restarts.to_string())
        .exec();
    anyhow::Error::new(error).context("cannot restart in place; restart the node by hand")
}

async fn serve(settings: Settings, may_restart: bool) -> anyhow::Result<Ended> {
    let data_dir = settings.data_dir.clone();
    let environment = settings.environment.clone();
    let readiness = readiness_note(&settings);
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
    // After the listener lines: a first lookup answering 503 is the first thing a new
    // operator meets, so say when it will not.
    tracing::info!("{readiness}");
    if !may_restart {
        tracing::error!(
            "restarted in place {MAX_STORAGE_RESTARTS} times after storage failures: not \
             again; if storage fails once more the node stays not ready until restarted by hand"
        );
    }
    let ended = tokio::select! {
        signal = wait_for_signal() => {
            tracing::info!("{} received: shutting down", signal?);
            Ended::Stopped
        }
        reason = node.storage_restart_needed(), if may_restart => {
            tracing::warn!("{reason}: shutting down to restart in place");
            let ports = [
                ("http-server.http.port", node.http_addr()),
                ("http-server.https.port", node.https_addr()),
            ];
            Ended::Restart {
                ports: ports
                    .into_iter()
                    .filter_map(|(key, addr)| Some((key, addr?.port())))
                    .collect(),
            }
        }
    };
    node.shutdown().await?;
    tracing::info!("shutdown complete");
    Ok(ended)
}

/// When lookups start answering, as the readiness rules of the README decide it.
fn readiness_note(settings: &Settings) -> String {
    let warm_up = settings.readiness_warm_up;
    let key = format!(
        "readiness.warm-up={}",
        discovery_server::config::format_duration(warm_up)
    );
    if settings.repair {
        return "lookups answer 503 until this node, started with --repair, has caught up \
                with a ready peer (GET /v1/health/ready says why)"
            .to_owned();
    }
    match (&settings.service_inventory_uri, warm_up.is_zero()) {
        (None, true) => format!("lookups are answered at once ({key})"),
        (None, false) => format!(
            "lookups answer 503 until the warm-up ends in {} ({key}): clients re-announce \
             first; GET /v1/health/ready answers 200 from then on",
            discovery_server::config::format_duration(warm_up)
        ),
        (Some(_), _) => format!(
            "lookups answer 503 until this node has caught up with a ready peer (or, \
             when the whole cluster starts together, until the warm-up ends in {} and one \
             round with any peer; {key}, at most readiness.max-wait={}); \
             GET /v1/health/ready answers 200 from then on",
            discovery_server::config::format_duration(warm_up),
            discovery_server::config::format_duration(settings.readiness_max_wait)
        ),
    }
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

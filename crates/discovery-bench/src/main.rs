//! `discovery-bench`: measurements of a discovery cluster, printed as markdown.
//!
//! * `replication`: real `discoveryd` processes on loopback — propagation latency of an
//!   announcement under a steady announce load, bytes per renewal on the wire, and the
//!   time an empty node takes to converge with a populated cluster.
//! * `anti-entropy`: the replication protocol in process (real stores, simulated
//!   network) — bytes of one anti-entropy round when replicas agree and after a
//!   divergence.
//! * `single-node`: one `discoveryd` under announce and lookup load (closed and open
//!   loop), next to bare hyper and etcd measured in the same run; throughput, latency
//!   percentiles, CPU per request, peak RSS, ratios.
//! * `load`: the load generator alone, against a server already running on loopback.
//! * `hyper-baseline`: the bare hyper server `single-node` compares against.
//! * `watch`: blocking lookups on one `discoveryd`: wake delay after a PUT, and the
//!   memory of idle watchers.
//!
//! Every run is bounded in time and talks only to loopback addresses.

mod anti_entropy;
mod etcd;
mod fleet;
mod hist;
mod hyper_baseline;
mod load;
mod load_cmd;
mod procfs;
mod replication;
mod shapes;
mod single_node;
mod stats;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "discovery-bench",
    about = "Benchmarks of a discovery cluster (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replication between real discoveryd processes.
    Replication(replication::Args),
    /// Bytes of anti-entropy rounds, in process.
    AntiEntropy(anti_entropy::Args),
    /// One discoveryd against bare hyper and etcd: throughput, latency, CPU, memory.
    SingleNode(single_node::Args),
    /// The load generator alone, against a server on loopback.
    Load(load_cmd::Args),
    /// A bare hyper server: the ceiling single-node compares against.
    HyperBaseline(hyper_baseline::Args),
    /// A 3-node cluster behind nginx under a simulated fleet of growing size.
    Fleet(fleet::Args),
    /// Blocking lookups: wake delay after a change, memory of idle watchers.
    Watch(watch::Args),
}

/// The discoveryd binary: `--discoveryd`, else `target/release/discoveryd` beside this one.
pub fn discoveryd_path(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path);
    }
    let beside = std::env::current_exe()?.with_file_name("discoveryd");
    anyhow::ensure!(
        beside.exists(),
        "no discoveryd beside this binary ({}); build it (cargo build --release) or pass --discoveryd",
        beside.display()
    );
    Ok(beside)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::HyperBaseline(args) = cli.command {
        // Its own runtime, as a server process would have.
        return hyper_baseline::run(args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let benchmark = async {
            match cli.command {
                Command::Replication(args) => replication::run(args).await,
                Command::AntiEntropy(args) => anti_entropy::run(args).await,
                Command::SingleNode(args) => single_node::run(args).await,
                Command::Load(args) => load_cmd::run(args).await,
                Command::Fleet(args) => fleet::run(args).await,
                Command::Watch(args) => watch::run(args).await,
                Command::HyperBaseline(_) => unreachable!("handled above"),
            }
        };
        // On SIGTERM (`timeout`) or SIGINT (Ctrl-C) the benchmark is dropped, and with it
        // the guards of every server it started (discoveryd, hyper-baseline, etcd), which
        // kill them: none outlives the run.
        tokio::select! {
            result = benchmark => result,
            signal = termination() => anyhow::bail!("{signal} received: stopped the servers and gave up"),
        }
    })
}

async fn termination() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    }
}

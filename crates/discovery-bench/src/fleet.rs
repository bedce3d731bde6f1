//! A 3-node cluster behind a real nginx, under a simulated Trino fleet of growing size.
//!
//! For each fleet size: three fresh `discoveryd` processes (production timings: 30 s
//! max-age, clients announcing every 8 s, coordinators looking up every 10 s, anti-entropy
//! every minute), nginx configured from `deploy/nginx/discovery.conf`, and a
//! `discovery-sim` fleet of N workers and 2 coordinators talking only to nginx. Once every
//! coordinator lists every worker, a measured window: announcements achieved against the
//! fleet's schedule, failed requests, node-missing events, replication visibility (a probe
//! announcement on node 1 every 500 ms, polled on nodes 2 and 3), and the CPU and memory of
//! every node, of the simulator and of the whole machine.
//!
//! A size is *sustained* when the window had no failed request, no node-missing event, a
//! p99 visibility under 100 ms and at least 95 % of the scheduled announcements. The run
//! stops at the first size that is not sustained.
//!
//! `--soak-minutes` then runs one size for that long and samples the size of every node's
//! data directory, to see whether sled's files stay bounded.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use discovery_sim::{Fleet, FleetConfig};
use discovery_testkit::nginx::Nginx;
use discovery_testkit::Cluster;
use reqwest::Client;
use serde_json::json;

use crate::procfs::{clock_ticks_per_second, machine_ticks, MachineTicks, Probe, Sample};
use crate::replication::{put, seen_after};
use crate::stats::{ms, percentile};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The discoveryd binary (default: target/release/discoveryd beside this binary).
    #[arg(long)]
    discoveryd: Option<PathBuf>,
    /// Fleet sizes (workers), in order; the run stops at the first one not sustained.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,5000,10000,20000,40000"
    )]
    sizes: Vec<usize>,
    /// Seconds measured per size, after the fleet has converged.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Coordinators in the fleet.
    #[arg(long, default_value_t = 2)]
    coordinators: usize,
    /// After the sizes, run a fleet of this many workers for `--soak-minutes` and sample
    /// the data directories (0: no soak).
    #[arg(long, default_value_t = 0)]
    soak_workers: usize,
    #[arg(long, default_value_t = 10)]
    soak_minutes: u64,
    /// Also measure memory and disk of a cluster holding this many announcements (written
    /// once, with a long time-to-live; 0: skip).
    #[arg(long, default_value_t = 0)]
    memory_at: usize,
}

/// The announce period of the simulated nodes: 80 % of the server's 10 s announce max-age.
const ANNOUNCE_PERIOD: Duration = Duration::from_secs(8);

/// Three nodes behind nginx, with a fleet on top.
struct Setup {
    cluster: Cluster,
    nginx: Nginx,
    fleet: Fleet,
    probes: Vec<Probe>,
}

async fn start(
    binary: &Path,
    workers: usize,
    coordinators: usize,
    shared_connections: bool,
) -> anyhow::Result<Setup> {
    let settings = [
        ("log.level", "warn,discoveryd=info"),
        ("dynamic.store.remote.replication-interval", "1m"),
        ("static.store.remote.replication-interval", "1m"),
        ("service-inventory.update-interval", "10s"),
    ];
    let cluster = Cluster::start(binary, 3, &settings).await;
    let upstreams: Vec<String> = (0..3).map(|i| cluster.node(i).addr().to_string()).collect();
    let nginx = Nginx::start("127.0.0.1", &upstreams).await;
    let (ticks, _) = clock_ticks_per_second();
    let probes = (0..3)
        .map(|i| Probe::new(cluster.node(i).pid(), ticks))
        .collect();
    let config = FleetConfig::new(nginx.url(), "testing")
        .workers(workers)
        .coordinators(coordinators)
        .start_spread(start_spread(workers))
        .shared_connections(shared_connections);
    let fleet = Fleet::start(config).await?;
    if let Err(e) = fleet
        .converged(
            Duration::from_secs(60) + start_spread(workers) + Duration::from_millis(workers as u64),
        )
        .await
    {
        let report = fleet.report();
        let first: Vec<String> = report
            .failures
            .iter()
            .take(5)
            .map(|f| format!("{f:?}"))
            .collect();
        let views: Vec<String> = report
            .coordinators
            .iter()
            .map(|c| format!("{c:?}").chars().take(300).collect())
            .collect();
        anyhow::bail!(
            "the fleet of {workers} did not converge: {}\nrequests: {:?}\nfirst failures: {first:#?}\ncoordinators: {views:#?}",
            e.to_string().chars().take(300).collect::<String>(),
            report.requests
        );
    }
    Ok(Setup {
        cluster,
        nginx,
        fleet,
        probes,
    })
}

/// Workers join over one announce period, or slower for large fleets (at most 500 new
/// nodes a second): a whole fleet does not start in the same 8 seconds, and the steady
/// state, not the stampede, is what is measured.
fn start_spread(workers: usize) -> Duration {
    ANNOUNCE_PERIOD.max(Duration::from_millis(workers as u64 * 2))
}

/// One measured window.
struct Window {
    workers: usize,
    announce_rate: f64,
    expected_rate: f64,
    lookups: u64,
    failed: u64,
    missing: u64,
    visibility: Vec<Duration>,
    lost_probes: usize,
    node_cpu: Vec<f64>,
    node_rss_mib: Vec<f64>,
    simulator_cpu: f64,
    machine_cpu: f64,
}

impl Window {
    fn sustained(&self) -> bool {
        self.failed == 0
            && self.missing == 0
            && self.lost_probes == 0
            && percentile(&self.visibility, 99.0)
                .is_some_and(|p99| p99 < Duration::from_millis(100))
            && self.announce_rate >= 0.95 * self.expected_rate
    }
}

fn cores(cpu: Duration, over: Duration) -> f64 {
    cpu.as_secs_f64() / over.as_secs_f64().max(f64::EPSILON)
}

fn machine_cores(before: MachineTicks, after: MachineTicks, over: Duration) -> f64 {
    let (ticks, _) = clock_ticks_per_second();
    let used =
        (after.processes + after.interrupts).saturating_sub(before.processes + before.interrupts);
    used as f64 / ticks.max(1) as f64 / over.as_secs_f64().max(f64::EPSILON)
}

async fn measure(setup: &Setup, workers: usize, duration: Duration) -> anyhow::Result<Window> {
    let client = Client::builder().no_proxy().build()?;
    let nodes: Vec<String> = (0..3).map(|i| setup.cluster.base_url(i)).collect();
    let (ticks, _) = clock_ticks_per_second();
    let me = Probe::new(std::process::id(), ticks);
    for probe in &setup.probes {
        probe.reset_peak();
    }
    let before_nodes: Vec<Option<Sample>> = setup.probes.iter().map(Probe::sample).collect();
    let before_me = me.sample();
    let before_machine = machine_ticks();
    let before = setup.fleet.report().requests;
    let started = Instant::now();

    let mut visibility = Vec::new();
    let mut lost_probes = 0;
    let mut pacing = tokio::time::interval(Duration::from_millis(500));
    let mut probe = 0u64;
    while started.elapsed() < duration {
        pacing.tick().await;
        let id = uuid::Uuid::new_v4().to_string();
        let body = json!({"environment": "testing", "pool": "general",
            "services": [{"id": id, "type": "probe", "properties": {"n": probe}}]});
        probe += 1;
        put(&client, &nodes[0], "probe", &body).await?;
        let accepted = Instant::now();
        let (a, b) = tokio::join!(
            seen_after(&client, &nodes[1], &id, accepted),
            seen_after(&client, &nodes[2], &id, accepted)
        );
        match (a, b) {
            (Some(a), Some(b)) => visibility.push(a.max(b)),
            _ => lost_probes += 1,
        }
    }
    let elapsed = started.elapsed();
    let report = setup.fleet.report();
    let after = report.requests;
    let after_nodes: Vec<Option<Sample>> = setup.probes.iter().map(Probe::sample).collect();
    let (node_cpu, node_rss_mib) = before_nodes
        .iter()
        .zip(&after_nodes)
        .map(|(b, a)| match (b, a) {
            (Some(b), Some(a)) => (
                cores(a.cpu.saturating_sub(b.cpu), elapsed),
                a.peak_rss_kib as f64 / 1024.0,
            ),
            _ => (f64::NAN, f64::NAN),
        })
        .unzip();
    let simulator_cpu = match (before_me, me.sample()) {
        (Some(b), Some(a)) => cores(a.cpu.saturating_sub(b.cpu), elapsed),
        _ => f64::NAN,
    };
    let machine_cpu = match (before_machine, machine_ticks()) {
        (Some(b), Some(a)) => machine_cores(b, a, elapsed),
        _ => f64::NAN,
    };
    let announced =
        (after.announce.ok + after.announce.failed) - (before.announce.ok + before.announce.failed);
    let lookups = (after.lookup.changed + after.lookup.not_modified + after.lookup.failed)
        - (before.lookup.changed + before.lookup.not_modified + before.lookup.failed);
    Ok(Window {
        workers,
        announce_rate: announced as f64 / elapsed.as_secs_f64(),
        expected_rate: (workers + setup.fleet.config().coordinators) as f64
            / ANNOUNCE_PERIOD.as_secs_f64(),
        lookups,
        failed: after.failed() - before.failed(),
        missing: report.missing_total,
        visibility,
        lost_probes,
        node_cpu,
        node_rss_mib,
        simulator_cpu,
        machine_cpu,
    })
}

fn list(values: &[f64], digits: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.digits$}"))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn directory_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_size(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Whether a fleet of `workers`, one connection each, would not fit under the open-file
/// limit (with room for everything else): such a fleet shares connections.
fn per_node_connections_exceed(workers: usize, open_files: u64) -> bool {
    workers as u64 + 2_000 > open_files
}

/// Every simulated node holds its own connection, as real nodes do: allow a million open
/// files (root may raise the hard limit), or at least the hard limit.
fn raise_open_files_limit() -> u64 {
    const WANTED: u64 = 1 << 20;
    if rlimit::setrlimit(rlimit::Resource::NOFILE, WANTED, WANTED).is_ok() {
        return WANTED;
    }
    rlimit::increase_nofile_limit(WANTED).unwrap_or(0)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let binary = crate::discoveryd_path(args.discoveryd.clone())?;
    let open_files = raise_open_files_limit();
    println!("### A 3-node cluster behind nginx under a simulated Trino fleet\n");
    println!(
        "Workers announce every {} s through nginx, each over its own connection (open-file limit {open_files}); {} coordinators look up every 10 s; {} s measured per size after convergence.\n",
        ANNOUNCE_PERIOD.as_secs(),
        args.coordinators,
        args.duration
    );
    println!("| Workers | Announce/s (scheduled) | Lookups | Failed requests | Node missing | Visibility p50 / p99 / max | CPU per node (cores) | Peak RSS per node (MiB) | Simulator CPU | Machine CPU | Sustained |");
    println!("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for &workers in &args.sizes {
        let shared = per_node_connections_exceed(workers, open_files);
        let setup = start(&binary, workers, args.coordinators, shared).await?;
        let window = measure(&setup, workers, Duration::from_secs(args.duration)).await?;
        println!(
            "| {}{} | {:.0} ({:.0}) | {} | {} | {} | {} / {} / {} | {} | {} | {:.2} | {:.2} of 2 | {} |",
            window.workers,
            if shared { " (shared connections)" } else { "" },
            window.announce_rate,
            window.expected_rate,
            window.lookups,
            window.failed,
            window.missing,
            ms(percentile(&window.visibility, 50.0)),
            ms(percentile(&window.visibility, 99.0)),
            ms(percentile(&window.visibility, 100.0)),
            list(&window.node_cpu, 2),
            list(&window.node_rss_mib, 0),
            window.simulator_cpu,
            window.machine_cpu,
            if window.sustained() { "yes" } else { "**no**" },
        );
        let sustained = window.sustained();
        let _ = setup.fleet.shutdown().await;
        drop(setup.nginx);
        drop(setup.cluster);
        if !sustained {
            break;
        }
    }

    if args.memory_at > 0 {
        memory(&binary, args.memory_at).await?;
    }
    if args.soak_workers > 0 {
        soak(&binary, &args).await?;
    }
    Ok(())
}

/// Memory and disk of three nodes holding `entries` announcements, replicated.
async fn memory(binary: &Path, entries: usize) -> anyhow::Result<()> {
    let settings = [
        ("log.level", "warn,discoveryd=info"),
        ("discovery.max-age", "30m"),
    ];
    let cluster = Cluster::start(binary, 3, &settings).await;
    let client = Client::builder().no_proxy().build()?;
    let (ticks, _) = clock_ticks_per_second();
    let probes: Vec<Probe> = (0..3)
        .map(|i| Probe::new(cluster.node(i).pid(), ticks))
        .collect();
    let idle: Vec<Sample> = probes.iter().filter_map(Probe::sample).collect();
    let ids: Vec<String> = (0..entries)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let started = Instant::now();
    crate::replication::announce_all(&client, &cluster.base_url(0), &ids, 64).await?;
    cluster.wait_converged().await;
    let elapsed = started.elapsed();
    let loaded: Vec<Sample> = probes.iter().filter_map(Probe::sample).collect();
    let disk: Vec<f64> = (0..3)
        .map(|i| directory_size(cluster.node(i).data_dir()) as f64 / (1024.0 * 1024.0))
        .collect();
    let mib = |samples: &[Sample]| {
        samples
            .iter()
            .map(|s| s.rss_kib as f64 / 1024.0)
            .collect::<Vec<_>>()
    };
    println!("\n### Memory and disk with {entries} announcements per node\n");
    println!("| | Per node |");
    println!("|---|---|");
    println!(
        "| RSS with an empty store (MiB) | {} |",
        list(&mib(&idle), 0)
    );
    println!(
        "| RSS holding {entries} announcements (MiB) | {} |",
        list(&mib(&loaded), 0)
    );
    println!("| data directory (MiB) | {} |", list(&disk, 1));
    println!(
        "| time to announce them all on node 1 (64 connections) and replicate | {:.1} s ({:.0} announcements/s) |",
        elapsed.as_secs_f64(),
        entries as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Runs one fleet for `--soak-minutes`, sampling data directory sizes and RSS.
async fn soak(binary: &Path, args: &Args) -> anyhow::Result<()> {
    let shared = per_node_connections_exceed(args.soak_workers, raise_open_files_limit());
    let setup = start(binary, args.soak_workers, args.coordinators, shared).await?;
    println!(
        "\n### Soak: {} workers for {} minutes, data directory size per node\n",
        args.soak_workers, args.soak_minutes
    );
    println!("| Minute | Data dir per node (MiB) | RSS per node (MiB) | Failed requests | Node missing |");
    println!("|--:|--:|--:|--:|--:|");
    let started = Instant::now();
    let mut pacing = tokio::time::interval(Duration::from_secs(60));
    let mut minute = 0;
    loop {
        pacing.tick().await;
        let sizes: Vec<f64> = (0..3)
            .map(|i| directory_size(setup.cluster.node(i).data_dir()) as f64 / (1024.0 * 1024.0))
            .collect();
        let rss: Vec<f64> = setup
            .probes
            .iter()
            .map(|p| p.sample().map_or(f64::NAN, |s| s.rss_kib as f64 / 1024.0))
            .collect();
        let report = setup.fleet.report();
        println!(
            "| {minute} | {} | {} | {} | {} |",
            list(&sizes, 1),
            list(&rss, 0),
            report.failed_requests(),
            report.missing_total
        );
        if started.elapsed() >= Duration::from_secs(args.soak_minutes * 60) {
            break;
        }
        minute += 1;
    }
    let _ = setup.fleet.shutdown().await;
    Ok(())
}

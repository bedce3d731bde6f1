//! Replication between real `discoveryd` processes on loopback (the testkit's cluster
//! harness: distinct 127.x addresses, an inventory file).
//!
//! 1. A steady announce load: `--nodes` simulated workers announce to node 1, each every
//!    `--announce-period`, as Trino workers do.
//! 2. Under that load, `--probes` times: a new announcement on node 1, and the time from
//!    its 202 until both other nodes list it (each polled continuously).
//! 3. Push traffic per full announcement and per renewal, from node 1's replication
//!    counters (request bodies towards its peers).
//! 4. A fourth node with an empty data directory joins a cluster holding
//!    `--bootstrap-entries` announcements: time until its digests equal node 1's.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use discovery_testkit::Cluster;
use reqwest::Client;
use serde_json::{json, Value};

use crate::stats::{ms, percentile};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The discoveryd binary (default: target/release/discoveryd beside this binary).
    #[arg(long)]
    discoveryd: Option<PathBuf>,
    /// Simulated workers announcing to node 1.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Each worker's announce period, in seconds (Trino: 8).
    #[arg(long, default_value_t = 8.0)]
    announce_period: f64,
    /// Propagation probes.
    #[arg(long, default_value_t = 200)]
    probes: usize,
    /// Pause between propagation probes, in milliseconds.
    #[arg(long, default_value_t = 50)]
    probe_interval_ms: u64,
    /// Announcements held by the cluster when an empty node joins.
    #[arg(long, default_value_t = 10_000)]
    bootstrap_entries: usize,
}

pub(crate) fn worker_body(worker: usize, id: &str) -> Value {
    crate::shapes::worker_body(worker, id, "general")
}

pub(crate) async fn put(
    client: &Client,
    base: &str,
    node: &str,
    body: &Value,
) -> anyhow::Result<()> {
    let response = client
        .put(format!("{base}/v1/announcement/{node}"))
        .json(body)
        .send()
        .await?;
    if response.status().as_u16() != 202 {
        bail!("PUT {node}: {}", response.status());
    }
    Ok(())
}

/// Node 1's push counters summed over its peers: (body bytes sent, entries, renewals).
async fn push_counters(cluster: &Cluster) -> anyhow::Result<(u64, u64, u64)> {
    let status = cluster.status(0).await?;
    let mut totals = (0, 0, 0);
    for peer in status["peers"].as_array().context("no peers")? {
        for store in peer["stores"].as_array().context("no stores")? {
            totals.0 += store["bytesSent"].as_u64().unwrap_or(0);
            totals.1 += store["pushedEntries"].as_u64().unwrap_or(0);
            totals.2 += store["pushedRenewals"].as_u64().unwrap_or(0);
        }
    }
    Ok(totals)
}

/// Announces every worker once, `concurrency` at a time.
pub(crate) async fn announce_all(
    client: &Client,
    base: &str,
    ids: &[String],
    concurrency: usize,
) -> anyhow::Result<()> {
    for chunk in ids.chunks(concurrency).enumerate() {
        let (offset, chunk) = (chunk.0 * concurrency, chunk.1);
        let mut tasks = tokio::task::JoinSet::new();
        for (i, id) in chunk.iter().enumerate() {
            let (client, base, body) =
                (client.clone(), base.to_owned(), worker_body(offset + i, id));
            tasks.spawn(async move {
                put(&client, &base, &format!("worker-{}", offset + i), &body).await
            });
        }
        while let Some(result) = tasks.join_next().await {
            result??;
        }
    }
    Ok(())
}

/// Re-announces every worker in turn at the fleet's steady rate until `stop`.
fn spawn_steady_load(
    client: Client,
    base: String,
    ids: Arc<Vec<String>>,
    period: Duration,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = period.div_f64(ids.len().max(1) as f64);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut worker = 0;
        while !stop.load(Ordering::Relaxed) {
            ticker.tick().await;
            let (client, base, body) = (
                client.clone(),
                base.clone(),
                worker_body(worker, &ids[worker]),
            );
            let node = format!("worker-{worker}");
            let sent = Arc::clone(&sent);
            tokio::spawn(async move {
                if put(&client, &base, &node, &body).await.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            });
            worker = (worker + 1) % ids.len();
        }
    })
}

/// Polls `base`'s probe lookup until it lists `id`; the time it took, or `None` after 10 s.
pub(crate) async fn seen_after(
    client: &Client,
    base: &str,
    id: &str,
    since: Instant,
) -> Option<Duration> {
    let url = format!("{base}/v1/service/probe/general");
    while since.elapsed() < Duration::from_secs(10) {
        if let Ok(response) = client.get(&url).send().await {
            if let Ok(text) = response.text().await {
                if text.contains(id) {
                    return Some(since.elapsed());
                }
            }
        }
    }
    None
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let binary = crate::discoveryd_path(args.discoveryd)?;
    let settings = [
        ("discovery.max-age", "10m"),
        ("log.level", "warn,discoveryd=info"),
        // Measure pushes on their own: anti-entropy would also deliver, once a minute.
        ("dynamic.store.remote.replication-interval", "1m"),
        ("static.store.remote.replication-interval", "1m"),
    ];
    let mut cluster = Cluster::start(&binary, 3, &settings).await;
    let client = Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()?;
    let base: Vec<String> = (0..3).map(|i| cluster.base_url(i)).collect();

    // Full announcements first: every worker's value is new to the peers.
    let ids: Arc<Vec<String>> = Arc::new(
        (0..args.nodes)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect(),
    );
    let before = push_counters(&cluster).await?;
    announce_all(&client, &base[0], &ids, 32).await?;
    cluster.wait_converged().await;
    let after_full = push_counters(&cluster).await?;

    // Steady state: the same announcements again, at the fleet's rate.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs_f64(args.announce_period);
    let load = spawn_steady_load(
        client.clone(),
        base[0].clone(),
        Arc::clone(&ids),
        period,
        Arc::clone(&stop),
        Arc::clone(&sent),
    );
    let load_started = Instant::now();

    // One announce period of renewals only: every worker re-announces an unchanged value.
    tokio::time::sleep(period).await;
    cluster.wait_converged().await;
    let after_renewals = push_counters(&cluster).await?;

    let mut to_both = Vec::new();
    let mut per_node = Vec::new();
    let mut lost = 0;
    let mut pacing = tokio::time::interval(Duration::from_millis(args.probe_interval_ms.max(1)));
    for probe in 0..args.probes {
        pacing.tick().await;
        let id = uuid::Uuid::new_v4().to_string();
        let body = json!({"environment": "testing", "pool": "general",
            "services": [{"id": id, "type": "probe", "properties": {"n": probe}}]});
        put(&client, &base[0], "probe", &body).await?;
        let accepted = Instant::now();
        let (a, b) = tokio::join!(
            seen_after(&client, &base[1], &id, accepted),
            seen_after(&client, &base[2], &id, accepted)
        );
        match (a, b) {
            (Some(a), Some(b)) => {
                per_node.extend([a, b]);
                to_both.push(a.max(b));
            }
            _ => lost += 1,
        }
    }
    let load_elapsed = load_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = load.await;
    cluster.wait_converged().await;
    let after_steady = push_counters(&cluster).await?;

    let full_bytes = (after_full.0 - before.0) as f64 / (after_full.1 - before.1).max(1) as f64;
    // The renewal window carried renewals only (a stray full push would show in entries).
    let renewal_window_entries = after_renewals.1 - after_full.1;
    let renewal_bytes =
        (after_renewals.0 - after_full.0) as f64 / (after_renewals.2 - after_full.2).max(1) as f64;
    let renewals = after_steady.2 - after_full.2;
    let rate = sent.load(Ordering::Relaxed) as f64 / load_elapsed.as_secs_f64();

    // An empty node joins a cluster holding `bootstrap_entries` announcements.
    let extra = args.bootstrap_entries.saturating_sub(args.nodes);
    let more: Vec<String> = (0..extra)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    for chunk in more.chunks(64).enumerate() {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, id) in chunk.1.iter().enumerate() {
            let worker = args.nodes + chunk.0 * 64 + i;
            let (client, base, body) = (client.clone(), base[0].clone(), worker_body(worker, id));
            tasks.spawn(
                async move { put(&client, &base, &format!("worker-{worker}"), &body).await },
            );
        }
        while let Some(result) = tasks.join_next().await {
            result??;
        }
    }
    let expected = cluster.wait_converged().await;
    let joined = Instant::now();
    let index = cluster.add_node().await;
    let converged = loop {
        let status = cluster.status(index).await?;
        if Cluster::digest_roots(&status) == expected {
            break joined.elapsed();
        }
        if joined.elapsed() > Duration::from_secs(120) {
            bail!("the new node did not converge within 120 s");
        }
    };
    let entries = cluster.status(index).await?["stores"][0]["entries"]
        .as_u64()
        .unwrap_or(0);

    println!("### Replication between 3 discoveryd processes on loopback\n");
    println!("| Measurement | Result |");
    println!("|---|---|");
    println!(
        "| steady load during the probes | {} workers announcing every {} s to node 1: {rate:.0} PUT/s ({renewals} renewals pushed to 2 peers) |",
        args.nodes, args.announce_period
    );
    println!(
        "| 202 on node 1 → listed on both other nodes, p50 | {} |",
        ms(percentile(&to_both, 50.0))
    );
    println!("| same, p99 | {} |", ms(percentile(&to_both, 99.0)));
    println!("| same, max | {} |", ms(percentile(&to_both, 100.0)));
    println!(
        "| per node, p50 / p99 | {} / {} |",
        ms(percentile(&per_node, 50.0)),
        ms(percentile(&per_node, 99.0))
    );
    println!(
        "| probes not seen within 10 s | {lost} of {} |",
        args.probes
    );
    println!("| push body bytes per full announcement, per peer | {full_bytes:.0} |");
    println!(
        "| push body bytes per renewal, per peer | {renewal_bytes:.0} ({} renewals, {renewal_window_entries} full entries in the window) |",
        after_renewals.2 - after_full.2
    );
    println!(
        "| empty node joins a cluster of {} announcements: digests equal after | {:.2} s ({entries} entries) |",
        args.nodes.max(args.bootstrap_entries),
        converged.as_secs_f64()
    );
    Ok(())
}

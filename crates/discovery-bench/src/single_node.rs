//! `single-node`: one fresh `discoveryd` under announce and lookup load, next to two
//! baselines measured in the same run with the same load generator and request shapes:
//!
//! * bare hyper (`hyper-baseline`, its own process): the ceiling of HTTP on this machine;
//! * etcd 3.4 (Debian's `etcd-server`) through its v3 HTTP/JSON gateway: announce = put
//!   with a lease, lookup of N = a range over N keys.
//!
//! Each server runs alone during its measurements (the others are not started yet, or
//! already stopped), on loopback, with every process — the load generator included —
//! sharing this machine's cores.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use discovery_testkit::{DiscoveryProcess, ProcessOptions};

use crate::etcd::EtcdProcess;
use crate::hist::fmt_latency;
use crate::hyper_baseline::{body_etag, body_path, BaselineProcess};
use crate::load::{self, Mode, RunConfig, RunResult, Target, Workload};
use crate::procfs::{self, fmt_mib, Probe};
use crate::shapes::{self, Worker};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The discoveryd binary (default: target/release/discoveryd beside this binary).
    #[arg(long)]
    discoveryd: Option<PathBuf>,
    /// The etcd binary (default: `etcd` on the PATH).
    #[arg(long)]
    etcd: Option<PathBuf>,
    /// Skip the etcd baseline.
    #[arg(long)]
    no_etcd: bool,
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before each measurement, not counted.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Smoke test: 2 s measurements after 0.5 s of warm-up (overrides the two above).
    #[arg(long)]
    quick: bool,
    /// Connections of the load generator.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Simulated workers announcing (each with its own node id), rotated over.
    #[arg(long, default_value_t = 10_000)]
    nodes: usize,
    /// Each worker's announce period, in seconds: the open loop sends nodes / period PUT/s
    /// (Trino: 8 s, so 10,000 workers make 1,250 PUT/s).
    #[arg(long, default_value_t = 8.0)]
    announce_period: f64,
    /// Repeat a measurement disturbed by other processes (more than 0.15 cores) up to this
    /// many times, keeping the least disturbed attempt.
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// Repeats of disturbed measurements in the whole run, at most.
    #[arg(long, default_value_t = 8)]
    retry_budget: u32,
    /// Sizes of the service lists looked up.
    #[arg(long, value_delimiter = ',', default_value = "10,1000,10000")]
    lists: Vec<usize>,
}

/// One measured line of the report.
struct Row {
    scenario: String,
    server: &'static str,
    load: String,
    result: RunResult,
}

/// Rows, the results that ratios refer to, and the peak RSS of each server.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    keyed: HashMap<String, RunResult>,
    peak_rss_kib: HashMap<&'static str, u64>,
}

impl Report {
    fn add(&mut self, key: Option<String>, row: Row) {
        if let Some(usage) = &row.result.server {
            let peak = self.peak_rss_kib.entry(row.server).or_default();
            *peak = (*peak).max(usage.peak_rss_kib);
        }
        if let Some(key) = key {
            self.keyed.insert(key, row.result.clone());
        }
        self.rows.push(row);
    }

    fn rate(&self, key: &str) -> Option<f64> {
        self.keyed
            .get(key)
            .filter(|r| r.ok > 0)
            .map(|r| r.ok as f64 / r.elapsed.as_secs_f64().max(1e-9))
    }
}

/// A server under test: where it listens and how to read its CPU and memory.
struct Subject {
    name: &'static str,
    target: Target,
    probe: Probe,
}

/// Other processes using more than this many cores during a measurement make it suspect:
/// it is repeated (within the retry limits) and the least disturbed attempt is kept.
const INTERFERENCE_CORES: f64 = 0.15;

struct Bench {
    /// Repeats of one disturbed measurement, and of all of them together.
    retries_per_measurement: u32,
    retry_budget: u32,
    retries_made: u32,
    connections: usize,
    warmup: Duration,
    duration: Duration,
    rate: f64,
    report: Report,
}

impl Bench {
    fn closed(&self) -> RunConfig {
        RunConfig::new(
            Mode::Closed {
                connections: self.connections,
            },
            self.warmup,
            self.duration,
        )
    }

    fn open(&self) -> RunConfig {
        RunConfig::new(
            Mode::Open {
                connections: self.connections,
                rate: self.rate,
            },
            self.warmup,
            self.duration,
        )
    }

    /// Runs one measurement and adds it to the report.
    async fn measure(
        &mut self,
        subject: &Subject,
        key: Option<String>,
        scenario: String,
        workload: &Arc<Workload>,
        config: RunConfig,
        load: Option<String>,
    ) -> anyhow::Result<RunResult> {
        // A run that sends each request once changes the server (creates): not repeatable.
        let repeatable = load.is_none();
        let mut best: Option<RunResult> = None;
        let mut attempt = 0;
        loop {
            eprintln!(
                "  {}: {scenario} ({})",
                subject.name,
                config.mode.describe()
            );
            let result = load::run(
                &subject.target,
                Arc::clone(workload),
                config,
                Some(subject.probe),
            )
            .await?;
            let other = result.other_cores();
            eprintln!(
                "    {:.0} req/s, p50 {}, p99 {}, errors {}, other processes {other:.2} cores",
                result.rate(),
                fmt_latency(result.latencies.summary().p50),
                fmt_latency(result.latencies.summary().p99),
                result.errors_text()
            );
            if best.as_ref().is_none_or(|b| other < b.other_cores()) {
                best = Some(result);
            }
            if !repeatable
                || other <= INTERFERENCE_CORES
                || attempt >= self.retries_per_measurement
                || self.retry_budget == 0
            {
                break;
            }
            attempt += 1;
            self.retry_budget -= 1;
            self.retries_made += 1;
            eprintln!("    other processes used {other:.2} cores during it: measuring again");
        }
        let result = best.context("no measurement")?;
        let load = load.unwrap_or_else(|| config.mode.describe());
        self.report.add(
            key,
            Row {
                scenario,
                server: subject.name,
                load,
                result: result.clone(),
            },
        );
        Ok(result)
    }

    /// Sends each request of `workload` once (to populate a server); in the report only
    /// when `report` (short runs give noisy CPU figures).
    async fn each_once(
        &mut self,
        subject: &Subject,
        scenario: String,
        workload: &Arc<Workload>,
        report: bool,
    ) -> anyhow::Result<()> {
        let config = RunConfig::each_once(
            self.connections,
            workload.requests.len(),
            Duration::from_secs(300),
        );
        let result = self
            .measure(
                subject,
                None,
                scenario.clone(),
                workload,
                config,
                Some(format!("each request once, {} conn", self.connections)),
            )
            .await?;
        if !report {
            self.report.rows.pop();
        }
        if result.ok != workload.requests.len() as u64 {
            bail!(
                "{}: {scenario}: {} of {} requests succeeded ({})",
                subject.name,
                result.ok,
                workload.requests.len(),
                result.errors_text()
            );
        }
        Ok(())
    }
}

fn list_scenario(size: usize, body_bytes: usize) -> String {
    format!(
        "lookup of {} services ({})",
        thousands(size as f64),
        fmt_bytes(body_bytes)
    )
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (duration, warmup) = if args.quick {
        (2.0, 0.5)
    } else {
        (args.duration, args.warmup)
    };
    anyhow::ensure!(
        duration > 0.0 && warmup >= 0.0,
        "--duration must be > 0 and --warmup >= 0"
    );
    anyhow::ensure!(
        args.nodes > 0 && args.announce_period > 0.0,
        "--nodes and --announce-period must be positive"
    );
    let mut lists = args.lists.clone();
    lists.retain(|&n| n > 0);
    lists.sort_unstable();
    lists.dedup();
    let (ticks, ticks_measured) = procfs::clock_ticks_per_second();
    let mut bench = Bench {
        retries_per_measurement: args.retries,
        retry_budget: args.retry_budget,
        retries_made: 0,
        connections: args.connections.max(1),
        warmup: Duration::from_secs_f64(warmup),
        duration: Duration::from_secs_f64(duration),
        rate: args.nodes as f64 / args.announce_period,
        report: Report::default(),
    };
    let etcd_binary = if args.no_etcd {
        None
    } else {
        Some(crate::etcd::find_etcd(args.etcd.clone()).context(
            "no etcd found: install Debian's etcd-server (bench/run.sh does), pass --etcd, or --no-etcd",
        )?)
    };
    // What else this machine is doing: other processes share the cores being measured.
    let background = {
        let before = procfs::machine_ticks();
        let window = Duration::from_secs(2);
        tokio::time::sleep(window).await;
        match (before, procfs::machine_ticks()) {
            (Some(b), Some(a)) => Some(
                procfs::MachineUsage::between(b, a, ticks)
                    .busy()
                    .as_secs_f64()
                    / window.as_secs_f64(),
            ),
            _ => None,
        }
    };
    let fleet = shapes::workers("general", args.nodes);
    let list_fleets: Vec<(usize, Vec<Worker>)> = lists
        .iter()
        .map(|&n| (n, shapes::workers(&format!("list{n}"), n)))
        .collect();
    let announce = Arc::new(shapes::announce(&fleet)?);

    // 1. discoveryd.
    eprintln!("discoveryd");
    let binary = crate::discoveryd_path(args.discoveryd.clone())?;
    let data_dir = tempfile::Builder::new()
        .prefix("bench-discoveryd-")
        .tempdir()?;
    let server = DiscoveryProcess::start(
        ProcessOptions::new(&binary, data_dir.path())
            .set("log.level", "warn,discoveryd=info")
            // Nothing expires while the benchmark runs.
            .set("discovery.max-age", "1h"),
    )?;
    let discoveryd = Subject {
        name: "discoveryd",
        target: Target::new(server.addr())?,
        probe: Probe::new(server.pid(), ticks),
    };
    bench
        .each_once(
            &discoveryd,
            format!(
                "announce, first pass: {} new nodes",
                thousands(args.nodes as f64)
            ),
            &announce,
            true,
        )
        .await?;
    for (size, workers) in &list_fleets {
        let populate = Arc::new(shapes::announce(workers)?);
        bench
            .each_once(
                &discoveryd,
                format!("populate list{size}: {} new nodes", thousands(*size as f64)),
                &populate,
                false,
            )
            .await?;
    }
    let renewal = format!(
        "announce (renewal, rotating over {} nodes)",
        thousands(args.nodes as f64)
    );
    bench
        .measure(
            &discoveryd,
            Some("discoveryd/announce".into()),
            renewal.clone(),
            &announce,
            bench.closed(),
            None,
        )
        .await?;
    bench
        .measure(
            &discoveryd,
            Some("discoveryd/announce-open".into()),
            renewal.clone(),
            &announce,
            bench.open(),
            None,
        )
        .await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mut body_sizes = Vec::new();
    let mut biggest_etag = None;
    for &size in &lists {
        let path = format!("/v1/service/trino/list{size}");
        let response = http.get(server.url(&path)).send().await?;
        anyhow::ensure!(
            response.status().as_u16() == 200,
            "GET {path}: {}",
            response.status()
        );
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .context("a lookup without an ETag")?;
        let body = response.bytes().await?;
        let listed = serde_json::from_slice::<serde_json::Value>(&body)?["services"]
            .as_array()
            .map_or(0, Vec::len);
        anyhow::ensure!(
            listed == size,
            "GET {path} lists {listed} services, not {size}"
        );
        body_sizes.push(body.len());
        biggest_etag = Some((path.clone(), etag, size, body.len()));
        bench
            .measure(
                &discoveryd,
                Some(format!("discoveryd/lookup/{size}")),
                list_scenario(size, body.len()),
                &Arc::new(shapes::lookup(&path)?),
                bench.closed(),
                None,
            )
            .await?;
    }
    if let Some((path, etag, size, _)) = &biggest_etag {
        bench
            .measure(
                &discoveryd,
                Some("discoveryd/304".into()),
                format!(
                    "lookup of {} services, If-None-Match → 304",
                    thousands(*size as f64)
                ),
                &Arc::new(shapes::conditional_lookup(path, etag)?),
                bench.closed(),
                None,
            )
            .await?;
    }
    let discoveryd_logs = server.logs();
    drop(server);

    // 2. Bare hyper, with GET bodies of the sizes discoveryd answered.
    eprintln!("hyper-baseline");
    let baseline = BaselineProcess::start(&body_sizes)?;
    let hyper = Subject {
        name: "bare hyper",
        target: Target::new(baseline.addr())?,
        probe: Probe::new(baseline.pid(), ticks),
    };
    bench
        .measure(
            &hyper,
            Some("hyper/put".into()),
            "PUT, same bodies → 202".into(),
            &announce,
            bench.closed(),
            None,
        )
        .await?;
    bench
        .measure(
            &hyper,
            Some("hyper/put-open".into()),
            "PUT, same bodies → 202".into(),
            &announce,
            bench.open(),
            None,
        )
        .await?;
    for (&size, &bytes) in lists.iter().zip(&body_sizes) {
        bench
            .measure(
                &hyper,
                Some(format!("hyper/get/{size}")),
                format!("GET of a fixed {} body", fmt_bytes(bytes)),
                &Arc::new(shapes::lookup(&body_path(bytes))?),
                bench.closed(),
                None,
            )
            .await?;
    }
    if let Some(&bytes) = body_sizes.last() {
        bench
            .measure(
                &hyper,
                Some("hyper/304".into()),
                format!("GET of the {} body, If-None-Match → 304", fmt_bytes(bytes)),
                &Arc::new(shapes::conditional_lookup(
                    &body_path(bytes),
                    &body_etag(bytes),
                )?),
                bench.closed(),
                None,
            )
            .await?;
    }
    drop(baseline);

    // 3. etcd through its JSON gateway.
    let mut etcd_version = None;
    let mut lease_ttl = 0;
    if let Some(etcd_binary) = etcd_binary {
        eprintln!("etcd");
        let etcd = EtcdProcess::start(&etcd_binary).await?;
        etcd_version = Some(etcd.version().to_owned());
        let subject = Subject {
            name: "etcd",
            target: Target::new(etcd.addr())?,
            probe: Probe::new(etcd.pid(), ticks),
        };
        let etcd_rows_from = bench.report.rows.len();
        for (size, workers) in &list_fleets {
            let prefix = format!("/discovery/list{size}/");
            let populate = Arc::new(shapes::etcd_puts(workers, &prefix, None)?);
            bench
                .each_once(
                    &subject,
                    format!("populate {prefix}: {} puts", thousands(*size as f64)),
                    &populate,
                    false,
                )
                .await?;
            let result = bench
                .measure(
                    &subject,
                    Some(format!("etcd/range/{size}")),
                    format!("range over {} keys", thousands(*size as f64)),
                    &Arc::new(shapes::etcd_range(&prefix)?),
                    bench.closed(),
                    None,
                )
                .await?;
            let mean_body = result.body_bytes.checked_div(result.ok);
            if let (Some(row), Some(bytes)) = (bench.report.rows.last_mut(), mean_body) {
                row.scenario = format!(
                    "range over {} keys ({})",
                    thousands(*size as f64),
                    fmt_bytes(bytes as usize)
                );
            }
        }
        // One lease per key, granted beforehand, alive through both put measurements and
        // their repeats. The puts come last: when the leases expire, etcd's revoking them
        // (10,000 deletes) must not land in another measurement.
        let put_runs = 2.0 * (1.0 + f64::from(args.retries)) * (warmup + duration);
        lease_ttl = 30u64.max((put_runs + 15.0).ceil() as u64);
        let leases: Vec<i64> = (0..args.nodes as i64).map(|i| 0x1000_0000 + i).collect();
        let grants = Arc::new(shapes::etcd_lease_grants(&leases, lease_ttl)?);
        let grant_result = bench
            .each_once(
                &subject,
                format!(
                    "lease grant (TTL {lease_ttl} s) × {}",
                    thousands(args.nodes as f64)
                ),
                &grants,
                true,
            )
            .await;
        if let Err(e) = grant_result {
            bail!("{e:#}\netcd log:\n{}", etcd.log_tail());
        }
        let puts = Arc::new(shapes::etcd_puts(
            &fleet,
            "/discovery/general/",
            Some(&leases),
        )?);
        let scenario = format!(
            "put with lease (rotating over {} keys)",
            thousands(args.nodes as f64)
        );
        bench
            .measure(
                &subject,
                Some("etcd/put".into()),
                scenario.clone(),
                &puts,
                bench.closed(),
                None,
            )
            .await?;
        bench
            .measure(
                &subject,
                Some("etcd/put-open".into()),
                scenario,
                &puts,
                bench.open(),
                None,
            )
            .await?;
        // Announce rows first in the table, as for the other servers.
        let (first, rest): (Vec<Row>, Vec<Row>) = bench
            .report
            .rows
            .drain(etcd_rows_from..)
            .partition(|row| !row.scenario.starts_with("range"));
        bench.report.rows.extend(first.into_iter().chain(rest));
    }

    print_report(
        &bench,
        &args,
        &lists,
        ReportContext {
            duration,
            warmup,
            ticks,
            ticks_measured,
            etcd_version,
            lease_ttl,
            background,
        },
    );
    if discoveryd_logs.contains(" ERROR ") {
        eprintln!("discoveryd logged errors:\n{discoveryd_logs}");
    }
    Ok(())
}

struct ReportContext {
    duration: f64,
    warmup: f64,
    ticks: u64,
    ticks_measured: bool,
    etcd_version: Option<String>,
    lease_ttl: u64,
    /// Cores busy during 2 s before the benchmark started anything.
    background: Option<f64>,
}

fn print_report(bench: &Bench, args: &Args, lists: &[usize], ctx: ReportContext) {
    let report = &bench.report;
    println!("### Single node: discoveryd, bare hyper, etcd\n");
    println!(
        "Each measurement: {} s after {} s of warm-up; {} connections (closed loop) or {:.0} \
         requests/s dealt to {} connections (open loop, latency from the scheduled send time). \
         {} simulated workers announce, each with its own node id and a Trino worker's \
         announcement. CPU from `/proc/PID/stat` at {} ticks/s ({}), peak RSS is `VmHWM` reset \
         before each measurement.\n",
        ctx.duration,
        ctx.warmup,
        bench.connections,
        bench.rate,
        bench.connections,
        thousands(args.nodes as f64),
        ctx.ticks,
        if ctx.ticks_measured {
            "getconf CLK_TCK"
        } else {
            "getconf failed: 100 assumed"
        }
    );
    println!(
        "| Scenario | Server | Load | Requests/s | p50 | p99 | p99.9 | max | Errors | \
         Server CPU s / 1k req | Server CPU (cores) | Server peak RSS | Generator CPU (cores) | \
         Softirq (cores) | Other processes (cores) |"
    );
    println!("|---|---|---|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|");
    for row in &report.rows {
        let r = &row.result;
        let s = r.latencies.summary();
        let secs = r.elapsed.as_secs_f64().max(1e-9);
        let cores = |u: Option<procfs::Usage>| {
            u.map_or("-".into(), |u| format!("{:.2}", u.cpu.as_secs_f64() / secs))
        };
        let mut rate = thousands(r.rate());
        if r.scheduled > 0 {
            rate = format!("{rate} (of {})", thousands(r.scheduled as f64 / secs));
        }
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.server,
            row.load,
            rate,
            fmt_latency(s.p50),
            fmt_latency(s.p99),
            fmt_latency(s.p999),
            fmt_latency(s.max),
            r.errors_text(),
            r.server
                .and_then(|u| u.cpu_per_1k(r.requests()))
                .map_or("-".into(), |c| format!("{c:.3}")),
            cores(r.server),
            r.server.map_or("-".into(), |u| fmt_mib(u.peak_rss_kib)),
            cores(r.generator),
            r.machine.map_or("-".into(), |m| format!(
                "{:.2}",
                m.interrupts.as_secs_f64() / secs
            )),
            r.other_processes
                .map_or("-".into(), |_| format!("{:.2}", r.other_cores())),
        );
    }

    println!("\n### Ratios (requests/s, same run)\n");
    println!("| Ratio | discoveryd | baseline | discoveryd / baseline |");
    println!("|---|--:|--:|--:|");
    let ratio = |label: String, ours: &str, theirs: &str| {
        let (a, b) = (report.rate(ours), report.rate(theirs));
        let text = |v: Option<f64>| v.map_or("-".into(), thousands);
        let quotient = match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        println!("| {label} | {} | {} | {quotient} |", text(a), text(b));
    };
    ratio(
        "announce / bare-hyper PUT".into(),
        "discoveryd/announce",
        "hyper/put",
    );
    for size in lists {
        ratio(
            format!(
                "lookup of {} / bare-hyper GET of the same size",
                thousands(*size as f64)
            ),
            &format!("discoveryd/lookup/{size}"),
            &format!("hyper/get/{size}"),
        );
    }
    ratio("304 / bare-hyper 304".into(), "discoveryd/304", "hyper/304");
    if ctx.etcd_version.is_some() {
        ratio(
            "announce / etcd put with lease".into(),
            "discoveryd/announce",
            "etcd/put",
        );
        for size in lists {
            ratio(
                format!(
                    "lookup of {0} / etcd range over {0} keys",
                    thousands(*size as f64)
                ),
                &format!("discoveryd/lookup/{size}"),
                &format!("etcd/range/{size}"),
            );
        }
    }

    println!("\n### CPU and memory per server\n");
    println!("| Server | CPU s / 1k announces (saturated) | CPU s / 1k announces (open loop) | CPU s / 1k lookups (largest list) | Peak RSS over its measurements |");
    println!("|---|--:|--:|--:|--:|");
    let biggest = lists.last().copied().unwrap_or(0);
    let per_1k = |key: &str| {
        report
            .keyed
            .get(key)
            .and_then(|r| r.server.and_then(|u| u.cpu_per_1k(r.requests())))
            .map_or("-".into(), |c| format!("{c:.3}"))
    };
    for (name, prefix, lookup) in [
        (
            "discoveryd",
            "discoveryd/announce",
            format!("discoveryd/lookup/{biggest}"),
        ),
        ("bare hyper", "hyper/put", format!("hyper/get/{biggest}")),
        ("etcd", "etcd/put", format!("etcd/range/{biggest}")),
    ] {
        if !report.peak_rss_kib.contains_key(name) {
            continue;
        }
        println!(
            "| {name} | {} | {} | {} | {} |",
            per_1k(prefix),
            per_1k(&format!("{prefix}-open")),
            per_1k(&lookup),
            report
                .peak_rss_kib
                .get(name)
                .map_or("-".into(), |k| fmt_mib(*k)),
        );
    }

    println!("\nNotes:\n");
    let (steal, measured): (f64, f64) = report
        .rows
        .iter()
        .filter_map(|r| r.result.machine.map(|m| (m.steal, r.result.elapsed)))
        .fold((0.0, 0.0), |(s, t), (steal, elapsed)| {
            (s + steal.as_secs_f64(), t + elapsed.as_secs_f64())
        });
    println!(
        "* The load generator runs on the same {} cores as the server under test: \"Generator \
         CPU\" is its share. \"Softirq\" is kernel interrupt work no process is charged for \
         (mostly loopback TCP delivery). \"Other processes\" is everything else that ran on \
         the machine during the measurement (other builds or tests): a measurement with more \
         than {INTERFERENCE_CORES} cores of it was repeated (at most {} times, {} repeats in \
         all this run) and the least disturbed attempt kept. Server + generator + softirq + \
         other near the core count means the machine, not the server, was the limit. Before \
         the run, {} cores were busy with other work; hypervisor steal during the \
         measurements: {:.1} % of one core.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        bench.retries_per_measurement,
        bench.retries_made,
        ctx.background.map_or("-".into(), |b| format!("{b:.2}")),
        if measured > 0.0 {
            100.0 * steal / measured
        } else {
            0.0
        },
    );
    println!(
        "* bare hyper: hyper 1.x http1 on a multi-threaded tokio runtime; PUT reads the body \
         and answers 202 with `Cache-Control: max-age=10`; GET answers a pre-built body of the \
         lookup's size with the lookup's headers. No routing, parsing or state: a ceiling."
    );
    if let Some(version) = &ctx.etcd_version {
        println!(
            "* etcd: `{version}`, one member on loopback with a temporary data directory, driven \
             through its **v3 HTTP/JSON gateway** (grpc-gateway; its native protocol is gRPC, so \
             JSON and base64 conversion cost it something). Announce = `POST /v3/kv/put` \
             {{key, value: the same worker body, lease}} with one lease per key granted \
             beforehand (TTL {} s, long enough for both put measurements); lookup of N = \
             `POST /v3/kv/range` over a prefix holding N keys. etcd commits every write \
             through its raft log with an fsync (batched); discoveryd's dynamic store \
             does not fsync announcements (they are renewed every few seconds).",
            ctx.lease_ttl
        );
    }
    println!(
        "* discoveryd: a fresh release `discoveryd` with a temporary data directory, \
         `log.level=warn,discoveryd=info`, `discovery.max-age=1h`, readiness off. Lookups are \
         `GET /v1/service/trino/listN`; renewals repeat each node's announcement unchanged."
    );
}

/// `12,345` (no decimals; one decimal below 10).
pub fn thousands(value: f64) -> String {
    if value.abs() < 10.0 && value.fract() != 0.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// `412 B`, `4.1 KB`, `4.12 MB` (decimal units).
pub fn fmt_bytes(bytes: usize) -> String {
    let b = bytes as f64;
    if b < 1000.0 {
        format!("{bytes} B")
    } else if b < 1e6 {
        format!("{:.1} KB", b / 1e3)
    } else {
        format!("{:.2} MB", b / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(-12_345.0), "-12,345");
        assert_eq!(thousands(2.5), "2.5");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(fmt_bytes(412), "412 B");
        assert_eq!(fmt_bytes(4_120), "4.1 KB");
        assert_eq!(fmt_bytes(4_120_000), "4.12 MB");
    }
}

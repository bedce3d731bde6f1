//! `load`: the load generator on its own, against a server that is already running on
//! loopback (a `discoveryd`, the `hyper-baseline`, anything speaking HTTP/1.1).
//!
//! ```sh
//! discovery-bench load --target http://127.0.0.1:8411 announce --nodes 10000
//! discovery-bench load --target http://127.0.0.1:8411 --rate 1250 announce --nodes 10000
//! discovery-bench load --target http://127.0.0.1:8411 lookup --path /v1/service/trino/general
//! discovery-bench load --target http://127.0.0.1:8411 conditional-lookup --path /v1/service/trino/general
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Empty};
use hyper::header::{ETAG, HOST};
use hyper_util::rt::TokioIo;

use crate::hist::fmt_latency;
use crate::load::{self, Mode, RunConfig, Target};
use crate::procfs::{self, fmt_mib, Probe};
use crate::shapes;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server: `http://IP:PORT`, a loopback address.
    #[arg(long)]
    target: String,
    /// Connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Open loop at this many requests per second in total; closed loop when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before the measurement.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// At most this many requests, warm-up included.
    #[arg(long, default_value_t = 50_000_000)]
    max_requests: u64,
    /// Per-request timeout, in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// The server's pid, to report its CPU time and peak RSS.
    #[arg(long)]
    pid: Option<u32>,
    #[command(subcommand)]
    shape: Shape,
}

#[derive(Debug, clap::Subcommand)]
enum Shape {
    /// `PUT /v1/announcement/{nodeId}` rotating over `--nodes` simulated Trino workers.
    Announce {
        #[arg(long, default_value_t = 10_000)]
        nodes: usize,
        #[arg(long, default_value = "general")]
        pool: String,
    },
    /// `GET --path`, expecting 200.
    Lookup {
        #[arg(long, default_value = "/v1/service/trino/general")]
        path: String,
    },
    /// `GET --path` with `If-None-Match` set to the ETag it answers now, expecting 304.
    ConditionalLookup {
        #[arg(long, default_value = "/v1/service/trino/general")]
        path: String,
    },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let target = Target::parse(&args.target)?;
    let workload = match &args.shape {
        Shape::Announce { nodes, pool } => shapes::announce(&shapes::workers(pool, *nodes))?,
        Shape::Lookup { path } => shapes::lookup(path)?,
        Shape::ConditionalLookup { path } => {
            let etag = current_etag(&target, path).await?;
            shapes::conditional_lookup(path, &etag)?
        }
    };
    let mode = match args.rate {
        Some(rate) if rate > 0.0 => Mode::Open {
            connections: args.connections,
            rate,
        },
        Some(_) => bail!("--rate must be positive"),
        None => Mode::Closed {
            connections: args.connections,
        },
    };
    let mut config = RunConfig::new(
        mode,
        Duration::from_secs_f64(args.warmup.max(0.0)),
        Duration::from_secs_f64(args.duration.max(0.001)),
    );
    config.max_requests = args.max_requests;
    config.timeout = Duration::from_secs_f64(args.timeout.max(0.001));
    let (ticks, _) = procfs::clock_ticks_per_second();
    let probe = args.pid.map(|pid| Probe::new(pid, ticks));
    let result = load::run(&target, Arc::new(workload), config, probe).await?;
    let s = result.latencies.summary();
    println!("| Load | Requests/s | p50 | p99 | p99.9 | max | Errors | Server CPU s / 1k req | Server peak RSS |");
    println!("|---|--:|--:|--:|--:|--:|---|--:|--:|");
    println!(
        "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
        mode.describe(),
        result.rate(),
        fmt_latency(s.p50),
        fmt_latency(s.p99),
        fmt_latency(s.p999),
        fmt_latency(s.max),
        result.errors_text(),
        result
            .server
            .and_then(|u| u.cpu_per_1k(result.requests()))
            .map_or("-".into(), |c| format!("{c:.3}")),
        result
            .server
            .map_or("-".into(), |u| fmt_mib(u.peak_rss_kib)),
    );
    Ok(())
}

/// One plain GET of `path`: its ETag.
async fn current_etag(target: &Target, path: &str) -> anyhow::Result<String> {
    let stream = tokio::net::TcpStream::connect(target.addr()).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::get(path)
        .header(HOST, target.addr().to_string())
        .body(Empty::<bytes::Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let etag = response
        .headers()
        .get(ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .with_context(|| format!("GET {path} answered {} without an ETag", response.status()))?;
    let _ = response.into_body().collect().await;
    Ok(etag)
}

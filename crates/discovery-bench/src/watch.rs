//! `discovery-bench watch`: what blocking lookups (`?wait=`) cost and how fast they wake,
//! on one real `discoveryd` over loopback.
//!
//! * Wake delay: a watcher holds `GET /v1/service/trino/general?wait=30s` with the
//!   current tag; a PUT then changes the answer. The delay is from the moment the PUT's
//!   202 is received to the moment the watcher's 200 is, both in this process, over
//!   `--changes` changes (p50, p99, max).
//! * Idle watchers: `--idle` connections each holding one blocking lookup; the server's
//!   RSS before and after they are open, and the time until every one of them has its
//!   200 after one change.
//!
//! The watchers are plain HTTP/1.1 over raw sockets (one request each), so the numbers are
//! the server's, not a client library's.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use discovery_testkit::{DiscoveryProcess, ProcessOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::procfs::{self, fmt_mib, Probe};
use crate::stats::{ms, percentile};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The discoveryd binary (default: target/release/discoveryd beside this binary).
    #[arg(long)]
    discoveryd: Option<PathBuf>,
    /// Changes whose wake delay is measured.
    #[arg(long, default_value_t = 200)]
    changes: usize,
    /// Idle watchers opened for the memory measurement (one connection each).
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
}

const PATH: &str = "/v1/service/trino/general";

fn announcement(service_id: &str) -> String {
    format!(
        r#"{{"environment":"testing","pool":"general","location":"/w","services":[{{"id":"{service_id}","type":"trino","properties":{{"http":"http://w:8080"}}}}]}}"#
    )
}

/// One HTTP/1.1 exchange on a fresh connection: the status line and the headers.
async fn exchange(stream: &mut TcpStream, request: &str) -> anyhow::Result<String> {
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        ensure!(n > 0, "connection closed before the response headers");
        head.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn held_request(authority: &str, tag: &str, wait: &str) -> String {
    format!(
        "GET {PATH}?wait={wait} HTTP/1.1\r\nHost: {authority}\r\nIf-None-Match: {tag}\r\nConnection: close\r\n\r\n"
    )
}

async fn put(client: &reqwest::Client, base: &str, node: &str) -> anyhow::Result<()> {
    let response = client
        .put(format!("{base}/v1/announcement/{node}"))
        .header("Content-Type", "application/json")
        .body(announcement(&uuid::Uuid::new_v4().to_string()))
        .send()
        .await?;
    ensure!(
        response.status() == 202,
        "PUT answered {}",
        response.status()
    );
    Ok(())
}

async fn current_tag(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let response = client.get(format!("{base}{PATH}")).send().await?;
    ensure!(
        response.status() == 200,
        "lookup answered {}",
        response.status()
    );
    Ok(response
        .headers()
        .get("etag")
        .context("no ETag")?
        .to_str()?
        .to_owned())
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn start(
    binary: &std::path::Path,
    idle: usize,
) -> anyhow::Result<(DiscoveryProcess, tempfile::TempDir)> {
    let data_dir = tempfile::Builder::new().prefix("bench-watch-").tempdir()?;
    let connections = (idle + 1000).to_string();
    let server = DiscoveryProcess::start(
        ProcessOptions::new(binary, data_dir.path())
            .set("log.level", "warn,discoveryd=info")
            .set("discovery.max-age", "1h")
            .set("discovery.watch.max-wait", "10m")
            .set("http-server.max-connections", &connections)
            .set("http-server.max-connections-per-client", &connections),
    )?;
    Ok((server, data_dir))
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()?)
}

/// The server's RSS in KiB before and after `idle` connections are opened, each sending
/// `request` (or nothing), and the connections.
async fn open_connections(
    server: &DiscoveryProcess,
    probe: &Probe,
    idle: usize,
    request: Option<&str>,
) -> anyhow::Result<(u64, u64, Vec<TcpStream>)> {
    let before = probe.sample().context("cannot read the server's /proc")?;
    let fds_before = open_fds(server.pid());
    let mut streams = Vec::with_capacity(idle);
    for _ in 0..idle {
        let mut stream = TcpStream::connect(server.addr()).await?;
        if let Some(request) = request {
            stream.write_all(request.as_bytes()).await?;
        }
        streams.push(stream);
    }
    // The server's descriptors tell when it holds the connections; two more seconds for
    // it to read and register every request.
    let opened = Instant::now();
    while open_fds(server.pid()) < fds_before + idle && opened.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = probe.sample().context("cannot read the server's /proc")?;
    ensure!(
        open_fds(server.pid()) >= fds_before + idle,
        "the server holds only {} of {idle} connections",
        open_fds(server.pid()).saturating_sub(fds_before)
    );
    Ok((before.rss_kib, after.rss_kib, streams))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let binary = crate::discoveryd_path(args.discoveryd.clone())?;
    let (ticks, _) = procfs::clock_ticks_per_second();
    let client = client()?;

    // 1. Wake delay.
    let (server, _dir) = start(&binary, args.idle)?;
    let base = server.base_url();
    let authority = server.addr().to_string();
    put(&client, &base, "w-0").await?;
    let mut from_sent = Vec::with_capacity(args.changes);
    let mut from_accepted = Vec::with_capacity(args.changes);
    let mut put_round_trips = Vec::with_capacity(args.changes);
    for i in 0..args.changes {
        let tag = current_tag(&client, &base).await?;
        let mut stream = TcpStream::connect(server.addr()).await?;
        stream.set_nodelay(true)?;
        let request = held_request(&authority, &tag, "30s");
        let watcher = tokio::spawn(async move {
            let head = exchange(&mut stream, &request).await;
            (Instant::now(), head)
        });
        // Give the request time to reach the server and be registered; a watcher that
        // arrived after the PUT would be answered at once and show a shorter delay.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = Instant::now();
        put(&client, &base, &format!("w-{}", i % 50 + 1)).await?;
        let accepted = Instant::now();
        let (woken, head) = watcher.await?;
        let head = head?;
        ensure!(head.starts_with("HTTP/1.1 200"), "watcher got {head}");
        from_sent.push(woken.saturating_duration_since(sent));
        from_accepted.push(woken.saturating_duration_since(accepted));
        put_round_trips.push(accepted.saturating_duration_since(sent));
    }
    drop(server);

    // 2. Idle connections without a request: what the connections alone cost.
    let (server, _dir) = start(&binary, args.idle)?;
    let probe = Probe::new(server.pid(), ticks);
    let (plain_before, plain_after, streams) =
        open_connections(&server, &probe, args.idle, None).await?;
    drop(streams);
    drop(server);

    // 3. The same number of held lookups, then one change that answers them all.
    let (server, _dir) = start(&binary, args.idle)?;
    let base = server.base_url();
    let authority = server.addr().to_string();
    let probe = Probe::new(server.pid(), ticks);
    put(&client, &base, "w-0").await?;
    let tag = current_tag(&client, &base).await?;
    let request = held_request(&authority, &tag, "10m");
    let (held_before, held_after, streams) =
        open_connections(&server, &probe, args.idle, Some(&request)).await?;
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut buf = [0u8; 16];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                (Instant::now(), buf[..n].starts_with(b"HTTP/1.1 200"))
            })
        })
        .collect();
    put(&client, &base, "w-changed").await?;
    let changed = Instant::now();
    let mut last = changed;
    let mut answered = 0;
    for reader in readers {
        let (at, got_200) = reader.await?;
        last = last.max(at);
        answered += usize::from(got_200);
    }
    drop(server);

    let stats = |samples: &[Duration]| {
        format!(
            "p50 {}, p99 {}, max {}",
            ms(percentile(samples, 50.0)),
            ms(percentile(samples, 99.0)),
            ms(samples.iter().max().copied())
        )
    };
    let per = |before: u64, after: u64| {
        let grown = after.saturating_sub(before);
        format!(
            "{} -> {} (+{}, {:.1} KiB each)",
            fmt_mib(before),
            fmt_mib(after),
            fmt_mib(grown),
            grown as f64 / args.idle.max(1) as f64
        )
    };
    println!("### Blocking lookups: wake delay and idle watchers\n");
    println!("| Measurement | Result |\n|---|---|");
    println!(
        "| Watcher's 200 after the PUT was sent ({} changes) | {} |",
        args.changes,
        stats(&from_sent)
    );
    println!(
        "| Watcher's 200 after the PUT's 202 was received (0: before it) | {} |",
        stats(&from_accepted)
    );
    println!("| The PUT's own round trip | {} |", stats(&put_round_trips));
    println!(
        "| Server RSS, {} idle connections without a request | {} |",
        args.idle,
        per(plain_before, plain_after)
    );
    println!(
        "| Server RSS, {} held blocking lookups (one per connection) | {} |",
        args.idle,
        per(held_before, held_after)
    );
    println!(
        "| One change then answered | {answered} of {} with 200, the last {} after the PUT's 202 |",
        args.idle,
        ms(Some(last.saturating_duration_since(changed)))
    );
    Ok(())
}

//! A lean HTTP/1.1 load generator: hyper's connection-level client over one
//! `tokio::net::TcpStream` per connection, keep-alive, no pool, requests prepared once.
//!
//! * Closed loop: `C` connections, each sending its next request as soon as the previous
//!   response is in, until the time is up (or a request budget is spent). Measures
//!   throughput at saturation.
//! * Open loop: requests scheduled at fixed intervals (`1 / rate`) by a dedicated timer
//!   thread and dealt round-robin to `C` connections (as wrk2 does). A latency runs from the
//!   request's *scheduled* send time, so a stall that holds requests back is counted in
//!   full instead of hiding behind the requests that were never sent (coordinated
//!   omission).
//!
//! Every run is bounded by its duration and `max_requests`, and targets a loopback address
//! only.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::hist::Latencies;
use crate::procfs::{
    machine_ticks, scan_processes, ticks_between_scans, ticks_to_duration, MachineUsage, Probe,
    Sample, Usage,
};

/// Where requests go: a loopback address.
#[derive(Debug, Clone)]
pub struct Target {
    addr: SocketAddr,
    host: HeaderValue,
}

impl Target {
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        ensure!(
            addr.ip().is_loopback(),
            "{addr} is not a loopback address: the load generator only targets this machine"
        );
        Ok(Target {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
        })
    }

    /// `http://127.0.0.1:8411` (an IP literal, loopback only; a path is ignored).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .context("the target must be an http:// URL")?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addr: SocketAddr = authority
            .parse()
            .with_context(|| format!("'{authority}' is not IP:PORT"))?;
        Self::new(addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// One request, built once and cloned per send (the body is a shared `Bytes`).
#[derive(Debug, Clone)]
pub struct Prepared {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Prepared {
    pub fn new(method: Method, path: &str) -> anyhow::Result<Self> {
        ensure!(path.starts_with('/'), "a path starts with '/': {path}");
        Ok(Prepared {
            method,
            uri: path.parse()?,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        })
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> anyhow::Result<Self> {
        self.headers.insert(name, HeaderValue::from_str(value)?);
        Ok(self)
    }

    /// A JSON body (`Content-Type: application/json`; hyper adds `Content-Length`).
    pub fn json(mut self, body: impl Into<Bytes>) -> Self {
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = body.into();
        self
    }

    #[cfg(test)]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    fn request(&self, host: &HeaderValue) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.reserve(self.headers.len() + 1);
        headers.insert(HOST, host.clone());
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        request
    }
}

/// What a run sends: `requests` in rotation (request `k` is `requests[k % len]`), and the
/// statuses that count as success.
#[derive(Debug, Clone)]
pub struct Workload {
    pub requests: Vec<Prepared>,
    pub expect: Vec<StatusCode>,
}

impl Workload {
    pub fn new(requests: Vec<Prepared>, expect: &[StatusCode]) -> Self {
        Workload {
            requests,
            expect: expect.to_vec(),
        }
    }
}

/// Closed or open loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// `connections` connections, each sending back to back.
    Closed { connections: usize },
    /// `rate` requests per second in total, dealt round-robin to `connections`.
    Open { connections: usize, rate: f64 },
}

impl Mode {
    pub fn connections(&self) -> usize {
        match *self {
            Mode::Closed { connections } | Mode::Open { connections, .. } => connections.max(1),
        }
    }

    pub fn describe(&self) -> String {
        match *self {
            Mode::Closed { connections } => format!("closed loop, {connections} conn"),
            Mode::Open { connections, rate } => {
                format!("open loop {rate:.0}/s, {connections} conn")
            }
        }
    }
}

/// Bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunConfig {
    pub mode: Mode,
    /// Requests sent before the measured window (connections warm, caches filled).
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// No more requests than this in total, warm-up included.
    pub max_requests: u64,
    /// A request without a complete response after this is an error (and its connection
    /// is replaced).
    pub timeout: Duration,
}

impl RunConfig {
    pub fn new(mode: Mode, warmup: Duration, duration: Duration) -> Self {
        RunConfig {
            mode,
            warmup,
            duration,
            max_requests: 50_000_000,
            timeout: Duration::from_secs(10),
        }
    }

    /// Every request of the workload exactly once, as fast as `connections` allow (e.g.
    /// to populate a server), within `limit`.
    pub fn each_once(connections: usize, count: usize, limit: Duration) -> Self {
        RunConfig {
            mode: Mode::Closed { connections },
            warmup: Duration::ZERO,
            duration: limit,
            max_requests: count as u64,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What one run measured (the measured window only; warm-up requests are not counted).
#[derive(Debug, Clone)]
pub struct RunResult {
    pub latencies: Latencies,
    /// Responses with an expected status.
    pub ok: u64,
    /// Everything else, by kind: `status 503`, `connect`, `timeout`, `connection closed`...
    pub errors: BTreeMap<String, u64>,
    /// Response body bytes received.
    pub body_bytes: u64,
    /// The measured window: from its start to the last response of a request sent in it.
    pub elapsed: Duration,
    /// The server's CPU and peak RSS over the measured window, when a probe was given.
    pub server: Option<Usage>,
    /// This process's CPU over the measured window.
    pub generator: Option<Usage>,
    /// The whole machine's busy and stolen CPU over the measured window.
    pub machine: Option<MachineUsage>,
    /// CPU time of every other user-space process (not the server, not this generator)
    /// over the measured window: other work on the machine interfering with the
    /// measurement.
    pub other_processes: Option<Duration>,
    /// Open loop: the requests the schedule called for in the window (sent or not).
    pub scheduled: u64,
}

impl RunResult {
    pub fn requests(&self) -> u64 {
        self.ok + self.errors.values().sum::<u64>()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Completed requests per second over the measured window.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.requests() as f64 / secs
        } else {
            0.0
        }
    }

    /// [`Self::other_processes`] in cores (0 when unknown).
    pub fn other_cores(&self) -> f64 {
        self.other_processes.map_or(0.0, |d| {
            d.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
        })
    }

    /// `0` or e.g. `3 (status 503: 2, timeout: 1)`.
    pub fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "0".into();
        }
        let kinds: Vec<String> = self
            .errors
            .iter()
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect();
        format!("{} ({})", self.error_count(), kinds.join(", "))
    }
}

/// Per-connection tallies, merged at the end.
#[derive(Debug, Default)]
struct Tally {
    latencies: Latencies,
    ok: u64,
    errors: BTreeMap<String, u64>,
    body_bytes: u64,
    last_done: Option<Instant>,
}

impl Tally {
    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.merge(&other.latencies);
        self.ok += other.ok;
        self.body_bytes += other.body_bytes;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.last_done = self.last_done.max(other.last_done);
    }
}

/// The fixed-rate schedule: request `k` is due `k / rate` after `start`.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    rate: f64,
}

impl Schedule {
    pub fn new(start: Instant, rate: f64) -> Self {
        Schedule {
            start,
            rate: rate.max(1e-3),
        }
    }

    /// When request `k` is due.
    pub fn due(&self, k: u64) -> Instant {
        self.start + Duration::from_secs_f64(k as f64 / self.rate)
    }

    /// How many requests are due strictly before `until`.
    pub fn due_before(&self, until: Instant) -> u64 {
        let secs = until.saturating_duration_since(self.start).as_secs_f64();
        let n = (secs * self.rate).ceil() as u64;
        // Float rounding: make `due(n - 1) < until <= due(n)` exact.
        (n.saturating_sub(2)..n + 2)
            .find(|&k| self.due(k) >= until)
            .unwrap_or(n)
    }

    /// The connection that sends request `k` (round-robin).
    pub fn connection_of(k: u64, connections: usize) -> usize {
        (k % connections.max(1) as u64) as usize
    }
}

/// Runs `workload` against `target` within `config`; `server` is sampled at the start and
/// end of the measured window.
pub async fn run(
    target: &Target,
    workload: Arc<Workload>,
    config: RunConfig,
    server: Option<Probe>,
) -> anyhow::Result<RunResult> {
    ensure!(!workload.requests.is_empty(), "a workload needs requests");
    let connections = config.mode.connections();
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let (ticks, _) = crate::procfs::clock_ticks_per_second();
    let generator = Probe::new(std::process::id(), ticks);

    let ours: Vec<u32> = [Some(std::process::id()), server.map(|p| p.pid())]
        .into_iter()
        .flatten()
        .collect();
    // Samples at the start of the measured window, taken by a task that waits for it.
    let sampler = {
        let ours = ours.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let others = scan_processes(&ours);
            if let Some(probe) = server {
                probe.reset_peak();
            }
            (
                server.and_then(|p| p.sample()),
                generator.sample(),
                machine_ticks(),
                others,
            )
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    let mut scheduled = 0;
    match config.mode {
        Mode::Closed { .. } => {
            let next = Arc::new(AtomicU64::new(0));
            for _ in 0..connections {
                let (target, workload, next) =
                    (target.clone(), Arc::clone(&workload), Arc::clone(&next));
                tasks.spawn(closed_connection(
                    target,
                    workload,
                    next,
                    config,
                    measure_from,
                    end,
                ));
            }
        }
        Mode::Open { rate, .. } => {
            let schedule = Schedule::new(start, rate);
            scheduled = schedule
                .due_before(end)
                .saturating_sub(schedule.due_before(measure_from))
                .min(config.max_requests);
            let mut senders = Vec::with_capacity(connections);
            for _ in 0..connections {
                let (tx, rx) = mpsc::unbounded_channel();
                senders.push(tx);
                tasks.spawn(open_connection(
                    target.clone(),
                    Arc::clone(&workload),
                    rx,
                    config,
                    measure_from,
                ));
            }
            let stop = Arc::new(AtomicBool::new(false));
            let timer = {
                let stop = Arc::clone(&stop);
                std::thread::Builder::new()
                    .name("open-loop-timer".into())
                    .spawn(move || dispatch(schedule, senders, end, config.max_requests, &stop))?
            };
            // The timer thread ends at `end`; the guard stops it early on an error path.
            let _stop_timer = StopOnDrop(stop);
            let _ = tokio::task::spawn_blocking(move || timer.join()).await;
        }
    }

    let mut tally = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        tally.merge(joined.context("a connection task panicked")?);
    }
    let (server_before, generator_before, machine_before, others_before) = sampler
        .await
        .unwrap_or((None, None, None, Default::default()));
    let server_after = server.and_then(|p| p.sample());
    let generator_after = generator.sample();
    let others_after = scan_processes(&ours);
    let other_processes = (!others_before.is_empty())
        .then(|| ticks_to_duration(ticks_between_scans(&others_before, &others_after), ticks));
    let machine = match (machine_before, machine_ticks()) {
        (Some(before), Some(after)) => Some(MachineUsage::between(before, after, ticks)),
        _ => None,
    };
    let elapsed = tally
        .last_done
        .map_or(config.duration, |last| {
            last.saturating_duration_since(measure_from)
        })
        .max(
            config
                .duration
                .min(Instant::now().saturating_duration_since(measure_from)),
        );
    let usage = |before: Option<Sample>, after: Option<Sample>| match (before, after) {
        (Some(b), Some(a)) => Some(Usage::between(&b, &a)),
        _ => None,
    };
    Ok(RunResult {
        latencies: tally.latencies,
        ok: tally.ok,
        errors: tally.errors,
        body_bytes: tally.body_bytes,
        elapsed,
        server: usage(server_before, server_after),
        generator: usage(generator_before, generator_after),
        machine,
        other_processes,
        scheduled,
    })
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The open loop's timer thread: at each due time, hands request `k` to its connection.
/// A thread sleeping with `nanosleep` is precise to tens of microseconds, where tokio's
/// timer wheel rounds up to the next millisecond — and that millisecond would be counted
/// as latency.
fn dispatch(
    schedule: Schedule,
    senders: Vec<mpsc::UnboundedSender<(u64, Instant)>>,
    end: Instant,
    max_requests: u64,
    stop: &AtomicBool,
) {
    for k in 0..max_requests {
        let due = schedule.due(k);
        if due >= end || stop.load(Ordering::Relaxed) {
            break;
        }
        let wait = due.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        if senders[Schedule::connection_of(k, senders.len())]
            .send((k, due))
            .is_err()
        {
            break;
        }
    }
}

/// A connection of the closed loop: takes the next request number from `next` and sends it
/// as soon as the previous response is in.
async fn closed_connection(
    target: Target,
    workload: Arc<Workload>,
    next: Arc<AtomicU64>,
    config: RunConfig,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut connection = Connection::new(target);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= config.max_requests {
            break;
        }
        let prepared = &workload.requests[(k % workload.requests.len() as u64) as usize];
        let outcome = connection
            .send(prepared, &workload.expect, config.timeout, end)
            .await;
        let done = Instant::now();
        if matches!(outcome, Outcome::NotSent(_)) && done >= end {
            // The run ended while (re)connecting: no request was made. A connection that
            // never got through is an error all the same, or a dead server would show
            // nothing at all.
            if !connection.ever_connected {
                tally.error("connect");
            }
            break;
        }
        if now >= measure_from {
            tally.record(outcome, now, done);
        }
    }
    tally
}

/// A connection of the open loop: sends what the timer hands it, in order; latencies count
/// from the due time.
async fn open_connection(
    target: Target,
    workload: Arc<Workload>,
    mut due: mpsc::UnboundedReceiver<(u64, Instant)>,
    config: RunConfig,
    measure_from: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut connection = Connection::new(target);
    // Connect before the first request is due, as a client with a kept-alive connection.
    let _ = connection.ready(Instant::now() + config.timeout).await;
    while let Some((k, due_at)) = due.recv().await {
        let prepared = &workload.requests[(k % workload.requests.len() as u64) as usize];
        let deadline = Instant::now() + config.timeout;
        let outcome = connection
            .send(prepared, &workload.expect, config.timeout, deadline)
            .await;
        let done = Instant::now();
        if due_at >= measure_from {
            tally.record(outcome, due_at, done);
        }
    }
    tally
}

/// How one request ended.
#[derive(Debug)]
enum Outcome {
    Expected {
        body_bytes: u64,
    },
    Unexpected(StatusCode),
    Failed(&'static str),
    /// No connection could be made, or the run ended while connecting: not a request.
    NotSent(&'static str),
}

impl Tally {
    fn record(&mut self, outcome: Outcome, from: Instant, done: Instant) {
        match outcome {
            Outcome::Expected { body_bytes } => {
                self.ok += 1;
                self.body_bytes += body_bytes;
                self.latencies.record(done.saturating_duration_since(from));
                self.last_done = self.last_done.max(Some(done));
            }
            Outcome::Unexpected(status) => {
                self.error(format!("status {}", status.as_u16()));
                self.latencies.record(done.saturating_duration_since(from));
                self.last_done = self.last_done.max(Some(done));
            }
            Outcome::Failed(kind) => {
                self.error(kind);
                self.last_done = self.last_done.max(Some(done));
            }
            Outcome::NotSent(kind) => self.error(kind),
        }
    }
}

/// One keep-alive connection, reopened after an error.
struct Connection {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
    ever_connected: bool,
}

impl Connection {
    fn new(target: Target) -> Self {
        Connection {
            target,
            sender: None,
            ever_connected: false,
        }
    }

    /// Connects if needed, trying until `deadline`.
    async fn ready(&mut self, deadline: Instant) -> Result<(), &'static str> {
        if let Some(sender) = &mut self.sender {
            if sender.ready().await.is_ok() {
                return Ok(());
            }
            self.sender = None;
        }
        loop {
            match tokio::time::timeout_at(deadline.into(), connect(self.target.addr)).await {
                Ok(Ok(sender)) => {
                    self.sender = Some(sender);
                    self.ever_connected = true;
                    return Ok(());
                }
                Err(_) => return Err("connect timeout"),
                Ok(Err(_)) if Instant::now() >= deadline => return Err("connect"),
                // Refused (the server is at its connection cap, or restarting): retry
                // shortly rather than spin.
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    async fn send(
        &mut self,
        prepared: &Prepared,
        expect: &[StatusCode],
        timeout: Duration,
        connect_deadline: Instant,
    ) -> Outcome {
        if let Err(kind) = self.ready(connect_deadline).await {
            return Outcome::NotSent(kind);
        }
        let Some(sender) = &mut self.sender else {
            return Outcome::NotSent("connect");
        };
        let request = prepared.request(&self.target.host);
        let exchange = async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let mut body = response.into_body();
            let mut bytes = 0u64;
            while let Some(frame) = body.frame().await {
                if let Some(data) = frame?.data_ref() {
                    bytes += data.len() as u64;
                }
            }
            Ok::<_, hyper::Error>((status, bytes))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok((status, body_bytes))) if expect.contains(&status) => {
                Outcome::Expected { body_bytes }
            }
            Ok(Ok((status, _))) => Outcome::Unexpected(status),
            Ok(Err(e)) => {
                self.sender = None;
                Outcome::Failed(if e.is_incomplete_message() || e.is_closed() {
                    "connection closed"
                } else {
                    "http error"
                })
            }
            Err(_) => {
                self.sender = None;
                Outcome::Failed("timeout")
            }
        }
    }
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spaces_requests_evenly() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 1250.0);
        assert_eq!(schedule.due(0), start);
        assert_eq!(schedule.due(1) - start, Duration::from_micros(800));
        assert_eq!(schedule.due(1250) - start, Duration::from_secs(1));
        assert_eq!(schedule.due(12_500) - start, Duration::from_secs(10));
    }

    #[test]
    fn due_before_counts_the_requests_of_a_window() {
        let start = Instant::now();
        let schedule = Schedule::new(start, 1250.0);
        assert_eq!(schedule.due_before(start), 0);
        // Due at 0, 0.8 ms, 1.6 ms: three before 2 ms; 1.6 ms itself is not before 1.6 ms.
        assert_eq!(schedule.due_before(start + Duration::from_millis(2)), 3);
        assert_eq!(schedule.due_before(start + Duration::from_micros(1600)), 2);
        assert_eq!(schedule.due_before(start + Duration::from_secs(10)), 12_500);
        let window = schedule.due_before(start + Duration::from_secs(11))
            - schedule.due_before(start + Duration::from_secs(1));
        assert_eq!(window, 12_500);
        // A rate that does not divide a second.
        let third = Schedule::new(start, 3.0);
        assert_eq!(third.due_before(start + Duration::from_secs(1)), 3);
        assert_eq!(
            third.due_before(start + Duration::from_millis(1001)),
            4,
            "the fourth is due at exactly 1 s"
        );
        assert_eq!(
            Schedule::new(start, 0.0).due_before(start + Duration::from_secs(1)),
            1,
            "a zero rate is clamped, not a division by zero"
        );
    }

    #[test]
    fn requests_are_dealt_round_robin() {
        let dealt: Vec<usize> = (0..6).map(|k| Schedule::connection_of(k, 4)).collect();
        assert_eq!(dealt, [0, 1, 2, 3, 0, 1]);
        assert_eq!(Schedule::connection_of(5, 0), 0);
    }

    #[test]
    fn only_loopback_targets() {
        assert!(Target::parse("http://127.0.0.1:8411").is_ok());
        assert!(Target::parse("http://127.0.0.2:8411/v1/service").is_ok());
        assert!(Target::parse("http://[::1]:8411").is_ok());
        assert!(Target::parse("http://10.0.0.1:8411").is_err());
        assert!(Target::parse("http://example.com:80").is_err());
        assert!(Target::parse("https://127.0.0.1:8411").is_err());
    }

    #[test]
    fn errors_are_counted_by_kind() {
        let mut tally = Tally::default();
        let t = Instant::now();
        tally.record(Outcome::Expected { body_bytes: 10 }, t, t);
        tally.record(Outcome::Unexpected(StatusCode::SERVICE_UNAVAILABLE), t, t);
        tally.record(Outcome::Unexpected(StatusCode::SERVICE_UNAVAILABLE), t, t);
        tally.record(Outcome::Failed("timeout"), t, t);
        tally.record(Outcome::NotSent("connect"), t, t);
        let result = RunResult {
            latencies: tally.latencies,
            ok: tally.ok,
            errors: tally.errors,
            body_bytes: tally.body_bytes,
            elapsed: Duration::from_secs(1),
            server: None,
            generator: None,
            machine: None,
            other_processes: None,
            scheduled: 0,
        };
        assert_eq!(result.requests(), 5);
        assert_eq!(result.latencies.count(), 3, "timeouts have no latency");
        assert_eq!(
            result.errors_text(),
            "4 (connect: 1, status 503: 2, timeout: 1)"
        );
        assert_eq!(result.rate(), 5.0);
    }

    #[test]
    fn prepared_requests_carry_host_and_content_type() {
        let host = HeaderValue::from_static("127.0.0.1:1");
        let request = Prepared::new(Method::PUT, "/v1/announcement/n1")
            .unwrap()
            .header(hyper::header::USER_AGENT, "n1")
            .unwrap()
            .json(&b"{}"[..])
            .request(&host);
        assert_eq!(request.method(), Method::PUT);
        assert_eq!(request.uri(), "/v1/announcement/n1");
        assert_eq!(request.headers()[HOST], "127.0.0.1:1");
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
        assert!(Prepared::new(Method::GET, "v1/service").is_err());
    }
}

/// The generator against the bare hyper server, in process on a port chosen by the OS.
#[cfg(test)]
mod loopback_tests {
    use super::*;
    use crate::hyper_baseline::{body_etag, body_path, serve_on};

    async fn server(body_sizes: &[usize]) -> Target {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target::new(listener.local_addr().unwrap()).unwrap();
        let sizes = body_sizes.to_vec();
        tokio::spawn(async move { serve_on(listener, &sizes, Duration::from_secs(60)).await });
        target
    }

    fn get(path: &str, if_none_match: Option<&str>) -> Prepared {
        let request = Prepared::new(Method::GET, path).unwrap();
        match if_none_match {
            Some(tag) => request.header(hyper::header::IF_NONE_MATCH, tag).unwrap(),
            None => request,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_loop_sends_each_request_once_and_counts_bodies() {
        let target = server(&[1000]).await;
        let workload = Workload::new(vec![get(&body_path(1000), None)], &[StatusCode::OK]);
        let config = RunConfig::each_once(4, 200, Duration::from_secs(30));
        let result = run(&target, Arc::new(workload), config, None)
            .await
            .unwrap();
        assert_eq!(result.ok, 200, "{}", result.errors_text());
        assert_eq!(result.error_count(), 0);
        assert_eq!(result.body_bytes, 200 * 1000);
        assert_eq!(result.latencies.count(), 200);
        assert!(result.generator.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unexpected_statuses_are_errors_by_kind() {
        let target = server(&[10]).await;
        let tag = body_etag(10);
        let workload = Workload::new(
            vec![
                get(&body_path(10), Some(&tag)),        // 304: expected
                get(&body_path(10), Some("\"other\"")), // 200: not expected here
                get("/nothing", None),                  // 404
                Prepared::new(Method::PUT, "/v1/announcement/n1")
                    .unwrap()
                    .json(&b"{}"[..]), // 202: not expected here
            ],
            &[StatusCode::NOT_MODIFIED],
        );
        let config = RunConfig::each_once(2, 40, Duration::from_secs(30));
        let result = run(&target, Arc::new(workload), config, None)
            .await
            .unwrap();
        assert_eq!(result.ok, 10);
        assert_eq!(
            result.errors_text(),
            "30 (status 200: 10, status 202: 10, status 404: 10)"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_loop_stops_at_its_request_budget() {
        let target = server(&[10]).await;
        let workload = Workload::new(vec![get(&body_path(10), None)], &[StatusCode::OK]);
        let mut config = RunConfig::new(
            Mode::Open {
                connections: 3,
                rate: 100_000.0,
            },
            Duration::ZERO,
            Duration::from_secs(30),
        );
        config.max_requests = 50;
        let result = run(&target, Arc::new(workload), config, None)
            .await
            .unwrap();
        assert_eq!(result.ok, 50, "{}", result.errors_text());
        assert_eq!(result.scheduled, 50);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_connection_is_a_connect_error_not_a_hang() {
        // A port that was free a moment ago: nothing listens there.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let workload = Workload::new(vec![get("/", None)], &[StatusCode::OK]);
        let mut config = RunConfig::each_once(1, 1, Duration::from_millis(200));
        config.timeout = Duration::from_millis(200);
        let result = run(
            &Target::new(addr).unwrap(),
            Arc::new(workload),
            config,
            None,
        )
        .await
        .unwrap();
        assert_eq!(result.ok, 0);
        assert_eq!(result.errors_text(), "1 (connect: 1)");
    }
}

//! Differential test against the real Java airlift discovery server 1.37.
//!
//! Why: docs/COMPATIBILITY.md claims to list every place where `discoveryd` answers
//! differently from the Java server. This test holds it to that. It starts the released
//! Java server (resolved by Maven into `tests/interop/java/discovery-server/target/lib`,
//! run on Java 25 because its classes target Java 21) and one `discoveryd`, sends both the
//! same scripted requests (every single-node conformance case, `differential/script.rs`),
//! normalises what legitimately differs (generated ids, clocks, ETag values, the servers'
//! addresses) and compares status codes, the headers clients read and the bodies
//! (`differential/compare.rs`). Every difference must be listed in
//! `differential-allowed.json` with the COMPATIBILITY.md row that documents it, and every
//! listed difference must still occur, so the list and the documentation stay honest.
//!
//! Both servers bind a loopback address chosen at random in 127.0.0.0/8 (port 0 for ours;
//! for Java a port found free on that address), and every wait polls with a deadline.

mod compare;
mod script;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use discovery_testkit::logs::tail;
use discovery_testkit::ports::free_port;
use discovery_testkit::{discoveryd, eventually, now_ms, DiscoveryProcess, ProcessOptions};
use discovery_types::WireEntry;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Method};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::java::{self, JavaProcess, Jdk};
use compare::{Body, Check, Context, Difference, Normalised, Observed, CLIENT_HEADERS};
use script::{Action, Payload, Request, Step, Until, ENV};

const JAVA_MAIN: &str = "discovery.interop.JavaDiscoveryServer";
/// A JVM on two busy cores takes 15–30 s to start the server.
const JAVA_START_DEADLINE: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The max age of phase 1, for the expiry cases.
const SHORT_MAX_AGE: &str = "2s";

/// A loopback address of our own (127.0.0.2–127.0.0.254, chosen at random) so that the
/// port found free below is very unlikely to be taken by another test in between.
fn loopback_address() -> Ipv4Addr {
    let random = uuid::Uuid::new_v4().as_bytes()[0];
    Ipv4Addr::new(127, 0, 0, 2 + random % 253)
}

/// The Java server, its `etc/` and data directory.
struct JavaServer {
    // Field order: the process dies before its directory goes.
    process: JavaProcess,
    dir: TempDir,
    classpath: String,
    ip: Ipv4Addr,
    port: u16,
    starts: u32,
}

impl JavaServer {
    async fn start(classpath: String, max_age: Option<&str>) -> JavaServer {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let ip = loopback_address();
        let (process, port) = Self::launch(dir.path(), &classpath, ip, max_age, 1).await;
        JavaServer {
            process,
            dir,
            classpath,
            ip,
            port,
            starts: 1,
        }
    }

    /// Writes `etc/config.properties` (the Java server reads its whole configuration from
    /// it) and starts the JVM, then waits until a lookup answers.
    async fn launch(
        dir: &Path,
        classpath: &str,
        ip: Ipv4Addr,
        max_age: Option<&str>,
        start: u32,
    ) -> (JavaProcess, u16) {
        // Released again for the Java server to bind (it takes its port up front).
        let port = free_port(&ip.to_string());
        let mut config = format!(
            "node.environment={ENV}\n\
             node.bind-ip={ip}\n\
             node.internal-address={ip}\n\
             http-server.http.port={port}\n\
             # Lookups read the store directly (what the Java tests do), so that the\n\
             # comparison is not at the mercy of a 1 s cache.\n\
             discovery.store-cache-ttl=0ms\n\
             static.db.location={}\n",
            dir.join("static-db").display()
        );
        if let Some(max_age) = max_age {
            config.push_str(&format!("discovery.max-age={max_age}\n"));
        }
        let etc = dir.join("etc");
        std::fs::create_dir_all(&etc).expect("cannot create etc/");
        std::fs::write(etc.join("config.properties"), config).expect("cannot write the config");
        let args = vec![
            "-Xmx512m".to_owned(),
            "-cp".to_owned(),
            classpath.to_owned(),
            "-Dconfig=etc/config.properties".to_owned(),
            JAVA_MAIN.to_owned(),
        ];
        let mut process =
            JavaProcess::start(&format!("java-discovery-{start}"), Jdk::J25, dir, &args)
                .expect("cannot start the Java discovery server");
        let url = format!("http://{ip}:{port}/v1/service");
        let client = Client::new();
        let what = format!("the Java discovery server to answer {url}");
        eventually(JAVA_START_DEADLINE, &what, || {
            if let Some(status) = process.exited() {
                panic!(
                    "the Java discovery server exited with {status} before answering:\n{}",
                    tail(&process.logs(), 80)
                );
            }
            let request = client.get(&url).timeout(Duration::from_secs(5)).send();
            async move {
                let status = request.await.map_err(|e| e.to_string())?.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(status.to_string())
                }
            }
        })
        .await;
        (process, port)
    }

    async fn restart(&mut self, max_age: Option<&str>) {
        self.process
            .terminate(STOP_TIMEOUT)
            .expect("the Java discovery server did not stop");
        self.starts += 1;
        let (process, port) = Self::launch(
            self.dir.path(),
            &self.classpath,
            self.ip,
            max_age,
            self.starts,
        )
        .await;
        self.process = process;
        self.port = port;
    }

    fn base_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }

    fn logs(&self) -> String {
        tail(&self.process.logs(), 60)
    }
}

/// Our server and its data directory.
struct OurServer {
    process: DiscoveryProcess,
    _dir: TempDir,
}

impl OurServer {
    fn options(data_dir: PathBuf, max_age: Option<&str>) -> ProcessOptions {
        let mut options = ProcessOptions::new(discoveryd!(), data_dir)
            .set("node.environment", ENV)
            // The same configuration file as Java's (accepted and ignored by us).
            .set("discovery.store-cache-ttl", "0ms");
        options.bind_ip = loopback_address().to_string();
        if let Some(max_age) = max_age {
            options = options.set("discovery.max-age", max_age);
        }
        options
    }

    fn start(max_age: Option<&str>) -> OurServer {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let options = Self::options(dir.path().join("data"), max_age);
        let process = DiscoveryProcess::start(options).expect("discoveryd did not start");
        OurServer { process, _dir: dir }
    }

    fn restart(&mut self, max_age: Option<&str>) {
        self.process.terminate().expect("discoveryd did not stop");
        let options = Self::options(self.process.data_dir().to_path_buf(), max_age);
        self.process = DiscoveryProcess::start(options).expect("discoveryd did not restart");
    }

    fn logs(&self) -> String {
        tail(&self.process.logs(), 60)
    }
}

/// A value a template can name.
#[derive(Debug, Clone)]
enum Var {
    Time(i64),
    Text(String),
}

/// One server as the script sees it: where it is, and what this run bound for it.
struct Side {
    label: &'static str,
    base_url: String,
    client: Client,
    vars: HashMap<String, Var>,
    context: Context,
    last_send_ms: i64,
}

impl Side {
    fn new(label: &'static str, base_url: String, run_start_ms: i64) -> Side {
        Side {
            label,
            base_url: base_url.clone(),
            client: Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .expect("an HTTP client"),
            vars: HashMap::new(),
            context: Context {
                base_url,
                // Server-stamped clocks fall inside the run; anything else is kept as is.
                clock_window: (run_start_ms - 600_000, run_start_ms + 3_600_000),
                ..Context::default()
            },
            last_send_ms: 0,
        }
    }

    /// Evaluates `name`, `name+N` or `name-N`; records clock values it produces.
    fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let split = expression.find(['+', '-']).filter(|at| *at > 0);
        let (name, offset) = match split {
            Some(at) => {
                let offset: i64 = expression[at..]
                    .trim_start_matches('+')
                    .parse()
                    .map_err(|e| format!("bad offset in ${{{expression}}}: {e}"))?;
                (&expression[..at], offset)
            }
            None => (expression, 0),
        };
        let base = match name {
            "now" => Var::Time(now_ms()),
            _ => self
                .vars
                .get(name)
                .cloned()
                .ok_or_else(|| format!("${{{expression}}}: {name} is not bound"))?,
        };
        match base {
            Var::Time(t) => {
                let value = t + offset;
                self.context.sent_times.push((value, expression.to_owned()));
                Ok(json!(value))
            }
            Var::Text(text) if offset == 0 => Ok(json!(text)),
            Var::Text(_) => Err(format!("${{{expression}}}: {name} is not a clock value")),
        }
    }

    /// Replaces every `${…}` in `text`.
    fn fill(&mut self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("unclosed template in {text:?}"))?;
            let value = self.eval(&rest[start + 2..start + end])?;
            match value {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            }
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Evaluates a JSON template.
    fn fill_json(&mut self, template: &Value) -> Result<Value, String> {
        Ok(match template {
            Value::String(text)
                if text.starts_with("${")
                    && text.ends_with('}')
                    && text.matches("${").count() == 1 =>
            {
                self.eval(&text[2..text.len() - 1])?
            }
            Value::String(text) => json!(self.fill(text)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.fill_json(item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(fields) => {
                if let (1, Some(inner)) = (fields.len(), fields.get("$b64")) {
                    let text = self.fill_json(inner)?;
                    let text = text.as_str().ok_or("$b64 takes a string")?.to_owned();
                    return Ok(json!(BASE64.encode(text)));
                }
                if let (1, Some(inner)) = (fields.len(), fields.get("$b64json")) {
                    let value = self.fill_json(inner)?;
                    let bytes = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
                    return Ok(json!(BASE64.encode(bytes)));
                }
                let mut out = serde_json::Map::new();
                for (name, field) in fields {
                    out.insert(name.clone(), self.fill_json(field)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Sends `request` and reads the answer. Only failures to get an answer at all are
    /// errors; any status is an observation.
    async fn send(&mut self, request: &Request) -> Result<Observed, String> {
        // Java versions writes by the wall clock and drops a second write to a key in the
        // same millisecond (documented); the conformance cases space writes ≥ 1 ms apart,
        // so every step goes out in a later millisecond than the one before. This waits
        // at most a millisecond.
        while now_ms() <= self.last_send_ms {
            tokio::task::yield_now().await;
        }
        if let Some(variable) = request.at {
            self.vars.insert(variable.to_owned(), Var::Time(now_ms()));
        }
        let path = self.fill(&request.path)?;
        let method = Method::from_bytes(request.method.as_bytes()).map_err(|e| e.to_string())?;
        let mut builder = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        for (name, value) in &request.headers {
            builder = builder.header(*name, self.fill(value)?);
        }
        let (default_type, body) = match &request.payload {
            Payload::None => (None, None),
            Payload::Json(template) => {
                let value = self.fill_json(template)?;
                (
                    Some("application/json"),
                    Some(serde_json::to_vec(&value).map_err(|e| e.to_string())?),
                )
            }
            Payload::Raw(text) => (None, Some(text.as_bytes().to_vec())),
            Payload::Smile(template) => {
                let value = self.fill_json(template)?;
                let entries: Vec<WireEntry> = serde_json::from_value(value)
                    .map_err(|e| format!("the Smile batch is not a list of entries: {e}"))?;
                let bytes = serde_smile::to_vec(&entries).map_err(|e| e.to_string())?;
                (Some("application/x-jackson-smile"), Some(bytes))
            }
        };
        match request.content_type.or(default_type) {
            Some("") | None => {}
            Some(content_type) => builder = builder.header(CONTENT_TYPE, content_type),
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        self.last_send_ms = now_ms();
        let what = format!("{} {} {path}", self.label, request.method);
        let response = builder
            .send()
            .await
            .map_err(|e| format!("{what}: no answer: {e}"))?;
        let status = response.status().as_u16();
        let mut headers = std::collections::BTreeMap::new();
        for name in CLIENT_HEADERS {
            if let Some(value) = response.headers().get(name) {
                headers.insert(
                    name.to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                );
            }
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("{what}: reading the body: {e}"))?;
        let content_type = headers.get("content-type").cloned().unwrap_or_default();
        let body = if bytes.is_empty() {
            Body::Empty
        } else if content_type.starts_with("application/x-jackson-smile") {
            match serde_smile::from_slice::<Vec<WireEntry>>(&bytes) {
                Ok(entries) => {
                    Body::Json(serde_json::to_value(entries).map_err(|e| e.to_string())?)
                }
                Err(e) => Body::Text(format!("(undecodable Smile: {e})")),
            }
        } else if content_type.starts_with("application/json") {
            serde_json::from_slice(&bytes)
                .map(Body::Json)
                .unwrap_or_else(|_| Body::Text(String::from_utf8_lossy(&bytes).into_owned()))
        } else {
            Body::Text(String::from_utf8_lossy(&bytes).into_owned())
        };
        let observed = Observed {
            status,
            headers,
            body,
        };
        if let Some((variable, from)) = request.capture {
            let captured = match from.strip_prefix("header:") {
                Some(name) => observed.headers.get(name).cloned().unwrap_or_default(),
                None => match &observed.body {
                    Body::Json(value) => value
                        .pointer(from)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    _ => String::new(),
                },
            };
            if !captured.is_empty() {
                self.context
                    .replacements
                    .push((captured.clone(), format!("<{variable}>")));
            }
            self.vars.insert(variable.to_owned(), Var::Text(captured));
        }
        Ok(observed)
    }

    fn normalise(&self, observed: &Observed, request: &Request) -> Normalised {
        let context = Context {
            keys: request.keys.clone(),
            ..self.context.clone()
        };
        compare::normalise(observed, &context)
    }
}

fn holds(until: Until, observed: &Observed) -> bool {
    let count = match &observed.body {
        Body::Json(value) => value["services"].as_array().map(Vec::len),
        _ => None,
    };
    match until {
        Until::NoServices => observed.status == 200 && count == Some(0),
        Until::Services(n) => observed.status == 200 && count == Some(n),
    }
}

/// A synthetic answer summarising a step that is not one request.
fn summary(body: Value) -> Normalised {
    Normalised {
        status: 200,
        headers: Default::default(),
        body: Body::Json(body),
    }
}

struct Run {
    java: JavaServer,
    ours: OurServer,
    java_side: Side,
    our_side: Side,
    differences: Vec<Difference>,
    steps_run: usize,
}

impl Run {
    fn fail(&self, message: &str) -> ! {
        panic!(
            "{message}\n--- Java server log ({}, pid {}; tail) ---\n{}\n--- discoveryd log (pid {}; tail) ---\n{}",
            self.java.process.name(),
            self.java.process.pid(),
            self.java.logs(),
            self.ours.process.pid(),
            self.ours.logs()
        )
    }

    fn record(
        &mut self,
        step: &Step,
        request: &str,
        check: Check,
        java: &Normalised,
        ours: &Normalised,
    ) {
        self.differences.extend(compare::compare(
            step.case, &step.name, request, check, java, ours,
        ));
    }

    async fn send_both(&mut self, request: &Request) -> (Observed, Observed) {
        let java = self.java_side.send(request).await;
        let ours = self.our_side.send(request).await;
        match (java, ours) {
            (Ok(java), Ok(ours)) => (java, ours),
            (Err(e), _) | (_, Err(e)) => self.fail(&e),
        }
    }

    async fn run(&mut self, steps: &[Step]) {
        for step in steps {
            self.steps_run += 1;
            match &step.action {
                Action::Send(request) => {
                    let (java, ours) = self.send_both(request).await;
                    let (java, ours) = (
                        self.java_side.normalise(&java, request),
                        self.our_side.normalise(&ours, request),
                    );
                    self.record(step, &request.describe(), request.check, &java, &ours);
                }
                Action::Poll {
                    request,
                    until,
                    deadline,
                } => {
                    let (java, java_held) = self.poll(true, request, *until, *deadline).await;
                    let (ours, ours_held) = self.poll(false, request, *until, *deadline).await;
                    if java_held != ours_held || !java_held {
                        let word = |held: bool| json!(if held { "held" } else { "timed out" });
                        self.differences.push(Difference {
                            case: step.case,
                            step: step.name.clone(),
                            request: request.describe(),
                            what: format!("poll {until:?} within {deadline:?}"),
                            java: word(java_held),
                            ours: word(ours_held),
                        });
                    }
                    let (java, ours) = (
                        self.java_side.normalise(&java, request),
                        self.our_side.normalise(&ours, request),
                    );
                    self.record(step, &request.describe(), request.check, &java, &ours);
                }
                Action::KeepAlive {
                    renew,
                    probe,
                    until,
                    every,
                    lasting,
                } => {
                    let java = self
                        .keep_alive(true, renew, probe, *until, *every, *lasting)
                        .await;
                    let ours = self
                        .keep_alive(false, renew, probe, *until, *every, *lasting)
                        .await;
                    let what = format!("keep-alive {} / {}", renew.describe(), probe.describe());
                    self.record(step, &what, Check::Full, &summary(java), &summary(ours));
                }
                Action::Bulk { count, lookup } => {
                    let (java, java_lookup) = self.bulk(true, *count, lookup).await;
                    let (ours, our_lookup) = self.bulk(false, *count, lookup).await;
                    let what = format!("bulk PUT /v1/announcement/bulk-* x{count}");
                    self.record(step, &what, Check::Full, &summary(java), &summary(ours));
                    let (java, ours) = (
                        self.java_side.normalise(&java_lookup, lookup),
                        self.our_side.normalise(&our_lookup, lookup),
                    );
                    self.record(step, &lookup.describe(), lookup.check, &java, &ours);
                }
                Action::Restart => {
                    self.java.restart(None).await;
                    self.ours.restart(None);
                    self.java_side.base_url = self.java.base_url();
                    self.java_side.context.base_url = self.java.base_url();
                    self.our_side.base_url = self.ours.process.base_url();
                    self.our_side.context.base_url = self.ours.process.base_url();
                }
            }
        }
    }

    /// Case 37 on one server: the announcements, then the lookup at once, so that none
    /// of them is near its max age when listed.
    async fn bulk(&mut self, java: bool, count: usize, lookup: &Request) -> (Value, Observed) {
        let side = if java {
            &mut self.java_side
        } else {
            &mut self.our_side
        };
        let started = Instant::now();
        let statuses = bulk(&side.base_url, count).await;
        let elapsed = started.elapsed();
        let observed = side.send(lookup).await;
        eprintln!(
            "differential: {} took {elapsed:.1?} for {count} announcements",
            side.label
        );
        match (statuses, observed) {
            (Ok(statuses), Ok(observed)) => (statuses, observed),
            (Err(e), _) | (_, Err(e)) => self.fail(&e),
        }
    }

    async fn poll(
        &mut self,
        java: bool,
        request: &Request,
        until: Until,
        deadline: Duration,
    ) -> (Observed, bool) {
        let end = Instant::now() + deadline;
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        loop {
            ticks.tick().await;
            let side = if java {
                &mut self.java_side
            } else {
                &mut self.our_side
            };
            let observed = match side.send(request).await {
                Ok(observed) => observed,
                Err(e) => self.fail(&e),
            };
            if holds(until, &observed) {
                return (observed, true);
            }
            if Instant::now() >= end {
                return (observed, false);
            }
        }
    }

    async fn keep_alive(
        &mut self,
        java: bool,
        renew: &Request,
        probe: &Request,
        until: Until,
        every: Duration,
        lasting: Duration,
    ) -> Value {
        let end = Instant::now() + lasting;
        // The renewal schedule of an announcing client, not a wait for a condition.
        let mut ticks = tokio::time::interval(every);
        let mut statuses = BTreeSet::new();
        let (mut probes, mut failed) = (0, 0);
        while Instant::now() < end {
            ticks.tick().await;
            let side = if java {
                &mut self.java_side
            } else {
                &mut self.our_side
            };
            let renewed = side.send(renew).await;
            let probed = side.send(probe).await;
            match (renewed, probed) {
                (Ok(renewed), Ok(probed)) => {
                    statuses.insert(renewed.status);
                    probes += 1;
                    if !holds(until, &probed) {
                        failed += 1;
                    }
                }
                (Err(e), _) | (_, Err(e)) => self.fail(&e),
            }
        }
        if probes < 5 {
            self.fail(&format!("only {probes} keep-alive rounds in {lasting:?}"));
        }
        json!({"renewal statuses": statuses, "probes not listing the node": failed})
    }
}

/// Announces `count` nodes (case 37) with a few concurrent clients; summarises statuses.
async fn bulk(base_url: &str, count: usize) -> Result<Value, String> {
    const WORKERS: usize = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let base_url = base_url.to_owned();
        tasks.spawn(async move {
            let client = Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .map_err(|e| e.to_string())?;
            let mut statuses = BTreeSet::new();
            for index in (worker..count).step_by(WORKERS) {
                let (node, body) = script::bulk_node(index);
                let response = client
                    .put(format!("{base_url}/v1/announcement/{node}"))
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| format!("PUT {base_url}/v1/announcement/{node}: {e}"))?;
                statuses.insert(response.status().as_u16());
            }
            Ok::<_, String>(statuses)
        });
    }
    let mut statuses = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        statuses.extend(joined.map_err(|e| e.to_string())??);
    }
    Ok(json!({"statuses": statuses}))
}

fn allow_list() -> compare::AllowList {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/differential-allowed.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let list: compare::AllowList = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a valid allow-list: {e}", path.display()));
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/COMPATIBILITY.md");
    let doc = std::fs::read_to_string(&doc_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", doc_path.display()));
    let missing: Vec<String> = list
        .allowed
        .iter()
        .filter(|a| !compare::has_row(&doc, &a.compatibility))
        .map(|a| {
            format!(
                "  {:?} (for {} in cases {:?})",
                a.compatibility, a.what, a.cases
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "allow-list entries point at rows docs/COMPATIBILITY.md does not have:\n{}",
        missing.join("\n")
    );
    list
}

// The allow-list is checked against COMPATIBILITY.md without any server, so a broken
// pointer shows up even where the Java side cannot run.
#[test]
fn every_allowed_difference_points_at_a_compatibility_row() {
    let list = allow_list();
    assert!(!list.allowed.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_and_ours_answer_the_conformance_script_alike() {
    let allow = allow_list();
    let run_start = now_ms();
    // Maven runs (and, on a first run, downloads) in the blocking pool.
    let classpath = tokio::task::spawn_blocking(|| java::classpath("discovery-server"))
        .await
        .expect("the Maven build panicked");
    let java = JavaServer::start(classpath, Some(SHORT_MAX_AGE)).await;
    let ours = OurServer::start(Some(SHORT_MAX_AGE));
    let java_side = Side::new("java", java.base_url(), run_start);
    let our_side = Side::new("ours", ours.process.base_url(), run_start);
    let mut run = Run {
        java,
        ours,
        java_side,
        our_side,
        differences: Vec::new(),
        steps_run: 0,
    };
    let phase_one = script::phase_one();
    let phase_two = script::phase_two();
    run.run(&phase_one).await;
    run.run(&phase_two).await;

    let cases: BTreeSet<u32> = phase_one.iter().chain(&phase_two).map(|s| s.case).collect();
    let verdict = compare::judge(&run.differences, &allow);
    let allowed = run.differences.len() - verdict.unlisted.len();
    eprintln!(
        "differential: {} steps over {} cases; {} difference(s), {allowed} allowed, {} unlisted; \
         {} allow-list entr(y/ies), {} stale",
        run.steps_run,
        cases.len(),
        run.differences.len(),
        verdict.unlisted.len(),
        allow.allowed.len(),
        verdict.stale.len()
    );
    // What was allowed, for the record; what was not is in the failure message.
    for difference in run
        .differences
        .iter()
        .filter(|d| !verdict.unlisted.contains(d))
    {
        eprintln!("  allowed: {difference}");
    }
    if !verdict.is_clean() {
        run.fail(&format!(
            "the Java server and discoveryd differ beyond the allow-list:\n{verdict}"
        ));
    }
}

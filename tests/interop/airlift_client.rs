//! The real airlift discovery client against real `discoveryd` processes.
//!
//! Trino 476 is built on airlift 336, and its nodes find each other through airlift's own
//! `Announcer`, `HttpDiscoveryAnnouncementClient`, `HttpDiscoveryLookupClient` and
//! `CachingServiceSelector`. Rather than trusting our reading of that code, these tests
//! run it: `tests/interop/java/airlift-client` is a small command-line harness that wires
//! the client with airlift's own Bootstrap and DiscoveryModule and prints, as JSON lines,
//! what the client did (announcements, lookups, the ETag it sent, whether it kept its list,
//! the list a selector shows). The tests drive it over stdin/stdout and check both sides:
//! the client's report and our request log (`discovery::request` debug lines), which says
//! what actually arrived.
//!
//! What is covered: announcing (listed by every node of a cluster), lookups (the client
//! reads exactly what we serve), `Cache-Control` and `ETag` (the client follows our
//! max-age and gets 304s that keep its list), a 503 while a restarted node warms up (the
//! selector keeps its list), failover (a comma-separated
//! `discovery.uri` is not a list in 336; a service inventory and nginx are what work when
//! a node is SIGKILLed) and the DELETE sent by `Announcer.destroy()` on shutdown.
//!
//! The harness JVMs run one test at a time: each takes seconds of CPU to start, the
//! machines running this suite can be small, and several tests measure refresh intervals.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use discovery_testkit::announcements::{announcement, service};
use discovery_testkit::logs::tail;
use discovery_testkit::nginx::Nginx;
use discovery_testkit::{
    discoveryd, eventually, Cluster, DiscoveryProcess, ProcessOptions, ENVIRONMENT,
};
use serde_json::{json, Value};

use crate::support::java::{self, Jdk};

const MAIN_CLASS: &str = "discovery.interop.airlift.AirliftClientHarness";

/// JVM flags of the harness. Trino starts with `-Djdk.attach.allowAttachSelf=true`; the
/// other two keep the object-layout library behind airlift's HTTP client statistics from
/// spending seconds probing the JVM at start (and from warning about it).
const JVM_FLAGS: &[&str] = &[
    "-Djdk.attach.allowAttachSelf=true",
    "-XX:+EnableDynamicAgentLoading",
    "-Djol.skipHotspotSAAttach=true",
];

/// From `java` to the harness's first line: a JVM plus Guice on a busy two-core machine.
const START_DEADLINE: Duration = Duration::from_secs(120);

/// Deadline of anything the client does on its own schedule once it runs.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// Shorter than the 30 s time-to-live of an announcement: an entry that disappears within
/// this long after its node stopped was deleted, not expired.
const DELETE_DEADLINE: Duration = Duration::from_secs(15);

/// One harness JVM at a time (see the module comment). A tokio mutex works across the
/// separate runtimes of the tests and is not poisoned by a failing test.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------
// The harness process.

/// A running harness: commands go to its stdin, JSON events come from its stdout, and
/// airlift's log (stderr) goes to a file printed when a test fails. Dropping it kills the
/// JVM.
struct AirliftClient {
    name: String,
    child: Mutex<Child>,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Value>>>,
    /// Set by the reader thread once stdout ended, i.e. the JVM exited.
    ended: Arc<AtomicBool>,
    stderr_path: PathBuf,
}

impl AirliftClient {
    /// Starts the harness: `config` is airlift configuration (`node.environment` is set
    /// to the cluster's), `command` the harness command and its operands.
    fn start(name: &str, dir: &Path, config: &[(&str, &str)], command: &[&str]) -> Self {
        let classpath = java::classpath("airlift-client");
        let stderr_path = dir.join(format!("{name}.stderr.log"));
        let stderr = File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", stderr_path.display()));
        let mut cmd = Command::new(Jdk::J25.java());
        cmd.args(JVM_FLAGS)
            .arg("-cp")
            .arg(&classpath)
            .arg(MAIN_CLASS)
            .arg("--set")
            .arg(format!("node.environment={ENVIRONMENT}"));
        for (key, value) in config {
            cmd.arg("--set").arg(format!("{key}={value}"));
        }
        let mut child = cmd
            .args(command)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the airlift harness {name}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let events = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(AtomicBool::new(false));
        {
            let events = Arc::clone(&events);
            let ended = Arc::clone(&ended);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    // Anything that is not an event is kept too: it would explain a failure.
                    let event = serde_json::from_str(&line)
                        .unwrap_or_else(|_| json!({"event": "raw", "line": line}));
                    if let Ok(mut events) = events.lock() {
                        events.push(event);
                    }
                }
                ended.store(true, Ordering::SeqCst);
            });
        }
        AirliftClient {
            name: name.into(),
            child: Mutex::new(child),
            stdin,
            events,
            ended,
            stderr_path,
        }
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The events called `name`, in order.
    fn named(&self, name: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == name)
            .collect()
    }

    fn send(&mut self, line: &str) {
        let name = self.name.clone();
        let stdin = self
            .stdin
            .as_mut()
            .unwrap_or_else(|| panic!("{name}: stdin already closed"));
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{name}: cannot write {line:?}: {e}\n{}", self.report()));
    }

    /// Polls the events until `find` picks something out of them; fails at the deadline,
    /// or as soon as the harness has exited without producing it.
    async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        find: impl Fn(&[Value]) -> Option<T>,
    ) -> T {
        let found = eventually(timeout, &format!("{}: {what}", self.name), || {
            // `ended` first: once it is set every event is already in the list.
            let ended = self.ended.load(Ordering::SeqCst);
            let events = self.events();
            let found = find(&events);
            let last = events.last().cloned();
            async move {
                match found {
                    Some(value) => Ok(Some(value)),
                    None if ended => Ok(None),
                    None => Err(format!("last event: {last:?}")),
                }
            }
        })
        .await;
        found.unwrap_or_else(|| panic!("{} exited before {what}:\n{}", self.name, self.report()))
    }

    /// Waits for the harness's `started` line (or fails with its `error` line).
    /// Waits until this selector has listed the service `service_id`.
    async fn wait_lists(&self, service_id: &str) {
        self.wait_for(
            "the selector to list the worker",
            CLIENT_DEADLINE,
            |events| {
                events
                    .iter()
                    .any(|e| e["event"] == "services" && ids(&e["services"]).contains(service_id))
                    .then_some(())
            },
        )
        .await;
    }

    /// The service id an announcer reported at start.
    async fn service_id(&self) -> String {
        self.started().await["serviceId"]
            .as_str()
            .expect("service id")
            .to_owned()
    }

    async fn started(&self) -> Value {
        let event = self
            .wait_for("to start", START_DEADLINE, |events| {
                events
                    .iter()
                    .find(|e| e["event"] == "started" || e["event"] == "error")
                    .cloned()
            })
            .await;
        assert_eq!(
            event["event"],
            "started",
            "{} did not start:\n{}",
            self.name,
            self.report()
        );
        event
    }

    /// Says `stop`, closes stdin and waits for the exit: the harness stops airlift's
    /// lifecycle, which runs `Announcer.destroy()`.
    async fn stop(&mut self) -> ExitStatus {
        if self.stdin.is_some() {
            self.send("stop");
        }
        self.stdin = None;
        self.exit_status().await
    }

    async fn exit_status(&self) -> ExitStatus {
        eventually(CLIENT_DEADLINE, &format!("{} to exit", self.name), || {
            let status = self
                .child
                .lock()
                .map_err(|_| anyhow!("child lock poisoned"))
                .and_then(|mut child| child.try_wait().map_err(anyhow::Error::from));
            async move {
                match status? {
                    Some(status) => Ok(status),
                    None => bail!("still running"),
                }
            }
        })
        .await
    }

    /// Events and the end of airlift's log, for failure messages.
    fn report(&self) -> String {
        let events: Vec<String> = self.events().iter().map(Value::to_string).collect();
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        // Bootstrap prints its whole configuration table; it would crowd out the rest.
        let stderr: String = stderr
            .lines()
            .filter(|l| !l.contains("io.airlift.log.Logger info") && !l.starts_with("INFO: "))
            .collect::<Vec<_>>()
            .join("\n");
        format!(
            "===== events of {} =====\n{}\n===== stderr of {} =====\n{}",
            self.name,
            tail(&events.join("\n"), 80),
            self.name,
            tail(&stderr, 80)
        )
    }
}

impl Drop for AirliftClient {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
        if let Ok(mut child) = self.child.lock() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Our side: request log, lookups, announcements.

/// One line of our request log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Logged {
    method: String,
    path: String,
    status: u16,
}

/// The requests `node` (the User-Agent, which airlift sets to its node id) made, from a
/// `discoveryd` log with `discovery::request=debug`.
fn requests_from(log: &str, node: &str) -> Vec<Logged> {
    let user_agent = format!("node={node}");
    log.lines()
        .filter_map(|line| {
            let rest = &line[line.find("discovery::request: ")? + "discovery::request: ".len()..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.len() < 4 || fields[3] != user_agent {
                return None;
            }
            Some(Logged {
                method: fields[0].into(),
                path: fields[1].into(),
                status: fields[2].parse().ok()?,
            })
        })
        .collect()
}

fn count(requests: &[Logged], method: &str, path: &str, status: u16) -> usize {
    requests
        .iter()
        .filter(|r| r.method == method && r.path == path && r.status == status)
        .count()
}

fn http_client() -> reqwest::Client {
    discovery_testkit::http::http_client(Duration::from_secs(20))
}

/// `GET {base}/v1/service/{type}/{pool}`: the body and the ETag we sent.
async fn lookup_at(base: &str, service_type: &str, pool: &str) -> anyhow::Result<(Value, String)> {
    let url = format!("{base}/v1/service/{service_type}/{pool}");
    let response = http_client().get(&url).send().await.context(url.clone())?;
    if !response.status().is_success() {
        bail!("GET {url}: {}", response.status());
    }
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.context(url)?;
    Ok((body, etag))
}

async fn put_announcement(base: &str, node_id: &str, body: &Value) {
    let url = format!("{base}/v1/announcement/{node_id}");
    let response = http_client()
        .put(&url)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
    assert_eq!(response.status().as_u16(), 202, "PUT {url}");
}

async fn delete_announcement(base: &str, node_id: &str) {
    let url = format!("{base}/v1/announcement/{node_id}");
    let response = http_client()
        .delete(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DELETE {url}: {e}"));
    assert_eq!(response.status().as_u16(), 204, "DELETE {url}");
}

/// An announcement as a Trino worker sends it, with one `trino` service.
fn worker_announcement(service_id: &str, http: &str) -> Value {
    announcement(
        "general",
        "/test/rack-1",
        vec![service(
            service_id,
            "trino",
            json!({"http": http, "coordinator": "false"}),
        )],
    )
}

/// The service ids of a lookup body or of a harness event's `services`.
fn ids(services: &Value) -> BTreeSet<String> {
    services
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Milliseconds between consecutive events (the harness's monotonic `ms`).
fn gaps(events: &[Value]) -> Vec<i64> {
    events
        .windows(2)
        .map(|w| w[1]["ms"].as_i64().unwrap_or(0) - w[0]["ms"].as_i64().unwrap_or(0))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests.

/// The real Announcer announces to one node of a 3-node cluster; every node lists the
/// service exactly as airlift built it, a real selector on another node sees it, the
/// client re-announces at 80 % of our `Cache-Control` max-age, and `destroy()` sends a
/// DELETE that removes the entry everywhere well before it could have expired.
#[tokio::test(flavor = "multi_thread")]
async fn announcer_reaches_every_node_and_destroy_unannounces() {
    let _one = ONE_AT_A_TIME.lock().await;
    java::build();
    let cluster = fast_cluster().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let node0 = cluster.base_url(0);
    let node2 = cluster.base_url(2);
    let mut worker = AirliftClient::start(
        "announcer",
        dir.path(),
        &[("node.id", "airlift-worker"), ("discovery.uri", &node0)],
        &[
            "announce",
            "trino",
            "http=http://127.0.0.1:8080",
            "coordinator=false",
            "node_version=476",
        ],
    );
    let mut coordinator = AirliftClient::start(
        "selector",
        dir.path(),
        &[
            ("node.id", "airlift-coordinator"),
            ("discovery.uri", &node2),
        ],
        &["selector", "trino", "general"],
    );
    let started = worker.started().await;
    let service_id = started["serviceId"]
        .as_str()
        .expect("the harness reports the service id")
        .to_owned();
    coordinator.started().await;

    // Every node lists the service as airlift announced it: location defaults to
    // "/<node id>", pool to "general", properties are the ones given.
    let expected = json!({
        "id": service_id,
        "nodeId": "airlift-worker",
        "type": "trino",
        "pool": "general",
        "location": "/airlift-worker",
        "properties": {
            "http": "http://127.0.0.1:8080",
            "coordinator": "false",
            "node_version": "476",
        },
    });
    for i in 0..3 {
        eventually(
            CLIENT_DEADLINE,
            "every node to list the airlift worker",
            || async {
                let (body, _) = lookup_at(&cluster.base_url(i), "trino", "general").await?;
                if body["services"]
                    .as_array()
                    .is_some_and(|s| s.contains(&expected))
                {
                    Ok(())
                } else {
                    bail!("{} lists {body}", cluster.node_id(i))
                }
            },
        )
        .await;
    }
    // The raw store holds it under the node id the client put in the path.
    let raw = cluster.raw_store(0, "dynamic").await.expect("raw store");
    let keys: Vec<String> = raw
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["key"].as_str())
                .filter_map(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
                .map(|k| String::from_utf8_lossy(&k).into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        keys.contains(&"airlift-worker".to_owned()),
        "raw keys: {keys:?}"
    );

    // The real selector, pointed at another node, shows it.
    coordinator.wait_lists(&service_id).await;

    // Our announce max-age (1 s) sets the cadence: the client waits 80 % of it after each
    // answer. Without the header it would wait 8 s.
    let announces = worker
        .wait_for("five announcements", CLIENT_DEADLINE, |events| {
            let ok: Vec<Value> = events
                .iter()
                .filter(|e| e["event"] == "announce" && e["ok"] == true)
                .cloned()
                .collect();
            (ok.len() >= 5).then_some(ok)
        })
        .await;
    assert!(
        announces.iter().all(|e| e["maxAgeMs"] == 1000),
        "the client did not read max-age=1 from our answers: {announces:?}"
    );
    let intervals = gaps(&announces);
    // Only a lower bound: the client never announces sooner than 80 % of our max-age
    // (a loaded machine can only make the gaps longer).
    assert!(
        intervals.iter().all(|&gap| gap >= 750),
        "announcement intervals {intervals:?} ms, expected at least 800"
    );
    let puts = count(
        &requests_from(&cluster.node_logs(0), "airlift-worker"),
        "PUT",
        "/v1/announcement/airlift-worker",
        202,
    );
    assert!(puts >= 5, "node 0 logged {puts} PUTs from the worker");

    // Shutdown: destroy() sends one DELETE, and the entry is gone from every node long
    // before its 30 s time-to-live could have run out.
    let status = worker.stop().await;
    assert!(
        status.success(),
        "announcer exited with {status}:\n{}",
        worker.report()
    );
    let unannounces = worker.named("unannounce");
    assert_eq!(unannounces.len(), 1, "{unannounces:?}");
    assert_eq!(unannounces[0]["ok"], true, "{unannounces:?}");
    let deletes = count(
        &requests_from(&cluster.node_logs(0), "airlift-worker"),
        "DELETE",
        "/v1/announcement/airlift-worker",
        204,
    );
    assert_eq!(deletes, 1, "DELETEs from the worker on node 0");
    for i in 0..3 {
        eventually(DELETE_DEADLINE, "every node to drop the worker", || async {
            let (body, _) = lookup_at(&cluster.base_url(i), "trino", "general").await?;
            if ids(&body["services"]).contains(&service_id) {
                bail!("{} still lists it: {body}", cluster.node_id(i))
            }
            Ok(())
        })
        .await;
    }
    coordinator
        .wait_for(
            "the selector to drop the worker",
            CLIENT_DEADLINE,
            |events| {
                events
                    .last()
                    .filter(|e| e["event"] == "services" && ids(&e["services"]).is_empty())
                    .map(|_| ())
            },
        )
        .await;
    let status = coordinator.stop().await;
    assert!(status.success(), "selector exited with {status}");
}

/// The lookup client reads exactly what we serve (body, ETag, max-age). Refreshing with
/// the previous answer sends our ETag back; we answer 304 and the client keeps its list
/// object. After a change the same refresh gets a 200 with the new list.
#[tokio::test(flavor = "multi_thread")]
async fn lookup_client_reads_our_answers_and_keeps_its_list_on_304() {
    let _one = ONE_AT_A_TIME.lock().await;
    java::build();
    let data = tempfile::tempdir().expect("temporary directory");
    let server = DiscoveryProcess::start(
        ProcessOptions::new(discoveryd!(), data.path().join("node"))
            .set("discovery.lookup-max-age", "3s"),
    )
    .expect("discoveryd starts");
    let base = server.base_url();
    put_announcement(
        &base,
        "w1",
        &worker_announcement(
            "11111111-1111-4111-8111-111111111111",
            "http://10.0.0.1:8080",
        ),
    )
    .await;
    put_announcement(
        &base,
        "w2",
        &worker_announcement(
            "22222222-2222-4222-8222-222222222222",
            "http://10.0.0.2:8080",
        ),
    )
    .await;
    // Neither of these belongs in trino/general: another pool, another type.
    let mut other_pool = worker_announcement(
        "33333333-3333-4333-8333-333333333333",
        "http://10.0.0.3:8080",
    );
    other_pool["pool"] = json!("etl");
    put_announcement(&base, "w3", &other_pool).await;
    let mut other_type = worker_announcement(
        "44444444-4444-4444-8444-444444444444",
        "http://10.0.0.4:8080",
    );
    other_type["services"][0]["type"] = json!("jdbc");
    put_announcement(&base, "w4", &other_type).await;

    let dir = tempfile::tempdir().expect("temporary directory");
    let mut client = AirliftClient::start(
        "lookup",
        dir.path(),
        &[("node.id", "airlift-lookup"), ("discovery.uri", &base)],
        &["lookup", "trino", "general"],
    );
    client.started().await;
    let mut replies = 0;
    let mut ask = |client: &mut AirliftClient, command: &str| {
        client.send(command);
        replies += 1;
        replies
    };

    // First lookup: no ETag sent; the client holds our body and our ETag.
    let n = ask(&mut client, "get");
    let lookup1 = wait_lookup(&client, n).await;
    let (ours, our_etag) = lookup_at(&base, "trino", "general").await.expect("lookup");
    assert_eq!(lookup1["etagSent"], Value::Null);
    assert_eq!(lookup1["kept"], false);
    assert_eq!(lookup1["services"], ours["services"], "client list vs ours");
    assert_eq!(
        ids(&lookup1["services"]),
        BTreeSet::from([
            "11111111-1111-4111-8111-111111111111".to_owned(),
            "22222222-2222-4222-8222-222222222222".to_owned(),
        ])
    );
    assert_eq!(lookup1["etag"], json!(our_etag));
    assert_eq!(
        lookup1["maxAgeMs"], 3000,
        "the client did not read our max-age"
    );

    // Refresh: the client sends the ETag back (in a header named ETag); we say 304 and it
    // keeps the very list object it had.
    let n = ask(&mut client, "refresh");
    let lookup2 = wait_lookup(&client, n).await;
    assert_eq!(lookup2["etagSent"], json!(our_etag));
    assert_eq!(lookup2["kept"], true, "{lookup2}");
    assert_eq!(lookup2["etag"], json!(our_etag));
    assert_eq!(lookup2["maxAgeMs"], 3000);

    // A change: the same refresh now gets the new list with a new tag.
    put_announcement(
        &base,
        "w5",
        &worker_announcement(
            "55555555-5555-4555-8555-555555555555",
            "http://10.0.0.5:8080",
        ),
    )
    .await;
    let n = ask(&mut client, "refresh");
    let lookup3 = wait_lookup(&client, n).await;
    let (ours, new_etag) = lookup_at(&base, "trino", "general").await.expect("lookup");
    assert_ne!(new_etag, our_etag);
    assert_eq!(lookup3["etagSent"], json!(our_etag));
    assert_eq!(lookup3["kept"], false, "{lookup3}");
    assert_eq!(lookup3["etag"], json!(new_etag));
    assert_eq!(lookup3["services"], ours["services"]);
    assert_eq!(ids(&lookup3["services"]).len(), 3);

    let n = ask(&mut client, "refresh");
    let lookup4 = wait_lookup(&client, n).await;
    assert_eq!(lookup4["etagSent"], json!(new_etag));
    assert_eq!(lookup4["kept"], true, "{lookup4}");

    // What reached us, in order: 200, 304, 200, 304.
    let status = client.stop().await;
    assert!(status.success(), "lookup harness exited with {status}");
    let logged: Vec<u16> = requests_from(&server.logs(), "airlift-lookup")
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| {
            assert_eq!(r.path, "/v1/service/trino/general");
            r.status
        })
        .collect();
    assert_eq!(logged, [200, 304, 200, 304], "{}", server.logs());
    // airlift's DiscoveryModule always has an Announcer, and its destroy() unannounces
    // even when nothing was ever announced: a lookup-only process sends a DELETE too.
    let deletes = count(
        &requests_from(&server.logs(), "airlift-lookup"),
        "DELETE",
        "/v1/announcement/airlift-lookup",
        204,
    );
    assert_eq!(deletes, 1);
}

/// Waits for the harness's `n`-th reply and returns the `n`-th lookup event, which the
/// harness prints before the reply.
async fn wait_lookup(client: &AirliftClient, n: usize) -> Value {
    let (reply, lookup) = client
        .wait_for(&format!("reply {n}"), CLIENT_DEADLINE, |events| {
            let reply = events.iter().filter(|e| e["event"] == "reply").nth(n - 1)?;
            let lookup = events
                .iter()
                .filter(|e| e["event"] == "lookup")
                .nth(n - 1)?;
            Some((reply.clone(), lookup.clone()))
        })
        .await;
    assert_eq!(reply["ok"], true, "{reply}\n{}", client.report());
    assert_eq!(lookup["ok"], true, "{lookup}");
    lookup
}

/// A selector bound as Trino binds its own refreshes every max-age we send (1 s here, 10 s
/// without the header), always with the ETag of the previous answer; unchanged answers are
/// 304s and keep the list, and changes show up on the next refresh.
#[tokio::test(flavor = "multi_thread")]
async fn selector_refreshes_at_our_max_age_with_our_etag() {
    let _one = ONE_AT_A_TIME.lock().await;
    java::build();
    let data = tempfile::tempdir().expect("temporary directory");
    let server = DiscoveryProcess::start(
        ProcessOptions::new(discoveryd!(), data.path().join("node"))
            .set("discovery.lookup-max-age", "1s"),
    )
    .expect("discoveryd starts");
    let base = server.base_url();
    let w1 = "11111111-1111-4111-8111-111111111111";
    let w2 = "22222222-2222-4222-8222-222222222222";
    put_announcement(
        &base,
        "w1",
        &worker_announcement(w1, "http://10.0.0.1:8080"),
    )
    .await;

    let dir = tempfile::tempdir().expect("temporary directory");
    let mut selector = AirliftClient::start(
        "selector",
        dir.path(),
        &[("node.id", "airlift-selector"), ("discovery.uri", &base)],
        &["selector", "trino", "general"],
    );
    selector.started().await;
    let shows = |wanted: BTreeSet<String>| {
        move |events: &[Value]| {
            events
                .iter()
                .any(|e| e["event"] == "services" && ids(&e["services"]) == wanted)
                .then_some(())
        }
    };
    selector
        .wait_for(
            "the selector to show w1",
            CLIENT_DEADLINE,
            shows(BTreeSet::from([w1.to_owned()])),
        )
        .await;

    let lookups = selector
        .wait_for("six lookups", CLIENT_DEADLINE, |events| {
            let lookups: Vec<Value> = events
                .iter()
                .filter(|e| e["event"] == "lookup")
                .cloned()
                .collect();
            (lookups.len() >= 6).then_some(lookups)
        })
        .await;
    assert!(lookups.iter().all(|l| l["ok"] == true), "{lookups:?}");
    assert!(lookups.iter().all(|l| l["maxAgeMs"] == 1000), "{lookups:?}");
    assert_eq!(lookups[0]["etagSent"], Value::Null);
    for pair in lookups.windows(2) {
        assert_eq!(pair[1]["etagSent"], pair[0]["etag"], "{pair:?}");
        assert_eq!(pair[1]["kept"], true, "{pair:?}");
    }
    // The next refresh starts max-age after the previous one completed.
    let intervals = gaps(&lookups);
    // Only a lower bound, as above.
    assert!(
        intervals.iter().all(|&gap| gap >= 950),
        "refresh intervals {intervals:?} ms, expected at least 1000"
    );

    put_announcement(
        &base,
        "w2",
        &worker_announcement(w2, "http://10.0.0.2:8080"),
    )
    .await;
    selector
        .wait_for(
            "the selector to show w1 and w2",
            CLIENT_DEADLINE,
            shows(BTreeSet::from([w1.to_owned(), w2.to_owned()])),
        )
        .await;
    delete_announcement(&base, "w1").await;
    selector
        .wait_for(
            "the selector to show w2 only",
            CLIENT_DEADLINE,
            shows(BTreeSet::from([w2.to_owned()])),
        )
        .await;

    let status = selector.stop().await;
    assert!(status.success(), "selector exited with {status}");
    // Three answers had a body (the first and the two changes); every other refresh was
    // a 304 for the tag the client sent.
    let gets: Vec<Logged> = requests_from(&server.logs(), "airlift-selector")
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert!(
        gets.iter().all(|r| r.path == "/v1/service/trino/general"),
        "{gets:?}"
    );
    assert_eq!(gets.first().map(|r| r.status), Some(200), "{gets:?}");
    assert_eq!(
        gets.iter().filter(|r| r.status == 200).count(),
        3,
        "{gets:?}"
    );
    let not_modified = gets.iter().filter(|r| r.status == 304).count();
    assert!(not_modified >= 5, "{gets:?}");
    assert_eq!(not_modified + 3, gets.len(), "only 200 and 304: {gets:?}");
}

/// A restarted node answers lookups with 503 until it is ready (README, "Health and
/// readiness"), on the grounds that airlift clients keep their last good list on a 503.
/// The real selector does: its lookups fail with status 503 and the list it shows does
/// not change.
#[tokio::test(flavor = "multi_thread")]
async fn selector_keeps_its_list_while_a_restarted_node_answers_503() {
    let _one = ONE_AT_A_TIME.lock().await;
    java::build();
    let data = tempfile::tempdir().expect("temporary directory");
    let options = ProcessOptions::new(discoveryd!(), data.path().join("node"))
        .set("discovery.lookup-max-age", "1s");
    let mut first = DiscoveryProcess::start(options.clone()).expect("discoveryd starts");
    let base = first.base_url();
    let w1 = "11111111-1111-4111-8111-111111111111";
    put_announcement(
        &base,
        "w1",
        &worker_announcement(w1, "http://10.0.0.1:8080"),
    )
    .await;

    let dir = tempfile::tempdir().expect("temporary directory");
    let mut selector = AirliftClient::start(
        "warm-up-selector",
        dir.path(),
        &[
            ("node.id", "airlift-warmup-selector"),
            ("discovery.uri", &base),
        ],
        &["selector", "trino", "general"],
    );
    selector.started().await;
    selector
        .wait_for("the selector to show w1", CLIENT_DEADLINE, |events| {
            events
                .iter()
                .any(|e| e["event"] == "services" && ids(&e["services"]).contains(w1))
                .then_some(())
        })
        .await;

    // The same node again, on the same address, with a warm-up longer than the test.
    let mut again = options.set("readiness.warm-up", "5m");
    again.port = first.addr().port();
    let status = first.terminate().expect("discoveryd stops");
    assert!(status.success(), "discoveryd exited with {status}");
    let mark = selector.events().len();
    let second = DiscoveryProcess::start(again).expect("discoveryd restarts on its port");
    assert_eq!(second.base_url(), base);
    let failures = selector
        .wait_for("three lookups answered 503", CLIENT_DEADLINE, |events| {
            let failed: Vec<Value> = events[mark.min(events.len())..]
                .iter()
                .filter(|e| {
                    e["event"] == "lookup"
                        && e["ok"] == false
                        && e["error"]
                            .as_str()
                            .is_some_and(|m| m.contains("status code 503"))
                })
                .cloned()
                .collect();
            (failed.len() >= 3).then_some(failed)
        })
        .await;
    let changes: Vec<Value> = selector.events()[mark..]
        .iter()
        .filter(|e| e["event"] == "services")
        .cloned()
        .collect();
    assert!(
        changes.is_empty(),
        "the list changed: {changes:?} after {failures:?}"
    );
    let answered_503 = count(
        &requests_from(&second.logs(), "airlift-warmup-selector"),
        "GET",
        "/v1/service/trino/general",
        503,
    );
    assert!(answered_503 >= 3, "{}", second.logs());
    assert!(selector.stop().await.success());
}

/// airlift 336 reads `discovery.uri` as one `java.net.URI`. A comma-separated list parses
/// (as a URI without a host) but the first announcement throws, which aborts `start()`;
/// nothing reaches either node.
#[tokio::test(flavor = "multi_thread")]
async fn comma_separated_discovery_uri_is_not_a_list() {
    let _one = ONE_AT_A_TIME.lock().await;
    java::build();
    let cluster = Cluster::start(discoveryd!(), 2, &[]).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let both = format!("{},{}", cluster.base_url(0), cluster.base_url(1));
    let client = AirliftClient::start(
        "comma",
        dir.path(),
        &[("node.id", "airlift-comma"), ("discovery.uri", &both)],
        &["announce", "trino", "http=http://127.0.0.1:8080"],
    );
    let error = client
        .wait_for("the harness to give up", START_DEADLINE, |events| {
            events.iter().find(|e| e["event"] == "error").cloned()
        })
        .await;
    assert_eq!(error["stage"], "start", "{error}");
    let message = error["error"].as_str().unwrap_or_default();
    assert!(message.contains("does not have a host"), "{message}");
    let status = client.exit_status().await;
    assert!(!status.success(), "harness exited with {status}");
    for i in 0..2 {
        let seen = requests_from(&cluster.node_logs(i), "airlift-comma");
        assert!(seen.is_empty(), "{} saw {seen:?}", cluster.node_id(i));
    }
}

/// A service inventory listing the three nodes: airlift takes the first RUNNING
/// `discovery` entry of a list it reshuffles on every reload, so the client spreads over
/// the nodes. After one is SIGKILLed the client keeps announcing and looking up through
/// the others, but (the inventory still saying RUNNING) it keeps picking the dead node
/// now and then: those requests fail, the announcement survives on the other nodes and
/// the selector keeps its list. Marking the node STOPPED in the inventory ends that.
#[tokio::test(flavor = "multi_thread")]
async fn failover_through_a_service_inventory_after_sigkill() {
    let _one = ONE_AT_A_TIME.lock().await;
    java::build();
    let mut cluster = fast_cluster().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    // The client's own copy: the cluster rewrites its inventory when it changes peers.
    let inventory_path = dir.path().join("client-inventory.json");
    let mut inventory = cluster.inventory();
    write_atomically(&inventory_path, &inventory);
    let inventory_uri = format!("file:{}", inventory_path.display());
    let client_config = |node_id: &'static str| {
        [
            ("node.id", node_id),
            ("service-inventory.uri", inventory_uri.as_str()),
            // Reloaded (and reshuffled) twice a second instead of every 10 s.
            ("service-inventory.update-interval", "500ms"),
        ]
    };
    let worker = AirliftClient::start(
        "fo-announcer",
        dir.path(),
        &client_config("airlift-fo-worker"),
        &["announce", "trino", "http=http://127.0.0.1:8080"],
    );
    let selector = AirliftClient::start(
        "fo-selector",
        dir.path(),
        &client_config("airlift-fo-selector"),
        &["selector", "trino", "general"],
    );
    let service_id = worker.service_id().await;
    selector.started().await;
    selector.wait_lists(&service_id).await;

    // The reshuffled inventory spreads the announcements over the nodes.
    let puts_on = |cluster: &Cluster, i: usize| {
        count(
            &requests_from(&cluster.node_logs(i), "airlift-fo-worker"),
            "PUT",
            "/v1/announcement/airlift-fo-worker",
            202,
        )
    };
    eventually(CLIENT_DEADLINE, "PUTs on at least two nodes", || {
        let spread: Vec<usize> = (0..3).map(|i| puts_on(&cluster, i)).collect();
        async move {
            if spread.iter().filter(|&&n| n > 0).count() >= 2 {
                Ok(())
            } else {
                Err(format!("PUTs per node: {spread:?}"))
            }
        }
    })
    .await;

    // SIGKILL node 0: no goodbye, its port now refuses connections.
    let dead_url = cluster.base_url(0);
    cluster.kill(0);
    let worker_mark = worker.events().len();
    let selector_mark = selector.events().len();
    let survivors_before = puts_on(&cluster, 1) + puts_on(&cluster, 2);

    // The client keeps working through the survivors...
    let after = worker
        .wait_for(
            "three announcements through the survivors and one failed try on the dead node",
            CLIENT_DEADLINE,
            |events| {
                let later: Vec<&Value> = events[worker_mark.min(events.len())..]
                    .iter()
                    .filter(|e| e["event"] == "announce")
                    .collect();
                let ok = later.iter().filter(|e| e["ok"] == true).count();
                let failed_on_dead = later
                    .iter()
                    .filter(|e| e["ok"] == false && e["uri"] == dead_url.as_str())
                    .count();
                (ok >= 3 && failed_on_dead >= 1).then_some((ok, failed_on_dead))
            },
        )
        .await;
    // A node logs a request after answering it and its log is read asynchronously: the
    // client may see its third answer before the survivor's line is read.
    eventually(CLIENT_DEADLINE, "the survivors to log the PUTs", || {
        let survivors_after = puts_on(&cluster, 1) + puts_on(&cluster, 2);
        async move {
            if survivors_after >= survivors_before + 3 {
                Ok(())
            } else {
                Err(format!(
                    "survivors logged {survivors_before} then {survivors_after} PUTs; client saw {after:?}"
                ))
            }
        }
    })
    .await;
    // ...the announcement stays listed by the survivors...
    for i in [1, 2] {
        let (body, _) = lookup_at(&cluster.base_url(i), "trino", "general")
            .await
            .expect("survivor answers");
        assert!(ids(&body["services"]).contains(&service_id), "{body}");
    }
    // ...and the selector keeps its list through failed lookups.
    selector
        .wait_for(
            "a successful lookup after the kill",
            CLIENT_DEADLINE,
            |events| {
                events[selector_mark.min(events.len())..]
                    .iter()
                    .any(|e| e["event"] == "lookup" && e["ok"] == true)
                    .then_some(())
            },
        )
        .await;
    let changes: Vec<Value> = selector.events()[selector_mark..]
        .iter()
        .filter(|e| e["event"] == "services")
        .cloned()
        .collect();
    assert!(
        changes.is_empty(),
        "the selector's list changed: {changes:?}"
    );

    // The operator's fix: mark the dead node STOPPED. The client no longer picks it.
    inventory["services"]
        .as_array_mut()
        .expect("inventory services")
        .iter_mut()
        .filter(|s| s["properties"]["http"] == dead_url.as_str())
        .for_each(|s| s["state"] = json!("STOPPED"));
    write_atomically(&inventory_path, &inventory);
    let fixed_mark = worker.events().len();
    worker
        .wait_for(
            "ten announcements in a row that avoid the dead node",
            CLIENT_DEADLINE,
            |events| {
                let later: Vec<&Value> = events[fixed_mark.min(events.len())..]
                    .iter()
                    .filter(|e| e["event"] == "announce")
                    .collect();
                let streak = later
                    .iter()
                    .rev()
                    .take_while(|e| e["ok"] == true && e["uri"] != dead_url.as_str())
                    .count();
                (streak >= 10).then_some(())
            },
        )
        .await;

    stop_and_wait_dropped(worker, selector, &cluster, &service_id).await;
}

/// Stops the worker and the selector cleanly, and waits until the surviving nodes (1 and
/// 2; node 0 was killed) no longer list the worker's service: its DELETE got through.
async fn stop_and_wait_dropped(
    mut worker: AirliftClient,
    mut selector: AirliftClient,
    cluster: &Cluster,
    service_id: &str,
) {
    assert!(worker.stop().await.success());
    assert!(selector.stop().await.success());
    for i in [1, 2] {
        eventually(
            DELETE_DEADLINE,
            "the survivors to drop the worker",
            || async {
                let (body, _) = lookup_at(&cluster.base_url(i), "trino", "general").await?;
                if ids(&body["services"]).contains(service_id) {
                    bail!("{} still lists it", cluster.node_id(i))
                }
                Ok(())
            },
        )
        .await;
    }
}

/// Three nodes telling clients to re-announce and look up every second (instead of every
/// 10 s), so client behaviour shows in a few seconds.
async fn fast_cluster() -> Cluster {
    Cluster::start(
        discoveryd!(),
        3,
        &[
            ("discovery.announce-max-age", "1s"),
            ("discovery.lookup-max-age", "1s"),
        ],
    )
    .await
}

/// Writes `value` to `path` so a reader sees the old or the new file, never half of one.
fn write_atomically(path: &Path, value: &Value) {
    let temporary = path.with_extension("tmp");
    std::fs::write(
        &temporary,
        serde_json::to_string_pretty(value).expect("inventory is JSON"),
    )
    .expect("write the inventory");
    std::fs::rename(&temporary, path).expect("move the inventory into place");
}

/// With one `discovery.uri` pointing at nginx in front of the cluster (the deployment the
/// README recommends), a SIGKILLed node costs the client nothing: nginx retries on another
/// node, so no announcement and no lookup fails.
#[tokio::test(flavor = "multi_thread")]
async fn failover_behind_nginx_after_sigkill() {
    let _one = ONE_AT_A_TIME.lock().await;
    java::build();
    let mut cluster = fast_cluster().await;
    let upstreams: Vec<String> = (0..3).map(|i| cluster.node(i).addr().to_string()).collect();
    let nginx = Nginx::start(&cluster.spare_ip(1), &upstreams).await;
    let uri = nginx.url();
    let dir = tempfile::tempdir().expect("temporary directory");
    let worker = AirliftClient::start(
        "lb-announcer",
        dir.path(),
        &[("node.id", "airlift-lb-worker"), ("discovery.uri", &uri)],
        &["announce", "trino", "http=http://127.0.0.1:8080"],
    );
    let selector = AirliftClient::start(
        "lb-selector",
        dir.path(),
        &[("node.id", "airlift-lb-selector"), ("discovery.uri", &uri)],
        &["selector", "trino", "general"],
    );
    let service_id = worker.service_id().await;
    selector.started().await;
    selector.wait_lists(&service_id).await;

    cluster.kill(0);
    let worker_mark = worker.events().len();
    let selector_mark = selector.events().len();
    let puts = |cluster: &Cluster| -> BTreeMap<usize, usize> {
        [1, 2]
            .into_iter()
            .map(|i| {
                let n = count(
                    &requests_from(&cluster.node_logs(i), "airlift-lb-worker"),
                    "PUT",
                    "/v1/announcement/airlift-lb-worker",
                    202,
                );
                (i, n)
            })
            .collect()
    };
    let before = puts(&cluster);
    worker
        .wait_for(
            "five announcements after the kill",
            CLIENT_DEADLINE,
            |events| {
                (events[worker_mark.min(events.len())..]
                    .iter()
                    .filter(|e| e["event"] == "announce")
                    .count()
                    >= 5)
                    .then_some(())
            },
        )
        .await;
    selector
        .wait_for("five lookups after the kill", CLIENT_DEADLINE, |events| {
            (events[selector_mark.min(events.len())..]
                .iter()
                .filter(|e| e["event"] == "lookup")
                .count()
                >= 5)
                .then_some(())
        })
        .await;
    let failed: Vec<Value> = worker.events()[worker_mark..]
        .iter()
        .chain(selector.events()[selector_mark..].iter())
        .filter(|e| (e["event"] == "announce" || e["event"] == "lookup") && e["ok"] != true)
        .cloned()
        .collect();
    assert!(
        failed.is_empty(),
        "requests failed after the kill: {failed:?}\n{}",
        nginx.error_log()
    );
    let after = puts(&cluster);
    let grown: usize = after.values().sum::<usize>() - before.values().sum::<usize>();
    assert!(
        grown >= 5,
        "survivor PUTs before {before:?}, after {after:?}"
    );
    let changes: Vec<Value> = selector.events()[selector_mark..]
        .iter()
        .filter(|e| e["event"] == "services")
        .cloned()
        .collect();
    assert!(
        changes.is_empty(),
        "the selector's list changed: {changes:?}"
    );

    stop_and_wait_dropped(worker, selector, &cluster, &service_id).await;
}

//! Shared helpers: a [`Server`] (one real `discoveryd` on loopback, its data directory and
//! an HTTP client), collected [`Reply`]s, and builders for announcement bodies and raw
//! store entries.
//!
//! Every failed check panics with the request, the reply and the tail of the server log.

use std::fmt::Display;
use std::process::ExitStatus;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
pub use discovery_testkit::{new_id, now_ms};
use discovery_testkit::{DiscoveryProcess, ProcessOptions};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

/// How long a test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The environment every test server runs with.
pub const ENV: &str = "testing";

/// Log lines included in a failure message.
const LOG_TAIL_LINES: usize = 80;

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_discoveryd")
}

/// One `discoveryd` process with its own data directory and a client for it.
pub struct Server {
    // Field order matters: the process is dropped (killed) before its directory goes.
    process: DiscoveryProcess,
    client: Client,
    dir: TempDir,
}

impl Server {
    /// A server with the test defaults (environment `testing`, 127.0.0.1, any free port).
    pub fn start() -> Server {
        Self::start_with(|options| options)
    }

    /// A server whose options `configure` adjusts (e.g. `|o| o.set("discovery.max-age", "2s")`).
    pub fn start_with(configure: impl FnOnce(ProcessOptions) -> ProcessOptions) -> Server {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let options = configure(ProcessOptions::new(binary(), dir.path().join("data")));
        let process = DiscoveryProcess::start(options).expect("discoveryd did not start");
        Server {
            process,
            client: Client::new(),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.process.url(path)
    }

    /// `host:port` as the client sends it in the `Host` header.
    pub fn authority(&self) -> String {
        self.process.addr().to_string()
    }

    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Waits until the log holds a line containing `needle` (the log is copied from the
    /// process's output by a reader thread, so it can trail the process a little) and
    /// returns that line.
    pub async fn log_line(&self, needle: &str) -> String {
        discovery_testkit::eventually(
            DEADLINE,
            &format!("a log line containing {needle:?}"),
            || async {
                let logs = self.logs();
                match logs.lines().find(|line| line.contains(needle)) {
                    Some(line) => Ok(line.to_owned()),
                    None => Err(format!("not in the log:\n{logs}")),
                }
            },
        )
        .await
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.process
            .terminate()
            .expect("discoveryd did not exit after SIGTERM")
    }

    /// SIGKILL (`kill -9`), then the exit status.
    pub fn kill(&mut self) -> ExitStatus {
        self.process.kill().expect("cannot SIGKILL discoveryd")
    }

    /// Starts the same node again on the same data directory (new port).
    pub fn restart(self) -> Server {
        let Server {
            process,
            client,
            dir,
        } = self;
        let process = process.restart().expect("discoveryd did not restart");
        Server {
            process,
            client,
            dir,
        }
    }

    /// Panics with `message` and the tail of the server log.
    #[track_caller]
    pub fn fail(&self, message: impl Display) -> ! {
        let logs = self.logs();
        let lines: Vec<&str> = logs.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        panic!("{message}\n--- last {LOG_TAIL_LINES} lines of the discoveryd log ---\n{tail}")
    }

    #[track_caller]
    pub fn check(&self, ok: bool, message: impl Display) {
        if !ok {
            self.fail(message);
        }
    }

    #[track_caller]
    pub fn check_eq<T: PartialEq + std::fmt::Debug>(&self, left: T, right: T, what: impl Display) {
        if left != right {
            self.fail(format!("{what}\n  left: {left:?}\n right: {right:?}"));
        }
    }

    /// Sends a request; `content_type` None sends no Content-Type header.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        let what = format!("{method} {path}");
        let mut request = self.client.request(method, self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => self.fail(format!("{what}: request failed: {}", error_chain(&e))),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(body) => body.to_vec(),
            Err(e) => self.fail(format!(
                "{what}: reading the body failed: {}",
                error_chain(&e)
            )),
        };
        Reply {
            what,
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], None, None).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers, None, None).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, &[], None, None).await
    }

    /// PUT/POST `body` as `application/json`.
    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).expect("a Value serialises");
        self.send(method, path, &[], Some("application/json"), Some(bytes))
            .await
    }

    /// `PUT /v1/announcement/{node}` with a JSON body.
    pub async fn put_announcement(&self, node: &str, body: &Value) -> Reply {
        self.send_json(Method::PUT, &format!("/v1/announcement/{node}"), body)
            .await
    }

    /// Announces and checks the 202.
    pub async fn announce(&self, node: &str, body: &Value) {
        let reply = self.put_announcement(node, body).await;
        self.expect_status(&reply, StatusCode::ACCEPTED);
    }

    /// `DELETE /v1/announcement/{node}` and checks the 204.
    pub async fn unannounce(&self, node: &str) {
        let reply = self.delete(&format!("/v1/announcement/{node}")).await;
        self.expect_status(&reply, StatusCode::NO_CONTENT);
    }

    /// `POST /v1/announcement/static` with a JSON body.
    pub async fn post_static(&self, body: &Value) -> Reply {
        self.send_json(Method::POST, "/v1/announcement/static", body)
            .await
    }

    /// Creates a static service, checks the 201 and returns the created service.
    pub async fn create_static(&self, body: &Value) -> Value {
        let reply = self.post_static(body).await;
        self.expect_status(&reply, StatusCode::CREATED);
        self.json(&reply)
    }

    /// Sends only a request head (no body byte, whatever its Content-Length says) on a
    /// fresh connection and returns the first line of the answer: how a server that
    /// refuses a body by its declared length can be observed without streaming the body.
    pub async fn status_line_for_head(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.authority());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.process.addr()).await?;
            stream.write_all(head.as_bytes()).await?;
            let mut answer = Vec::new();
            let mut buffer = [0u8; 1024];
            while !answer.windows(2).any(|w| w == b"\r\n") {
                let read = stream.read(&mut buffer).await?;
                if read == 0 {
                    break;
                }
                answer.extend_from_slice(&buffer[..read]);
            }
            Ok::<_, std::io::Error>(answer)
        };
        match tokio::time::timeout(DEADLINE, exchange).await {
            Ok(Ok(answer)) => {
                let text = String::from_utf8_lossy(&answer).into_owned();
                text.lines().next().unwrap_or_default().to_owned()
            }
            Ok(Err(e)) => self.fail(format!("{method} {path} (head only): {e}")),
            Err(_) => self.fail(format!(
                "{method} {path} (head only): no answer within {DEADLINE:?}"
            )),
        }
    }

    /// Sends `requests` (method, path, JSON body) pipelined in one write on one connection,
    /// so the server handles them back to back, and returns their status codes in order.
    pub async fn pipeline(&self, requests: &[(&str, String, Option<&Value>)]) -> Vec<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut raw = Vec::new();
        for (method, path, body) in requests {
            let body = body
                .map(|b| serde_json::to_vec(b).expect("a Value serialises"))
                .unwrap_or_default();
            raw.extend_from_slice(
                format!(
                    "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    self.authority(),
                    body.len()
                )
                .as_bytes(),
            );
            raw.extend_from_slice(&body);
        }
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.process.addr()).await?;
            stream.write_all(&raw).await?;
            let mut answer = Vec::new();
            let mut buffer = [0u8; 16384];
            while count_status_lines(&answer) < requests.len() {
                let read = stream.read(&mut buffer).await?;
                if read == 0 {
                    break;
                }
                answer.extend_from_slice(&buffer[..read]);
            }
            Ok::<_, std::io::Error>(answer)
        };
        let answer = match tokio::time::timeout(DEADLINE, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => self.fail(format!("pipelined requests: {e}")),
            Err(_) => self.fail(format!(
                "pipelined requests: no complete answer within {DEADLINE:?}"
            )),
        };
        let text = String::from_utf8_lossy(&answer);
        let statuses: Vec<u16> = text
            .match_indices("HTTP/1.1 ")
            .filter_map(|(at, prefix)| text.get(at + prefix.len()..at + prefix.len() + 3))
            .filter_map(|code| code.parse().ok())
            .collect();
        if statuses.len() != requests.len() {
            self.fail(format!(
                "{} pipelined requests, {} answers:\n{text}",
                requests.len(),
                statuses.len()
            ));
        }
        statuses
    }

    /// `DELETE /v1/announcement/static/{id}` and checks the 204.
    pub async fn unannounce_static(&self, id: &str) {
        let reply = self.delete(&format!("/v1/announcement/static/{id}")).await;
        self.expect_status(&reply, StatusCode::NO_CONTENT);
    }

    /// `POST /v1/store/{store}` with a JSON batch.
    pub async fn post_entries(&self, store: &str, entries: &Value) -> Reply {
        self.send_json(Method::POST, &format!("/v1/store/{store}"), entries)
            .await
    }

    #[track_caller]
    pub fn expect_status(&self, reply: &Reply, expected: StatusCode) {
        if reply.status != expected {
            self.fail(format!("{reply}\nexpected status {expected}"));
        }
    }

    /// The reply's body as JSON.
    #[track_caller]
    pub fn json(&self, reply: &Reply) -> Value {
        match serde_json::from_slice(&reply.body) {
            Ok(value) => value,
            Err(e) => self.fail(format!("{reply}\nbody is not JSON: {e}")),
        }
    }

    /// A lookup (`/v1/service...` or `/v1/announcement/static`): checks 200, the JSON
    /// content type and the environment, and returns the body.
    pub async fn lookup(&self, path: &str) -> Value {
        let reply = self.get(path).await;
        self.expect_status(&reply, StatusCode::OK);
        self.check_eq(
            reply.header("content-type"),
            Some("application/json"),
            format!("content type of {}", reply.what),
        );
        let body = self.json(&reply);
        self.check_eq(
            body["environment"].as_str(),
            Some(ENV),
            format!("environment of {}", reply.what),
        );
        body
    }

    /// The `services` array of a lookup.
    pub async fn services(&self, path: &str) -> Vec<Value> {
        let body = self.lookup(path).await;
        match body["services"].as_array() {
            Some(services) => services.clone(),
            None => self.fail(format!("GET {path}: no services array in {body}")),
        }
    }

    /// The ids of the services a lookup returns, in response order.
    pub async fn service_ids(&self, path: &str) -> Vec<String> {
        self.services(path)
            .await
            .iter()
            .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The services of one node in `GET /v1/service`.
    pub async fn services_of_node(&self, node: &str) -> Vec<Value> {
        self.services("/v1/service")
            .await
            .into_iter()
            .filter(|s| s["nodeId"] == node)
            .collect()
    }

    /// `GET /v1/store/{store}` as JSON: every raw entry.
    pub async fn dump(&self, store: &str) -> Vec<Value> {
        let path = format!("/v1/store/{store}");
        let reply = self
            .get_with(&path, &[("accept", "application/json")])
            .await;
        self.expect_status(&reply, StatusCode::OK);
        match self.json(&reply) {
            Value::Array(entries) => entries,
            other => self.fail(format!("GET {path}: not a JSON array: {other}")),
        }
    }

    /// The raw entry of `key` in a store, if any.
    pub async fn raw_entry(&self, store: &str, key: &str) -> Option<Value> {
        let encoded = BASE64.encode(key);
        self.dump(store)
            .await
            .into_iter()
            .find(|entry| entry["key"] == encoded.as_str())
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `METHOD path`, for messages.
    pub what: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = self.text();
        if text.len() > 2000 {
            text.truncate(2000);
            text.push_str("...");
        }
        write!(
            f,
            "{} -> {} {:?} body: {text:?}",
            self.what, self.status, self.headers
        )
    }
}

/// A service inside a dynamic announcement.
pub fn service(id: &str, service_type: &str, properties: Value) -> Value {
    json!({"id": id, "type": service_type, "properties": properties})
}

/// A valid dynamic announcement body (`A(pool, location, services)` in the conformance
/// cases of `docs/PROTOCOL.md`).
pub fn announcement(pool: &str, location: &str, services: Vec<Value>) -> Value {
    json!({"environment": ENV, "pool": pool, "location": location, "services": services})
}

/// A valid static announcement body.
pub fn static_announcement(
    service_type: &str,
    pool: &str,
    location: &str,
    properties: Value,
) -> Value {
    json!({"environment": ENV, "type": service_type, "pool": pool, "location": location,
           "properties": properties})
}

/// Standard, padded base64 (what `/v1/store` uses for keys and values).
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    BASE64.encode(bytes)
}

/// Decodes a base64 field of a raw entry.
pub fn unb64(value: &Value) -> Vec<u8> {
    BASE64
        .decode(value.as_str().expect("a base64 string"))
        .expect("valid base64")
}

/// A raw dynamic entry in the JSON wire shape: `key` = node id, `value` = the services.
pub fn dynamic_entry(
    node: &str,
    services: Option<&Value>,
    version: i64,
    timestamp: i64,
    max_age_ms: Option<i64>,
) -> Value {
    let mut entry = json!({
        "key": b64(node),
        "version": {"sequence": version},
        "timestamp": timestamp,
    });
    if let Some(services) = services {
        entry["value"] = json!(b64(
            serde_json::to_vec(services).expect("a Value serialises")
        ));
    }
    if let Some(max_age_ms) = max_age_ms {
        entry["maxAgeInMs"] = json!(max_age_ms);
    }
    entry
}

/// A stored service as a lookup returns it (for `dynamic_entry` values).
pub fn stored_service(
    id: &str,
    node: &str,
    service_type: &str,
    pool: &str,
    location: &str,
) -> Value {
    json!({"id": id, "nodeId": node, "type": service_type, "pool": pool, "location": location,
           "properties": {}})
}

fn count_status_lines(answer: &[u8]) -> usize {
    answer.windows(9).filter(|w| w == b"HTTP/1.1 ").count()
}

/// An error and all its sources on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

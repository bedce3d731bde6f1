//! One real `discoveryd` for single-node tests: a [`Server`] owns the process, its own
//! data directory and an HTTP client, and checks what it sends.
//!
//! The end-to-end suite drives the server over raw HTTP with the checked helpers here;
//! the client-library suite points `DiscoveryClient`s at [`Server::uri`] and restarts the
//! server in place ([`Server::restart_in_place`]) to see clients ride out an outage. Every
//! failed check panics with the request, the reply and the tail of the server's log, so a
//! failure explains itself without rerunning the test.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::http::http_client;
use crate::logs::tail;
use crate::process::{DiscoveryProcess, ProcessOptions};
use crate::values::ENVIRONMENT;

/// How long the helpers wait for the server (a log line, an answer on a raw connection).
pub const DEADLINE: Duration = Duration::from_secs(10);

/// How long one request may take: far beyond any answer of a healthy server, so only a
/// hang runs into it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Log lines included in a failure message.
const LOG_TAIL_LINES: usize = 80;

/// One `discoveryd` process with its own data directory and a client for it. Dropping it
/// kills the process, then removes the directory.
pub struct Server {
    // Field order matters: the process is dropped (killed) before its directory goes.
    /// `None` only while [`Server::restart_in_place`] swaps processes.
    process: Option<DiscoveryProcess>,
    client: Client,
    dir: TempDir,
}

impl Server {
    /// A server with the test defaults of [`ProcessOptions::new`] (environment `testing`,
    /// 127.0.0.1, any free port). `binary` is `discoveryd!()` in the root package.
    pub fn start(binary: impl Into<PathBuf>) -> Server {
        Self::start_with(binary, |options| options)
    }

    /// A server whose options `configure` adjusts (e.g.
    /// `|o| o.set("discovery.max-age", "2s")`).
    pub fn start_with(
        binary: impl Into<PathBuf>,
        configure: impl FnOnce(ProcessOptions) -> ProcessOptions,
    ) -> Server {
        let dir = tempfile::tempdir().expect("cannot create a temporary directory");
        let options = configure(ProcessOptions::new(binary, dir.path().join("data")));
        let process = DiscoveryProcess::start(options)
            .unwrap_or_else(|e| panic!("discoveryd did not start: {e:#}"));
        let client = http_client(REQUEST_TIMEOUT);
        Server {
            process: Some(process),
            client,
            dir,
        }
    }

    /// The running process.
    pub fn process(&self) -> &DiscoveryProcess {
        self.process
            .as_ref()
            .expect("the server's process is being restarted")
    }

    fn process_mut(&mut self) -> &mut DiscoveryProcess {
        self.process
            .as_mut()
            .expect("the server's process is being restarted")
    }

    pub fn addr(&self) -> SocketAddr {
        self.process().addr()
    }

    /// `http://ip:port`, what a discovery client is configured with.
    pub fn uri(&self) -> String {
        self.process().base_url()
    }

    /// `uri()` + `path`.
    pub fn url(&self, path: &str) -> String {
        self.process().url(path)
    }

    /// `host:port` as a client sends it in the `Host` header.
    pub fn authority(&self) -> String {
        self.addr().to_string()
    }

    /// Everything the current process has logged so far.
    pub fn logs(&self) -> String {
        self.process.as_ref().map(|p| p.logs()).unwrap_or_default()
    }

    /// Waits until the log holds a line containing `needle` (the log is copied from the
    /// process's output by a reader thread, so it can trail the process a little) and
    /// returns that line.
    pub async fn log_line(&self, needle: &str) -> String {
        self.process().log_line(needle).await
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.process_mut()
            .terminate()
            .unwrap_or_else(|e| panic!("discoveryd did not exit after SIGTERM: {e:#}"))
    }

    /// SIGKILL (`kill -9`: no shutdown, no flush), then the exit status.
    pub fn kill(&mut self) -> ExitStatus {
        self.process_mut()
            .kill()
            .unwrap_or_else(|e| panic!("cannot SIGKILL discoveryd: {e:#}"))
    }

    /// Starts the same node again with the same options on the same data directory. A
    /// server started on port 0 comes back on a new port (no client can hold a stale
    /// connection to it); see [`Server::restart_in_place`] for the same address.
    pub fn restart(mut self) -> Server {
        let process = self
            .process
            .take()
            .expect("the server's process is being restarted");
        let process = process
            .restart()
            .unwrap_or_else(|e| panic!("discoveryd did not restart: {e:#}"));
        self.process = Some(process);
        self
    }

    /// Stops the process if it still runs (SIGKILL) and starts it again on the same data
    /// directory and the same address, with `configure` applied to its options: how a
    /// client configured with [`Server::uri`] sees a server come back.
    pub fn restart_in_place(&mut self, configure: impl FnOnce(ProcessOptions) -> ProcessOptions) {
        let uri = self.uri();
        let mut options = self.process().options().clone();
        options.port = self.addr().port();
        let options = configure(options);
        // Dropping the old process kills it and waits, so its port is free again.
        self.process = None;
        let process = DiscoveryProcess::start(options)
            .unwrap_or_else(|e| panic!("discoveryd did not restart at {uri}: {e:#}"));
        assert_eq!(process.base_url(), uri, "restarted on another address");
        self.process = Some(process);
    }

    /// The server's temporary directory (the data directory is `data` inside it).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    // ---- Checks. Each failure panics with the tail of the server log. ----

    /// Panics with `message` and the tail of the server log.
    #[track_caller]
    pub fn fail(&self, message: impl Display) -> ! {
        let tail = tail(&self.logs(), LOG_TAIL_LINES);
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

    // ---- Requests. ----

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
            Some(ENVIRONMENT),
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

    // ---- Raw connections, for what an HTTP client library will not send. ----

    /// Sends only a request head (no body byte, whatever its Content-Length says) on a
    /// fresh connection and returns the first line of the answer: how a server that
    /// refuses a body by its declared length can be observed without streaming the body.
    pub async fn status_line_for_head(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> String {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.authority());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let addr = self.addr();
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
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
        let addr = self.addr();
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
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

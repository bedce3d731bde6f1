//! A tiny in-process discovery server for the fleet's own tests: announcements with a
//! time-to-live, lookups with `Cache-Control: max-age=1` and ETags, and switches to make
//! it misbehave (hide a node from lookups, fail lookups). HTTP/1.1 with keep-alive,
//! just enough for the discovery client.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub const ENVIRONMENT: &str = "testing";

#[derive(Default)]
struct State {
    /// node id → (written at, pool, services)
    entries: BTreeMap<String, (Instant, String, Vec<Value>)>,
    hidden: BTreeSet<String>,
    fail_lookups: bool,
    ttl: Duration,
}

pub struct FakeServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl FakeServer {
    pub async fn start(ttl: Duration) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("listener address");
        let state = Arc::new(Mutex::new(State {
            ttl,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        FakeServer { addr, state, task }
    }

    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Leaves `node_id` out of lookups (a flapping server) until `show`.
    pub fn hide(&self, node_id: &str) {
        self.state
            .lock()
            .expect("fake server state")
            .hidden
            .insert(node_id.into());
    }

    pub fn show(&self, node_id: &str) {
        self.state
            .lock()
            .expect("fake server state")
            .hidden
            .remove(node_id);
    }

    /// Makes every lookup answer 503.
    pub fn fail_lookups(&self, fail: bool) {
        self.state.lock().expect("fake server state").fail_lookups = fail;
    }

    /// Node ids with a live announcement.
    pub fn announced(&self) -> BTreeSet<String> {
        let state = self.state.lock().expect("fake server state");
        state
            .entries
            .iter()
            .filter(|(_, (at, _, _))| at.elapsed() <= state.ttl)
            .map(|(node, _)| node.clone())
            .collect()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Request {
    method: String,
    path: String,
    if_none_match: Option<String>,
    body: Vec<u8>,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut length = 0;
    let mut if_none_match = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim().to_owned();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().ok()?,
            "if-none-match" | "etag" => if_none_match = Some(value),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(Request {
        method,
        path,
        if_none_match,
        body,
    })
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader).await {
        let (status, headers, body) = answer(&request, &state);
        let mut response = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        let stream = reader.get_mut();
        if stream.write_all(response.as_bytes()).await.is_err()
            || stream.write_all(body.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

fn answer(
    request: &Request,
    state: &Mutex<State>,
) -> (&'static str, Vec<(&'static str, String)>, String) {
    let mut state = state.lock().expect("fake server state");
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let max_age = vec![("Cache-Control", "max-age=1".to_owned())];
    match (request.method.as_str(), segments.as_slice()) {
        ("PUT", ["v1", "announcement", node_id]) => {
            let body: Value = serde_json::from_slice(&request.body).expect("announcement JSON");
            let pool = body["pool"].as_str().expect("pool").to_owned();
            let services = body["services"].as_array().expect("services").clone();
            state
                .entries
                .insert((*node_id).to_owned(), (Instant::now(), pool, services));
            ("202 Accepted", max_age, String::new())
        }
        ("DELETE", ["v1", "announcement", node_id]) => {
            state.entries.remove(*node_id);
            ("204 No Content", Vec::new(), String::new())
        }
        ("GET", ["v1", "service", service_type, pool]) => {
            if state.fail_lookups {
                return ("503 Service Unavailable", Vec::new(), "not ready".into());
            }
            let mut services = Vec::new();
            for (node_id, (at, node_pool, announced)) in &state.entries {
                if at.elapsed() > state.ttl || node_pool != pool || state.hidden.contains(node_id) {
                    continue;
                }
                for service in announced {
                    if service["type"] == *service_type {
                        services.push(json!({
                            "id": service["id"],
                            "nodeId": node_id,
                            "type": service_type,
                            "pool": pool,
                            "location": format!("/{node_id}"),
                            "properties": service["properties"],
                        }));
                    }
                }
            }
            let body = json!({"environment": ENVIRONMENT, "services": services}).to_string();
            let mut hasher = DefaultHasher::new();
            body.hash(&mut hasher);
            let etag = format!("\"{:x}\"", hasher.finish());
            let mut headers = max_age;
            headers.push(("ETag", etag.clone()));
            if request.if_none_match.as_deref() == Some(etag.as_str()) {
                return ("304 Not Modified", headers, String::new());
            }
            headers.push(("Content-Type", "application/json".into()));
            ("200 OK", headers, body)
        }
        _ => ("404 Not Found", Vec::new(), String::new()),
    }
}

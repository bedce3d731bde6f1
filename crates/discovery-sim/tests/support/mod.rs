//! A tiny in-process discovery server for the fleet's own tests: announcements with a
//! time-to-live, lookups with `Cache-Control: max-age=1` and ETags, and switches to make
//! it misbehave (hide a node from lookups, fail lookups). HTTP/1.1 with keep-alive,
//! read and written with the testkit's [`raw_http`], just enough for the discovery client.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use discovery_testkit::raw_http::{self, read_request, RawRequest};
pub use discovery_testkit::ENVIRONMENT;
use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

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

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader).await {
        let (status, headers, body) = answer(&request, &state);
        let written =
            raw_http::write_response(reader.get_mut(), status, &headers, body.as_bytes()).await;
        if written.is_err() {
            return;
        }
    }
}

fn answer(
    request: &RawRequest,
    state: &Mutex<State>,
) -> (u16, Vec<(&'static str, String)>, String) {
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
            (202, max_age, String::new())
        }
        ("DELETE", ["v1", "announcement", node_id]) => {
            state.entries.remove(*node_id);
            (204, Vec::new(), String::new())
        }
        ("GET", ["v1", "service", service_type, pool]) => {
            if state.fail_lookups {
                return (503, Vec::new(), "not ready".into());
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
            // The tag comes back in If-None-Match or, as some clients send it, in ETag.
            let sent = request
                .header("if-none-match")
                .or_else(|| request.header("etag"));
            if sent == Some(etag.as_str()) {
                return (304, headers, String::new());
            }
            headers.push(("Content-Type", "application/json".into()));
            (200, headers, body)
        }
        _ => (404, Vec::new(), String::new()),
    }
}

//! The end-to-end suite's vocabulary on top of the testkit: its [`Server`] and
//! announcement builders (re-exported, so the tests import everything from here) and
//! builders for raw store entries, which only this suite writes.
//!
//! Every failed check of a [`Server`] panics with the request, the reply and the tail of
//! the server log.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
pub use discovery_testkit::announcements::{announcement, service, static_announcement};
pub use discovery_testkit::discoveryd;
pub use discovery_testkit::server::DEADLINE;
pub use discovery_testkit::{new_id, now_ms, Reply, Server, ENVIRONMENT as ENV};
use serde_json::{json, Value};

/// A node's announcement when only *that* a node is announced matters: one `storage`
/// service with a fresh id and no properties, pool `alpha`, location `/a`.
pub fn storage_node() -> Value {
    announcement(
        "alpha",
        "/a",
        vec![service(&new_id(), "storage", json!({}))],
    )
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

/// Runs `discoveryd` with `args` (plus loopback, port 0 and `data_dir`, or a private data
/// directory) and returns its exit status and everything it printed, failing if it is
/// still running after [`DEADLINE`]: for starts that must be refused.
pub async fn run_to_exit(
    data_dir: Option<&std::path::Path>,
    args: &[&str],
) -> (std::process::ExitStatus, String) {
    let private = tempfile::tempdir().expect("temporary directory");
    let data = data_dir.map_or_else(|| private.path().join("data"), std::path::Path::to_path_buf);
    let mut command = tokio::process::Command::new(discoveryd!());
    command
        .args(["--set", "node.environment=testing"])
        .args(["--set", "node.bind-ip=127.0.0.1"])
        .args(["--set", "http-server.http.port=0"])
        .arg("--set")
        .arg(format!("store.data-dir={}", data.display()))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("cannot start discoveryd");
    match tokio::time::timeout(DEADLINE, child.wait_with_output()).await {
        Ok(Ok(output)) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            (output.status, text)
        }
        Ok(Err(e)) => panic!("waiting for discoveryd {args:?} failed: {e}"),
        Err(_) => panic!(
            "discoveryd {args:?} still running after {DEADLINE:?}; it should refuse to start"
        ),
    }
}

//! Request shapes: what a Trino fleet sends a discovery server, and the equivalent work
//! for etcd through its v3 HTTP/JSON gateway.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hyper::header::{IF_NONE_MATCH, USER_AGENT};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::load::{Prepared, Workload};

/// A Trino worker's announcement (one `trino` service, as Trino 476 sends it).
pub fn worker_body(worker: usize, id: &str, pool: &str) -> Value {
    json!({
        "environment": "testing",
        "pool": pool,
        "location": format!("/worker-{worker}"),
        "services": [{
            "id": id,
            "type": "trino",
            "properties": {
                "node_version": "476",
                "coordinator": "false",
                "http": format!("http://10.1.{}.{}:8080", worker / 250, worker % 250),
                "http-external": format!("http://10.1.{}.{}:8080", worker / 250, worker % 250),
            }
        }]
    })
}

/// A simulated worker: node id, and its announcement body (compact JSON).
#[derive(Debug, Clone)]
pub struct Worker {
    pub node_id: String,
    pub body: Vec<u8>,
}

/// `count` workers of `pool`, node ids `{pool}-{i}`, service ids fixed per worker (a
/// renewal repeats the same announcement, as a running worker does).
pub fn workers(pool: &str, count: usize) -> Vec<Worker> {
    (0..count)
        .map(|i| {
            let service_id = uuid::Uuid::new_v4().to_string();
            Worker {
                node_id: format!("{pool}-{i}"),
                body: worker_body(i, &service_id, pool).to_string().into_bytes(),
            }
        })
        .collect()
}

/// `PUT /v1/announcement/{nodeId}` for each worker in turn (airlift clients send their
/// node id as User-Agent). The first pass creates, later passes renew.
pub fn announce(workers: &[Worker]) -> anyhow::Result<Workload> {
    let requests = workers
        .iter()
        .map(|w| {
            Ok(
                Prepared::new(Method::PUT, &format!("/v1/announcement/{}", w.node_id))?
                    .header(USER_AGENT, &w.node_id)?
                    .json(w.body.clone()),
            )
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Workload::new(requests, &[StatusCode::ACCEPTED]))
}

/// `GET path`, answered 200.
pub fn lookup(path: &str) -> anyhow::Result<Workload> {
    Ok(Workload::new(
        vec![Prepared::new(Method::GET, path)?],
        &[StatusCode::OK],
    ))
}

/// `GET path` with `If-None-Match: etag`, answered 304 while the list is unchanged.
pub fn conditional_lookup(path: &str, etag: &str) -> anyhow::Result<Workload> {
    Ok(Workload::new(
        vec![Prepared::new(Method::GET, path)?.header(IF_NONE_MATCH, etag)?],
        &[StatusCode::NOT_MODIFIED],
    ))
}

/// The etcd key of a worker: `/discovery/{node id}`.
pub fn etcd_key(prefix: &str, worker: &Worker) -> String {
    format!("{prefix}{}", worker.node_id)
}

/// The end of a prefix range: the prefix with its last byte incremented (etcd's
/// `clientv3.GetPrefixRangeEnd`).
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

/// `POST /v3/lease/grant {"TTL": ttl, "ID": id}` for each id (the client picks the ids,
/// so nothing needs to be read back).
pub fn etcd_lease_grants(ids: &[i64], ttl_secs: u64) -> anyhow::Result<Workload> {
    let requests = ids
        .iter()
        .map(|id| {
            Ok(Prepared::new(Method::POST, "/v3/lease/grant")?
                .json(json!({"TTL": ttl_secs, "ID": id}).to_string()))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Workload::new(requests, &[StatusCode::OK]))
}

/// `POST /v3/kv/put {"key", "value", "lease"}` for each worker: the announcement body as
/// the value, under `{prefix}{node id}`, attached to `leases[i]` (no lease when `None`).
pub fn etcd_puts(
    workers: &[Worker],
    prefix: &str,
    leases: Option<&[i64]>,
) -> anyhow::Result<Workload> {
    let requests = workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut body = json!({
                "key": BASE64.encode(etcd_key(prefix, w)),
                "value": BASE64.encode(&w.body),
            });
            if let Some(lease) = leases.and_then(|leases| leases.get(i)) {
                body["lease"] = json!(lease);
            }
            Ok(Prepared::new(Method::POST, "/v3/kv/put")?.json(body.to_string()))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Workload::new(requests, &[StatusCode::OK]))
}

/// `POST /v3/kv/range` over every key under `prefix`.
pub fn etcd_range(prefix: &str) -> anyhow::Result<Workload> {
    let body = json!({
        "key": BASE64.encode(prefix),
        "range_end": BASE64.encode(prefix_range_end(prefix.as_bytes())),
    });
    Ok(Workload::new(
        vec![Prepared::new(Method::POST, "/v3/kv/range")?.json(body.to_string())],
        &[StatusCode::OK],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_distinct_and_their_bodies_parse() {
        let fleet = workers("general", 3);
        assert_eq!(fleet[2].node_id, "general-2");
        let body: Value = serde_json::from_slice(&fleet[1].body).unwrap();
        assert_eq!(body["pool"], "general");
        assert_eq!(body["services"][0]["type"], "trino");
        assert_ne!(fleet[0].body, fleet[1].body);
        assert_eq!(announce(&fleet).unwrap().requests.len(), 3);
    }

    #[test]
    fn prefix_range_ends() {
        assert_eq!(prefix_range_end(b"/discovery/"), b"/discovery0");
        assert_eq!(prefix_range_end(b"a\xff"), b"b");
        assert_eq!(prefix_range_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn etcd_bodies_are_base64() {
        let fleet = workers("p", 2);
        let puts = etcd_puts(&fleet, "/d/", Some(&[7, 8])).unwrap();
        assert_eq!(puts.requests.len(), 2);
        let put: Value = serde_json::from_slice(puts.requests[1].body()).unwrap();
        assert_eq!(put["key"], BASE64.encode("/d/p-1"));
        assert_eq!(put["value"], BASE64.encode(&fleet[1].body));
        assert_eq!(put["lease"], 8);
        let range = etcd_range("/d/").unwrap();
        let range: Value = serde_json::from_slice(range.requests[0].body()).unwrap();
        assert_eq!(range["range_end"], BASE64.encode("/d0"));
        assert!(etcd_lease_grants(&[1, 2], 30).is_ok());
    }
}

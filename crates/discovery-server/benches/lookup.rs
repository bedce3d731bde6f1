//! Answering lookups through the real router (header parsing, readiness, rendering,
//! ETag): 10, 1,000 and 10,000 matching services, without and with the current ETag
//! (a 304), plus one announcement through the router.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion};
use discovery_server::http::{router, AppState, HttpLimits, NodeInfo};
use discovery_server::readiness::Readiness;
use discovery_server::registry::{Registry, ServiceIndex, StoreName, ValueFormat};
use discovery_store::{MemoryBackend, Store, StoreConfig, SystemClock};
use discovery_types::DynamicAnnouncement;
use tower::ServiceExt;

fn state() -> AppState {
    let open = |name: StoreName| {
        Arc::new(
            Store::open(
                StoreConfig::new(name.as_str()),
                Box::new(MemoryBackend::new()),
                Arc::new(SystemClock),
                ServiceIndex::new(ValueFormat::of(name)),
            )
            .expect("open"),
        )
    };
    AppState {
        auth: Arc::new(discovery_server::authenticator::Authenticator::open()),
        metrics: Arc::new(discovery_server::metrics::Metrics::new()),
        diagnostics: Arc::new(discovery_server::diagnostics::Diagnostics::new()),
        announce: None,
        registry: Arc::new(Registry::new(
            "bench",
            open(StoreName::Dynamic),
            open(StoreName::Static),
            600_000,
        )),
        limits: Arc::new(HttpLimits {
            max_request_size: 1 << 20,
            max_replication_request_size: 4 << 20,
            lookup_max_age_secs: 10,
            announce_max_age_secs: 10,
        }),
        node: Arc::new(NodeInfo {
            node_id: "bench".into(),
            inventory: None,
            inventory_error: Arc::new(Mutex::new(None)),
            replicator: None,
        }),
        readiness: Arc::new(Readiness::new(
            std::time::Duration::ZERO,
            std::time::Duration::ZERO,
            None,
        )),
    }
}

fn announcement(node: usize) -> String {
    format!(
        r#"{{"environment":"bench","pool":"general","location":"/worker-{node}","services":[{{"id":"0b7d3e55-2a8e-4c61-9a4f-{node:012x}","type":"trino","properties":{{"node_version":"476","coordinator":"false","http":"http://10.1.4.17:8080","http-external":"http://10.1.4.17:8080"}}}}]}}"#
    )
}

fn announce_all(state: &AppState, count: usize) {
    for node in 0..count {
        let body =
            DynamicAnnouncement::from_json(announcement(node).as_bytes(), "bench").expect("valid");
        state
            .registry
            .announce(&format!("worker-{node}"), body)
            .expect("announce");
    }
}

async fn get(app: &axum::Router, etag: Option<&str>) -> (StatusCode, Option<String>, usize) {
    let mut request = Request::get("/v1/service/trino/general");
    if let Some(tag) = etag {
        request = request.header("ETag", tag);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let tag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, tag, body.len())
}

fn lookups(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for count in [10, 1_000, 10_000] {
        let state = state();
        announce_all(&state, count);
        let app = router(state);
        let (status, tag, bytes) = runtime.block_on(get(&app, None));
        assert_eq!(status, StatusCode::OK);
        let tag = tag.expect("etag");
        eprintln!("lookup of {count} services: {bytes} bytes");
        c.bench_function(&format!("lookup/{count} services, 200"), |b| {
            b.iter(|| runtime.block_on(get(&app, None)))
        });
        c.bench_function(
            &format!("lookup/{count} services, 304 (current ETag)"),
            |b| b.iter(|| runtime.block_on(get(&app, Some(&tag)))),
        );
    }
}

fn announce(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let state = state();
    announce_all(&state, 1_000);
    let app = router(state);
    let bodies: Vec<String> = (0..1_000).map(announcement).collect();
    let mut node = 0;
    c.bench_function(
        "announce/PUT through the router (renewal of one of 1k nodes)",
        |b| {
            b.iter(|| {
                node = (node + 1) % bodies.len();
                let request = Request::put(format!("/v1/announcement/worker-{node}"))
                    .header("content-type", "application/json")
                    .body(Body::from(bodies[node].clone()))
                    .expect("request");
                let response = runtime
                    .block_on(app.clone().oneshot(request))
                    .expect("infallible");
                assert_eq!(response.status(), StatusCode::ACCEPTED);
            })
        },
    );
}

criterion_group!(benches, lookups, announce);
criterion_main!(benches);

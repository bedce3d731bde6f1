//! Hot paths of the store: applying an announcement (the write every renewal makes) on
//! the memory and sled backends, and computing the anti-entropy digest.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use discovery_store::{Database, MemoryBackend, Store, StoreConfig, SystemClock};

const KEYS: usize = 10_000;

/// A Trino worker's announcement as the dynamic store holds it (about 300 bytes).
fn value(node: usize) -> Vec<u8> {
    format!(
        r#"[{{"id":"0b7d3e55-2a8e-4c61-9a4f-{node:012x}","nodeId":"worker-{node}","type":"trino","pool":"general","location":"/worker-{node}","properties":{{"coordinator":"false","http":"http://10.1.4.17:8080","http-external":"http://10.1.4.17:8080","node_version":"476"}}}}]"#
    )
    .into_bytes()
}

fn filled(store: &Store) {
    for node in 0..KEYS {
        store
            .put(
                format!("worker-{node}").into_bytes(),
                value(node),
                Some(30_000),
            )
            .expect("put");
    }
}

fn apply_announcement(c: &mut Criterion) {
    let memory = Store::open(
        StoreConfig::new("dynamic"),
        Box::new(MemoryBackend::new()),
        Arc::new(SystemClock),
        (),
    )
    .expect("open");
    filled(&memory);
    let mut node = 0;
    c.bench_function(
        "store/apply announcement (renewal, memory backend, 10k keys)",
        |b| {
            b.iter(|| {
                node = (node + 1) % KEYS;
                memory
                    .put(
                        format!("worker-{node}").into_bytes(),
                        value(node),
                        Some(30_000),
                    )
                    .expect("put")
            })
        },
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path()).expect("sled");
    let sled = Store::open(
        StoreConfig::new("dynamic"),
        Box::new(db.backend("dynamic").expect("tree")),
        Arc::new(SystemClock),
        (),
    )
    .expect("open");
    filled(&sled);
    c.bench_function(
        "store/apply announcement (renewal, sled backend, 10k keys)",
        |b| {
            b.iter(|| {
                node = (node + 1) % KEYS;
                sled.put(
                    format!("worker-{node}").into_bytes(),
                    value(node),
                    Some(30_000),
                )
                .expect("put")
            })
        },
    );
}

fn digest(c: &mut Criterion) {
    let store = Store::open(
        StoreConfig::new("dynamic"),
        Box::new(MemoryBackend::new()),
        Arc::new(SystemClock),
        (),
    )
    .expect("open");
    filled(&store);
    c.bench_function("store/anti-entropy digest (10k entries)", |b| {
        b.iter(|| store.digest())
    });
    c.bench_function("store/summaries of 16 buckets (10k entries)", |b| {
        b.iter_batched(
            || (0..16).collect::<Vec<usize>>(),
            |buckets| store.summaries(&buckets),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, apply_announcement, digest);
criterion_main!(benches);

//! Encoding and decoding a replication push of 1,000 announcements (JSON, as on the wire),
//! and the same batch as renewals.

use criterion::{criterion_group, criterion_main, Criterion};
use discovery_replicator::convert::{entry_from_wire, entry_to_wire, renewal_to_wire};
use discovery_store::Entry;
use discovery_types::replication::PushRequest;

fn entry(node: usize) -> Entry {
    Entry {
        key: format!("worker-{node}").into_bytes(),
        value: Some(
            format!(
                r#"[{{"id":"0b7d3e55-2a8e-4c61-9a4f-{node:012x}","nodeId":"worker-{node}","type":"trino","pool":"general","location":"/worker-{node}","properties":{{"coordinator":"false","http":"http://10.1.4.17:8080","node_version":"476"}}}}]"#
            )
            .into_bytes(),
        ),
        version: 1_800_000_000_000 + node as i64,
        timestamp: 1_800_000_000_000 + node as i64,
        max_age_ms: Some(30_000),
    }
}

fn batch(c: &mut Criterion) {
    let entries: Vec<Entry> = (0..1000).map(entry).collect();
    let full = PushRequest {
        entries: entries.iter().map(entry_to_wire).collect(),
        renewals: Vec::new(),
    };
    let renewals = PushRequest {
        entries: Vec::new(),
        renewals: entries
            .iter()
            .map(|e| renewal_to_wire(e, 0x1234_5678_9abc_def0))
            .collect(),
    };
    let full_json = serde_json::to_vec(&full).expect("encode");
    let renewal_json = serde_json::to_vec(&renewals).expect("encode");

    c.bench_function("batch/encode 1000 entries", |b| {
        b.iter(|| {
            let request = PushRequest {
                entries: entries.iter().map(entry_to_wire).collect(),
                renewals: Vec::new(),
            };
            serde_json::to_vec(&request).expect("encode")
        })
    });
    c.bench_function("batch/decode 1000 entries", |b| {
        b.iter(|| {
            let request: PushRequest = serde_json::from_slice(&full_json).expect("decode");
            request
                .entries
                .into_iter()
                .map(entry_from_wire)
                .collect::<Vec<_>>()
        })
    });
    c.bench_function("batch/encode 1000 renewals", |b| {
        b.iter(|| serde_json::to_vec(&renewals).expect("encode"))
    });
    c.bench_function("batch/decode 1000 renewals", |b| {
        b.iter(|| serde_json::from_slice::<PushRequest>(&renewal_json).expect("decode"))
    });
    eprintln!(
        "batch of 1000: {} bytes as entries, {} bytes as renewals",
        full_json.len(),
        renewal_json.len()
    );
}

criterion_group!(benches, batch);
criterion_main!(benches);

//! Bytes of anti-entropy rounds, measured in process: two real stores, the real
//! reconciliation code, and the simulated network, which serialises every request and
//! response to JSON exactly as over HTTP and counts the bytes (bodies; HTTP adds about
//! 150-250 bytes of headers per request).

use std::sync::Arc;

use discovery_replicator::sim::{sim_peer, SimNetwork};
use discovery_replicator::{reconcile, AnyEntry, ReplicatorConfig, Responder};
use discovery_store::{Entry, ManualClock, MemoryBackend, Origin, Store, StoreConfig};
use discovery_types::WireEntry;

const NOW: i64 = 1_800_000_000_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Entries both replicas hold.
    #[arg(long, default_value_t = 10_000)]
    entries: usize,
    /// Entries the peer holds that this node lacks, for the second round.
    #[arg(long, default_value_t = 1_000)]
    divergence: usize,
}

/// A value shaped like a Trino worker's announcement.
fn announcement(node: usize) -> Vec<u8> {
    format!(
        r#"[{{"id":"{}","nodeId":"worker-{node}","type":"trino","pool":"general","location":"/worker-{node}","properties":{{"coordinator":"false","http":"http://10.1.{}.{}:8080","http-external":"http://10.1.{}.{}:8080","node_version":"476"}}}}]"#,
        uuid::Uuid::new_v4(),
        node / 250,
        node % 250,
        node / 250,
        node % 250
    )
    .into_bytes()
}

fn entry(node: usize) -> Entry {
    Entry {
        key: format!("worker-{node}").into_bytes(),
        value: Some(announcement(node)),
        version: NOW - 1000,
        timestamp: NOW - 1000,
        max_age_ms: Some(30_000),
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let clock = Arc::new(ManualClock::new(NOW));
    let open = || {
        Store::open(
            StoreConfig::new("dynamic"),
            Box::new(MemoryBackend::new()),
            clock.clone(),
            (),
        )
        .map(Arc::new)
    };
    let (here, there) = (open()?, open()?);
    let shared: Vec<Entry> = (0..args.entries).map(entry).collect();
    here.apply(shared.clone(), Origin::Remote)?;
    there.apply(shared, Origin::Remote)?;

    let net = SimNetwork::<()>::new();
    let responder = |store: &Arc<Store<()>>| {
        Arc::new(Responder::new(Arc::new(AnyEntry)).with_store("dynamic", Arc::clone(store)))
    };
    let here_side = responder(&here);
    net.attach("here", Arc::clone(&here_side));
    net.attach("there", responder(&there));
    let transport = net.transport("here");
    let peer = sim_peer("there");
    let config = ReplicatorConfig::default();

    let in_sync = reconcile(&here_side, "dynamic", &transport, &peer, &config, &*clock).await?;
    let in_sync_traffic = net.traffic();
    anyhow::ensure!(in_sync.in_agreement, "replicas were expected to agree");

    let missing: Vec<Entry> = (args.entries..args.entries + args.divergence)
        .map(entry)
        .collect();
    // The bytes of the difference itself: the missing entries as one JSON array.
    let missing_bytes = serde_json::to_vec(
        &missing
            .iter()
            .map(discovery_replicator::convert::entry_to_wire)
            .collect::<Vec<_>>(),
    )?
    .len();
    there.apply(missing, Origin::Remote)?;
    let differing = here.digest().differing_buckets(&there.digest()).len();
    net.reset_traffic();
    let diverged = reconcile(&here_side, "dynamic", &transport, &peer, &config, &*clock).await?;
    let diverged_traffic = net.traffic();
    anyhow::ensure!(
        diverged.fetched == args.divergence,
        "fetched {} entries",
        diverged.fetched
    );
    anyhow::ensure!(
        here.digest() == there.digest(),
        "replicas differ after the round"
    );

    // What airlift's pull costs every round whatever the difference: the peer's whole store.
    let dump: Vec<WireEntry> = there
        .entries()
        .iter()
        .map(|e| discovery_replicator::convert::entry_to_wire(e))
        .collect();
    let full_dump = serde_json::to_vec(&dump)?.len();

    println!(
        "### Anti-entropy round, {} entries per replica (in process, JSON bodies)\n",
        args.entries
    );
    println!("| Round | Requests | Body bytes (both ways) | Detail |");
    println!("|---|---|---|---|");
    println!(
        "| replicas agree | {} | {} | digest request answered 304 |",
        in_sync_traffic.messages, in_sync_traffic.bytes
    );
    let total = diverged_traffic.bytes;
    println!(
        "| peer has {} entries this node lacks | {} | {} | digest {} B, ranges {} B, diff {} B, summaries {} B, entries {} B; {} buckets of 256 differed |",
        args.divergence,
        diverged_traffic.messages,
        total,
        diverged_traffic.bytes_of("digest"),
        diverged_traffic.bytes_of("ranges"),
        diverged_traffic.bytes_of("diff"),
        diverged_traffic.bytes_of("summaries"),
        diverged_traffic.bytes_of("entries"),
        differing,
    );
    println!(
        "| the differing entries themselves | – | {missing_bytes} | the round moved {:.2} × these bytes |",
        total as f64 / missing_bytes as f64
    );
    println!("| airlift's pull, every round | 1 | {full_dump} | the peer's whole store |");
    Ok(())
}

//! What each subcommand does, on top of `discovery-client`.
//!
//! Results go to stdout (tables, or JSON with `--output json`); notes and errors go to
//! stderr, so `$(discovery lookup ...)` captures only values.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use discovery_client::types::{
    validate_node_id, DynamicAnnouncement, Service, ServiceAnnouncement, StaticAnnouncement,
};
use discovery_client::{
    parse_announcement_file, parse_static_file, DecodedEntry, DiscoveryClient, ServiceSelector,
    StoreName,
};
use serde_json::{self as json, json, Value};

use crate::auth::Credentials;
use crate::cli::{
    AnnounceArgs, Cli, ClusterCommand, Command, LookupArgs, Output, ServicesArgs, StaticAddArgs,
    StaticCommand, StaticRmArgs, StoreCommand, StoreDumpArgs, UnannounceArgs, WatchArgs,
};
use crate::connect::Connect;
use crate::format::{self, Table};
use crate::outcome::{auth_hint, print, print_json, Failure, Outcome, EXIT_SERVER};

// Services and entries are strings, numbers and string maps: converting them cannot fail.
fn to_value(service: &Service) -> Value {
    json::to_value(service).unwrap_or(Value::Null)
}

fn entry_value(entry: &DecodedEntry) -> Value {
    json::to_value(entry).unwrap_or(Value::Null)
}

pub async fn run(cli: Cli) -> Result<Outcome, Failure> {
    let credentials =
        Credentials::from_flags(cli.token.as_ref(), cli.shared_secret_file.as_deref())?;
    let connect = Connect {
        timeout: cli.timeout,
        credentials: Arc::new(credentials),
    };
    let mut builder = connect.builder(cli.uri.iter().cloned());
    if let Some(environment) = &cli.environment {
        builder = builder.environment(environment.clone());
    }
    let client = builder.build()?;
    let output = cli.output;
    match cli.command {
        Command::Services(args) => services(&client, output, args).await,
        Command::Lookup(args) => lookup(&client, output, args).await,
        Command::Announce(args) => announce(&client, output, args).await,
        Command::Unannounce(args) => unannounce(&client, output, args).await,
        Command::Static(StaticCommand::Add(args)) => static_add(&client, output, args).await,
        Command::Static(StaticCommand::List) => static_list(&client, output).await,
        Command::Static(StaticCommand::Rm(args)) => static_rm(&client, output, args).await,
        Command::Store(StoreCommand::Dump(args)) => store_dump(&client, output, args).await,
        Command::Watch(args) => watch(client, output, args).await,
        Command::Why(args) => crate::why::why(&client, output, args).await,
        Command::Cluster(ClusterCommand::Status) => {
            crate::cluster::status(&client, output, &connect).await
        }
    }
}

async fn services(
    client: &DiscoveryClient,
    output: Output,
    args: ServicesArgs,
) -> Result<Outcome, Failure> {
    let set = match (&args.service_type, &args.pool) {
        (None, _) => client.lookup_all().await?,
        (Some(service_type), None) => client.lookup_type(service_type).await?,
        (Some(service_type), Some(pool)) => client.lookup(service_type, pool).await?,
    };
    // Ages come from the raw dynamic entries: a lookup does not say when a node last
    // announced. Without them the list is still worth printing.
    let now = format::now_ms();
    let (announced_at, degraded) = match client.store_entries(StoreName::Dynamic).await {
        Ok(entries) => (
            entries
                .into_iter()
                .filter(|e| !e.tombstone)
                .map(|e| (e.key, e.timestamp))
                .collect::<HashMap<_, _>>(),
            false,
        ),
        Err(e) => {
            let hint = auth_hint(&e).map_or_else(String::new, |hint| format!("\nhint: {hint}"));
            eprintln!("discovery: cannot read the dynamic store, so ages are unknown: {e}{hint}");
            (HashMap::new(), true)
        }
    };
    let age_ms = |service: &Service| -> Option<i64> {
        let node_id = service.node_id.as_ref()?;
        announced_at
            .get(node_id)
            .map(|at| now.saturating_sub(*at).max(0))
    };
    let mut services = set.services;
    sort_services(&mut services);

    match output {
        Output::Json => {
            let services: Vec<Value> = services
                .iter()
                .map(|service| {
                    let mut value = to_value(service);
                    if let Value::Object(object) = &mut value {
                        object.insert(
                            "ageMs".into(),
                            age_ms(service).map_or(Value::Null, Value::from),
                        );
                    }
                    value
                })
                .collect();
            print_json(&json!({"environment": set.environment, "services": services}))?;
        }
        Output::Table => {
            let mut table = Table::new(&["type", "pool", "node", "location", "http", "age"]);
            for service in &services {
                let age = match (&service.node_id, age_ms(service)) {
                    (None, _) => "-".to_owned(),
                    (Some(_), Some(ms)) => format::duration_ms(ms),
                    (Some(_), None) => "?".to_owned(),
                };
                table.row(vec![
                    service.service_type.clone(),
                    service.pool.clone(),
                    service.node_id.clone().unwrap_or_else(|| "-".into()),
                    service.location.clone().unwrap_or_else(|| "-".into()),
                    format::http_of(service),
                    age,
                ]);
            }
            if services.is_empty() {
                eprintln!("discovery: no services");
            } else {
                print(&table.render())?;
            }
        }
    }
    Ok(if services.is_empty() && args.service_type.is_some() {
        Outcome::NothingMatched
    } else if degraded {
        Outcome::Degraded
    } else {
        Outcome::Done
    })
}

async fn lookup(
    client: &DiscoveryClient,
    output: Output,
    args: LookupArgs,
) -> Result<Outcome, Failure> {
    let set = client.lookup(&args.service_type, &args.pool).await?;
    let mut services = set.services;
    sort_services(&mut services);
    let what = format!("{} service in pool {}", args.service_type, args.pool);

    if let Some(property) = &args.property {
        let values: Vec<&String> = services
            .iter()
            .filter_map(|s| s.properties.get(property))
            .collect();
        match output {
            Output::Json => print_json(&json!(values))?,
            Output::Table if !values.is_empty() => {
                let lines: String = values.iter().map(|v| format!("{v}\n")).collect();
                print(&lines)?;
            }
            Output::Table => {}
        }
        if values.is_empty() {
            if services.is_empty() {
                eprintln!("discovery: no {what}");
            } else {
                eprintln!("discovery: no {what} has the property '{property}'");
            }
            return Ok(Outcome::NothingMatched);
        }
        return Ok(Outcome::Done);
    }

    match output {
        Output::Json => print_json(&json!(services.iter().map(to_value).collect::<Vec<_>>()))?,
        Output::Table if !services.is_empty() => {
            let mut table = Table::new(&["id", "node", "location", "http"]);
            for service in &services {
                table.row(vec![
                    service.id.clone(),
                    service.node_id.clone().unwrap_or_else(|| "-".into()),
                    service.location.clone().unwrap_or_else(|| "-".into()),
                    format::http_of(service),
                ]);
            }
            print(&table.render())?;
        }
        Output::Table => {}
    }
    if services.is_empty() {
        eprintln!("discovery: no {what}");
        return Ok(Outcome::NothingMatched);
    }
    Ok(Outcome::Done)
}

async fn announce(
    client: &DiscoveryClient,
    output: Output,
    args: AnnounceArgs,
) -> Result<Outcome, Failure> {
    let environment = client.environment().await?;
    let (node_id, announcement) = match &args.file {
        Some(path) => {
            let parsed = parse_announcement_file(&read_file(path)?, &environment)
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
            let node_id = args.node_id.clone().or(parsed.node_id).ok_or_else(|| {
                Failure::usage(format!(
                    "{}: the file has no nodeId; pass --node-id",
                    path.display()
                ))
            })?;
            (node_id, parsed.announcement)
        }
        None => {
            let node_id = args
                .node_id
                .clone()
                .ok_or_else(|| Failure::usage("--node-id is required"))?;
            let service_type = args
                .service_type
                .clone()
                .ok_or_else(|| Failure::usage("--type is required without --file"))?;
            let service = ServiceAnnouncement {
                id: args
                    .id
                    .clone()
                    .unwrap_or_else(|| stable_service_id(&node_id, &service_type)),
                service_type,
                properties: args.properties.iter().cloned().collect(),
            };
            let announcement = DynamicAnnouncement {
                environment,
                pool: args.pool.clone(),
                location: args.location.clone(),
                services: vec![service],
            };
            (node_id, announcement)
        }
    };
    validate_node_id(&node_id).map_err(|e| Failure::usage(e.to_string()))?;

    let announced = client.announce(&node_id, &announcement).await?;
    match output {
        Output::Json => print_json(&json!({
            "nodeId": node_id,
            "uri": announced.uri,
            "maxAgeSeconds": announced.max_age.map(|d| d.as_secs()),
            "services": announcement.services.iter().map(|s| json!({"id": s.id, "type": s.service_type})).collect::<Vec<_>>(),
        }))?,
        Output::Table => {
            let ids: String = announcement
                .services
                .iter()
                .map(|s| format!("{}\n", s.id))
                .collect();
            print(&ids)?;
            let renew = announced.max_age.map_or_else(String::new, |d| {
                format!(" (the server asks for one every {})", format::duration(d))
            });
            eprintln!(
                "discovery: announced node {node_id} with {} service(s) to {}; it expires unless announced again{renew}",
                announcement.services.len(),
                announced.uri
            );
        }
    }
    Ok(Outcome::Done)
}

async fn unannounce(
    client: &DiscoveryClient,
    output: Output,
    args: UnannounceArgs,
) -> Result<Outcome, Failure> {
    let node_id = match (&args.node_id, &args.file) {
        (Some(node_id), _) => node_id.clone(),
        (None, Some(path)) => node_id_of_file(path)?,
        (None, None) => return Err(Failure::usage("--node-id or --file is required")),
    };
    validate_node_id(&node_id).map_err(|e| Failure::usage(e.to_string()))?;
    client.unannounce(&node_id).await?;
    match output {
        Output::Json => print_json(&json!({"nodeId": node_id, "unannounced": true}))?,
        Output::Table => print(&format!("unannounced node {node_id}\n"))?,
    }
    Ok(Outcome::Done)
}

async fn static_add(
    client: &DiscoveryClient,
    output: Output,
    args: StaticAddArgs,
) -> Result<Outcome, Failure> {
    let environment = client.environment().await?;
    let announcement = match &args.file {
        Some(path) => parse_static_file(&read_file(path)?, &environment)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?,
        None => StaticAnnouncement {
            environment,
            service_type: args
                .service_type
                .clone()
                .ok_or_else(|| Failure::usage("--type is required without --file"))?,
            pool: args.pool.clone(),
            location: args.location.clone(),
            properties: args.properties.iter().cloned().collect(),
        },
    };
    let service = client.add_static(&announcement).await?;
    match output {
        Output::Json => print_json(&to_value(&service))?,
        Output::Table => print(&format!("{}\n", service.id))?,
    }
    Ok(Outcome::Done)
}

async fn static_list(client: &DiscoveryClient, output: Output) -> Result<Outcome, Failure> {
    let set = client.list_static().await?;
    let mut services = set.services;
    sort_services(&mut services);
    match output {
        Output::Json => print_json(&json!({
            "environment": set.environment,
            "services": services.iter().map(to_value).collect::<Vec<_>>(),
        }))?,
        Output::Table if services.is_empty() => eprintln!("discovery: no static services"),
        Output::Table => {
            let mut table = Table::new(&["id", "type", "pool", "location", "properties"]);
            for service in &services {
                table.row(vec![
                    service.id.clone(),
                    service.service_type.clone(),
                    service.pool.clone(),
                    service.location.clone().unwrap_or_else(|| "-".into()),
                    format::properties(service),
                ]);
            }
            print(&table.render())?;
        }
    }
    Ok(Outcome::Done)
}

async fn static_rm(
    client: &DiscoveryClient,
    output: Output,
    args: StaticRmArgs,
) -> Result<Outcome, Failure> {
    // The server answers 204 whether or not the id exists; look first so a typo is
    // reported. The delete is sent regardless: another server of the cluster may hold it.
    let known: BTreeSet<String> = client
        .list_static()
        .await?
        .services
        .into_iter()
        .map(|s| s.id.to_ascii_lowercase())
        .collect();
    let mut missing = Vec::new();
    for id in &args.ids {
        client.delete_static(id).await?;
        if !known.contains(id) {
            missing.push(id.clone());
        }
    }
    match output {
        Output::Json => print_json(&json!({"deleted": args.ids, "notFound": missing}))?,
        Output::Table => {
            let lines: String = args
                .ids
                .iter()
                .filter(|id| !missing.contains(id))
                .map(|id| format!("deleted {id}\n"))
                .collect();
            print(&lines)?;
            for id in &missing {
                eprintln!(
                    "discovery: no static service {id} on this server, so nothing was removed \
                     here; the delete was recorded anyway (the server answers 204 for any \
                     UUID, as airlift's does, so that it also wins on a node that holds it)"
                );
            }
        }
    }
    Ok(if missing.is_empty() {
        Outcome::Done
    } else {
        Outcome::NothingMatched
    })
}

async fn store_dump(
    client: &DiscoveryClient,
    output: Output,
    args: StoreDumpArgs,
) -> Result<Outcome, Failure> {
    let stores: Vec<StoreName> = match &args.store {
        Some(name) => vec![name.parse().map_err(Failure::usage)?],
        None => StoreName::ALL.to_vec(),
    };
    let mut entries: Vec<DecodedEntry> = Vec::new();
    for store in stores {
        let mut decoded = client.store_entries(store).await?;
        decoded.sort_by(|a, b| a.key.cmp(&b.key));
        entries.extend(decoded);
    }
    let now = format::now_ms();
    match output {
        Output::Json => {
            let values: Vec<Value> = entries
                .iter()
                .map(|entry| {
                    let mut value = entry_value(entry);
                    if let Value::Object(object) = &mut value {
                        object.insert(
                            "expiresInMs".into(),
                            entry.expires_in(now).map_or(Value::Null, Value::from),
                        );
                    }
                    value
                })
                .collect();
            print_json(&Value::Array(values))?;
        }
        Output::Table if entries.is_empty() => eprintln!("discovery: the store is empty"),
        Output::Table => {
            let mut table = Table::new(&[
                "store",
                "key",
                "services",
                "version",
                "timestamp",
                "expires",
                "tombstone",
            ]);
            for entry in &entries {
                let expires = if entry.tombstone {
                    "-".to_owned()
                } else {
                    entry
                        .expires_in(now)
                        .map_or_else(|| "never".to_owned(), format::expires_in)
                };
                table.row(vec![
                    entry.store.to_string(),
                    entry.key.clone(),
                    services_cell(entry),
                    entry.version.to_string(),
                    format::timestamp(entry.timestamp),
                    expires,
                    if entry.tombstone { "yes" } else { "no" }.to_owned(),
                ]);
            }
            print(&table.render())?;
        }
    }
    Ok(Outcome::Done)
}

/// `type/pool` of each service in an entry, or why there are none.
fn services_cell(entry: &DecodedEntry) -> String {
    if let Some(error) = &entry.decode_error {
        return format!("undecodable: {error}");
    }
    if entry.services.is_empty() {
        return "-".into();
    }
    entry
        .services
        .iter()
        .map(|s| format!("{}/{}", s.service_type, s.pool))
        .collect::<Vec<_>>()
        .join(",")
}

async fn watch(
    client: DiscoveryClient,
    output: Output,
    args: WatchArgs,
) -> Result<Outcome, Failure> {
    let uris = client.uris().join(",");
    let selector = ServiceSelector::start_loaded(client, &args.service_type, &args.pool).await?;
    let mut services = selector.subscribe();
    let mut status = selector.status();
    let mut previous = services.borrow_and_update().clone();
    match output {
        Output::Json => print(&format!(
            "{}\n",
            json!({
                "event": "initial",
                "type": args.service_type,
                "pool": args.pool,
                "services": previous.iter().map(to_value).collect::<Vec<_>>(),
            })
        ))?,
        Output::Table => {
            let mut text = format!(
                "# watching {}/{} at {uris}: {} service(s)\n",
                args.service_type,
                args.pool,
                previous.len()
            );
            for service in previous.iter() {
                text.push_str(&format::service_line('=', service));
                text.push('\n');
            }
            print(&text)?;
        }
    }

    let mut events = 0u64;
    if args.count == Some(0) {
        return Ok(Outcome::Done);
    }
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = &mut interrupted => return Ok(Outcome::Done),
            changed = services.changed() => {
                if changed.is_err() {
                    return Err(Failure { code: EXIT_SERVER, message: "the service selector stopped".into() });
                }
                let current = services.borrow_and_update().clone();
                let mut diff = format::changes(&previous, &current);
                if diff.is_empty() {
                    continue;
                }
                // One refresh may bring several changes; --count N stops after exactly N,
                // leaving out the rest of that refresh.
                if let Some(count) = args.count {
                    diff.truncate(usize::try_from(count - events).unwrap_or(usize::MAX));
                }
                events += diff.len() as u64;
                print(&change_event(output, &format::timestamp(format::now_ms()), &diff, &current))?;
                previous = current;
                if args.count.is_some_and(|count| events >= count) {
                    return Ok(Outcome::Done);
                }
            }
            changed = status.changed() => {
                if changed.is_err() {
                    return Err(Failure { code: EXIT_SERVER, message: "the service selector stopped".into() });
                }
                let now = status.borrow_and_update().clone();
                if now.consecutive_failures > 0 && !failing {
                    failing = true;
                    eprintln!(
                        "discovery: lookup failed, keeping the last {} service(s): {}",
                        previous.len(),
                        now.last_error.unwrap_or_default()
                    );
                } else if now.consecutive_failures == 0 && failing {
                    failing = false;
                    eprintln!("discovery: lookups work again");
                }
            }
        }
    }
}

fn change_event(
    output: Output,
    time: &str,
    diff: &format::Changes<'_>,
    current: &[Service],
) -> String {
    match output {
        Output::Json => {
            let list =
                |services: &[&Service]| services.iter().map(|s| to_value(s)).collect::<Vec<_>>();
            format!(
                "{}\n",
                json!({
                    "event": "change",
                    "time": time,
                    "added": list(&diff.added),
                    "removed": list(&diff.removed),
                    "changed": list(&diff.changed),
                    "services": current.iter().map(to_value).collect::<Vec<_>>(),
                })
            )
        }
        Output::Table => {
            let mut text = String::new();
            for (sign, services) in [
                ('+', &diff.added),
                ('-', &diff.removed),
                ('~', &diff.changed),
            ] {
                for service in services {
                    text.push_str(&format!("{time} {}\n", format::service_line(sign, service)));
                }
            }
            text
        }
    }
}

/// Namespace of the service ids `announce` derives (a fixed, randomly chosen UUID), so
/// they cannot collide with UUID v5 ids other programs derive from the same names.
const SERVICE_ID_NAMESPACE: uuid::Uuid = uuid::uuid!("5d8f0c3e-7a41-4b6e-9c2d-1f3e8a7b6c50");

/// The id of the service of `service_type` on `node_id` when `--id` is not given: a UUID
/// v5 of the two, so a script re-announcing a node in a loop keeps one id instead of
/// making every lookup see a new service (airlift clients key services by id).
pub fn stable_service_id(node_id: &str, service_type: &str) -> String {
    // The NUL cannot occur in either (node ids and types are validated names), so
    // ("a-b", "c") and ("a", "b-c") stay apart.
    let name = format!("{node_id}\0{service_type}");
    uuid::Uuid::new_v5(&SERVICE_ID_NAMESPACE, name.as_bytes()).to_string()
}

fn sort_services(services: &mut [Service]) {
    services.sort_by(|a, b| {
        (&a.service_type, &a.pool, &a.node_id, &a.id).cmp(&(
            &b.service_type,
            &b.pool,
            &b.node_id,
            &b.id,
        ))
    });
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))
}

/// The `nodeId` of an announcement file, without validating the rest of it.
fn node_id_of_file(path: &Path) -> Result<String, Failure> {
    let body: Value = json::from_slice(&read_file(path)?)
        .map_err(|e| Failure::usage(format!("{}: invalid JSON: {e}", path.display())))?;
    match body.get("nodeId") {
        Some(Value::String(node_id)) => Ok(node_id.clone()),
        _ => Err(Failure::usage(format!(
            "{}: the file has no nodeId; pass --node-id",
            path.display()
        ))),
    }
}

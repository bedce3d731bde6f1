//! The status page (`GET /ui/`), pure: the query it accepts and the HTML it renders from
//! a plain view model. The handler (`http::ui`) reads the node's state into a
//! [`StatusView`]; nothing here does I/O, so every rule is unit-tested.
//!
//! Every value shown comes from the network (node ids, properties, URIs, peers' errors),
//! so the markup is written with `maud`: each interpolated value is escaped unless it is
//! explicitly marked as markup, and the only such marks are the constant style and
//! script below. The page needs no external asset (it must work on an air-gapped network):
//! one inline style sheet and one short inline script, which every few seconds fetches
//! the same URL with `fragment=1` and swaps only the content element, so it refreshes
//! without a reload. Filtering is done here, server-side, so it works without the script.

use std::time::Duration;

use discovery_types::replication::PeerStatus;
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Longest value of one filter parameter: node ids, types and pools are at most 256 bytes.
pub const MAX_PARAMETER_BYTES: usize = 256;
/// Longest query string accepted (three parameters and `fragment`, percent-encoded).
pub const MAX_QUERY_BYTES: usize = 4 * 1024;
/// Services listed at most; the rest are counted ("N more not shown").
pub const MAX_SERVICE_ROWS: usize = 2_000;
/// How often the page's script fetches fresh content.
pub const REFRESH_MS: u64 = 3_000;

/// What the page lists: services of one type and/or pool, and of node ids containing a
/// text. Empty parameters mean "no filter".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exact service type.
    pub service_type: Option<String>,
    /// Exact pool.
    pub pool: Option<String>,
    /// Part of the node id, compared without regard to ASCII case.
    pub node: Option<String>,
}

/// The parsed query of a page request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    pub filter: Filter,
    /// Only the content element (what the script swaps in), not the whole document.
    pub fragment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("query string longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error("parameter '{name}' longer than {limit} bytes")]
    ParameterTooLong { name: &'static str, limit: usize },
}

impl PageQuery {
    /// Parses `type`, `pool`, `node` and `fragment` from a raw query string; other
    /// parameters are ignored, a repeated one keeps its last value.
    pub fn parse(raw: Option<&str>) -> Result<PageQuery, QueryError> {
        let raw = raw.unwrap_or("");
        if raw.len() > MAX_QUERY_BYTES {
            return Err(QueryError::TooLong {
                limit: MAX_QUERY_BYTES,
            });
        }
        let mut query = PageQuery::default();
        for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
            let slot = match name.as_ref() {
                "type" => ("type", &mut query.filter.service_type),
                "pool" => ("pool", &mut query.filter.pool),
                "node" => ("node", &mut query.filter.node),
                "fragment" => {
                    query.fragment = value != "0" && value != "false";
                    continue;
                }
                _ => continue,
            };
            if value.len() > MAX_PARAMETER_BYTES {
                return Err(QueryError::ParameterTooLong {
                    name: slot.0,
                    limit: MAX_PARAMETER_BYTES,
                });
            }
            let value = value.trim();
            *slot.1 = (!value.is_empty()).then(|| value.to_owned());
        }
        Ok(query)
    }
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.service_type.is_none() && self.pool.is_none() && self.node.is_none()
    }

    /// Whether a service of `node_id` passes the node filter.
    pub fn matches_node(&self, node_id: Option<&str>) -> bool {
        match (&self.node, node_id) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(wanted), Some(id)) => id
                .to_ascii_lowercase()
                .contains(&wanted.to_ascii_lowercase()),
        }
    }

    /// Whether a service of `service_type` and `pool` passes the type and pool filters.
    pub fn matches_group(&self, service_type: &str, pool: &str) -> bool {
        self.service_type
            .as_deref()
            .is_none_or(|t| t == service_type)
            && self.pool.as_deref().is_none_or(|p| p == pool)
    }
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct StatusView {
    pub node: NodeView,
    /// `None` on a node without replication (no `service-inventory.uri`).
    pub peers: Option<Vec<PeerView>>,
    /// Sorted by type, pool, node id, service id; at most [`MAX_SERVICE_ROWS`].
    pub services: Vec<ServiceRow>,
    /// Services that matched the filter beyond the ones listed.
    pub services_not_shown: usize,
    pub filter: Filter,
    /// When the view was read, ms since the epoch (this node's clock).
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct NodeView {
    pub node_id: String,
    pub environment: String,
    pub version: String,
    pub uptime: Duration,
    /// `Err` with the reason while not ready.
    pub ready: Result<(), String>,
    pub inventory: Option<String>,
    pub inventory_error: Option<String>,
}

/// Whether the last exchanges with a peer worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Yes,
    No,
    /// No push or anti-entropy round has finished yet, either way.
    Unknown,
}

/// What the last anti-entropy rounds with a peer found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// Every store's last round found equal digests.
    Equal,
    /// Some store's last round found differences (and repaired them).
    Differed,
    /// Some store has not completed a round yet.
    NotYet,
}

/// One peer, summarised over its stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    pub node_id: String,
    pub url: String,
    pub reachable: Reach,
    /// What the peer said about itself in the last anti-entropy round; `None` before one.
    pub ready: Option<bool>,
    /// The oldest write the peer has not acknowledged, over all stores; `None`: nothing owed.
    pub lag_ms: Option<u64>,
    /// The last error of any store, prefixed with the store's name.
    pub last_error: Option<String>,
    pub digests: Agreement,
}

impl PeerView {
    /// Summarises what `/v1/replication/status` reports for one peer.
    pub fn from_status(peer: &PeerStatus) -> PeerView {
        let stores = &peer.stores;
        let last_error = stores
            .iter()
            .find_map(|s| s.last_error.as_ref().map(|e| format!("{}: {e}", s.store)));
        let succeeded = stores
            .iter()
            .any(|s| s.last_push_ok_ms.is_some() || s.last_sync_ok_ms.is_some());
        let reachable = match (&last_error, succeeded) {
            (Some(_), _) => Reach::No,
            (None, true) => Reach::Yes,
            (None, false) => Reach::Unknown,
        };
        let digests = if stores.is_empty() || stores.iter().any(|s| s.syncs_ok == 0) {
            Agreement::NotYet
        } else if stores.iter().all(|s| s.last_sync_in_agreement) {
            Agreement::Equal
        } else {
            Agreement::Differed
        };
        // Ready only when every store's last round heard so; not ready when any heard not.
        let reports: Vec<Option<bool>> = stores.iter().map(|s| s.peer_ready).collect();
        let ready = if reports.contains(&Some(false)) {
            Some(false)
        } else if !reports.is_empty() && reports.iter().all(|r| *r == Some(true)) {
            Some(true)
        } else {
            None
        };
        PeerView {
            node_id: peer.node_id.clone(),
            url: peer.url.clone(),
            reachable,
            ready,
            lag_ms: stores.iter().filter_map(|s| s.oldest_pending_ms).max(),
            last_error,
            digests,
        }
    }

    /// Reached, ready, in agreement, no error.
    pub fn healthy(&self) -> bool {
        self.reachable == Reach::Yes
            && self.ready == Some(true)
            && self.digests == Agreement::Equal
            && self.last_error.is_none()
    }
}

/// One service, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    pub service_type: String,
    pub pool: String,
    pub id: String,
    pub node_id: Option<String>,
    pub location: Option<String>,
    /// The `http` property, else the `https` one.
    pub uri: Option<String>,
    /// `dynamic` (announced) or `static` (added by an operator).
    pub store: &'static str,
    /// When its entry was last written (the last renewal), ms since the epoch.
    pub renewed_at_ms: Option<i64>,
    /// When it stops being listed unless renewed; `None` for never.
    pub expires_at_ms: Option<i64>,
}

/// The whole document.
pub fn page(view: &StatusView) -> String {
    let title = format!("discovery · {}", view.node.node_id);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "discovery " span.muted { "status of " } (view.node.node_id) }
                    (filter_form(&view.filter))
                }
                p #refresh-state .muted aria-live="polite" {}
                main #content data-refresh-ms=(REFRESH_MS) { (content(view)) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
    .into_string()
}

/// The content element's inside: what the script fetches (`fragment=1`) and swaps in.
pub fn fragment(view: &StatusView) -> String {
    content(view).into_string()
}

fn filter_form(filter: &Filter) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    html! {
        form #filter method="get" action="" {
            label { "type " input name="type" maxlength=(MAX_PARAMETER_BYTES) size="12" value=(value(&filter.service_type)); }
            label { "pool " input name="pool" maxlength=(MAX_PARAMETER_BYTES) size="12" value=(value(&filter.pool)); }
            label { "node id " input name="node" maxlength=(MAX_PARAMETER_BYTES) size="16" value=(value(&filter.node)); }
            button type="submit" { "filter" }
            @if !filter.is_empty() { " " a href="./" { "clear" } }
        }
    }
}

fn content(view: &StatusView) -> Markup {
    html! {
        (node_section(&view.node, view.now_ms))
        (peers_section(view.peers.as_deref()))
        (services_section(view))
    }
}

fn node_section(node: &NodeView, now_ms: i64) -> Markup {
    html! {
        section #node {
            h2 { "This node" }
            table.facts {
                tr { th { "node id" } td #node-id { (node.node_id) } }
                tr { th { "environment" } td { (node.environment) } }
                tr { th { "version" } td { (node.version) } }
                tr { th { "uptime" } td { (duration(node.uptime)) } }
                tr {
                    th { "ready" }
                    td #node-ready {
                        @match &node.ready {
                            Ok(()) => span.ok { "ready" },
                            Err(why) => { span.bad { "not ready" } " " (why) },
                        }
                    }
                }
                tr {
                    th { "inventory" }
                    td {
                        @match &node.inventory {
                            Some(uri) => (uri),
                            None => span.muted { "none: a standalone node" },
                        }
                        @if let Some(error) = &node.inventory_error {
                            " " span.bad { "load failed: " (error) }
                        }
                    }
                }
                tr { th { "updated" } td #updated data-now-ms=(now_ms) { (clock_time(now_ms)) " UTC" } }
            }
        }
    }
}

fn peers_section(peers: Option<&[PeerView]>) -> Markup {
    html! {
        section #peers {
            @match peers {
                None => {
                    h2 { "Peers" }
                    p.muted { "Replication is not configured (no service-inventory.uri)." }
                }
                Some(peers) => {
                    h2 {
                        "Peers "
                        span.muted #peer-count {
                            (peers.iter().filter(|p| p.healthy()).count()) " of " (peers.len()) " healthy"
                        }
                    }
                    @if peers.is_empty() {
                        p.muted { "The inventory lists no other node." }
                    } @else {
                        table.list {
                            thead { tr {
                                th { "node id" } th { "url" } th { "reachable" } th { "ready" }
                                th { "lag" } th { "digests" } th { "last error" }
                            } }
                            tbody {
                                @for peer in peers { (peer_row(peer)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn peer_row(peer: &PeerView) -> Markup {
    let (reach_class, reach) = match peer.reachable {
        Reach::Yes => ("ok", "yes"),
        Reach::No => ("bad", "no"),
        Reach::Unknown => ("muted", "not yet"),
    };
    let (ready_class, ready) = match peer.ready {
        Some(true) => ("ok", "ready"),
        Some(false) => ("bad", "not ready"),
        None => ("muted", "unknown"),
    };
    let (digest_class, digests) = match peer.digests {
        Agreement::Equal => ("ok", "equal"),
        Agreement::Differed => ("warn", "differed, repaired"),
        Agreement::NotYet => ("muted", "no round yet"),
    };
    html! {
        tr.peer data-node=(peer.node_id) data-healthy=(peer.healthy()) {
            td.id { (peer.node_id) }
            td.uri { (peer.url) }
            td.reachable { span class=(reach_class) { (reach) } }
            td.ready { span class=(ready_class) { (ready) } }
            td.lag {
                @match peer.lag_ms {
                    Some(ms) => (duration(Duration::from_millis(ms))),
                    None => span.muted { "none" },
                }
            }
            td.digests { span class=(digest_class) { (digests) } }
            td.error {
                @match &peer.last_error {
                    Some(error) => span.bad { (error) },
                    None => span.muted { "none" },
                }
            }
        }
    }
}

fn services_section(view: &StatusView) -> Markup {
    let shown = view.services.len();
    let total = shown + view.services_not_shown;
    let mut groups: Vec<(&str, &str, Vec<&ServiceRow>)> = Vec::new();
    for row in &view.services {
        match groups.last_mut() {
            Some((t, p, rows)) if *t == row.service_type && *p == row.pool => rows.push(row),
            _ => groups.push((&row.service_type, &row.pool, vec![row])),
        }
    }
    html! {
        section #services {
            h2 {
                "Services "
                span.muted #service-count {
                    (total) @if total == 1 { " service" } @else { " services" }
                    @if !view.filter.is_empty() { " matching the filter" }
                }
            }
            @if groups.is_empty() {
                p.muted { "No live service" @if !view.filter.is_empty() { " matches the filter" } "." }
            }
            @for (service_type, pool, rows) in &groups {
                div.group data-type=(service_type) data-pool=(pool) {
                    h3 { (service_type) span.muted { " / " } (pool) " " span.muted { "(" (rows.len()) ")" } }
                    table.list {
                        thead { tr {
                            th { "node id" } th { "location" } th { "uri" }
                            th { "renewed" } th { "expires" } th { "store" }
                        } }
                        tbody {
                            @for row in rows { (service_row(row, view.now_ms)) }
                        }
                    }
                }
            }
            @if view.services_not_shown > 0 {
                p #not-shown .warn {
                    (view.services_not_shown) " more not shown (at most " (MAX_SERVICE_ROWS)
                    " are listed): narrow the list with a filter."
                }
            }
        }
    }
}

fn service_row(row: &ServiceRow, now_ms: i64) -> Markup {
    html! {
        tr.service data-id=(row.id) data-node=[row.node_id.as_deref()] {
            td.id title=(row.id) {
                @match &row.node_id {
                    Some(node) => (node),
                    None => span.muted { "none" },
                }
            }
            td { @if let Some(location) = &row.location { (location) } }
            td.uri {
                @match &row.uri {
                    // Linked only when it is plainly http(s): a `javascript:` URI from the
                    // network must not become a link.
                    Some(uri) if is_web_uri(uri) => a href=(uri) rel="noreferrer" { (uri) },
                    Some(uri) => (uri),
                    None => span.muted { "no http property" },
                }
            }
            td {
                @match row.renewed_at_ms {
                    Some(at) => { (ago(now_ms, at)) },
                    None => span.muted { "unknown" },
                }
            }
            td {
                @match row.expires_at_ms {
                    Some(at) if at >= now_ms => { "in " (duration(ms_between(now_ms, at))) },
                    Some(_) => span.bad { "expired" },
                    None => span.muted { "never" },
                }
            }
            td.muted { (row.store) }
        }
    }
}

fn is_web_uri(uri: &str) -> bool {
    let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn ms_between(from_ms: i64, to_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(to_ms.saturating_sub(from_ms)).unwrap_or(0))
}

/// "12s ago", or "just now" for a time at or after `now_ms` (another node's clock).
fn ago(now_ms: i64, at_ms: i64) -> String {
    if at_ms >= now_ms {
        return "just now".to_owned();
    }
    format!("{} ago", duration(ms_between(at_ms, now_ms)))
}

/// A short human duration: `850ms`, `12s`, `3m 5s`, `2h 10m`, `4d 3h`.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{secs}s"),
        60..3_600 => format!("{}m {}s", secs / 60, secs % 60),
        3_600..86_400 => format!("{}h {}m", secs / 3_600, secs % 3_600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3_600),
    }
}

/// `HH:MM:SS` of a time in ms since the epoch, UTC.
fn clock_time(ms: i64) -> String {
    let day_secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        day_secs / 3_600,
        day_secs % 3_600 / 60,
        day_secs % 60
    )
}

/// The page's only style sheet.
pub const STYLE: &str = "\
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;padding:0 1.5em 2em;max-width:1400px;color:#1d2125;background:#fff}\
header{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:1em;border-bottom:1px solid #ddd;padding:.6em 0}\
h1{font-size:1.3em;margin:0}h2{font-size:1.1em;margin:1.4em 0 .4em}h3{font-size:1em;margin:1em 0 .3em}\
form label{margin-right:.6em}input{font:inherit;padding:.1em .3em}button{font:inherit}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #eee;vertical-align:top}\
th{font-weight:600;color:#555}table.facts{width:auto}table.facts th{width:9em}\
td.id,td.uri{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.92em;word-break:break-all}\
.ok{color:#146c2e;font-weight:600}.bad{color:#b3261e;font-weight:600}.warn{color:#8a5a00}.muted{color:#6b7280}\
#refresh-state{min-height:1.2em;margin:.3em 0;font-size:.9em}#refresh-state.bad{font-weight:normal}";

/// The page's only script: refreshes the content element in place every
/// [`REFRESH_MS`], keeping the filter; a failed refresh is said and the old content kept.
/// The URL it fetches is absolute and built from the origin, which holds no user name or
/// password: opened as `http://user:token@host/ui/`, a relative URL would resolve to one
/// with credentials, which `fetch` refuses (the browser still sends the cached Basic
/// credentials to the same origin).
pub const SCRIPT: &str = "\
(function(){\
var content=document.getElementById('content'),state=document.getElementById('refresh-state');\
var every=Number(content.getAttribute('data-refresh-ms'))||3000,busy=false;\
function refresh(){\
if(busy){return;}busy=true;\
var query=new URLSearchParams(window.location.search);query.set('fragment','1');\
fetch(window.location.origin+window.location.pathname+'?'+query.toString(),{credentials:'same-origin',cache:'no-store'})\
.then(function(r){if(!r.ok){throw new Error('HTTP '+r.status);}return r.text();})\
.then(function(html){content.innerHTML=html;state.textContent='';state.className='muted';})\
.catch(function(e){state.textContent='refresh failed ('+e.message+'): showing the last data received';state.className='bad';})\
.then(function(){busy=false;});\
}\
window.setInterval(refresh,every);\
})();";

#[cfg(test)]
mod tests {
    use super::*;
    use discovery_types::replication::PeerStoreStatus;

    const NOW: i64 = 1_800_000_000_000;

    fn node() -> NodeView {
        NodeView {
            node_id: "n1".into(),
            environment: "test".into(),
            version: "0.1.0".into(),
            uptime: Duration::from_secs(75),
            ready: Ok(()),
            inventory: Some("file:///etc/inventory.json".into()),
            inventory_error: None,
        }
    }

    fn row(service_type: &str, pool: &str, node: &str, uri: &str) -> ServiceRow {
        ServiceRow {
            service_type: service_type.into(),
            pool: pool.into(),
            id: format!("id-{node}-{service_type}"),
            node_id: Some(node.into()),
            location: Some(format!("/{node}")),
            uri: Some(uri.into()),
            store: "dynamic",
            renewed_at_ms: Some(NOW - 4_000),
            expires_at_ms: Some(NOW + 26_000),
        }
    }

    fn view(services: Vec<ServiceRow>) -> StatusView {
        StatusView {
            node: node(),
            peers: Some(vec![]),
            services,
            services_not_shown: 0,
            filter: Filter::default(),
            now_ms: NOW,
        }
    }

    fn synced(store: &str, ready: Option<bool>) -> PeerStoreStatus {
        PeerStoreStatus {
            store: store.into(),
            syncs_ok: 3,
            last_sync_ok_ms: Some(NOW - 500),
            last_push_ok_ms: Some(NOW - 200),
            last_sync_in_agreement: true,
            peer_ready: ready,
            ..PeerStoreStatus::default()
        }
    }

    fn peer(stores: Vec<PeerStoreStatus>) -> PeerStatus {
        PeerStatus {
            node_id: "n2".into(),
            url: "http://127.0.0.2:8411".into(),
            stores,
        }
    }

    #[test]
    fn the_query_is_parsed_and_bounded() {
        assert_eq!(PageQuery::parse(None), Ok(PageQuery::default()));
        let q =
            PageQuery::parse(Some("type=trino&pool=general&node=W%2F1&fragment=1&x=y")).unwrap();
        assert_eq!(q.filter.service_type.as_deref(), Some("trino"));
        assert_eq!(q.filter.pool.as_deref(), Some("general"));
        assert_eq!(q.filter.node.as_deref(), Some("W/1"));
        assert!(q.fragment);
        let empty = PageQuery::parse(Some("type=&pool=+&node=")).unwrap();
        assert!(empty.filter.is_empty(), "{empty:?}");
        assert!(!PageQuery::parse(Some("fragment=0")).unwrap().fragment);
        let long = format!("node={}", "a".repeat(MAX_PARAMETER_BYTES + 1));
        assert_eq!(
            PageQuery::parse(Some(&long)),
            Err(QueryError::ParameterTooLong {
                name: "node",
                limit: MAX_PARAMETER_BYTES
            })
        );
        let ok = format!("node={}", "a".repeat(MAX_PARAMETER_BYTES));
        assert!(PageQuery::parse(Some(&ok)).is_ok());
        let huge = "x=1&".repeat(MAX_QUERY_BYTES);
        assert!(matches!(
            PageQuery::parse(Some(&huge)),
            Err(QueryError::TooLong { .. })
        ));
    }

    #[test]
    fn filters_match_type_and_pool_exactly_and_node_ids_in_part() {
        let filter = Filter {
            service_type: Some("trino".into()),
            pool: None,
            node: Some("Worker".into()),
        };
        assert!(filter.matches_group("trino", "general"));
        assert!(!filter.matches_group("trino-x", "general"));
        assert!(filter.matches_node(Some("prod-worker-7")));
        assert!(!filter.matches_node(Some("coordinator")));
        assert!(!filter.matches_node(None));
        assert!(Filter::default().matches_node(None));
    }

    #[test]
    fn every_value_from_the_network_is_escaped() {
        let hostile = "<script>alert('x')</script>";
        let mut services = vec![row(hostile, "\"pool\"", "<b>n</b>", hostile)];
        services[0].location = Some("&amp;".into());
        let mut v = view(services);
        v.node.node_id = "<img src=x onerror=alert(1)>".into();
        v.node.ready = Err("<i>why</i>".into());
        v.filter.node = Some("\"><script>".into());
        v.peers = Some(vec![PeerView {
            last_error: Some("<script>e</script>".into()),
            ..PeerView::from_status(&peer(vec![synced("dynamic", Some(true))]))
        }]);
        let html = page(&v);
        assert_eq!(
            html.matches("<script>").count(),
            1,
            "only the page's own: {html}"
        );
        assert!(html.contains("&lt;script&gt;alert('x')&lt;/script&gt;"));
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(!html.contains("<b>n</b>") && !html.contains("<i>why</i>"));
        assert!(html.contains("&amp;amp;"));
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;\""));
        assert!(html.contains("data-pool=\"&quot;pool&quot;\""));
    }

    #[test]
    fn only_http_uris_become_links() {
        let html = fragment(&view(vec![
            row("a", "p", "n1", "http://10.0.0.1:8080"),
            row("b", "p", "n2", "javascript:alert(1)"),
        ]));
        assert!(html.contains("<a href=\"http://10.0.0.1:8080\""));
        assert!(!html.contains("href=\"javascript"));
        assert!(html.contains("javascript:alert(1)"));
    }

    #[test]
    fn services_are_grouped_by_type_and_pool_with_ages() {
        let html = fragment(&view(vec![
            row("trino", "general", "w1", "http://w1"),
            row("trino", "general", "w2", "http://w2"),
            row("trino", "etl", "w3", "http://w3"),
        ]));
        assert_eq!(html.matches("class=\"group\"").count(), 2);
        assert!(html.contains("data-type=\"trino\" data-pool=\"general\""));
        assert!(html.contains("(2)") && html.contains("(1)"));
        assert!(html.contains("4s ago") && html.contains("in 26s"));
        assert!(html.contains("3 services"));
        let mut capped = view(vec![row("t", "p", "w1", "http://w1")]);
        capped.services_not_shown = 5;
        let html = fragment(&capped);
        assert!(html.contains("5 more not shown"), "{html}");
        assert!(html.contains("6 services"));
        let mut empty = view(vec![]);
        empty.filter.pool = Some("nope".into());
        assert!(fragment(&empty).contains("No live service matches the filter."));
    }

    #[test]
    fn a_peer_is_summarised_over_its_stores() {
        let healthy = PeerView::from_status(&peer(vec![
            synced("dynamic", Some(true)),
            synced("static", Some(true)),
        ]));
        assert_eq!(healthy.reachable, Reach::Yes);
        assert_eq!(healthy.ready, Some(true));
        assert_eq!(healthy.digests, Agreement::Equal);
        assert!(healthy.healthy());

        let mut failing = synced("static", None);
        failing.last_error = Some("push failed: connection refused".into());
        failing.oldest_pending_ms = Some(7_000);
        failing.last_sync_in_agreement = false;
        let sick = PeerView::from_status(&peer(vec![synced("dynamic", Some(true)), failing]));
        assert_eq!(sick.reachable, Reach::No);
        assert_eq!(sick.ready, None);
        assert_eq!(sick.lag_ms, Some(7_000));
        assert_eq!(sick.digests, Agreement::Differed);
        assert_eq!(
            sick.last_error.as_deref(),
            Some("static: push failed: connection refused")
        );
        assert!(!sick.healthy());

        let fresh = PeerView::from_status(&peer(vec![PeerStoreStatus {
            store: "dynamic".into(),
            ..PeerStoreStatus::default()
        }]));
        assert_eq!(fresh.reachable, Reach::Unknown);
        assert_eq!(fresh.digests, Agreement::NotYet);
        let not_ready = PeerView::from_status(&peer(vec![synced("dynamic", Some(false))]));
        assert_eq!(not_ready.ready, Some(false));

        let html = fragment(&StatusView {
            peers: Some(vec![healthy, sick]),
            ..view(vec![])
        });
        assert!(html.contains("1 of 2 healthy"), "{html}");
        assert!(html.contains("data-node=\"n2\" data-healthy=\"true\""));
        assert!(html.contains("7s"));
    }

    #[test]
    fn the_node_says_why_it_is_not_ready_and_a_standalone_node_has_no_peers() {
        let mut v = view(vec![]);
        v.node.ready = Err("warming up".into());
        v.peers = None;
        let html = page(&v);
        assert!(html.contains("not ready</span> warming up"), "{html}");
        assert!(html.contains("Replication is not configured"));
        assert!(html.contains("1m 15s"));
        assert!(html.contains("08:00:00 UTC"), "{html}");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains(&format!("data-refresh-ms=\"{REFRESH_MS}\"")));
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_secs(12)), "12s");
        assert_eq!(duration(Duration::from_secs(185)), "3m 5s");
        assert_eq!(duration(Duration::from_secs(7_800)), "2h 10m");
        assert_eq!(duration(Duration::from_secs(97_200)), "1d 3h");
        assert_eq!(ago(NOW, NOW + 5), "just now");
    }
}

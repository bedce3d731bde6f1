//! The status page (`/ui/`) of a 3-node cluster in a real headless Chromium: what a person
//! sees, after the browser ran the page's script under its Content-Security-Policy. The
//! e2e tests read the HTML over HTTP; only a browser shows whether the page renders the
//! node, its peers and the replicated services, whether its filter form works and whether
//! the inline script really refreshes the content in place (no reload), also when the
//! page needs an operator token, given as the password of HTTP Basic.
//!
//! Needs Chromium and chromedriver (`apt-get install chromium chromium-driver`, or
//! `CHROMIUM=` and `CHROMEDRIVER=`): without them the tests fail, saying so.
//!
//! `DISCOVERY_UPDATE_SCREENSHOT=1` writes the screenshot it takes to
//! `docs/status-page.png` (the README shows it); otherwise it goes to the cluster's
//! temporary directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context};
use discovery_testkit::announcements::{announcement, service};
use discovery_testkit::browser::fantoccini::Locator;
use discovery_testkit::browser::Browser;
use discovery_testkit::{eventually, Cluster};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::support::*;

/// A laptop screen's worth: what the screenshot in the README shows.
const WINDOW: (u32, u32) = (1280, 800);

/// Two refresh periods of the page (3 s each) plus replication, on a loaded machine.
const REFRESH_DEADLINE: Duration = Duration::from_secs(30);

/// One node announcing one `trino` service.
struct Announced {
    node_id: &'static str,
    pool: &'static str,
    location: &'static str,
    uri: &'static str,
    coordinator: bool,
    /// Index of the cluster node it announces to.
    via: usize,
    service_id: String,
}

impl Announced {
    fn new(
        node_id: &'static str,
        pool: &'static str,
        location: &'static str,
        uri: &'static str,
        coordinator: bool,
        via: usize,
    ) -> Self {
        Announced {
            node_id,
            pool,
            location,
            uri,
            coordinator,
            via,
            service_id: new_id(),
        }
    }

    async fn announce(&self, c: &Cluster) {
        let properties = json!({
            "http": self.uri,
            "coordinator": self.coordinator.to_string(),
            "node_version": "476",
        });
        let body = announcement(
            self.pool,
            self.location,
            vec![service(&self.service_id, TYPE, properties)],
        );
        let status = c
            .announce(self.via, self.node_id, &body)
            .await
            .expect("announce request failed");
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "PUT /v1/announcement/{}",
            self.node_id
        );
    }
}

/// What the page shows, read from the live DOM in one script (rendered text, so what a
/// person would read, and one round trip per look while polling).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageView {
    marker: Option<i64>,
    node_id: Option<String>,
    ready: Option<String>,
    peer_count: Option<String>,
    peers: Vec<PeerRow>,
    service_count: Option<String>,
    services: Vec<ServiceRow>,
    refresh_state: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PeerRow {
    node: String,
    healthy: String,
    reachable: String,
    ready: String,
    digests: String,
    error: String,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct ServiceRow {
    id: String,
    node: String,
    uri: String,
    href: Option<String>,
    group_type: String,
    group_pool: String,
}

const READ_PAGE: &str = r##"
const text = (selector) => {
  const element = document.querySelector(selector);
  return element ? element.innerText.trim() : null;
};
const cell = (row, selector) => {
  const element = row.querySelector(selector);
  return element ? element.innerText.trim() : "";
};
return {
  marker: window.__marker === undefined ? null : window.__marker,
  nodeId: text("#node-id"),
  ready: text("#node-ready"),
  peerCount: text("#peer-count"),
  peers: Array.from(document.querySelectorAll("tr.peer")).map((row) => ({
    node: row.dataset.node,
    healthy: row.dataset.healthy,
    reachable: cell(row, "td.reachable"),
    ready: cell(row, "td.ready"),
    digests: cell(row, "td.digests"),
    error: cell(row, "td.error"),
  })),
  serviceCount: text("#service-count"),
  services: Array.from(document.querySelectorAll("tr.service")).map((row) => {
    const link = row.querySelector("td.uri a");
    const group = row.closest("div.group");
    return {
      id: row.dataset.id,
      node: cell(row, "td.id"),
      uri: cell(row, "td.uri"),
      href: link ? link.getAttribute("href") : null,
      groupType: group ? group.dataset.type : "",
      groupPool: group ? group.dataset.pool : "",
    };
  }),
  refreshState: text("#refresh-state"),
};
"##;

async fn read_page(browser: &Browser) -> anyhow::Result<PageView> {
    let value: Value = browser.execute(READ_PAGE, vec![]).await?;
    serde_json::from_value(value.clone()).with_context(|| format!("not a page view: {value}"))
}

/// The row the page should show for `a`.
fn expected_row(a: &Announced) -> ServiceRow {
    ServiceRow {
        id: a.service_id.clone(),
        node: a.node_id.to_owned(),
        uri: a.uri.to_owned(),
        href: Some(a.uri.to_owned()),
        group_type: TYPE.to_owned(),
        group_pool: a.pool.to_owned(),
    }
}

/// The page sorts by type, pool, node id: the rows of `announced` in that order.
fn expected_rows(announced: &[&Announced]) -> Vec<ServiceRow> {
    let mut rows: Vec<ServiceRow> = announced.iter().map(|a| expected_row(a)).collect();
    rows.sort_by(|a, b| (&a.group_pool, &a.node).cmp(&(&b.group_pool, &b.node)));
    rows
}

/// Waits until every node sees each peer as the page calls healthy: reached without an
/// error, ready, and in agreement after at least one anti-entropy round in every store.
async fn wait_peers_healthy(c: &Cluster) {
    eventually(
        DEADLINE,
        "every node to see its peers reachable, ready and in agreement",
        || async {
            for i in c.running() {
                let s = status(c, i).await?;
                ensure!(
                    s.peers.len() == c.len() - 1,
                    "{} lists {} peers",
                    c.node_id(i),
                    s.peers.len()
                );
                for peer in &s.peers {
                    for store in &peer.stores {
                        ensure!(
                            store.last_error.is_none()
                                && store.peer_ready == Some(true)
                                && store.syncs_ok > 0
                                && store.last_sync_in_agreement,
                            "{} -> {}: {store:?}",
                            c.node_id(i),
                            peer.node_id
                        );
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        },
    )
    .await
}

/// Where the screenshot goes: the README's picture when asked to update it.
fn screenshot_path(c: &Cluster) -> PathBuf {
    if std::env::var("DISCOVERY_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-page.png")
    } else {
        c.dir().join("status-page.png")
    }
}

/// Width and height from a PNG's header.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    let signature = b"\x89PNG\r\n\x1a\n";
    if png.len() < 24 || &png[..8] != signature || &png[12..16] != b"IHDR" {
        return None;
    }
    let number = |at: usize| {
        png.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
    };
    Some((number(16)?, number(20)?))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_page_in_chromium_shows_the_cluster_filters_and_refreshes_in_place() {
    // The browser first: without one the test fails at once, saying what to install.
    let browser = Browser::start(WINDOW.0, WINDOW.1)
        .await
        .unwrap_or_else(|e| panic!("no headless Chromium for the status page test: {e:#}"));
    eprintln!(
        "status page test: Chromium {}",
        browser
            .version()
            .unwrap_or_else(|| "of unknown version".into())
    );
    // Announcements live 10 minutes: nothing expires while the test (or a slow machine)
    // looks at the page, and nobody has to renew.
    let c = cluster(3, &[("discovery.max-age", "10m")]).await;

    let coordinator = Announced::new(
        "coordinator-1",
        POOL,
        "/dc1/rack-1",
        "http://10.0.1.10:8080",
        true,
        0,
    );
    let worker = Announced::new(
        "worker-1",
        POOL,
        "/dc1/rack-2",
        "http://10.0.1.21:8080",
        false,
        1,
    );
    let etl_worker = Announced::new(
        "worker-2",
        "etl",
        "/dc1/rack-3",
        "http://10.0.2.22:8080",
        false,
        2,
    );
    let first = [&coordinator, &worker, &etl_worker];
    for a in first {
        a.announce(&c).await;
    }
    for a in first {
        wait_listed_everywhere(&c, TYPE, a.pool, &a.service_id, DEADLINE).await;
    }
    for i in c.running() {
        c.wait_ready(i, DEADLINE).await;
    }
    wait_peers_healthy(&c).await;

    // Every node's page: itself ready, the two others healthy, all three services (two
    // of which reached it by replication) with their node ids and http URIs.
    for i in c.running() {
        browser
            .goto(&c.url(i, "/ui/"))
            .await
            .expect("load the page");
        let view = read_page(&browser).await.expect("read the page");
        let me = c.node_id(i);
        assert_eq!(view.node_id.as_deref(), Some(me), "{view:#?}");
        assert_eq!(view.ready.as_deref(), Some("ready"), "{view:#?}");
        assert_eq!(
            view.peer_count.as_deref(),
            Some("2 of 2 healthy"),
            "{view:#?}"
        );
        let mut peers: Vec<&str> = view.peers.iter().map(|p| p.node.as_str()).collect();
        peers.sort_unstable();
        let others: Vec<&str> = c
            .running()
            .into_iter()
            .filter(|&j| j != i)
            .map(|j| c.node_id(j))
            .collect();
        assert_eq!(peers, others, "{me} shows the other nodes as peers");
        for peer in &view.peers {
            assert_eq!(
                (
                    peer.healthy.as_str(),
                    peer.reachable.as_str(),
                    peer.ready.as_str(),
                    peer.digests.as_str(),
                    peer.error.as_str()
                ),
                ("true", "yes", "ready", "equal", "none"),
                "{me} shows {peer:?}"
            );
        }
        assert_eq!(view.services, expected_rows(&first), "{me}: {view:#?}");
        assert_eq!(
            view.service_count.as_deref(),
            Some("3 services"),
            "{view:#?}"
        );
        let title = browser
            .client()
            .title()
            .await
            .expect("the document's title");
        assert_eq!(title, format!("discovery · {me}"));
    }

    // A filter in the query narrows the list; so does the filter form, by navigating.
    browser
        .goto(&c.url(0, "/ui/?pool=etl"))
        .await
        .expect("load the filtered page");
    let view = read_page(&browser).await.expect("read the filtered page");
    assert_eq!(view.services, expected_rows(&[&etl_worker]), "{view:#?}");
    assert_eq!(
        view.service_count.as_deref(),
        Some("1 service matching the filter"),
        "{view:#?}"
    );

    browser
        .goto(&c.url(0, "/ui/"))
        .await
        .expect("load the page");
    let client = browser.client();
    let field = client
        .find(Locator::Css("#filter input[name=node]"))
        .await
        .expect("the node id field of the filter form");
    field.send_keys("COORD").await.expect("type into the field");
    client
        .find(Locator::Css("#filter button[type=submit]"))
        .await
        .expect("the filter button")
        .click()
        .await
        .expect("click the filter button");
    browser
        .wait_for_text("#service-count", "matching the filter", DEADLINE)
        .await
        .expect("the filtered page after the click");
    let view = eventually(DEADLINE, "the form's filter to apply", || async {
        let url = browser.current_url().await?;
        ensure!(url.contains("node=COORD"), "the browser shows {url}");
        let view = read_page(&browser).await?;
        ensure!(
            view.services == expected_rows(&[&coordinator]),
            "{url} shows {view:#?}"
        );
        Ok::<_, anyhow::Error>(view)
    })
    .await;
    assert_eq!(
        view.service_count.as_deref(),
        Some("1 service matching the filter"),
        "{view:#?}"
    );

    // The refresh: a service announced after the page loaded (to another node, so it
    // also has to replicate) appears in the same document, which was not reloaded.
    browser
        .goto(&c.url(0, "/ui/"))
        .await
        .expect("load the page");
    browser
        .execute("window.__marker = 1; return window.__marker;", vec![])
        .await
        .expect("mark the document");
    let late = Announced::new(
        "worker-3",
        POOL,
        "/dc1/rack-3",
        "http://10.0.1.23:8080",
        false,
        2,
    );
    late.announce(&c).await;
    let all = [&coordinator, &worker, &etl_worker, &late];
    let view = eventually(
        REFRESH_DEADLINE,
        "worker-3 to appear on n1's page without a reload",
        || async {
            let view = read_page(&browser).await?;
            ensure!(view.services == expected_rows(&all), "{view:#?}");
            Ok::<_, anyhow::Error>(view)
        },
    )
    .await;
    assert_eq!(
        view.marker,
        Some(1),
        "the page was reloaded instead of refreshed in place"
    );
    assert_eq!(
        view.service_count.as_deref(),
        Some("4 services"),
        "{view:#?}"
    );
    assert_eq!(
        view.refresh_state.as_deref(),
        Some(""),
        "no refresh failed: {view:#?}"
    );
    assert_eq!(view.peer_count.as_deref(), Some("2 of 2 healthy"));

    let path = screenshot_path(&c);
    let png = browser.screenshot(&path).await.expect("a screenshot");
    assert_eq!(
        png_size(&png),
        Some(WINDOW),
        "the screenshot is a PNG of the window"
    );
    eprintln!("status page screenshot: {}", path.display());
    browser.close().await.expect("close the browser");
}

const SECRET: &str = "ui-cluster-shared-secret-0123456789";
const READER: &str = "ui-reader-token-0123456789abcdef";
/// The harness's own client sends this one, so its status polls and announcements pass.
const WRITER: &str = "ui-writer-token-0123456789abcdef";

/// With operator tokens the page needs a `read` token, which a browser sends as the
/// password of HTTP Basic; the page's own refreshes must carry it too, or a signed-in
/// operator would watch "refresh failed (HTTP 401)" instead of the cluster.
#[tokio::test(flavor = "multi_thread")]
async fn with_operator_tokens_the_page_and_its_refreshes_take_the_token_as_basic_password() {
    let browser = Browser::start(WINDOW.0, WINDOW.1)
        .await
        .unwrap_or_else(|e| panic!("no headless Chromium for the status page test: {e:#}"));
    let tokens = tempfile::tempdir().expect("temporary directory");
    let tokens_file = tokens.path().join("operator-tokens");
    std::fs::write(&tokens_file, format!("{READER} read\n{WRITER} write\n"))
        .expect("write the tokens file");
    let c = Cluster::start_with(
        options(3)
            .set("internal-communication.shared-secret", SECRET)
            .set(
                "discovery.operator-tokens-file",
                &tokens_file.display().to_string(),
            )
            .set("discovery.max-age", "10m")
            .client_header("authorization", &format!("Bearer {WRITER}")),
    )
    .await;
    let worker = Announced::new(
        "worker-1",
        POOL,
        "/dc1/rack-1",
        "http://10.0.1.21:8080",
        false,
        1,
    );
    worker.announce(&c).await;
    wait_listed_everywhere(&c, TYPE, POOL, &worker.service_id, DEADLINE).await;

    // Credentials in the address are what a browser sends as Basic after its prompt.
    let addr = c.upstream(0);
    browser
        .goto(&format!("http://operator:{READER}@{addr}/ui/"))
        .await
        .expect("load the page with the read token");
    let view = read_page(&browser).await.expect("read the page");
    assert_eq!(view.node_id.as_deref(), Some("n1"), "{view:#?}");
    assert_eq!(view.services, expected_rows(&[&worker]), "{view:#?}");
    browser
        .execute("window.__marker = 1; return window.__marker;", vec![])
        .await
        .expect("mark the document");

    let late = Announced::new(
        "worker-2",
        POOL,
        "/dc1/rack-2",
        "http://10.0.1.22:8080",
        false,
        2,
    );
    late.announce(&c).await;
    let view = eventually(
        REFRESH_DEADLINE,
        "worker-2 to appear through a refresh that carries the token",
        || async {
            let view = read_page(&browser).await?;
            ensure!(
                view.services == expected_rows(&[&worker, &late]),
                "{view:#?}"
            );
            Ok::<_, anyhow::Error>(view)
        },
    )
    .await;
    assert_eq!(view.marker, Some(1), "the page was reloaded: {view:#?}");
    assert_eq!(
        view.refresh_state.as_deref(),
        Some(""),
        "no refresh failed: {view:#?}"
    );
    browser.close().await.expect("close the browser");
}

//! `GET /ui/`, the status page, against a real `discoveryd`: it is HTML that shows what
//! the node holds, every value from the network is shown as text (never markup), its
//! filters are bounded, and once operator tokens exist it asks a browser for one (HTTP
//! Basic) instead of showing peers and errors to anyone. What a browser makes of it (the
//! rendering, the filter form, the self-refresh under the page's Content-Security-Policy)
//! is tested in real headless Chromium against a 3-node cluster: `tests/cluster/ui.rs`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{announcement, discoveryd, new_id, service, Server};

#[tokio::test]
async fn the_page_lists_announced_services_and_shows_hostile_values_as_text() {
    let server = Server::start(discoveryd!());
    let node = format!("ui-{}", new_id());
    let hostile = "<script>alert(1)</script>";
    server
        .announce(
            &node,
            &announcement(
                "general",
                "/rack-7",
                vec![service(
                    &new_id(),
                    "trino",
                    json!({"http": "http://10.0.0.9:8080", "note": hostile}),
                )],
            ),
        )
        .await;
    // The location is rendered too: a value a client chose.
    let evil_node = format!("ui-evil-{}", new_id());
    server
        .announce(
            &evil_node,
            &announcement(
                "general",
                hostile,
                vec![service(
                    &new_id(),
                    "trino",
                    json!({"http": "javascript:alert(1)"}),
                )],
            ),
        )
        .await;

    let reply = server.get("/ui/").await;
    server.expect_status(&reply, StatusCode::OK);
    server.check_eq(
        reply.header("content-type"),
        Some("text/html; charset=utf-8"),
        "content type",
    );
    let html = reply.text();
    server.check(
        html.contains(&node),
        format!("the node id is shown:\n{html}"),
    );
    server.check(
        html.contains("http://10.0.0.9:8080"),
        "the service's http URI is shown",
    );
    server.check(
        !html.contains(hostile),
        format!("a client's <script> reached the page as markup:\n{html}"),
    );
    server.check(
        html.contains("&lt;script&gt;"),
        "the hostile location is shown, escaped",
    );
    server.check(
        !html.contains("href=\"javascript:"),
        "a javascript: URI never becomes a link",
    );

    let filtered = server.get(&format!("/ui/?node={node}")).await;
    server.expect_status(&filtered, StatusCode::OK);
    let html = filtered.text();
    server.check(
        html.contains(&node) && !html.contains(&evil_node),
        "the node filter narrows the list",
    );

    let long = "x".repeat(5000);
    let reply = server.get(&format!("/ui/?type={long}")).await;
    server.expect_status(&reply, StatusCode::BAD_REQUEST);
}

const SECRET: &str = "e2e-ui-secret-0123456789abcdef";
const READER: &str = "ui-reader-token-0123456789";

#[tokio::test]
async fn with_operator_tokens_the_page_asks_a_browser_for_a_read_token() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let tokens = dir.path().join("operator-tokens");
    std::fs::write(&tokens, format!("{READER} read\n")).expect("tokens file");
    let path = tokens.display().to_string();
    let server = Server::start_with(discoveryd!(), |options| {
        options
            .set("internal-communication.shared-secret", SECRET)
            .set("discovery.operator-tokens-file", &path)
    });

    let anonymous = server.get("/ui/").await;
    server.expect_status(&anonymous, StatusCode::UNAUTHORIZED);
    server.check(
        anonymous
            .header("www-authenticate")
            .is_some_and(|c| c.starts_with("Basic realm=\"discovery\"")),
        format!(
            "a Basic challenge, so the browser prompts: {:?}",
            anonymous.header("www-authenticate")
        ),
    );

    let wrong = format!("Basic {}", BASE64.encode("admin:not-the-token"));
    let reply = server.get_with("/ui/", &[("authorization", &wrong)]).await;
    server.expect_status(&reply, StatusCode::UNAUTHORIZED);

    let right = format!("Basic {}", BASE64.encode(format!("admin:{READER}")));
    let reply = server.get_with("/ui/", &[("authorization", &right)]).await;
    server.expect_status(&reply, StatusCode::OK);

    // Basic is for the page only: the JSON endpoints keep asking for a Bearer token.
    let reply = server
        .get_with("/v1/replication/status", &[("authorization", &right)])
        .await;
    server.expect_status(&reply, StatusCode::UNAUTHORIZED);
    server.check(!server.logs().contains(READER), "the token is never logged");
}

//! Lookup responses: headers (case 25, where we deliberately add Cache-Control and ETag),
//! 304s, ordering, freshness and `//v1` paths.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{announcement, discoveryd, new_id, service, storage_node, Reply, Server};

async fn etag_of(server: &Server, path: &str) -> (String, Vec<u8>) {
    let reply = server.get(path).await;
    server.expect_status(&reply, StatusCode::OK);
    match reply.header("etag") {
        Some(tag) => (tag.to_owned(), reply.body),
        None => server.fail(format!("{reply}\nno ETag")),
    }
}

#[track_caller]
fn expect_not_modified(server: &Server, reply: &Reply, tag: &str) {
    server.expect_status(reply, StatusCode::NOT_MODIFIED);
    server.check(reply.body.is_empty(), format!("{reply}\n304 has no body"));
    server.check_eq(
        reply.header("etag"),
        Some(tag),
        format!("ETag of {}", reply.what),
    );
    server.check_eq(
        reply.header("cache-control"),
        Some("max-age=10"),
        format!("Cache-Control of {}", reply.what),
    );
}

// Case 25: Java sends neither Cache-Control nor ETag; ours sends both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_json_with_cache_control_etag_nosniff_and_a_trailing_newline() {
    let server = Server::start(discoveryd!());
    server.announce("n1", &storage_node()).await;
    for path in [
        "/v1/service",
        "/v1/service/storage",
        "/v1/service/storage/alpha",
        "/v1/service/none",
    ] {
        let reply = server.get(path).await;
        server.expect_status(&reply, StatusCode::OK);
        server.check_eq(
            reply.header("content-type"),
            Some("application/json"),
            format!("{reply}\ncontent type"),
        );
        server.check_eq(
            reply.header("cache-control"),
            Some("max-age=10"),
            format!("{reply}\nCache-Control"),
        );
        server.check_eq(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            format!("{reply}\nnosniff"),
        );
        server.check(
            reply.header("etag").is_some_and(|t| !t.is_empty()),
            format!("{reply}\nan ETag"),
        );
        server.check(
            reply.body.ends_with(b"}\n"),
            format!("{reply}\nbody ends with a newline"),
        );
    }
    // The static listing is JSON too.
    let reply = server.get("/v1/announcement/static").await;
    server.expect_status(&reply, StatusCode::OK);
    server.check_eq(
        reply.header("content-type"),
        Some("application/json"),
        format!("{reply}\ncontent type"),
    );
    server.check_eq(
        reply.header("x-content-type-options"),
        Some("nosniff"),
        format!("{reply}\nnosniff"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_tag_in_if_none_match_or_an_etag_header_gives_304() {
    let server = Server::start(discoveryd!());
    server.announce("n1", &storage_node()).await;
    let path = "/v1/service/storage/alpha";
    let (tag, _) = etag_of(&server, path).await;

    let reply = server.get_with(path, &[("if-none-match", &tag)]).await;
    expect_not_modified(&server, &reply, &tag);
    // The airlift client's quirk: the previous tag in a request header named ETag.
    let reply = server.get_with(path, &[("etag", &tag)]).await;
    expect_not_modified(&server, &reply, &tag);
    let list = format!("\"nope\", {tag}");
    let reply = server.get_with(path, &[("if-none-match", &list)]).await;
    expect_not_modified(&server, &reply, &tag);
    let weak = format!("W/{tag}");
    let reply = server.get_with(path, &[("if-none-match", &weak)]).await;
    expect_not_modified(&server, &reply, &tag);
    let reply = server.get_with(path, &[("if-none-match", "*")]).await;
    expect_not_modified(&server, &reply, &tag);

    // A stale tag gets the full answer.
    for header in ["if-none-match", "etag"] {
        let reply = server.get_with(path, &[(header, "\"stale\"")]).await;
        server.expect_status(&reply, StatusCode::OK);
        server.check(
            !reply.body.is_empty(),
            format!("{reply}\nfull body for a stale tag"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_etag_changes_exactly_when_the_answer_changes() {
    let server = Server::start(discoveryd!());
    let path = "/v1/service/storage/alpha";
    let u1 = new_id();
    let original = announcement(
        "alpha",
        "/a",
        vec![service(&u1, "storage", json!({"k": "1"}))],
    );
    let changed = announcement(
        "alpha",
        "/a",
        vec![service(&u1, "storage", json!({"k": "2"}))],
    );

    let (empty_tag, empty_body) = etag_of(&server, path).await;
    server.announce("n1", &original).await;
    let (tag1, body1) = etag_of(&server, path).await;
    server.check(tag1 != empty_tag, "announcing changes the tag");

    // Same content again: same answer, same tag (a 304 for the holder of tag1).
    server.announce("n1", &original).await;
    let (again, body_again) = etag_of(&server, path).await;
    server.check_eq(
        &again,
        &tag1,
        "re-announcing the same content keeps the tag",
    );
    server.check_eq(body_again, body1.clone(), "and the body");
    let reply = server.get_with(path, &[("etag", &tag1)]).await;
    expect_not_modified(&server, &reply, &tag1);

    // Another type changing does not change this answer.
    server
        .announce(
            "n2",
            &announcement("alpha", "/b", vec![service(&new_id(), "web", json!({}))]),
        )
        .await;
    server.check_eq(
        etag_of(&server, path).await.0,
        tag1.clone(),
        "an unrelated write keeps the tag",
    );

    // Different content: different tag, and the old tag no longer gives a 304.
    server.announce("n1", &changed).await;
    let (tag2, _) = etag_of(&server, path).await;
    server.check(tag2 != tag1, "a different announcement changes the tag");
    let reply = server.get_with(path, &[("if-none-match", &tag1)]).await;
    server.expect_status(&reply, StatusCode::OK);

    // Back to the original content: the original answer and tag.
    server.announce("n1", &original).await;
    let (tag3, body3) = etag_of(&server, path).await;
    server.check_eq(&tag3, &tag1, "the same answer has the same tag");
    server.check_eq(body3, body1, "the same answer has the same body");

    // A delete changes it back to the empty answer's tag.
    server.unannounce("n1").await;
    let (tag4, body4) = etag_of(&server, path).await;
    server.check(tag4 != tag1, "a delete changes the tag");
    server.check_eq(
        tag4,
        empty_tag,
        "the empty answer has the empty answer's tag",
    );
    server.check_eq(body4, empty_body, "the empty answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_sorted_by_id() {
    let server = Server::start(discoveryd!());
    let mut all = Vec::new();
    for n in 0..8 {
        let ids: Vec<String> = (0..3).map(|_| new_id()).collect();
        let services = ids
            .iter()
            .map(|id| service(id, "storage", json!({})))
            .collect();
        server
            .announce(&format!("node-{n}"), &announcement("alpha", "/a", services))
            .await;
        all.extend(ids);
    }
    all.sort();
    for path in [
        "/v1/service",
        "/v1/service/storage",
        "/v1/service/storage/alpha",
    ] {
        server.check_eq(
            server.service_ids(path).await,
            all.clone(),
            format!("{path} sorted by id"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_visible_on_the_very_next_lookup() {
    let server = Server::start(discoveryd!());
    for round in 0..20 {
        let node = format!("n{round}");
        let id = new_id();
        server
            .announce(
                &node,
                &announcement("alpha", "/a", vec![service(&id, "fresh", json!({}))]),
            )
            .await;
        server.check_eq(
            server.service_ids("/v1/service/fresh/alpha").await,
            vec![id],
            "PUT visible at once",
        );
        server.unannounce(&node).await;
        server.check_eq(
            server.services("/v1/service/fresh/alpha").await,
            vec![],
            "DELETE visible at once",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn double_slash_paths_work() {
    let server = Server::start(discoveryd!());
    let u1 = new_id();
    let body = serde_json::to_vec(&announcement(
        "alpha",
        "/a",
        vec![service(&u1, "t", json!({}))],
    ))
    .expect("serialises");
    let reply = server
        .send(
            Method::PUT,
            "//v1/announcement/n1",
            &[],
            Some("application/json"),
            Some(body),
        )
        .await;
    server.expect_status(&reply, StatusCode::ACCEPTED);
    server.check_eq(
        server.service_ids("//v1/service/t/alpha").await,
        vec![u1.clone()],
        "//v1/service/t/alpha",
    );
    server.check_eq(
        server.service_ids("/v1//service//t").await,
        vec![u1],
        "/v1//service//t",
    );
    let reply = server.delete("//v1/announcement/n1").await;
    server.expect_status(&reply, StatusCode::NO_CONTENT);
    server.check_eq(
        server.services("/v1/service/t").await,
        vec![],
        "deleted through //v1",
    );
}

// Java honours `?pretty` and `?jsonp=`; ours ignores query strings (no JSONP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_strings_are_ignored() {
    let server = Server::start(discoveryd!());
    server.announce("n1", &storage_node()).await;
    let plain = server.get("/v1/service/storage").await;
    for query in ["?pretty", "?jsonp=alert", "?pretty&jsonp=cb", "?x=%ff"] {
        let reply = server.get(&format!("/v1/service/storage{query}")).await;
        server.expect_status(&reply, StatusCode::OK);
        server.check_eq(&reply.body, &plain.body, format!("{query}: same body"));
        server.check_eq(
            reply.header("content-type"),
            Some("application/json"),
            format!("{query}: JSON"),
        );
    }
}

// Two servers holding the same services answer with the same bytes and the same tag, so a
// client moving between them behind a load balancer keeps getting 304s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_with_the_same_services_give_the_same_etag() {
    let (a, b) = (Server::start(discoveryd!()), Server::start(discoveryd!()));
    let services: Vec<_> = (0..5)
        .map(|i| {
            service(
                &new_id(),
                "storage",
                json!({"http": format!("http://10.0.0.{i}:8080")}),
            )
        })
        .collect();
    // Different arrival order on each server.
    for (n, s) in services.iter().enumerate() {
        a.announce(
            &format!("node-{n}"),
            &announcement("alpha", "/a", vec![s.clone()]),
        )
        .await;
    }
    for (n, s) in services.iter().enumerate().rev() {
        b.announce(
            &format!("node-{n}"),
            &announcement("alpha", "/a", vec![s.clone()]),
        )
        .await;
    }
    let (tag_a, body_a) = etag_of(&a, "/v1/service/storage/alpha").await;
    let (tag_b, body_b) = etag_of(&b, "/v1/service/storage/alpha").await;
    a.check_eq(&body_a, &body_b, "same body on both servers");
    a.check_eq(&tag_a, &tag_b, "same ETag on both servers");
    let reply = b
        .get_with("/v1/service/storage/alpha", &[("etag", tag_a.as_str())])
        .await;
    expect_not_modified(&b, &reply, &tag_a);
}

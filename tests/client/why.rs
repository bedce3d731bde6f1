//! `discovery why NODE_ID` against a real server: the sentence and exit status for a
//! listed node, a node refused for its environment, one the server never heard of and a
//! malformed id, and the read token it needs when the server has operator tokens.

use std::process::Output;

use crate::support::{
    assert_status, client_of, discovery_command, node, start_server, start_server_with, stderr,
    stdout, Server,
};

const READER: &str = "why-reader-token-0123456789";

fn why(server: &Server, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = discovery_command();
    command.arg("--uri").arg(server.uri()).arg("why").args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("cannot run discovery")
}

#[tokio::test(flavor = "multi_thread")]
async fn why_explains_a_listed_node_and_one_refused_for_its_environment() {
    let server = start_server();
    client_of(&server)
        .announce("worker-1", &node("presto", "http://w1:8080"))
        .await
        .unwrap();
    let output = why(&server, &[], &["worker-1"]);
    assert_status(&output, 0);
    let text = stdout(&output);
    assert!(
        text.starts_with(
            "worker-1 is listed as presto in pool general at /somewhere/worker-1 \
             (http://w1:8080), renewed "
        ),
        "{text}"
    );
    assert!(
        text.trim_end()
            .ends_with("; last accepted by this server from 127.0.0.1"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");

    let mut wrong = node("presto", "http://w2:8080");
    wrong.environment = "prod".into();
    let refused = client_of(&server).announce("worker-2", &wrong).await;
    assert_eq!(refused.err().and_then(|e| e.status()), Some(400));
    let output = why(&server, &[], &["worker-2"]);
    assert_status(&output, 1);
    let text = stdout(&output);
    assert!(
        text.starts_with(
            "worker-2 is not listed: its last announcement was refused: environment mismatch, \
             expected testing, provided prod (last at "
        ),
        "{text}"
    );
    assert!(text.trim_end().ends_with(" UTC from 127.0.0.1)"), "{text}");

    let output = why(&server, &[], &["worker-2", "--output", "json"]);
    assert_status(&output, 1);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["recentRefusals"][0]["reason"]["provided"], "prod");

    let output = why(&server, &[], &["worker-3"]);
    assert_status(&output, 1);
    assert_eq!(
        stdout(&output),
        "worker-3 is not listed and this server has never heard of it: check that its \
         discovery.uri points here\n"
    );

    let output = why(&server, &[], &["a/b"]);
    assert_status(&output, 2);
    assert!(
        stderr(&output).contains("is not a node id"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn why_needs_a_read_token_when_the_server_has_operator_tokens() {
    let files = tempfile::tempdir().expect("temporary directory");
    let tokens = files.path().join("operator-tokens");
    std::fs::write(&tokens, format!("{READER} read\n")).expect("write the tokens file");
    let path = tokens.display().to_string();
    let server = start_server_with(|o| o.set("discovery.operator-tokens-file", &path));
    let output = why(&server, &[], &["worker-1"]);
    assert_status(&output, 3);
    assert!(
        stderr(&output).contains("401 Unauthorized"),
        "{}",
        stderr(&output)
    );
    let output = why(&server, &[("DISCOVERY_TOKEN", READER)], &["worker-1"]);
    assert_status(&output, 1);
    assert!(
        stdout(&output).contains("never heard of it"),
        "{}",
        stdout(&output)
    );
}

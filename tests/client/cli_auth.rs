//! The `discovery` binary against servers with authentication on: `--shared-secret-file`
//! signs announcements as a Trino node would, `--token` / `DISCOVERY_TOKEN` carry operator
//! tokens, refusals print the server's reason and a hint, and no token or secret ever
//! shows in the CLI's output. Also the client library's header hook the CLI is built on.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use discovery_auth::{KeyDerivation, Minter, SharedSecret};
use discovery_client::{DiscoveryClient, HeaderMap, HeaderName, HeaderValue, Method};
use tempfile::TempDir;

use crate::support::{
    assert_status, client_of, discovery_command, node, start_server_with, static_service, stderr,
    stdout, Server, ENV,
};

const SECRET: &str = "cli-auth-shared-secret-0123456789";
const READER: &str = "reader-token-cli-0123456789abcdef";
const WRITER: &str = "writer-token-cli-0123456789abcdef";
/// What must never show in the CLI's output.
const NEVER_PRINTED: [&str; 3] = [SECRET, READER, WRITER];

/// A server with the shared secret and an operator tokens file, plus `extra` settings,
/// and the files the CLI is given.
struct Secured {
    server: Server,
    files: TempDir,
}

impl Secured {
    fn start(extra: &[(&str, &str)]) -> Secured {
        let files = tempfile::tempdir().expect("temporary directory");
        let tokens = files.path().join("operator-tokens");
        std::fs::write(&tokens, format!("{READER} read\n{WRITER} write\n"))
            .expect("write the tokens file");
        // As `echo "$SECRET" > file` leaves it: with a trailing newline.
        std::fs::write(files.path().join("secret"), format!("{SECRET}\n"))
            .expect("write the secret file");
        std::fs::write(
            files.path().join("wrong-secret"),
            "another-secret-0123456789\n",
        )
        .expect("write the wrong secret file");
        std::fs::write(files.path().join("empty-secret"), "").expect("write the empty file");
        let tokens = tokens.display().to_string();
        let server = start_server_with(|mut options| {
            options = options
                .set("internal-communication.shared-secret", SECRET)
                .set("discovery.operator-tokens-file", &tokens);
            for (key, value) in extra {
                options = options.set(key, value);
            }
            options
        });
        Secured { server, files }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.files.path().join(name)
    }

    fn secret_file(&self) -> String {
        path_arg(&self.file("secret"))
    }

    /// `discovery --uri <server> args...`, `env` set, nothing inherited.
    fn run(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut command = discovery_command();
        command.arg("--uri").arg(self.server.uri()).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().expect("cannot run discovery");
        assert_nothing_secret(&output);
        output
    }

    /// A client of the server that may do anything: it signs as an operator with `write`.
    fn operator(&self) -> DiscoveryClient {
        DiscoveryClient::builder([self.server.uri()])
            .environment(ENV)
            .headers(|_, _| bearer(WRITER))
            .build()
            .expect("valid client")
    }
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temporary path").to_owned()
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
    value.set_sensitive(true);
    headers.insert(HeaderName::from_static("authorization"), value);
    headers
}

/// Exit 3 with the server's 401 "missing credentials" and the hint naming the flags.
#[track_caller]
fn assert_missing_credentials(output: &Output) {
    assert_status(output, 3);
    let err = stderr(output);
    assert!(
        err.contains("(401 Unauthorized): missing credentials"),
        "{err}"
    );
    assert!(
        err.contains("hint: pass --token or set DISCOVERY_TOKEN (or --shared-secret-file)"),
        "{err}"
    );
}

#[track_caller]
fn assert_nothing_secret(output: &Output) {
    for stream in [stdout(output), stderr(output)] {
        for secret in NEVER_PRINTED {
            assert!(!stream.contains(secret), "a secret was printed:\n{stream}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn announce_signed_with_the_shared_secret_passes_required_authentication() {
    let secured = Secured::start(&[("discovery.announcement.authentication", "required")]);
    let client = client_of(&secured.server);
    let announce = ["announce", "--node-id", "gw-1", "--type", "presto-gateway"];

    let unsigned = secured.run(&[], &announce);
    assert_missing_credentials(&unsigned);
    assert!(
        client
            .lookup("presto-gateway", "general")
            .await
            .unwrap()
            .services
            .is_empty(),
        "a refused announcement must store nothing"
    );

    let secret = secured.secret_file();
    let mut signed_args = vec!["--shared-secret-file", &secret];
    signed_args.extend(announce);
    let signed = secured.run(&[], &signed_args);
    assert_status(&signed, 0);
    let services = client
        .lookup("presto-gateway", "general")
        .await
        .unwrap()
        .services;
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(services[0].node_id.as_deref(), Some("gw-1"));
    assert_eq!(services[0].id, stdout(&signed).trim());

    // A read token beside the secret: the announcement is still signed for its node (a read
    // token alone would get 403).
    let both = secured.run(
        &[
            ("DISCOVERY_TOKEN", READER),
            ("DISCOVERY_SHARED_SECRET_FILE", &secret),
        ],
        &["announce", "--node-id", "gw-2", "--type", "presto-gateway"],
    );
    assert_status(&both, 0);

    // Unannounce is signed the same way; unsigned, it is refused and the node stays.
    let refused = secured.run(&[], &["unannounce", "--node-id", "gw-1"]);
    assert_missing_credentials(&refused);
    assert_eq!(
        client
            .lookup("presto-gateway", "general")
            .await
            .unwrap()
            .services
            .len(),
        2
    );
    let removed = secured.run(
        &[],
        &[
            "--shared-secret-file",
            &secret,
            "unannounce",
            "--node-id",
            "gw-1",
        ],
    );
    assert_status(&removed, 0);
    let left = client
        .lookup("presto-gateway", "general")
        .await
        .unwrap()
        .services;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].node_id.as_deref(), Some("gw-2"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_or_empty_secret_file_is_reported() {
    let secured = Secured::start(&[("discovery.announcement.authentication", "required")]);
    let wrong = path_arg(&secured.file("wrong-secret"));
    let output = secured.run(
        &[],
        &[
            "--shared-secret-file",
            &wrong,
            "announce",
            "--node-id",
            "gw-1",
            "--type",
            "t",
        ],
    );
    assert_status(&output, 3);
    let err = stderr(&output);
    assert!(err.contains("(401 Unauthorized): bad signature"), "{err}");
    assert!(err.contains("hint: --shared-secret-file"), "{err}");

    // Refused before anything is sent, naming the file.
    let empty = path_arg(&secured.file("empty-secret"));
    let output = secured.run(
        &[("DISCOVERY_SHARED_SECRET_FILE", &empty)],
        &["store", "dump"],
    );
    assert_status(&output, 2);
    let err = stderr(&output);
    assert!(err.contains(&empty) && err.contains("empty"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn static_writes_need_a_write_token() {
    let secured = Secured::start(&[]);
    let add = [
        "static",
        "add",
        "--type",
        "metastore",
        "--property",
        "thrift=thrift://m:9083",
    ];

    let output = secured.run(&[], &add);
    assert_missing_credentials(&output);

    let mut read_args = vec!["--token", READER];
    read_args.extend(add);
    let output = secured.run(&[], &read_args);
    assert_status(&output, 3);
    let err = stderr(&output);
    assert!(
        err.contains("(403 Forbidden): this needs an operator token with role write, not read"),
        "{err}"
    );
    assert!(
        err.contains("hint: ") && err.contains("role write"),
        "{err}"
    );
    assert!(secured
        .operator()
        .list_static()
        .await
        .unwrap()
        .services
        .is_empty());

    let mut write_args = vec!["--token", WRITER];
    write_args.extend(add);
    let output = secured.run(&[], &write_args);
    assert_status(&output, 0);
    let id = stdout(&output).trim().to_owned();
    let listed = secured.operator().list_static().await.unwrap().services;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);

    // The secret makes the CLI a member of the cluster, which may write too.
    let secret = secured.secret_file();
    let output = secured.run(&[], &["--shared-secret-file", &secret, "static", "rm", &id]);
    assert_status(&output, 0);
    assert!(secured
        .operator()
        .list_static()
        .await
        .unwrap()
        .services
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn store_and_cluster_status_take_the_token_from_discovery_token() {
    let secured = Secured::start(&[]);
    secured
        .operator()
        .add_static(&static_service("metastore", "thrift://m:9083"))
        .await
        .unwrap();
    client_of(&secured.server)
        .announce("worker-1", &node("presto", "http://w1:8080"))
        .await
        .unwrap();

    for args in [&["store", "dump"][..], &["cluster", "status"][..]] {
        let refused = secured.run(&[], args);
        assert_missing_credentials(&refused);
        assert_eq!(stdout(&refused), "", "{args:?}");

        let allowed = secured.run(&[("DISCOVERY_TOKEN", READER)], args);
        assert_status(&allowed, 0);
        assert!(!stdout(&allowed).is_empty(), "{args:?}");

        let unknown = secured.run(
            &[("DISCOVERY_TOKEN", "not-a-listed-token-0123456789")],
            args,
        );
        assert_status(&unknown, 3);
        let err = stderr(&unknown);
        assert!(
            err.contains("(401 Unauthorized): unknown token"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("hint: ") && err.contains("operator-tokens-file"),
            "{err}"
        );
        assert!(
            !err.contains("not-a-listed-token"),
            "the token was printed: {err}"
        );
    }
    let dump = secured.run(&[("DISCOVERY_TOKEN", READER)], &["store", "dump"]);
    let text = stdout(&dump);
    assert!(
        text.contains("worker-1") && text.contains("metastore/general"),
        "{text}"
    );

    // `services` reads ages from the dynamic store: without a token the list still comes,
    // with exit 1 (partial) and the hint.
    let output = secured.run(&[], &["services"]);
    assert_status(&output, 1);
    assert!(stdout(&output).contains("worker-1"), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("hint: pass --token or set DISCOVERY_TOKEN"),
        "{}",
        stderr(&output)
    );
    let output = secured.run(&[("DISCOVERY_TOKEN", READER)], &["services"]);
    assert_status(&output, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn required_lookups_take_a_token_or_the_secret() {
    let secured = Secured::start(&[("discovery.lookup.authentication", "required")]);
    secured
        .operator()
        .add_static(&static_service("metastore", "thrift://m:9083"))
        .await
        .unwrap();
    let lookup = ["lookup", "metastore", "--property", "http"];
    assert_missing_credentials(&secured.run(&[], &lookup));
    let output = secured.run(&[("DISCOVERY_TOKEN", READER)], &lookup);
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "thrift://m:9083\n");
    let secret = secured.secret_file();
    let mut args = vec!["--shared-secret-file", secret.as_str()];
    args.extend(lookup);
    let output = secured.run(&[], &args);
    assert_status(&output, 0);
    assert_eq!(stdout(&output), "thrift://m:9083\n");
}

#[test]
fn tokens_are_never_shown_not_in_help_nor_in_usage_errors() {
    let output = discovery_command()
        .env("DISCOVERY_TOKEN", WRITER)
        .arg("--help")
        .output()
        .unwrap();
    assert_status(&output, 0);
    let help = stdout(&output);
    assert!(help.contains("[env: DISCOVERY_TOKEN]"), "{help}");
    assert!(
        help.contains("discovery --shared-secret-file /etc/"),
        "{help}"
    );
    assert!(
        help.contains("DISCOVERY_TOKEN=\"$READ_TOKEN\" discovery"),
        "{help}"
    );
    assert_nothing_secret(&output);

    // Refused before anything is sent (the URI is never contacted), without quoting it.
    let bad = format!("{WRITER} {WRITER}");
    let output = discovery_command()
        .args([
            "--uri",
            "http://127.0.0.1:9",
            "--token",
            &bad,
            "store",
            "dump",
        ])
        .output()
        .unwrap();
    assert_status(&output, 2);
    assert!(stderr(&output).contains("--token"), "{}", stderr(&output));
    assert_nothing_secret(&output);

    // A token may start with '-'; clap must take it as the value, not quote it as a flag.
    let output = discovery_command()
        .args(["--token", "-reader-token-cli-0123456789abcdef", "--bogus"])
        .output()
        .unwrap();
    assert_status(&output, 2);
    assert_nothing_secret(&output);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_header_hook_signs_each_request_and_keeps_the_protocol_headers() {
    let secured = Secured::start(&[("discovery.announcement.authentication", "required")]);
    let secret = SharedSecret::new(SECRET).unwrap();
    // An announcement token for whichever node the path names, and a Content-Type the
    // client must not let through (the server refuses text/plain bodies).
    let client = DiscoveryClient::builder([secured.server.uri()])
        .environment(ENV)
        .headers(move |method, segments| {
            let mut headers = HeaderMap::new();
            headers.insert(
                HeaderName::from_static("content-type"),
                HeaderValue::from_static("text/plain"),
            );
            if let (true, ["v1", "announcement", node_id]) = (method == Method::PUT, segments) {
                let token = Minter::new(
                    &secret,
                    KeyDerivation::Sha256,
                    *node_id,
                    Duration::from_secs(60),
                )
                .token();
                headers.insert(
                    HeaderName::from_static("x-trino-internal-bearer"),
                    HeaderValue::from_str(&token).unwrap(),
                );
            }
            headers
        })
        .build()
        .unwrap();
    client
        .announce("hooked-1", &node("presto", "http://h1:8080"))
        .await
        .unwrap();
    client
        .announce("hooked-2", &node("presto", "http://h2:8080"))
        .await
        .unwrap();
    let nodes: Vec<_> = client
        .lookup("presto", "general")
        .await
        .unwrap()
        .services
        .into_iter()
        .filter_map(|s| s.node_id)
        .collect();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(format!("{client:?}").contains("HeaderSource(..)"));
}

//! The nginx harness (`discovery_testkit::nginx`) keeps the shipped configuration.

use std::net::SocketAddr;

use discovery_testkit::nginx::{discovery_conf, SHIPPED_CONF};

#[test]
fn the_shipped_snippet_keeps_its_settings_with_our_addresses() {
    let shipped = std::fs::read_to_string(SHIPPED_CONF).unwrap();
    let listen: SocketAddr = "127.9.9.1:4242".parse().unwrap();
    let h2c_listen: SocketAddr = "127.9.9.1:4343".parse().unwrap();
    let conf = discovery_conf(
        &shipped,
        &["127.9.1.1:1001".into(), "127.9.2.1:1002".into()],
        listen,
        h2c_listen,
    );
    let shipped_server = shipped
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("server ") && l.contains(':'))
        .unwrap();
    let parameters: Vec<&str> = shipped_server
        .trim_end_matches(';')
        .split_whitespace()
        .skip(2)
        .collect();
    let parameters = parameters.join(" ");
    assert!(parameters.contains("max_fails="), "{shipped_server}");
    for upstream in ["127.9.1.1:1001", "127.9.2.1:1002"] {
        let line = format!("server {upstream} {parameters};");
        assert!(conf.contains(&line), "{line} missing:\n{conf}");
    }
    assert!(conf.contains("listen 127.9.9.1:4242;"), "{conf}");
    assert!(conf.contains("listen 127.9.9.1:4343 http2;"), "{conf}");
    assert_eq!(conf.matches("server 127.9.").count(), 2, "{conf}");
    assert_eq!(conf.matches("listen ").count(), 2, "{conf}");
    // Every other directive of the shipped snippet is kept as it is.
    for line in shipped.lines() {
        let code = line.split('#').next().unwrap().trim();
        if code.is_empty() || code.starts_with("listen ") || code.starts_with("server 1") {
            continue;
        }
        assert!(conf.contains(code), "{code} missing:\n{conf}");
    }
    for directive in [
        "keepalive ",
        "proxy_next_upstream_tries ",
        "proxy_read_timeout ",
    ] {
        assert!(conf.contains(directive), "{directive} missing:\n{conf}");
    }
    assert!(
        conf.lines()
            .any(|l| l.starts_with("proxy_next_upstream ") && l.contains("http_503")),
        "nginx must retry a node that is not ready (503):\n{conf}"
    );
}

//! `NodeParts`: a node started on a listener its caller bound serves there, and only
//! there, whatever `http-server.http.*` says. (Injected transports and peer sets are
//! exercised by `discovery_testkit::SimCluster`, whose nodes replicate over the simulated
//! network with the peers they are given.)

use discovery_server::node::{Node, NodeParts, Storage};
use discovery_server::Settings;
use reqwest::StatusCode;
use tokio::net::TcpListener;

#[tokio::test]
async fn a_node_serves_on_the_listener_it_is_given() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("an address");
    let mut settings = Settings::for_test("unused: memory storage");
    // Given a listener, the node binds nothing of its own.
    settings.tls.http_enabled = false;
    let parts = NodeParts::new().storage(Storage::Memory).listener(listener);
    let node = Node::start_with_parts(settings, parts)
        .await
        .expect("a node on a given listener starts");
    assert_eq!(node.local_addr(), addr);
    assert_eq!(node.http_addr(), Some(addr));

    let live = reqwest::get(format!("http://{addr}/v1/health/live"))
        .await
        .expect("the given listener answers");
    assert_eq!(live.status(), StatusCode::OK);
    node.shutdown().await.expect("a clean shutdown");
}

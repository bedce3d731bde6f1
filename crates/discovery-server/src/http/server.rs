//! The accept loop: HTTP/1.1 and cleartext HTTP/2 over hyper with bounds a public-facing
//! server needs and `axum::serve` does not set (a deadline for request headers, a
//! connection cap overall and per client address, a cap on concurrent HTTP/2 streams),
//! and a graceful drain on shutdown.
//!
//! HTTP/2 is there because real clients speak it: Trino 483 turns
//! `internal-communication.http2.enabled` on by default, and its airlift discovery client
//! then opens cleartext HTTP/2 connections with prior knowledge, as airlift's Jetty server
//! accepts them. hyper tells the two apart by the connection preface on the same port.
//!
//! The HTTPS listener runs the same loop with a TLS acceptor ([`super::tls`]): the same
//! limits and drain, with the handshake done in the connection's own task under the
//! header deadline, so a client that connects and never finishes its handshake holds
//! one connection slot for a while and never holds up accepting. Over TLS, HTTP/2 is
//! chosen by ALPN (`h2`), which the preface detection then sees as well.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::client_slots::ClientSlots;
use super::normalize_path;

/// The address a request came from, put in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// Connection-level bounds.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Open connections beyond this are closed at once (the clients retry).
    pub max_connections: usize,
    /// Open connections from one client address beyond this are closed at once.
    pub max_connections_per_client: usize,
    /// A client must send its request headers within this time.
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests before dropping them.
    pub drain_timeout: Duration,
    /// Concurrent requests (streams) on one HTTP/2 connection.
    pub max_concurrent_streams: u32,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 10_000,
            max_connections_per_client: 1_000,
            header_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            max_concurrent_streams: 256,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` turns true; then stops accepting, lets
/// in-flight requests finish (up to `drain_timeout`) and returns. With `tls`, every
/// connection is a TLS connection, its handshake bounded by `header_read_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let client_slots = ClientSlots::new(limits.max_connections_per_client);
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        // Same bound on a request's headers as HTTP/1.1 (hyper's default there).
        .max_header_list_size(64 * 1024)
        // A peer that vanished without closing (a killed Trino node) is noticed by a
        // ping and its connection slot freed.
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let mut refused_connections: u64 = 0;

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
                continue;
            }
        };
        // The per-client slot first: a client at its share must not take a global slot
        // from anyone else, even for a moment.
        let Some(client_slot) = client_slots.try_acquire(peer.ip()) else {
            refused_connections += 1;
            if refused_connections.is_power_of_two() {
                tracing::warn!(%peer, refused_connections, max = limits.max_connections_per_client,
                    "per-client connection limit reached (http-server.max-connections-per-client); closing its new connections");
            }
            continue;
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            refused_connections += 1;
            if refused_connections.is_power_of_two() {
                tracing::warn!(%peer, refused_connections, max = limits.max_connections,
                    "connection limit reached (http-server.max-connections); closing new connections");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = normalize_path(request.map(axum::body::Body::new));
            // Who sent it, for the authentication failure log.
            request.extensions_mut().insert(ClientAddr(peer));
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.oneshot(request).await.unwrap_or_else(|e| match e {})) }
        });
        // The auto (HTTP/1.1 or HTTP/2) connection borrows its builder, so each
        // connection task owns a copy of it.
        let http = http.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            watcher
                                .watch(http.serve_connection(TokioIo::new(stream), service))
                                .await
                        }
                        // Scanners, plain HTTP on the HTTPS port, clients that do not
                        // trust the certificate: theirs to fix, and not worth a warning.
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, timeout = ?handshake_timeout,
                                "TLS handshake not finished in time; closing the connection");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
            drop(client_slot);
        });
    }

    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::debug!("all connections drained"),
        _ = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(timeout = ?limits.drain_timeout, "shutdown drain timed out; dropping open connections");
        }
    }
}

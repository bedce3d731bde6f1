//! Loopback ports for the cases where port 0 cannot be used.
//!
//! Servers started by the harness bind port 0 and report the port they got. Some things
//! need a port before they start (shell scripts, Java servers, a `discovery.uri` naming a
//! node that is not up yet), and some tests need a port where nothing listens. These
//! helpers bind port 0 and release it: the port is free a moment later, and a distinct
//! loopback address per test keeps another test from taking it in between.

use std::net::{SocketAddr, TcpListener};

/// A port that was free on `ip` a moment ago.
pub fn free_port(ip: &str) -> u16 {
    free_addr(ip).port()
}

/// `n` distinct ports free on `ip` a moment ago: the listeners are held together while
/// they are chosen, so no two are the same.
pub fn free_ports(ip: &str, n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n).map(|_| bind(ip)).collect();
    listeners.iter().map(|l| local_addr(l, ip).port()).collect()
}

/// `http://ip:port` where nothing listens: connecting is refused. The port was bound
/// and closed again.
pub fn closed_url(ip: &str) -> String {
    format!("http://{}", free_addr(ip))
}

/// An address (`ip` and a port) free a moment ago.
pub fn free_addr(ip: &str) -> SocketAddr {
    local_addr(&bind(ip), ip)
}

fn bind(ip: &str) -> TcpListener {
    TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("cannot bind a port on {ip}: {e}"))
}

fn local_addr(listener: &TcpListener, ip: &str) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("a listener bound on {ip} has no address: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_closed_urls_refuse() {
        let ports = free_ports("127.0.0.1", 4);
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 4, "{ports:?}");
        let url = closed_url("127.0.0.1");
        let addr = url.trim_start_matches("http://");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{url} answered"
        );
    }
}

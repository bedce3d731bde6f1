//! Deployment tests: the airlift-style launcher (`deploy/airlift/bin/launcher`) and the
//! local-cluster script (`deploy/local-cluster.sh`), run as an operator runs them, against
//! the real `discoveryd` binary.
//!
//! Everything listens on 127.0.0.1, on ports found free just before (bind port 0, read
//! it, release it). Nothing waits a fixed time: conditions are polled with a deadline. The
//! local-cluster tests and the nginx TLS examples (`nginx_tls`) need nginx; when it is missing the harness installs it with
//! apt-get (and says so), and fails with the reason if that is not possible.
//! `prometheus` runs promtool on `deploy/prometheus/` (Debian's `prometheus` package; it
//! fails without it) and checks the alerts' and the Grafana dashboard's metric names
//! against a real node; `kubernetes` checks the manifests of `deploy/kubernetes/`.

// Test helpers unwrap where a failure is a broken test environment, not a finding.
#![allow(clippy::unwrap_used)]

mod kubernetes;
mod launcher;
mod local_cluster;
mod nginx_tls;
mod prometheus;
mod support;

//! High-availability tests: three `discoveryd` nodes with readiness on, a real nginx in
//! front of them configured like `deploy/nginx/discovery.conf`, and a simulated Trino
//! fleet (50 workers, 2 coordinators, `discovery-sim`) that talks only to nginx.
//!
//! The promise under test: operators can restart, kill or lose a discovery node and no
//! coordinator ever stops seeing a live worker ("Previously active node is missing"),
//! no client request fails once nginx has retried it, and departed workers still leave
//! within the specified time. Time is scaled down (TTL 3 s, announcements every 0.8 s,
//! lookups every 1 s). Nothing sleeps: every wait polls a condition with a deadline, and a
//! failure prints the fleet's events next to nginx's access log (which node answered
//! what) and every node's log.

mod attacks;
mod departures;
mod nginx;
mod outage;
mod rolling;
mod support;

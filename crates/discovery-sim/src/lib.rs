//! A simulated Presto/Trino cluster for tests and load generation against a discovery
//! service.
//!
//! A [`Fleet`] runs N workers and C coordinators that behave like airlift discovery
//! clients (`docs/PROTOCOL.md`, "What real clients do"): every node announces its `trino`
//! (or `presto`) service with a stable node id and a fresh service id per (re)start, at
//! 80 % of the server's `Cache-Control: max-age`, backing off 1 ms doubling to 1 s after a
//! failure; every coordinator also announces `trino-coordinator`, looks up
//! `/v1/service/trino/general` every lookup `max-age` with the last ETag, keeps its last
//! good list when a lookup fails, and runs Trino's node-manager tick over that list.
//!
//! Time scales with the server: a server advertising `max-age=1` makes nodes announce
//! every 0.8 s and look up every second, so a scenario of minutes runs in seconds.
//!
//! What it measures ([`Fleet::report`]):
//!
//! * **node-missing events** ([`detect`]): a node that is running, announced and was
//!   already listed to a coordinator is absent from that coordinator's list: what Trino
//!   logs as "Previously active node is missing", and what a highly available discovery
//!   service must never cause;
//! * every request by kind and outcome, with the failures (after any retry by a proxy in
//!   between) and when they happened;
//! * every change of every coordinator's list, and the current lists.
//!
//! Controls: [`Fleet::stop_worker`] (a crash: no `DELETE`), [`Fleet::unannounce_worker`]
//! (a clean shutdown), [`Fleet::start_worker`], [`Fleet::restart_worker`],
//! [`Fleet::converged`] / [`Fleet::convergence`] (does every coordinator see every running
//! node?), [`Fleet::wait_until`], and [`Fleet::shutdown`].
//!
//! ```no_run
//! use std::time::Duration;
//! use discovery_sim::{Fleet, FleetConfig};
//!
//! # async fn example() -> Result<(), discovery_sim::SimError> {
//! let config = FleetConfig::new("http://127.0.0.1:8410", "production")
//!     .workers(50)
//!     .coordinators(2)
//!     .node_manager_interval(Duration::from_millis(500));
//! let fleet = Fleet::start(config).await?;
//! fleet.converged(Duration::from_secs(30)).await?;
//! // ... restart discovery servers ...
//! let report = fleet.shutdown().await;
//! assert_eq!(report.missing_total, 0, "{report}");
//! # Ok(())
//! # }
//! ```

pub mod config;
pub mod detect;
pub mod error;
pub mod fleet;
pub mod report;

pub use config::{Flavor, FleetConfig};
pub use detect::SimTime;
pub use error::SimError;
pub use fleet::{node_announcement, Convergence, Fleet, Shutdown, Stopped, Unannounced};
pub use report::{
    Change, CoordinatorView, FleetReport, LookupOutcomes, MissingEvent, NodeReport, Outcomes,
    RequestCounts, RequestFailure, RequestKind, RequestSpan, Source, ViewChange,
};

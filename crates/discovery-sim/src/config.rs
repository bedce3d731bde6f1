//! [`FleetConfig`]: what a simulated cluster looks like and how its nodes behave.
//!
//! Request cadence is not configured here: like airlift clients, the simulated nodes take
//! it from the server (`Cache-Control: max-age` on announcements and lookups, 10 s without
//! one). A test or a benchmark scales time by configuring the server, and scales the
//! coordinator's node-manager loop (Trino: 5 s) with [`FleetConfig::node_manager_interval`].

use std::time::Duration;

use crate::error::SimError;

/// Which product the fleet imitates: it decides the announced service types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// Trino (≤ 476, or ≥ 477 with `discovery.type=airlift-discovery`): `trino` and
    /// `trino-coordinator`.
    #[default]
    Trino,
    /// Presto (prestodb Java) or older PrestoSQL: `presto` and `presto-coordinator`.
    Presto,
}

impl Flavor {
    /// The type every node announces and coordinators look up (`trino` / `presto`).
    pub fn service_type(self) -> &'static str {
        match self {
            Flavor::Trino => "trino",
            Flavor::Presto => "presto",
        }
    }

    /// The extra type a coordinator announces (`trino-coordinator` / `presto-coordinator`).
    pub fn coordinator_type(self) -> &'static str {
        match self {
            Flavor::Trino => "trino-coordinator",
            Flavor::Presto => "presto-coordinator",
        }
    }
}

/// A simulated fleet: `workers` workers and `coordinators` coordinators, all talking to
/// one discovery URI. Build with [`FleetConfig::new`] and adjust the public fields.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// The discovery URI every node uses (`discovery.uri`), e.g. a load balancer in front
    /// of a discovery cluster. A comma-separated list makes the client fail over between
    /// servers itself, which real airlift clients do not do.
    pub discovery_uri: String,
    /// `node.environment` of every node; lookups answered for another one are failures.
    pub environment: String,
    pub flavor: Flavor,
    /// `node.pool` of every node and the pool coordinators look up.
    pub pool: String,
    pub workers: usize,
    pub coordinators: usize,
    /// Node ids are `{prefix}-worker-NNNN` and `{prefix}-coordinator-N`; give concurrent
    /// fleets against one server different prefixes.
    pub node_id_prefix: String,
    /// The `node_version` property.
    pub node_version: String,
    /// How often a coordinator's node manager re-reads its cached list (Trino: 5 s).
    pub node_manager_interval: Duration,
    /// Workers look up `{type}/{pool}` too, like every node of Trino ≤ 476 and Presto
    /// Java; Trino ≥ 477 workers do not. Their lists are not checked, only counted.
    pub workers_look_up: bool,
    /// Workers start spread evenly over this time (worker `i` after `i/n` of it) instead
    /// of all at once; coordinators start at once.
    pub start_spread: Duration,
    /// All nodes share one HTTP client (one connection pool) instead of each holding its
    /// own connection as real nodes do. For fleets larger than the process may hold open
    /// files: the discovery servers behind a proxy see the same requests either way; only
    /// the proxy sees fewer client connections.
    pub shared_connections: bool,
    /// Time allowed to open a connection to the discovery URI.
    pub connect_timeout: Duration,
    /// Time allowed for one request. airlift allows 5 minutes; the client library's 10 s
    /// default keeps a hung server from freezing a node's loop for longer than a TTL.
    pub request_timeout: Duration,
    /// Events of each kind kept in the report, so a long run stays bounded in memory: the
    /// first missing-node events and failed requests (later ones are only counted), and
    /// the most recent list changes.
    pub max_recorded_events: usize,
}

impl FleetConfig {
    /// A Trino fleet of `workers` workers and one coordinator talking to `discovery_uri`
    /// in `environment`, with Trino's timings.
    pub fn new(discovery_uri: impl Into<String>, environment: impl Into<String>) -> Self {
        FleetConfig {
            discovery_uri: discovery_uri.into(),
            environment: environment.into(),
            flavor: Flavor::Trino,
            pool: "general".into(),
            workers: 10,
            coordinators: 1,
            node_id_prefix: "sim".into(),
            node_version: "476".into(),
            node_manager_interval: Duration::from_secs(5),
            workers_look_up: false,
            start_spread: Duration::ZERO,
            shared_connections: false,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_recorded_events: 10_000,
        }
    }

    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    pub fn coordinators(mut self, coordinators: usize) -> Self {
        self.coordinators = coordinators;
        self
    }

    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    pub fn node_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.node_id_prefix = prefix.into();
        self
    }

    pub fn node_manager_interval(mut self, interval: Duration) -> Self {
        self.node_manager_interval = interval;
        self
    }

    pub fn workers_look_up(mut self, look_up: bool) -> Self {
        self.workers_look_up = look_up;
        self
    }

    pub fn shared_connections(mut self, shared: bool) -> Self {
        self.shared_connections = shared;
        self
    }

    pub fn start_spread(mut self, spread: Duration) -> Self {
        self.start_spread = spread;
        self
    }

    /// Node id of worker `index` (0-based).
    pub fn worker_id(&self, index: usize) -> String {
        format!("{}-worker-{:04}", self.node_id_prefix, index)
    }

    /// Node id of coordinator `index` (0-based).
    pub fn coordinator_id(&self, index: usize) -> String {
        format!("{}-coordinator-{}", self.node_id_prefix, index)
    }

    /// Checks what would make the fleet fail later, and says why.
    pub fn validate(&self) -> Result<(), SimError> {
        let invalid = |why: String| Err(SimError::InvalidConfig(why));
        if self.node_manager_interval.is_zero() {
            return invalid("node_manager_interval must be positive".into());
        }
        if self.pool.is_empty() {
            return invalid("pool must not be empty".into());
        }
        if self.max_recorded_events == 0 {
            return invalid("max_recorded_events must be positive".into());
        }
        // airlift's node id pattern, [A-Za-z0-9][_A-Za-z0-9-]*: the ids also become host
        // names in the announced `http` URIs.
        let mut chars = self.node_id_prefix.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return invalid(format!(
                "node_id_prefix '{}' must match [A-Za-z0-9][_A-Za-z0-9-]*",
                self.node_id_prefix
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_stable_and_distinct() {
        let config = FleetConfig::new("http://127.0.0.1:1", "testing").node_id_prefix("ha");
        assert_eq!(config.worker_id(7), "ha-worker-0007");
        assert_eq!(config.coordinator_id(1), "ha-coordinator-1");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn unusable_settings_are_refused() {
        let base = FleetConfig::new("http://127.0.0.1:1", "testing");
        assert!(base
            .clone()
            .node_manager_interval(Duration::ZERO)
            .validate()
            .is_err());
        assert!(base
            .clone()
            .node_id_prefix("bad prefix")
            .validate()
            .is_err());
        assert!(base.clone().node_id_prefix("").validate().is_err());
    }

    #[test]
    fn flavors_name_their_types() {
        assert_eq!(Flavor::Trino.service_type(), "trino");
        assert_eq!(Flavor::Presto.coordinator_type(), "presto-coordinator");
    }
}

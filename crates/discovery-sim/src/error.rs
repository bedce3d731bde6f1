//! [`SimError`]: what a fleet operation can fail with.

use std::time::Duration;

use discovery_client::DiscoveryError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SimError {
    /// The configuration cannot work; the message says which setting and why.
    #[error("invalid fleet configuration: {0}")]
    InvalidConfig(String),

    /// The discovery client could not be built (an unusable discovery URI).
    #[error("cannot build the discovery client of {node_id}: {source}")]
    Client {
        node_id: String,
        #[source]
        source: Box<DiscoveryError>,
    },

    #[error("there is no worker {index} (the fleet has {workers})")]
    NoSuchWorker { index: usize, workers: usize },

    #[error("worker {node_id} is not running")]
    NotRunning { node_id: String },

    #[error("worker {node_id} is already running")]
    AlreadyRunning { node_id: String },

    /// The condition did not hold within the time allowed; `pending` describes what was
    /// still missing at the end.
    #[error("{what} did not happen within {timeout:?}: {pending}")]
    Timeout {
        what: String,
        timeout: Duration,
        pending: String,
    },
}

//! How every client of one run is built: the `--uri` list's, and each node's that
//! `cluster status` probes, with the same timeouts, user agent and credentials.

use std::sync::Arc;
use std::time::Duration;

use discovery_client::{ClientBuilder, DiscoveryClient};

use crate::auth::Credentials;

#[derive(Debug, Clone)]
pub struct Connect {
    pub timeout: Duration,
    pub credentials: Arc<Credentials>,
}

impl Connect {
    /// A builder over `uris` with this run's settings; the caller adds the environment.
    pub fn builder<I, S>(&self, uris: I) -> ClientBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let credentials = Arc::clone(&self.credentials);
        DiscoveryClient::builder(uris)
            .request_timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(concat!("discovery-cli/", env!("CARGO_PKG_VERSION")))
            .headers(move |method, segments| credentials.headers_for(method, segments))
    }
}

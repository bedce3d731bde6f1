//! [`ServiceSelector`]: a cached, self-refreshing view of one service type and pool.
//!
//! Reading the list never does I/O: a background task refreshes it every `max-age` the
//! server advertises (10 s without one), sending the previous ETag so an unchanged list
//! costs a 304 and no body. A failed refresh, including a response for another
//! environment, type or pool, keeps the last good list (a node should keep talking to
//! the coordinator it knows while discovery restarts) and retries with airlift's back-off.
//! Every change is published on a [`tokio::sync::watch`] channel, so a program can react
//! when, say, the coordinator moves.

use std::sync::Arc;
use std::time::Duration;

use discovery_types::Service;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::cache_control::refresh_delay;
use crate::client::{DiscoveryClient, Lookup};
use crate::error::DiscoveryError;

/// The services a selector currently holds, sorted by id.
pub type Services = Arc<Vec<Service>>;

/// How the selector's refreshes are going; see [`ServiceSelector::status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectorStatus {
    /// At least one lookup succeeded, so the list is the server's and not a placeholder.
    pub loaded: bool,
    /// Successful refreshes (200 or 304).
    pub refreshes: u64,
    /// Failed refreshes since the last successful one; the list is as of that one.
    pub consecutive_failures: u32,
    /// Why the last refresh failed, if it did.
    pub last_error: Option<String>,
    /// The environment the served list belongs to.
    pub environment: Option<String>,
}

/// A cached view of one type and pool; see the module documentation.
///
/// Dropping it stops the refreshes; receivers from [`ServiceSelector::subscribe`] then
/// see the channel close.
#[derive(Debug)]
pub struct ServiceSelector {
    service_type: String,
    pool: String,
    services: watch::Receiver<Services>,
    status: watch::Receiver<SelectorStatus>,
    refresh: mpsc::UnboundedSender<()>,
    task: JoinHandle<()>,
}

/// What the refresh loop carries from one lookup to the next.
struct State {
    client: DiscoveryClient,
    service_type: String,
    pool: String,
    etag: Option<String>,
    /// Responses must be for this environment: the configured one, or else the first one
    /// seen, so a failover to a server of another cluster is noticed.
    environment: Option<String>,
    backoff: Backoff,
    services: watch::Sender<Services>,
    status: watch::Sender<SelectorStatus>,
}

impl ServiceSelector {
    /// Starts a selector on the current Tokio runtime and returns at once; the list is
    /// empty until the first lookup succeeds ([`ServiceSelector::ready`]).
    pub fn start(
        client: DiscoveryClient,
        service_type: impl Into<String>,
        pool: impl Into<String>,
    ) -> ServiceSelector {
        let (state, services, status) = State::new(client, service_type.into(), pool.into());
        Self::spawn(state, services, status, Duration::ZERO)
    }

    /// Looks the services up once and starts the selector with the result, or returns why
    /// that first lookup failed (the server is down, another environment, ...).
    pub async fn start_loaded(
        client: DiscoveryClient,
        service_type: impl Into<String>,
        pool: impl Into<String>,
    ) -> Result<ServiceSelector, DiscoveryError> {
        let (mut state, services, status) = State::new(client, service_type.into(), pool.into());
        let delay = state.refresh().await?;
        Ok(Self::spawn(state, services, status, delay))
    }

    fn spawn(
        state: State,
        services: watch::Receiver<Services>,
        status: watch::Receiver<SelectorStatus>,
        first_delay: Duration,
    ) -> ServiceSelector {
        let (refresh, requests) = mpsc::unbounded_channel();
        let service_type = state.service_type.clone();
        let pool = state.pool.clone();
        let task = tokio::spawn(run(state, requests, first_delay));
        ServiceSelector {
            service_type,
            pool,
            services,
            status,
            refresh,
            task,
        }
    }

    pub fn service_type(&self) -> &str {
        &self.service_type
    }

    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// The current list, sorted by id. No I/O.
    pub fn services(&self) -> Services {
        self.services.borrow().clone()
    }

    /// A receiver that is notified whenever the list changes (not on refreshes that bring
    /// the same list).
    pub fn subscribe(&self) -> watch::Receiver<Services> {
        self.services.clone()
    }

    /// Refresh progress: loaded or not, failures, the last error.
    pub fn status(&self) -> watch::Receiver<SelectorStatus> {
        self.status.clone()
    }

    /// Waits until the first lookup has succeeded. Never returns while the server stays
    /// unreachable; wrap it in a timeout (airlift waits 1 s, then carries on with an empty
    /// list).
    pub async fn ready(&self) {
        let mut status = self.status.clone();
        let _ = status.wait_for(|s| s.loaded).await;
    }

    /// Refreshes now instead of at the next scheduled time.
    pub fn refresh_now(&self) {
        let _ = self.refresh.send(());
    }
}

impl Drop for ServiceSelector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl State {
    fn new(
        client: DiscoveryClient,
        service_type: String,
        pool: String,
    ) -> (
        State,
        watch::Receiver<Services>,
        watch::Receiver<SelectorStatus>,
    ) {
        let (services_tx, services) = watch::channel(Services::default());
        let (status_tx, status) = watch::channel(SelectorStatus::default());
        let state = State {
            environment: client.configured_environment().map(str::to_owned),
            client,
            service_type,
            pool,
            etag: None,
            backoff: Backoff::airlift(),
            services: services_tx,
            status: status_tx,
        };
        (state, services, status)
    }

    /// One refresh: on success publishes the list (if it changed) and returns the time
    /// until the next refresh; on failure keeps the list and returns the error.
    async fn refresh(&mut self) -> Result<Duration, DiscoveryError> {
        let lookup = self
            .client
            .lookup_if_changed_in(
                &self.service_type,
                &self.pool,
                self.etag.as_deref(),
                self.environment.as_deref(),
            )
            .await?;
        let max_age = lookup.max_age();
        self.etag = lookup.etag().map(str::to_owned);
        if self.backoff.consecutive_failures() > 0 {
            tracing::info!(service_type = %self.service_type, pool = %self.pool, "service lookup succeeded again");
        }
        self.backoff.success();
        let changed = match lookup {
            Lookup::Changed { services, .. } => Some(services),
            Lookup::Unchanged { .. } => None,
        };
        // The status first, then the list: whoever sees the new list also sees the
        // successful refresh that brought it.
        self.status.send_modify(|s| {
            if let Some(services) = &changed {
                s.environment = Some(services.environment.clone());
            }
            s.loaded = true;
            s.refreshes += 1;
            s.consecutive_failures = 0;
            s.last_error = None;
        });
        if let Some(services) = changed {
            self.environment
                .get_or_insert_with(|| services.environment.clone());
            let mut list = services.services;
            list.sort_by(|a, b| a.id.cmp(&b.id));
            self.services.send_if_modified(|current| {
                if **current == list {
                    false
                } else {
                    *current = Arc::new(list);
                    true
                }
            });
        }
        Ok(refresh_delay(max_age))
    }

    /// Records a failed refresh and returns the back-off delay.
    fn failed(&mut self, error: &DiscoveryError) -> Duration {
        let delay = self.backoff.failure();
        let failures = self.backoff.consecutive_failures();
        if failures == 1 {
            tracing::warn!(service_type = %self.service_type, pool = %self.pool, %error,
                "service lookup failed; keeping the last list");
        } else {
            tracing::debug!(service_type = %self.service_type, pool = %self.pool, %error,
                "service lookup failed again");
        }
        self.status.send_modify(|s| {
            s.consecutive_failures = failures;
            s.last_error = Some(error.to_string());
        });
        delay
    }
}

async fn run(mut state: State, mut requests: mpsc::UnboundedReceiver<()>, first_delay: Duration) {
    let mut next = Instant::now() + first_delay;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            request = requests.recv() => {
                if request.is_none() {
                    return;
                }
            }
        }
        let delay = match state.refresh().await {
            Ok(delay) => delay,
            Err(error) => state.failed(&error),
        };
        next = Instant::now() + delay;
    }
}

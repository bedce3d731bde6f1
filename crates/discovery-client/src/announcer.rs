//! [`Announcer`]: keeps one node announced until it shuts down.
//!
//! A dynamic announcement expires on the server unless renewed, so a node that stops
//! (even by `kill -9`) disappears on its own. The announcer renews it at 80 % of the
//! server's `Cache-Control: max-age` (8 s without one), retries failures with airlift's
//! back-off (1 ms doubling to 1 s), and on [`Announcer::shutdown`] deletes the
//! announcement so the node disappears at once instead of after the time-to-live.

use std::time::Duration;

use discovery_types::DynamicAnnouncement;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::cache_control::announce_delay;
use crate::client::DiscoveryClient;
use crate::error::DiscoveryError;

/// What the announcer has achieved so far; see [`Announcer::status`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnouncerStatus {
    /// Announcements the server accepted.
    pub announcements: u64,
    /// Failed attempts since the last accepted one.
    pub consecutive_failures: u32,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// The server's `max-age` on the last accepted announcement.
    pub max_age: Option<Duration>,
    /// Delay before the next attempt, as last scheduled.
    pub next_in: Option<Duration>,
}

enum Command {
    /// Announce now, out of schedule.
    Announce,
    /// Announce this instead, starting now.
    Replace(Box<DynamicAnnouncement>),
}

/// Announces a node in the background; see the module documentation.
///
/// Dropping it stops announcing without deleting the announcement (like a crash: the
/// node stays listed until the time-to-live passes); call [`Announcer::shutdown`] to leave
/// cleanly.
#[derive(Debug)]
pub struct Announcer {
    client: DiscoveryClient,
    node_id: String,
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<AnnouncerStatus>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Announce => f.write_str("Announce"),
            Command::Replace(_) => f.write_str("Replace"),
        }
    }
}

impl Announcer {
    /// Starts announcing `announcement` for `node_id` right away, on the current Tokio
    /// runtime. Fails only for a node id that cannot be announced at all.
    pub fn start(
        client: DiscoveryClient,
        node_id: impl Into<String>,
        announcement: DynamicAnnouncement,
    ) -> Result<Announcer, DiscoveryError> {
        let node_id = node_id.into();
        discovery_types::validate_node_id(&node_id)
            .map_err(|e| DiscoveryError::InvalidArgument(e.to_string()))?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(AnnouncerStatus::default());
        let task = tokio::spawn(run(
            client.clone(),
            node_id.clone(),
            announcement,
            receiver,
            status_tx,
        ));
        Ok(Announcer {
            client,
            node_id,
            commands,
            status,
            task,
        })
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Progress of the loop; `wait_for(|s| s.announcements > 0)` waits for the first
    /// accepted announcement.
    pub fn status(&self) -> watch::Receiver<AnnouncerStatus> {
        self.status.clone()
    }

    /// Waits until the server has accepted at least one announcement. Never returns if the
    /// server never accepts it; wrap it in a timeout.
    pub async fn announced(&self) {
        let mut status = self.status.clone();
        // An error means the loop ended, which only happens after shutdown.
        let _ = status.wait_for(|s| s.announcements > 0).await;
    }

    /// Announces now instead of at the next scheduled time.
    pub fn force_announce(&self) {
        let _ = self.commands.send(Command::Announce);
    }

    /// Announces `announcement` from now on, starting immediately (a node whose services
    /// changed). The server replaces the node's whole service set.
    pub fn replace(&self, announcement: DynamicAnnouncement) {
        let _ = self.commands.send(Command::Replace(Box::new(announcement)));
    }

    /// Stops announcing and deletes the announcement. An announcement in flight is allowed
    /// to finish first, so it cannot land after the delete and re-list the node.
    pub async fn shutdown(self) -> Result<(), DiscoveryError> {
        let Announcer {
            client,
            node_id,
            commands,
            task,
            ..
        } = self;
        drop(commands);
        // The loop only ends between attempts; a panic in it changes nothing here.
        let _ = task.await;
        client.unannounce(&node_id).await
    }
}

async fn run(
    client: DiscoveryClient,
    node_id: String,
    mut announcement: DynamicAnnouncement,
    mut commands: mpsc::UnboundedReceiver<Command>,
    status: watch::Sender<AnnouncerStatus>,
) {
    let mut backoff = Backoff::airlift();
    loop {
        let delay = match client.announce(&node_id, &announcement).await {
            Ok(announced) => {
                if backoff.consecutive_failures() > 0 {
                    tracing::info!(node_id, uri = %announced.uri, "announcement accepted again");
                }
                backoff.success();
                let delay = announce_delay(announced.max_age);
                status.send_modify(|s| {
                    s.announcements += 1;
                    s.consecutive_failures = 0;
                    s.last_error = None;
                    s.max_age = announced.max_age;
                    s.next_in = Some(delay);
                });
                delay
            }
            Err(error) => {
                let delay = backoff.failure();
                // One warning per outage, not one per second of it.
                if backoff.consecutive_failures() == 1 {
                    tracing::warn!(node_id, %error, "announcement failed; retrying");
                } else {
                    tracing::debug!(node_id, %error, "announcement failed again");
                }
                status.send_modify(|s| {
                    s.consecutive_failures = backoff.consecutive_failures();
                    s.last_error = Some(error.to_string());
                    s.next_in = Some(delay);
                });
                delay
            }
        };
        let next = Instant::now() + delay;
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            command = commands.recv() => match command {
                // The Announcer was shut down or dropped.
                None => return,
                Some(Command::Announce) => {}
                Some(Command::Replace(replacement)) => announcement = *replacement,
            },
        }
    }
}

//! Noticing that storage works again, and getting out when the engine cannot.
//!
//! A failing store reports not ready until a flush succeeds
//! (`discovery_store::StorageHealth`); the dynamic store flushes only at shutdown, so
//! while a store is failing this loop tries a flush every few seconds. One probe at a
//! time: sled's flush can hang for good after the disk ran full, and a hung probe must not
//! be followed by another that hangs too.
//!
//! That hang is why a node cannot always recover in process: sled 0.34 keeps failing (or
//! never returns) after an ENOSPC even once space is freed. So the loop also checks the
//! disk itself (a small file written, synced and removed in the data directory). When
//! the disk has accepted writes for [`RESTART_GRACE`] while the store still fails, it
//! asks for a restart ([`StorageRestart`]); the binary answers by shutting down and
//! starting itself again in place, which reopens the engine on what reached the disk
//! (peers and renewing clients fill in the rest, as after a crash).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::registry::{Registry, StoreName};

/// How often a failing store is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// How long the disk must accept writes while a store keeps failing before a restart is
/// asked for: several flush probes, so an engine that recovers by itself gets the chance.
pub const RESTART_GRACE: Duration = Duration::from_secs(10);

/// Name of the file the disk check writes (and removes) in the data directory.
const DISK_PROBE_FILE: &str = ".disk-probe";

/// Asks the binary to restart the node; carries the reason once asked.
pub type StorageRestart = watch::Sender<Option<String>>;

/// What the probe loop should do after one look at the stores and the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every store works: nothing to do.
    Healthy,
    /// A store fails: keep probing it.
    Probe,
    /// The disk takes writes but the store still fails after the grace: restart.
    Restart,
}

/// Remembers since when the disk has accepted writes while a store failed: the pure
/// part of the recovery rule.
#[derive(Debug, Default)]
pub struct Recovery {
    writable_since: Option<Instant>,
}

impl Recovery {
    /// `disk_writable` is the latest disk check, `None` while none has finished since the
    /// store began failing.
    pub fn decide(&mut self, failing: bool, disk_writable: Option<bool>, now: Instant) -> Decision {
        if !failing || disk_writable != Some(true) {
            self.writable_since = None;
            return if failing {
                Decision::Probe
            } else {
                Decision::Healthy
            };
        }
        let since = *self.writable_since.get_or_insert(now);
        if now.duration_since(since) >= RESTART_GRACE {
            Decision::Restart
        } else {
            Decision::Probe
        }
    }
}

/// Whether the filesystem of `dir` accepts a small synced write.
fn disk_accepts_writes(dir: &Path) -> bool {
    use std::io::Write;
    let path = dir.join(DISK_PROBE_FILE);
    let written = std::fs::File::create(&path).and_then(|mut file| {
        file.write_all(&[0u8; 4096])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    written.is_ok()
}

/// Probes failing stores every [`PROBE_EVERY`] until `shutdown`, and asks for a restart
/// through `restart` when the rule of [`Recovery`] says so (once).
pub async fn run_storage_probe(
    registry: Arc<Registry>,
    data_dir: PathBuf,
    restart: StorageRestart,
    shutdown: watch::Receiver<bool>,
) {
    let mut flush_probe: Option<JoinHandle<()>> = None;
    let mut disk_probe: Option<JoinHandle<bool>> = None;
    let mut disk_writable: Option<bool> = None;
    let mut recovery = Recovery::default();
    crate::periodic::every(PROBE_EVERY, shutdown, move || {
        if let Some(done) = disk_probe.take_if(|probe| probe.is_finished()) {
            // Finished, so this does not wait.
            disk_writable = futures_util::FutureExt::now_or_never(done).and_then(Result::ok);
        }
        let failing: Vec<StoreName> = StoreName::ALL
            .into_iter()
            .filter(|&name| registry.store(name).storage_failure().is_some())
            .collect();
        if failing.is_empty() {
            disk_writable = None;
        }
        match recovery.decide(!failing.is_empty(), disk_writable, Instant::now()) {
            Decision::Healthy => return,
            Decision::Probe => {}
            Decision::Restart => {
                if restart.borrow().is_none() {
                    let reason = format!(
                        "storage of the {} store still fails {}s after the disk accepts writes again",
                        failing[0],
                        RESTART_GRACE.as_secs()
                    );
                    tracing::error!("{reason}: the storage engine cannot recover in process, asking for a restart in place");
                    let _ = restart.send(Some(reason));
                }
                return;
            }
        }
        if disk_probe.is_none() {
            let dir = data_dir.clone();
            disk_probe = Some(tokio::task::spawn_blocking(move || disk_accepts_writes(&dir)));
        }
        if flush_probe.as_ref().is_some_and(|probe| !probe.is_finished()) {
            return;
        }
        let registry = Arc::clone(&registry);
        flush_probe = Some(tokio::task::spawn_blocking(move || {
            for name in failing {
                // Success clears the failure (and logs it); failure keeps it.
                let _ = registry.store(name).flush();
            }
        }));
    })
    .await;
}

/// Why the node is not ready because of its storage, if it is not.
pub fn storage_problem(registry: &Registry) -> Option<String> {
    StoreName::ALL.into_iter().find_map(|name| {
        registry
            .store(name)
            .storage_failure()
            .map(|failure| format!("storage of the {name} store is failing: {failure}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthy_store_needs_nothing() {
        let mut recovery = Recovery::default();
        assert_eq!(
            recovery.decide(false, Some(true), Instant::now()),
            Decision::Healthy
        );
        assert_eq!(
            recovery.decide(false, None, Instant::now()),
            Decision::Healthy
        );
    }

    #[test]
    fn a_failing_store_on_a_full_disk_is_probed_and_never_restarted() {
        let mut recovery = Recovery::default();
        let start = Instant::now();
        for seconds in [0, 10, 60, 3600] {
            let now = start + Duration::from_secs(seconds);
            assert_eq!(recovery.decide(true, Some(false), now), Decision::Probe);
            assert_eq!(recovery.decide(true, None, now), Decision::Probe);
        }
    }

    #[test]
    fn a_restart_comes_only_after_the_disk_took_writes_for_the_whole_grace() {
        let mut recovery = Recovery::default();
        let start = Instant::now();
        assert_eq!(recovery.decide(true, Some(true), start), Decision::Probe);
        let almost = start + RESTART_GRACE - Duration::from_millis(1);
        assert_eq!(recovery.decide(true, Some(true), almost), Decision::Probe);
        assert_eq!(
            recovery.decide(true, Some(true), start + RESTART_GRACE),
            Decision::Restart
        );
    }

    #[test]
    fn a_disk_that_fills_again_or_a_store_that_recovers_restarts_the_grace() {
        let mut recovery = Recovery::default();
        let start = Instant::now();
        recovery.decide(true, Some(true), start);
        recovery.decide(true, Some(false), start + Duration::from_secs(5));
        let later = start + RESTART_GRACE;
        assert_eq!(recovery.decide(true, Some(true), later), Decision::Probe);
        recovery.decide(false, Some(true), later + Duration::from_secs(1));
        let after = later + RESTART_GRACE + Duration::from_secs(1);
        assert_eq!(recovery.decide(true, Some(true), after), Decision::Probe);
    }

    #[test]
    fn the_disk_check_writes_and_cleans_up() {
        let dir = tempfile::tempdir().expect("temporary directory");
        assert!(disk_accepts_writes(dir.path()));
        assert!(!dir.path().join(DISK_PROBE_FILE).exists());
        assert!(!disk_accepts_writes(&dir.path().join("missing")));
    }
}

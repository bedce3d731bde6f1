//! Who is waiting in a blocking lookup (`GET /v1/service...?wait=30s`), and waking
//! exactly them when what they watch changes.
//!
//! Each [`ServiceIndex`](super::ServiceIndex) owns one [`Watchers`]. A blocking lookup
//! registers for its selector ([`Watchers::watch`]) and keeps the returned [`Watch`]
//! while it waits; the index calls [`Watchers::changed`] with the `(type, pool)` of every
//! group whose content changed (local writes, replicated entries, anti-entropy and
//! garbage collection all go through the index). A change of `(t, p)` wakes the watchers
//! of `/v1/service/t/p`, of `/v1/service/t` and of `/v1/service`, nobody else.
//!
//! Memory: a notifier exists only while somebody watches its type or pool; the last
//! [`Watch`] to leave removes it. So a client asking for made-up type names holds one
//! small entry per request it keeps open (bounded by the connection and watcher caps),
//! never one per name it ever sent. With no watcher at all, a write costs one atomic load.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::index::Selector;

/// The waiters of one type (all its pools) or of one type and pool.
#[derive(Debug)]
struct Slot {
    notify: Arc<Notify>,
    watchers: usize,
}

impl Slot {
    fn join(slot: &mut Option<Slot>) -> Arc<Notify> {
        let slot = slot.get_or_insert_with(|| Slot {
            notify: Arc::new(Notify::new()),
            watchers: 0,
        });
        slot.watchers += 1;
        Arc::clone(&slot.notify)
    }

    /// One watcher fewer; true when it was the last, so the slot can go.
    fn leave(&mut self) -> bool {
        self.watchers = self.watchers.saturating_sub(1);
        self.watchers == 0
    }
}

#[derive(Debug, Default)]
struct TypeWatchers {
    /// `/v1/service/{type}`.
    whole_type: Option<Slot>,
    /// `/v1/service/{type}/{pool}`, by pool.
    pools: HashMap<String, Slot>,
}

impl TypeWatchers {
    fn is_empty(&self) -> bool {
        self.whole_type.is_none() && self.pools.is_empty()
    }
}

/// The blocking lookups waiting on one index, by what they watch.
#[derive(Debug, Default)]
pub struct Watchers {
    /// Every registered watcher; zero makes [`Watchers::changed`] return at once.
    count: AtomicUsize,
    /// `/v1/service`: woken by any change.
    all: Arc<Notify>,
    by_type: Mutex<HashMap<String, TypeWatchers>>,
}

/// One registered watcher; leaving (drop) unregisters it.
#[derive(Debug)]
pub struct Watch<'a> {
    watchers: &'a Watchers,
    selector: Selector<'a>,
    notify: Arc<Notify>,
}

impl Watch<'_> {
    /// Woken by the next change of what this watch covers. Enable the future (or poll it)
    /// before reading the current answer, so a change in between is not missed.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.watchers.leave(self.selector);
    }
}

impl Watchers {
    /// Registers a watcher of `selector` until the returned [`Watch`] is dropped.
    pub fn watch<'a>(&'a self, selector: Selector<'a>) -> Watch<'a> {
        let notify = match selector {
            Selector::All => Arc::clone(&self.all),
            Selector::Type(service_type) => {
                let mut by_type = self.lock();
                let watchers = by_type.entry(service_type.to_owned()).or_default();
                Slot::join(&mut watchers.whole_type)
            }
            Selector::TypeAndPool(service_type, pool) => {
                let mut by_type = self.lock();
                let watchers = by_type.entry(service_type.to_owned()).or_default();
                let mut slot = watchers.pools.remove(pool);
                let notify = Slot::join(&mut slot);
                if let Some(slot) = slot {
                    watchers.pools.insert(pool.to_owned(), slot);
                }
                notify
            }
        };
        self.count.fetch_add(1, Ordering::Relaxed);
        Watch {
            watchers: self,
            selector,
            notify,
        }
    }

    fn leave(&self, selector: Selector<'_>) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        let (service_type, pool) = match selector {
            Selector::All => return,
            Selector::Type(t) => (t, None),
            Selector::TypeAndPool(t, p) => (t, Some(p)),
        };
        let mut by_type = self.lock();
        let Some(watchers) = by_type.get_mut(service_type) else {
            return;
        };
        match pool {
            None => {
                if watchers.whole_type.as_mut().is_some_and(Slot::leave) {
                    watchers.whole_type = None;
                }
            }
            Some(pool) => {
                if watchers.pools.get_mut(pool).is_some_and(Slot::leave) {
                    watchers.pools.remove(pool);
                }
            }
        }
        if watchers.is_empty() {
            by_type.remove(service_type);
        }
    }

    /// True while at least one lookup waits on this index.
    pub fn is_watched(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// How many lookups wait on this index.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// The content of the `(type, pool)` groups listed changed: wakes the watchers of
    /// each group, of its type, and of everything.
    pub fn changed<'g>(&self, groups: impl IntoIterator<Item = (&'g str, &'g str)>) {
        if !self.is_watched() {
            return;
        }
        let by_type = self.lock();
        let mut any = false;
        for (service_type, pool) in groups {
            any = true;
            if let Some(watchers) = by_type.get(service_type) {
                if let Some(slot) = &watchers.whole_type {
                    slot.notify.notify_waiters();
                }
                if let Some(slot) = watchers.pools.get(pool) {
                    slot.notify.notify_waiters();
                }
            }
        }
        if any {
            self.all.notify_waiters();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TypeWatchers>> {
        // Every mutation is a single insert or remove: a panic elsewhere leaves it usable.
        self.by_type.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn notifiers(&self) -> usize {
        self.lock()
            .values()
            .map(|w| usize::from(w.whole_type.is_some()) + w.pools.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    /// Whether a registered (enabled) `Notified` has been woken, without waiting.
    fn woken(notified: &mut Pin<&mut tokio::sync::futures::Notified<'_>>) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        matches!(notified.as_mut().poll(&mut cx), Poll::Ready(()))
    }

    #[test]
    fn a_change_wakes_the_watchers_of_its_group_its_type_and_everything_only() {
        let watchers = Watchers::default();
        let pool = watchers.watch(Selector::TypeAndPool("trino", "general"));
        let other_pool = watchers.watch(Selector::TypeAndPool("trino", "etl"));
        let whole_type = watchers.watch(Selector::Type("trino"));
        let other_type = watchers.watch(Selector::Type("presto"));
        let all = watchers.watch(Selector::All);

        let mut n_pool = std::pin::pin!(pool.notified());
        let mut n_other_pool = std::pin::pin!(other_pool.notified());
        let mut n_type = std::pin::pin!(whole_type.notified());
        let mut n_other_type = std::pin::pin!(other_type.notified());
        let mut n_all = std::pin::pin!(all.notified());
        for n in [
            &mut n_pool,
            &mut n_other_pool,
            &mut n_type,
            &mut n_other_type,
            &mut n_all,
        ] {
            n.as_mut().enable();
        }

        watchers.changed([("trino", "general")]);
        assert!(woken(&mut n_pool));
        assert!(woken(&mut n_type));
        assert!(woken(&mut n_all));
        assert!(!woken(&mut n_other_pool), "another pool of the same type");
        assert!(!woken(&mut n_other_type), "another type");
    }

    #[test]
    fn a_change_of_nothing_listed_wakes_nobody() {
        let watchers = Watchers::default();
        let all = watchers.watch(Selector::All);
        let mut n_all = std::pin::pin!(all.notified());
        n_all.as_mut().enable();
        watchers.changed(std::iter::empty());
        assert!(!woken(&mut n_all));
    }

    #[test]
    fn notifiers_exist_only_while_watched_whatever_names_were_asked_for() {
        let watchers = Watchers::default();
        for i in 0..1000 {
            let name = format!("made-up-{i}");
            let a = watchers.watch(Selector::Type(&name));
            let b = watchers.watch(Selector::TypeAndPool(&name, "p"));
            let c = watchers.watch(Selector::TypeAndPool(&name, "p"));
            assert_eq!(
                watchers.notifiers(),
                2,
                "two watchers of one pool share one"
            );
            drop((a, b, c));
        }
        assert_eq!(watchers.notifiers(), 0);
        assert!(watchers.lock().is_empty());
        assert!(!watchers.is_watched());

        let kept = watchers.watch(Selector::TypeAndPool("t", "p"));
        let left = watchers.watch(Selector::TypeAndPool("t", "p"));
        drop(left);
        let mut n = std::pin::pin!(kept.notified());
        n.as_mut().enable();
        watchers.changed([("t", "p")]);
        assert!(
            woken(&mut n),
            "the remaining watcher still hears its changes"
        );
        assert_eq!(watchers.count(), 1);
    }
}

//! Connection slots per client address, so one host (a misbehaving script, an attacker
//! opening idle connections) cannot take every slot of the global connection cap and lock
//! out the Trino nodes. A slot is held for the life of a connection and given back when
//! its guard drops; addresses with no open connection are forgotten, so the table never
//! holds more entries than there are open connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per client address, bounded by `per_client`.
#[derive(Debug)]
pub struct ClientSlots {
    per_client: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of one client; dropping it frees the slot.
#[derive(Debug)]
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    client: IpAddr,
}

impl ClientSlots {
    pub fn new(per_client: usize) -> Arc<Self> {
        Arc::new(ClientSlots {
            per_client,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `client`, or `None` when it already holds `per_client` connections.
    pub fn try_acquire(self: &Arc<Self>, client: IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(client).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            slots: Arc::clone(self),
            client,
        })
    }

    /// Addresses that hold at least one connection.
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_cannot_take_more_than_its_share_and_slots_come_back() {
        let slots = ClientSlots::new(2);
        let a: IpAddr = "127.0.0.2".parse().expect("ip");
        let b: IpAddr = "127.0.0.3".parse().expect("ip");
        let first = slots.try_acquire(a).expect("first");
        let _second = slots.try_acquire(a).expect("second");
        assert!(
            slots.try_acquire(a).is_none(),
            "a third from the same client"
        );
        let _other = slots
            .try_acquire(b)
            .expect("another client is not affected");
        drop(first);
        assert!(
            slots.try_acquire(a).is_some(),
            "a freed slot can be taken again"
        );
        assert_eq!(slots.clients(), 2);
    }

    #[test]
    fn addresses_without_connections_are_forgotten() {
        let slots = ClientSlots::new(1);
        for i in 0..100u8 {
            let client = IpAddr::from([127, 0, 1, i]);
            drop(slots.try_acquire(client).expect("slot"));
        }
        assert_eq!(slots.clients(), 0);
    }
}

//! Small values every suite needs: the environment the test servers run in, the wall
//! clock in milliseconds, as the servers stamp entries, and fresh service ids. One
//! definition, so suites cannot drift apart.

use std::time::{SystemTime, UNIX_EPOCH};

/// The `node.environment` every test server runs with ([`crate::ProcessOptions::new`]
/// sets it) and the environment the announcement builders and inventories write.
pub const ENVIRONMENT: &str = "testing";

/// A fresh random service id (a version-4 UUID, as airlift clients generate).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Wall-clock milliseconds since the epoch, the clock the servers stamp entries with.
pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("milliseconds fit in i64")
}

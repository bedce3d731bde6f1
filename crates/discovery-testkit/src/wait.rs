//! Waiting for a condition: poll until it holds or a deadline passes, then fail with the
//! last observation. Tests never sleep for a fixed time to "let things happen".

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Polls `probe` every `interval` until it returns `Ok`, or fails after `timeout` with the
/// last `Err` it returned. Time is tokio's: on a paused runtime (simulations) the timeout
/// is simulated time.
pub async fn eventually<T, E, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    E: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    let interval = Duration::from_millis(20);
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last observation: {last:?}")
            }
            Err(_) => tokio::time::sleep(interval).await,
        }
    }
}

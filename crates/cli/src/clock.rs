//! Wall-clock time since the Unix epoch: deploy ids, keyring dates, the agent's health.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Zero if the clock is before 1970 (never fails).
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

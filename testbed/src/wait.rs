//! Waiting for a state with a deadline: poll, never sleep blindly.

use std::time::{Duration, Instant};

use crate::LabError;

/// How often a condition is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Why a probe has no value yet.
#[derive(Debug)]
pub enum NotYet {
    /// Not there yet; this is what the probe saw.
    Pending(String),
    /// It will never come: stop waiting.
    Failed(String),
}

impl From<String> for NotYet {
    fn from(seen: String) -> Self {
        Self::Pending(seen)
    }
}

/// Polls `probe` until it returns a value, stops at once on
/// [`NotYet::Failed`], and after `timeout` fails with what was waited for
/// and what the probe saw last.
pub fn until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<T, NotYet>,
) -> Result<T, LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match probe() {
            Ok(value) => return Ok(value),
            Err(NotYet::Failed(reason)) => {
                return Err(LabError::WaitFailed {
                    what: what.to_owned(),
                    reason,
                });
            }
            Err(NotYet::Pending(seen)) => seen,
        };
        if Instant::now() >= deadline {
            return Err(LabError::Timeout {
                what: what.to_owned(),
                timeout,
                seen,
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

//! Admission, pure (time is passed in): requests per second per client
//! certificate, and connections per source address.
//!
//! A stolen app certificate, or one compromised phone, cannot flood the
//! bank: each certificate gets a token bucket of `rate` requests per
//! second with a burst of one second's worth.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Buckets idle this long are full again, and forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(10);

/// Token buckets keyed by certificate fingerprint.
#[derive(Debug)]
pub struct RequestRate {
    per_second: f64,
    buckets: HashMap<[u8; 32], Bucket>,
    last_sweep: Option<Instant>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RequestRate {
    pub fn new(per_second: u64) -> Self {
        #[allow(clippy::cast_precision_loss)] // configured rates are small
        let per_second = per_second.max(1) as f64;
        Self {
            per_second,
            buckets: HashMap::new(),
            last_sweep: None,
        }
    }

    /// Whether one more request of `certificate` may go to the origin now.
    pub fn admit(&mut self, certificate: [u8; 32], now: Instant) -> bool {
        self.sweep(now);
        let burst = self.per_second;
        let bucket = match self.buckets.entry(certificate) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(Bucket {
                tokens: burst,
                updated: now,
            }),
        };
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Certificates being tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|last| now.saturating_duration_since(last) < FORGET_AFTER)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.buckets
            .retain(|_, bucket| now.saturating_duration_since(bucket.updated) < FORGET_AFTER);
    }
}

/// Open connections per source address.
#[derive(Debug, Default)]
pub struct SourceConnections {
    open: HashMap<IpAddr, u32>,
}

impl SourceConnections {
    /// Counts a new connection from `source` unless it already has `max`.
    pub fn open(&mut self, source: IpAddr, max: u32) -> bool {
        let count = self.open.entry(source).or_insert(0);
        if *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    pub fn close(&mut self, source: IpAddr) {
        if let Entry::Occupied(mut entry) = self.open.entry(source) {
            *entry.get_mut() = entry.get().saturating_sub(1);
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }

    pub fn of(&self, source: IpAddr) -> u32 {
        self.open.get(&source).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;

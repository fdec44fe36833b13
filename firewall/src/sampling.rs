//! How often to sample: one packet in N, N adapting to the traffic so that
//! samples stay within a budget whatever the flood rate. Pure: the packet
//! rate in, the new N out.
//!
//! N is a power of two aimed at half the budget. It rises as soon as the
//! traffic would overshoot (a flood is when signatures matter), and falls
//! only once the traffic has dropped fourfold, so it does not flap. Between
//! two changes the kernel's token bucket on the sampling rule caps the
//! samples at the budget.

// Rates are estimates; u64 counts beyond 2^52 lose nothing that matters.
#![allow(clippy::cast_precision_loss)]

/// The largest N: one packet in a million.
pub const MAX_ONE_IN: u32 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sampler {
    one_in: u32,
    /// Samples per second at most.
    budget: u64,
}

impl Sampler {
    /// Starts at `one_in` (rounded to a power of two).
    pub fn new(budget: u64, one_in: u32) -> Self {
        Self {
            one_in: one_in.clamp(1, MAX_ONE_IN).next_power_of_two(),
            budget: budget.max(1),
        }
    }

    pub fn one_in(&self) -> u32 {
        self.one_in
    }

    /// Takes the packet rate the sampled traffic has now; returns the new
    /// N when it should change.
    pub fn observe(&mut self, packets_per_second: f64) -> Option<u32> {
        if packets_per_second.is_nan() {
            return None;
        }
        let aim = self.budget as f64 / 2.0;
        let wanted = (packets_per_second / aim).ceil();
        let wanted = if wanted >= 1.0 {
            // Within u32 after the clamp; the cast cannot truncate.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let wanted = wanted.min(f64::from(MAX_ONE_IN)) as u32;
            wanted.next_power_of_two().min(MAX_ONE_IN)
        } else {
            1
        };
        let change = wanted > self.one_in || wanted <= self.one_in / 4;
        if change {
            self.one_in = wanted;
            Some(wanted)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests;

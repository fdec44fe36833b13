//! The sampling rate against traffic from idle to a line-rate flood.

use super::*;

/// Samples per second at `pps` with the sampler's N.
fn samples(sampler: &Sampler, pps: f64) -> f64 {
    pps / f64::from(sampler.one_in())
}

#[test]
fn samples_stay_within_the_budget_from_idle_to_thirty_million_packets_per_second() {
    let budget = 2_000;
    let mut sampler = Sampler::new(budget, 1024);
    let mut pps = 10.0;
    while pps <= 30e6 {
        sampler.observe(pps);
        let rate = samples(&sampler, pps);
        assert!(rate <= budget as f64, "{rate} samples/s at {pps} pps");
        pps *= 1.7;
    }
    assert!(samples(&sampler, 30e6) >= budget as f64 / 8.0);
}

#[test]
fn a_flood_raises_n_at_once_and_quiet_lowers_it_only_after_a_fourfold_fall() {
    let mut sampler = Sampler::new(2_000, 1);
    assert_eq!(sampler.observe(500.0), None, "500 pps: sample every packet");
    assert_eq!(sampler.observe(1_000_000.0), Some(1024));
    assert!(samples(&sampler, 1_000_000.0) <= 1_000.0);
    // Half the rate: N stays (no flapping).
    assert_eq!(sampler.observe(500_000.0), None);
    // A sixteenth: N falls.
    assert_eq!(sampler.observe(62_500.0), Some(64));
    assert_eq!(sampler.observe(0.0), Some(1));
}

#[test]
fn nonsense_rates_do_not_break_it() {
    let mut sampler = Sampler::new(0, 0);
    assert_eq!(sampler.one_in(), 1);
    assert_eq!(sampler.observe(f64::NAN), None);
    assert_eq!(sampler.observe(f64::INFINITY), Some(MAX_ONE_IN));
    sampler.observe(-5.0);
    assert_eq!(sampler.one_in(), 1);
}

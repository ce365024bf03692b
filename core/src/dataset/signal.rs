//! A synthetic apparent-power signal: a device's base load, noise, a daily swing and load bursts.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// The traits of one device's load, drawn once per device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceProfile {
    /// Base load in watts (600–700 W, the range of the original data's quiet periods).
    pub base_w: f64,
    /// Standard deviation of the second-to-second noise in watts.
    pub noise_w: f64,
    /// Amplitude of the slow daily swing in watts.
    pub daily_swing_w: f64,
    /// Extra load while an appliance runs, in watts.
    pub burst_w: f64,
    /// Mean length of a burst, seconds.
    pub mean_burst_s: f64,
    /// Mean quiet time between bursts, seconds.
    pub mean_quiet_s: f64,
}

impl DeviceProfile {
    /// Draws a device's profile.
    pub fn draw(rng: &mut ChaCha8Rng) -> Self {
        Self {
            base_w: rng.random_range(600.0..700.0),
            noise_w: rng.random_range(5.0..15.0),
            daily_swing_w: rng.random_range(10.0..60.0),
            burst_w: rng.random_range(100.0..900.0),
            mean_burst_s: rng.random_range(60.0..300.0),
            mean_quiet_s: rng.random_range(120.0..900.0),
        }
    }
}

/// Generates one device's readings second by second.
#[derive(Debug, Clone)]
pub struct DeviceSignal {
    profile: DeviceProfile,
    noise: Normal<f64>,
    /// Seconds left in the current burst or quiet period.
    remaining_s: u32,
    /// Whether an appliance is running.
    in_burst: bool,
    /// A slow random drift (AR(1)) that makes quiet periods wander a little.
    drift_w: f64,
}

impl DeviceSignal {
    /// A signal following the profile.
    #[allow(
        clippy::expect_used,
        reason = "a normal distribution of deviation 1 is always valid"
    )]
    pub fn new(profile: DeviceProfile) -> Self {
        let noise = Normal::new(0.0, profile.noise_w)
            .unwrap_or_else(|_| Normal::new(0.0, 1.0).expect("a unit normal distribution is always valid"));
        Self {
            profile,
            noise,
            remaining_s: 0,
            in_burst: false,
            drift_w: 0.0,
        }
    }

    /// The device's profile.
    pub fn profile(&self) -> &DeviceProfile {
        &self.profile
    }

    /// The apparent power at `epoch_seconds`, in watts, rounded to 0.1 W like the original data.
    pub fn next(&mut self, rng: &mut ChaCha8Rng, epoch_seconds: i64) -> f64 {
        if self.remaining_s == 0 {
            self.in_burst = !self.in_burst;
            let mean = if self.in_burst {
                self.profile.mean_burst_s
            } else {
                self.profile.mean_quiet_s
            };
            #[allow(
                clippy::cast_possible_truncation,
                reason = "`as` saturates; a burst or quiet spell lasts minutes"
            )]
            let seconds = rng.random_range(mean * 0.3..mean * 1.7).round().max(1.0) as u32;
            self.remaining_s = seconds;
        }
        self.remaining_s -= 1;
        self.drift_w = 0.995 * self.drift_w + rng.random_range(-1.0..1.0);

        let day_fraction = epoch_seconds.rem_euclid(86_400) as f64 / 86_400.0;
        let daily = self.profile.daily_swing_w * (std::f64::consts::TAU * (day_fraction - 0.3)).sin();
        let burst = if self.in_burst { self.profile.burst_w } else { 0.0 };
        let watts = self.profile.base_w + daily + burst + self.drift_w + self.noise.sample(rng);
        (watts.max(0.0) * 10.0).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn series(seed: u64, seconds: i64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut signal = DeviceSignal::new(DeviceProfile::draw(&mut rng));
        (0..seconds).map(|t| signal.next(&mut rng, t)).collect()
    }

    #[test]
    fn same_seed_same_signal() {
        assert_eq!(series(7, 600), series(7, 600));
        assert_ne!(series(7, 600), series(8, 600));
    }

    #[test]
    fn quiet_load_sits_around_600_to_700_w_with_bursts_above() {
        let values = series(42, 4 * 3600);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let median_quiet = sorted[sorted.len() / 10];
        assert!(
            (520.0..780.0).contains(&median_quiet),
            "10th percentile {median_quiet}"
        );
        let max = sorted[sorted.len() - 1];
        assert!(
            max > median_quiet + 80.0,
            "bursts should rise above the base: max {max}"
        );
        assert!(values.iter().all(|v| *v >= 0.0 && v.is_finite()));
    }
}

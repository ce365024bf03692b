//! Whether a quantity sampled over a soak grows: the least-squares line through the samples
//! after warm-up, and the rise that line predicts over the measured span.

use serde::Serialize;

/// How much a quantity may rise over the measured span and still count as flat: a fraction of
/// its mean, or a floor for quantities whose mean is small (a few descriptors, an empty backlog).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// The fraction of the mean.
    pub of_mean: f64,
    /// The least rise allowed, in the quantity's unit.
    pub floor: f64,
}

/// The line through one quantity's samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trend {
    /// Samples fitted.
    pub samples: usize,
    /// Their mean.
    pub mean: f64,
    /// The slope, in the quantity's unit per hour.
    pub slope_per_hour: f64,
    /// The slope times the span fitted: how much the line rises from the first sample to the last.
    pub rise: f64,
    /// The largest rise the tolerance allows.
    pub allowed_rise: f64,
    /// `rise ≤ allowed_rise`.
    pub flat: bool,
}

/// Fits `points` (seconds, value); None with fewer than three points or no spread in time.
pub fn fit(points: &[(f64, f64)], tolerance: Tolerance) -> Option<Trend> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mean_t = points.iter().map(|(t, _)| t).sum::<f64>() / n;
    let mean = points.iter().map(|(_, v)| v).sum::<f64>() / n;
    let spread: f64 = points.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    if spread <= 0.0 {
        return None;
    }
    let covariance: f64 = points.iter().map(|(t, v)| (t - mean_t) * (v - mean)).sum();
    let slope_per_second = covariance / spread;
    let first = points.iter().map(|(t, _)| *t).fold(f64::INFINITY, f64::min);
    let last = points.iter().map(|(t, _)| *t).fold(f64::NEG_INFINITY, f64::max);
    let rise = slope_per_second * (last - first);
    let allowed_rise = (tolerance.of_mean * mean.abs()).max(tolerance.floor);
    Some(Trend {
        samples: points.len(),
        mean,
        slope_per_hour: slope_per_second * 3600.0,
        rise,
        allowed_rise,
        flat: rise <= allowed_rise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIVE_PERCENT: Tolerance = Tolerance {
        of_mean: 0.05,
        floor: 1.0,
    };

    #[test]
    fn a_line_is_fitted_exactly() {
        // 100 + 2 per minute over an hour: 120 per hour, a rise of 120 on a mean of 160.
        let points: Vec<(f64, f64)> = (0..=60)
            .map(|m| (60.0 * f64::from(m), 100.0 + 2.0 * f64::from(m)))
            .collect();
        let trend = fit(&points, FIVE_PERCENT).expect("a trend");
        assert!((trend.slope_per_hour - 120.0).abs() < 1e-9, "{trend:?}");
        assert!((trend.rise - 120.0).abs() < 1e-9 && (trend.mean - 160.0).abs() < 1e-9);
        assert!(!trend.flat, "a rise of 120 on 160 is growth: {trend:?}");
    }

    #[test]
    fn a_sawtooth_without_growth_is_flat() {
        // A windower's backlog: 0 → 300,000 and back every minute, sampled every 25 s.
        let points: Vec<(f64, f64)> = (0..144)
            .map(|i| {
                let t = 25.0 * f64::from(i);
                (t, 5_000.0 * (t % 60.0))
            })
            .collect();
        let trend = fit(&points, FIVE_PERCENT).expect("a trend");
        assert!(trend.flat, "{trend:?}");
    }

    #[test]
    fn too_few_points_or_one_instant_give_no_trend() {
        assert_eq!(fit(&[(0.0, 1.0), (1.0, 2.0)], FIVE_PERCENT), None);
        assert_eq!(fit(&[(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)], FIVE_PERCENT), None);
    }

    proptest! {
        #[test]
        fn a_constant_is_flat_and_a_steady_rise_beyond_the_tolerance_is_not(
            level in 0.0f64..1e6,
            slope in 0.0f64..100.0,
            samples in 3usize..200,
        ) {
            let points: Vec<(f64, f64)> = (0..samples).map(|i| (30.0 * i as f64, level)).collect();
            let flat = fit(&points, FIVE_PERCENT).expect("a trend");
            prop_assert!(flat.flat && flat.rise.abs() < 1e-6 * level.max(1.0), "{flat:?}");
            let rising: Vec<(f64, f64)> = points.iter().map(|(t, v)| (*t, v + slope * t)).collect();
            let trend = fit(&rising, FIVE_PERCENT).expect("a trend");
            let span = 30.0 * (samples - 1) as f64;
            prop_assert!((trend.rise - slope * span).abs() <= 1e-6 * (slope * span).max(1.0), "{trend:?}");
            prop_assert_eq!(trend.flat, trend.rise <= trend.allowed_rise);
        }
    }
}

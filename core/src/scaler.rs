//! Min-max scaling of power values to [0, 1], fitted on the training half only (as the original).

use serde::{Deserialize, Serialize};

/// A fitted min-max scaler; stored next to the model as `scaler.json`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinMaxScaler {
    /// The smallest training value (watts); maps to 0.
    pub min: f64,
    /// The largest training value (watts); maps to 1.
    pub max: f64,
}

impl MinMaxScaler {
    /// Fits the scaler to `values`; `None` when there are none or one is not finite.
    pub fn fit(values: &[f64]) -> Option<Self> {
        let mut scaler = Self {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        };
        for &value in values {
            if !value.is_finite() {
                return None;
            }
            scaler.min = scaler.min.min(value);
            scaler.max = scaler.max.max(value);
        }
        (!values.is_empty()).then_some(scaler)
    }

    /// The width of the fitted range; 1 for a constant series (as scikit-learn does).
    fn range(&self) -> f64 {
        let range = self.max - self.min;
        if range > 0.0 { range } else { 1.0 }
    }

    /// Watts to the model's scale.
    pub fn scale(&self, watts: f64) -> f64 {
        (watts - self.min) / self.range()
    }

    /// The model's scale back to watts.
    pub fn unscale(&self, scaled: f64) -> f64 {
        scaled * self.range() + self.min
    }

    /// Whether the scaler can be used: finite bounds in order.
    pub fn is_valid(&self) -> bool {
        self.min.is_finite() && self.max.is_finite() && self.min <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_training_range_to_unit_interval_and_back() {
        let scaler = MinMaxScaler::fit(&[600.0, 800.0, 700.0]).expect("fits");
        assert_eq!(scaler.scale(600.0), 0.0);
        assert_eq!(scaler.scale(800.0), 1.0);
        assert_eq!(scaler.scale(900.0), 1.5);
        assert!((scaler.unscale(scaler.scale(731.3)) - 731.3).abs() < 1e-9);
    }

    #[test]
    fn a_constant_series_scales_by_one() {
        let scaler = MinMaxScaler::fit(&[5.0, 5.0]).expect("fits");
        assert_eq!(scaler.scale(6.0), 1.0);
        assert_eq!(scaler.unscale(0.5), 5.5);
    }

    #[test]
    fn refuses_empty_or_non_finite_input() {
        assert!(MinMaxScaler::fit(&[]).is_none());
        assert!(MinMaxScaler::fit(&[1.0, f64::NAN]).is_none());
        assert!(MinMaxScaler::fit(&[1.0, f64::INFINITY]).is_none());
    }
}

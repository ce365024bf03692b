//! The LSTM's activations, sigmoid and tanh, as branch-free scalar functions that vectorise: the
//! native forecaster's cell loop and training's sequence operation use them (libm's, one call
//! per element, kept both loops scalar).

/// `e^x` by range reduction to `2^n · e^r`, |r| ≤ ln 2 / 2, and a degree-7 Taylor polynomial
/// (relative error below 1e-8 before rounding); branch-free so that loops over it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts (Cody–Waite): n · LN_2_HIGH is exact, so r keeps its precision.
    const LN_2_HIGH: f32 = 0.693_359_4; // exactly 355 / 512
    const LN_2_LOW: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer without a rounding
    // instruction older CPUs lack.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN_2_HIGH) - n * LN_2_LOW;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // n in integer form is the difference of the bit patterns (ROUND's last bit weighs 1); an
    // `as` conversion would saturate and check for NaN, which keeps loops from vectorising.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let two_to_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    p * two_to_n
}

/// The logistic function.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// The hyperbolic tangent as `1 − 2 / (e^{2x} + 1)` (absolute error near 1e-7).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_sigmoid_and_tanh_are_accurate_over_the_range_that_matters() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let exact = f64::from(x).exp();
            assert!(((f64::from(exp(x)) - exact) / exact).abs() < 2e-7, "exp({x})");
            let sigmoid_exact = 1.0 / (1.0 + (-f64::from(x)).exp());
            assert!(
                (f64::from(sigmoid(x)) - sigmoid_exact).abs() < 2e-7,
                "sigmoid({x})"
            );
            assert!(
                (f64::from(tanh(x)) - f64::from(x).tanh()).abs() < 3e-7,
                "tanh({x})"
            );
        }
        assert!((0.0..1e-30).contains(&sigmoid(-200.0)));
        assert!((tanh(500.0) - 1.0).abs() < 1e-7 && (tanh(-500.0) + 1.0).abs() < 1e-7);
    }
}

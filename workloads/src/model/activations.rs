//! The LSTM's activations, sigmoid and tanh: branch-free scalar functions that vectorise (the
//! native forecaster's cell loop uses them) and the same functions as candle operations for
//! training.
//!
//! candle computes `tanh` and `sigmoid` with a library call per element, and each derivative
//! as three or four further tensor operations; on the LSTM's tiny tensors that is a large part
//! of a training step. These operations compute the same functions in one vectorised pass and
//! give candle each derivative (the textbook `y(1 − y)` and `1 − y²`, from the output) as one
//! fused operation; candle's autograd still does all the differentiation.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

/// `e^x` by range reduction to `2^n · e^r`, |r| ≤ ln 2 / 2, and a degree-7 Taylor polynomial
/// (relative error below 1e-8 before rounding); branch-free so that loops over it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
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
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// The hyperbolic tangent as `1 − 2 / (e^{2x} + 1)` (absolute error near 1e-7).
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// Which activation an operation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activation {
    Sigmoid,
    Tanh,
}

impl Activation {
    /// Replaces each value by the activation of it.
    fn apply(self, values: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has just been found to support the features the function enables.
            return unsafe { self.apply_avx2(values) };
        }
        self.apply_portable(values);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn apply_avx2(self, values: &mut [f32]) {
        self.apply_portable(values);
    }

    #[inline(always)]
    fn apply_portable(self, values: &mut [f32]) {
        match self {
            Self::Sigmoid => values.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Self::Tanh => values.iter_mut().for_each(|v| *v = tanh(*v)),
        }
    }

    /// Multiplies each gradient by the activation's derivative, given the activation's output.
    fn chain(self, gradients: &mut [f32], outputs: &[f32]) {
        let pairs = gradients.iter_mut().zip(outputs);
        match self {
            Self::Sigmoid => pairs.for_each(|(g, &y)| *g *= y * (1.0 - y)),
            Self::Tanh => pairs.for_each(|(g, &y)| *g *= 1.0 - y * y),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sigmoid => "wattcast-sigmoid",
            Self::Tanh => "wattcast-tanh",
        }
    }
}

/// The values of an f32 tensor's storage in row-major order.
fn values(storage: &CpuStorage, layout: &Layout, op: &'static str) -> candle_core::Result<Vec<f32>> {
    match storage {
        CpuStorage::F32(slice) => Ok(match layout.contiguous_offsets() {
            Some((start, end)) => slice[start..end].to_vec(),
            None => candle_core::cpu_backend::unary_map(slice, layout, |v| v),
        }),
        other => Err(candle_core::Error::UnsupportedDTypeForOp(
            candle_core::backend::BackendStorage::dtype(other),
            op,
        )),
    }
}

/// The activation as a candle operation (f32 on the CPU).
struct Forward(Activation);

impl CustomOp1 for Forward {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let mut out = values(storage, layout, self.name())?;
        self.0.apply(&mut out);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad_res.apply_op2_no_bwd(res, &Derivative(self.0))?))
    }
}

/// `gradient · activation′`, from the gradient of the output and the output itself.
struct Derivative(Activation);

impl CustomOp2 for Derivative {
    fn name(&self) -> &'static str {
        "wattcast-activation-derivative"
    }

    fn cpu_fwd(
        &self,
        gradient: &CpuStorage,
        gradient_layout: &Layout,
        output: &CpuStorage,
        output_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if gradient_layout.shape() != output_layout.shape() {
            return Err(candle_core::Error::ShapeMismatchBinaryOp {
                lhs: gradient_layout.shape().clone(),
                rhs: output_layout.shape().clone(),
                op: "wattcast-activation-derivative",
            });
        }
        let mut gradients = values(gradient, gradient_layout, self.name())?;
        let outputs = values(output, output_layout, self.name())?;
        self.0.chain(&mut gradients, &outputs);
        Ok((CpuStorage::F32(gradients), gradient_layout.shape().clone()))
    }
}

/// The logistic function of each element, differentiable by candle.
pub fn sigmoid_op(xs: &Tensor) -> candle_core::Result<Tensor> {
    xs.apply_op1(Forward(Activation::Sigmoid))
}

/// The hyperbolic tangent of each element, differentiable by candle.
pub fn tanh_op(xs: &Tensor) -> candle_core::Result<Tensor> {
    xs.apply_op1(Forward(Activation::Tanh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{D, Device, Var};

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

    /// The operations give what candle's own give, forwards and backwards, also on strided
    /// views (the LSTM applies them to slices of its gates).
    #[test]
    fn the_operations_match_candles_own_values_and_gradients() -> candle_core::Result<()> {
        let device = Device::Cpu;
        let data: Vec<f32> = (0..96).map(|i| (i as f32 - 48.0) / 7.0).collect();
        let x = Var::from_tensor(&Tensor::from_vec(data, (8, 12), &device)?)?;
        let weights = Tensor::arange(0f32, 4.0, &device)?.reshape((1, 4))?;
        let ours = |x: &Tensor| -> candle_core::Result<Tensor> {
            let view = x.narrow(D::Minus1, 3, 4)?;
            sigmoid_op(x)?.sum_all()? + tanh_op(&view)?.broadcast_mul(&weights)?.sum_all()?
        };
        let candles = |x: &Tensor| -> candle_core::Result<Tensor> {
            let view = x.narrow(D::Minus1, 3, 4)?;
            candle_nn::ops::sigmoid(x)?.sum_all()? + view.tanh()?.broadcast_mul(&weights)?.sum_all()?
        };
        let (value, expected) = (ours(&x)?, candles(&x)?);
        let (value, expected) = (value.to_scalar::<f32>()?, expected.to_scalar::<f32>()?);
        assert!((value - expected).abs() < 1e-4, "{value} vs {expected}");
        let gradient = ours(&x)?.backward()?;
        let expected_gradient = candles(&x)?.backward()?;
        let (got, want) = (
            gradient
                .get(&x)
                .expect("a gradient")
                .flatten_all()?
                .to_vec1::<f32>()?,
            expected_gradient
                .get(&x)
                .expect("a gradient")
                .flatten_all()?
                .to_vec1::<f32>()?,
        );
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-5, "element {i}: {g} vs {w}");
        }
        Ok(())
    }
}

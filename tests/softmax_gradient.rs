//! The patched burn-autodiff (vendor/burn-autodiff) differentiates softmax and log-softmax as one
//! node each, with the closed-form gradient; both must agree with the same functions composed
//! from elementary tracked operations (burn's own default), for values and gradients, on every
//! device this build has.

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{log_softmax, softmax};

mod tensor_common;
use tensor_common::assert_close;

#[allow(deprecated)] // burn-tch is deprecated upstream but is the LibTorch path banbench offers.
fn devices() -> Vec<Device> {
    #[allow(unused_mut)]
    let mut devices = vec![Device::flex()];
    #[cfg(feature = "tch")]
    devices.push(Device::libtorch());
    devices
}

/// x - max - log(sum(exp(x - max))) along dim 1, the max detached, as burn composes it.
fn composed_log_softmax(x: Tensor<2>) -> Tensor<2> {
    let shifted = x.clone() - x.detach().max_dim(1);
    shifted.clone() - shifted.exp().sum_dim(1).log()
}

fn composed_softmax(x: Tensor<2>) -> Tensor<2> {
    let e = (x.clone() - x.detach().max_dim(1)).exp();
    e.clone() / e.sum_dim(1)
}

/// The fused node against the composed operations: the same sums in another order.
const TOLERANCE: f32 = 1e-5;

/// The function's output and its input gradient under a random upstream gradient.
fn output_and_gradient(
    f: impl Fn(Tensor<2>) -> Tensor<2>,
    x: &Tensor<2>,
    upstream: &Tensor<2>,
) -> (Tensor<2>, Tensor<2>) {
    let x = x.clone().require_grad();
    let y = f(x.clone());
    let grads = (y.clone() * upstream.clone()).sum().backward();
    (y, x.grad(&grads).unwrap())
}

#[test]
fn softmax_and_log_softmax_gradients_match_their_composition() {
    for device in devices() {
        let device = device.autodiff();
        // Wide logits (a confident row underflows most of its probabilities) over 300 classes.
        let x = Tensor::<2>::random([7, 300], Distribution::Normal(0.0, 8.0), &device);
        let upstream = Tensor::<2>::random([7, 300], Distribution::Normal(0.0, 1.0), &device);
        for (name, patched, composed) in [
            (
                "log_softmax",
                (|x| log_softmax(x, 1)) as fn(Tensor<2>) -> Tensor<2>,
                composed_log_softmax as fn(Tensor<2>) -> Tensor<2>,
            ),
            ("softmax", |x| softmax(x, 1), composed_softmax),
        ] {
            let (y, g) = output_and_gradient(patched, &x, &upstream);
            let (y_ref, g_ref) = output_and_gradient(composed, &x, &upstream);
            assert_close(
                y_ref,
                y,
                TOLERANCE,
                &format!("{name} on {device:?}: output"),
            );
            assert_close(
                g_ref,
                g,
                TOLERANCE,
                &format!("{name} on {device:?}: input gradient"),
            );
        }
    }
}

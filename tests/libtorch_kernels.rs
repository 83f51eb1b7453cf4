//! The patched burn-tch (vendor/burn-tch) differentiates convolution and batch norm with
//! LibTorch's own kernels; each must agree with burn's generic implementation, run on flex, for
//! the forward values and every gradient, over the shapes banbench's networks use (padding,
//! strides, groups, dilation, asymmetric padding, 1x1 shortcuts, the CharCNN's conv1d), ReLU, and
//! max/min along a dimension.
#![cfg(feature = "tch")]
#![allow(deprecated)] // burn-tch is deprecated upstream but is the LibTorch path banbench offers.

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::{batch_norm, batch_norm_train, conv1d, conv2d};
use burn::tensor::ops::ConvOptions;

mod tensor_common;
use tensor_common::assert_close;

/// The same random values on both devices, tracked for gradients.
fn pair<const D: usize>(shape: [usize; D]) -> (Tensor<D>, Tensor<D>) {
    let values = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &Device::flex());
    let on =
        |device: Device| Tensor::from_data(values.to_data(), &device.autodiff()).require_grad();
    (on(Device::flex()), on(Device::libtorch()))
}

/// LibTorch's kernels against burn's generic ones: the same sums in another order.
const TOLERANCE: f32 = 2e-5;

/// conv2d's output and its input, weight and bias gradients under a random output gradient.
fn check_conv2d(x_shape: [usize; 4], w_shape: [usize; 4], options: ConvOptions<2>) {
    let (x_burn, x_torch) = pair(x_shape);
    let (w_burn, w_torch) = pair(w_shape);
    let (b_burn, b_torch) = pair([w_shape[0]]);
    let run = |x: &Tensor<4>, w: &Tensor<4>, b: &Tensor<1>, upstream: Option<Tensor<4>>| {
        let y = conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone());
        let upstream = upstream.unwrap_or_else(|| {
            Tensor::random(y.dims(), Distribution::Normal(0.0, 1.0), &Device::flex())
        });
        let grads = (y.clone() * Tensor::from_data(upstream.to_data(), &y.device()))
            .sum()
            .backward();
        let g = |t: &Tensor<4>| t.grad(&grads).unwrap();
        (y, g(x), g(w), b.grad(&grads).unwrap(), upstream)
    };
    let (y, gx, gw, gb, upstream) = run(&x_burn, &w_burn, &b_burn, None);
    let (y_t, gx_t, gw_t, gb_t, _) = run(&x_torch, &w_torch, &b_torch, Some(upstream));
    let case = format!("conv2d {x_shape:?} * {w_shape:?} {options:?}");
    assert_close(y, y_t, TOLERANCE, &format!("{case}: output"));
    assert_close(gx, gx_t, TOLERANCE, &format!("{case}: input gradient"));
    assert_close(gw, gw_t, TOLERANCE, &format!("{case}: weight gradient"));
    assert_close(gb, gb_t, TOLERANCE, &format!("{case}: bias gradient"));
}

#[test]
fn convolution_gradients_match_burns_own() {
    // The CNN's and the ResNets' 3x3 convolutions, a strided one, a WRN 1x1 shortcut.
    check_conv2d(
        [4, 3, 9, 7],
        [6, 3, 3, 3],
        ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
    );
    check_conv2d(
        [4, 6, 9, 8],
        [5, 6, 3, 3],
        ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
    );
    check_conv2d(
        [2, 6, 8, 8],
        [4, 6, 1, 1],
        ConvOptions::new([2, 2], [0, 0], [1, 1], 1),
    );
    // Groups and dilation, which the generic fallback handles on its own path.
    check_conv2d(
        [2, 6, 9, 9],
        [6, 2, 3, 3],
        ConvOptions::new([1, 1], [2, 2], [2, 2], 3),
    );
    // Asymmetric padding: padded before the kernel, cropped off the input's gradient.
    check_conv2d(
        [2, 3, 7, 6],
        [4, 3, 2, 2],
        ConvOptions::new_with_padding([1, 1], [(0, 1), (1, 0)], [1, 1], 1),
    );
}

#[test]
fn conv1d_gradients_match_burns_own() {
    // The CNN-LSTM's character convolutions: width-w filters over character embeddings.
    let (x_burn, x_torch) = pair([3, 4, 11]);
    let (w_burn, w_torch) = pair([5, 4, 3]);
    let upstream = Tensor::<3>::random([3, 5, 9], Distribution::Normal(0.0, 1.0), &Device::flex());
    let run = |x: &Tensor<3>, w: &Tensor<3>| {
        let y = conv1d(
            x.clone(),
            w.clone(),
            None,
            ConvOptions::new([1], [0], [1], 1),
        );
        let grads = (y.clone() * Tensor::from_data(upstream.to_data(), &y.device()))
            .sum()
            .backward();
        (y, x.grad(&grads).unwrap(), w.grad(&grads).unwrap())
    };
    let (y, gx, gw) = run(&x_burn, &w_burn);
    let (y_t, gx_t, gw_t) = run(&x_torch, &w_torch);
    assert_close(y, y_t, TOLERANCE, "conv1d output");
    assert_close(gx, gx_t, TOLERANCE, "conv1d input gradient");
    assert_close(gw, gw_t, TOLERANCE, "conv1d weight gradient");
}

#[test]
fn batch_norm_in_training_and_inference_matches_burns_own() {
    let (x_burn, x_torch) = pair([8, 5, 6, 6]);
    let (gamma_burn, gamma_torch) = pair([5]);
    let (beta_burn, beta_torch) = pair([5]);
    let upstream = Tensor::<4>::random(
        [8, 5, 6, 6],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    );
    let run = |x: &Tensor<4>, gamma: &Tensor<1>, beta: &Tensor<1>| {
        // A variance of 1e-4, where epsilon (1e-5) weighs, and a mean away from 0.
        let shifted = x.clone() * 0.01 + 0.1;
        let out = batch_norm_train(shifted.clone(), gamma.clone(), beta.clone(), 1e-5);
        let grads = (out.output.clone() * Tensor::from_data(upstream.to_data(), &x.device()))
            .sum()
            .backward();
        let inference = batch_norm(
            shifted.detach(),
            gamma.clone().detach(),
            beta.clone().detach(),
            out.mean.clone().detach(),
            out.variance.clone().detach(),
            1e-5,
        );
        let g1 = |t: &Tensor<1>| t.grad(&grads).unwrap();
        (
            out.output,
            out.mean,
            out.variance,
            x.grad(&grads).unwrap(),
            g1(gamma),
            g1(beta),
            inference,
        )
    };
    let burn = run(&x_burn, &gamma_burn, &beta_burn);
    let torch = run(&x_torch, &gamma_torch, &beta_torch);
    assert_close(burn.0, torch.0, TOLERANCE, "batch norm output");
    assert_close(burn.1, torch.1, TOLERANCE, "batch mean");
    assert_close(burn.2, torch.2, TOLERANCE, "batch variance (biased)");
    assert_close(burn.3, torch.3, TOLERANCE, "batch norm input gradient");
    assert_close(burn.4, torch.4, TOLERANCE, "gamma gradient");
    assert_close(burn.5, torch.5, TOLERANCE, "beta gradient");
    assert_close(
        burn.6,
        torch.6,
        TOLERANCE,
        "batch norm with given statistics",
    );
}

#[test]
fn relu_gradient_matches_burns_own() {
    let (x_burn, x_torch) = pair([4, 3, 5, 5]);
    let upstream = Tensor::<4>::random(
        [4, 3, 5, 5],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    );
    let run = |x: &Tensor<4>| {
        let y = burn::tensor::activation::relu(x.clone());
        let grads = (y.clone() * Tensor::from_data(upstream.to_data(), &x.device()))
            .sum()
            .backward();
        (y, x.grad(&grads).unwrap())
    };
    let (y, gx) = run(&x_burn);
    let (y_t, gx_t) = run(&x_torch);
    assert_close(y, y_t, TOLERANCE, "relu output");
    assert_close(gx, gx_t, TOLERANCE, "relu input gradient");
}

#[test]
fn max_and_min_along_a_dimension_match_burns_own() {
    let (x_burn, x_torch) = pair([6, 301]);
    for dim in [0, 1] {
        assert_close(
            x_burn.clone().max_dim(dim).detach(),
            x_torch.clone().max_dim(dim).detach(),
            TOLERANCE,
            &format!("max_dim({dim})"),
        );
        assert_close(
            x_burn.clone().min_dim(dim).detach(),
            x_torch.clone().min_dim(dim).detach(),
            TOLERANCE,
            &format!("min_dim({dim})"),
        );
    }
}

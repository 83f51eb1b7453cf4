//! banbench's patch: LibTorch's own backward kernels for convolution and batch norm.
//!
//! burn's generic fallbacks compute a convolution's input gradient with a transposed convolution
//! and its weight gradient with a dims-swapped convolution, and differentiate batch norm through
//! a chain of reductions and broadcasts. PyTorch's autograd instead calls
//! `at::convolution_backward` and `at::native_batch_norm_backward`, which tch 0.22 does not
//! bind; `native_grad.cpp` (compiled by build.rs against the same LibTorch) exposes them.

use std::ffi::{CStr, c_char, c_int};

use tch::Tensor;
use torch_sys::C_tensor;

unsafe extern "C" {
    fn burn_tch_convolution_backward(
        out: *mut *mut C_tensor,
        grad_output: *const C_tensor,
        input: *const C_tensor,
        weight: *const C_tensor,
        stride: *const i64,
        padding: *const i64,
        dilation: *const i64,
        dims: c_int,
        groups: i64,
        mask: *const c_int,
    ) -> *mut c_char;

    fn burn_tch_batch_norm_backward(
        out: *mut *mut C_tensor,
        grad_output: *const C_tensor,
        input: *const C_tensor,
        gamma: *const C_tensor,
        save_mean: *const C_tensor,
        save_invstd: *const C_tensor,
        epsilon: f64,
    ) -> *mut c_char;
}

/// Panics with LibTorch's message, as tch's own `unwrap`ped calls do.
fn check(error: *mut c_char) {
    if error.is_null() {
        return;
    }
    // SAFETY: a non-null result is a NUL-terminated string from strdup.
    let message = unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned();
    unsafe { libc::free(error.cast()) };
    panic!("LibTorch: {message}");
}

fn take(tensor: *mut C_tensor) -> Option<Tensor> {
    // SAFETY: a non-null pointer is a fresh `new at::Tensor` that we now own.
    (!tensor.is_null()).then(|| unsafe { Tensor::from_ptr(tensor) })
}

/// Which gradient of a convolution to compute.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ConvolutionGrad {
    Input,
    Weight,
}

/// The gradient of `conv{N}d(input, weight)` (stride, symmetric `padding`, dilation, groups)
/// with respect to its input or its weight, given the gradient of its output.
pub fn convolution_backward<const N: usize>(
    grad_output: &Tensor,
    input: &Tensor,
    weight: &Tensor,
    [stride, padding, dilation]: [[i64; N]; 3],
    groups: i64,
    wrt: ConvolutionGrad,
) -> Tensor {
    let mask = [
        (wrt == ConvolutionGrad::Input) as c_int,
        (wrt == ConvolutionGrad::Weight) as c_int,
    ];
    let mut out = [std::ptr::null_mut(); 2];
    // SAFETY: the tensors outlive the call; the arrays hold N values each; `out` has room for the
    // two gradients the C++ side writes.
    check(unsafe {
        burn_tch_convolution_backward(
            out.as_mut_ptr(),
            grad_output.as_ptr(),
            input.as_ptr(),
            weight.as_ptr(),
            stride.as_ptr(),
            padding.as_ptr(),
            dilation.as_ptr(),
            N as c_int,
            groups,
            mask.as_ptr(),
        )
    });
    let [input_grad, weight_grad] = out.map(take);
    match wrt {
        ConvolutionGrad::Input => input_grad,
        ConvolutionGrad::Weight => weight_grad,
    }
    .expect("LibTorch returned the gradient its mask asked for")
}

/// The gradients of batch norm in training (`native_batch_norm`) with respect to its input,
/// gamma and beta, from the batch's mean and inverse standard deviation.
pub fn batch_norm_backward(
    grad_output: &Tensor,
    input: &Tensor,
    gamma: &Tensor,
    save_mean: &Tensor,
    save_invstd: &Tensor,
    epsilon: f64,
) -> [Tensor; 3] {
    let mut out = [std::ptr::null_mut(); 3];
    // SAFETY: the tensors outlive the call; `out` has room for the three gradients.
    check(unsafe {
        burn_tch_batch_norm_backward(
            out.as_mut_ptr(),
            grad_output.as_ptr(),
            input.as_ptr(),
            gamma.as_ptr(),
            save_mean.as_ptr(),
            save_invstd.as_ptr(),
            epsilon,
        )
    });
    out.map(|grad| take(grad).expect("LibTorch returned all three batch norm gradients"))
}

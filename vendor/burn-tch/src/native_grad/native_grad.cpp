// banbench's patch: LibTorch's own gradients of convolution and batch norm, which tch 0.22 does
// not bind (its generated API leaves out most *_backward operations). Each function writes new
// tensors into `out` (nullptr where the mask leaves a gradient out) and returns nullptr, or an
// error message that the caller frees with free().
#include <ATen/ATen.h>

#include <cstring>
#include <exception>

typedef at::Tensor *tensor;

static char *error_of(const std::exception &e) { return strdup(e.what()); }

static tensor defined_or_null(const at::Tensor &t) { return t.defined() ? new at::Tensor(t) : nullptr; }

extern "C" {

// The gradients of at::convolution (not transposed, no output padding) with respect to the input
// and the weight, as mask[0] and mask[1] select; the same kernels PyTorch's autograd runs
// (oneDNN on CPU, cuDNN on CUDA).
char *burn_tch_convolution_backward(tensor *out, tensor grad_output, tensor input, tensor weight,
                                    const int64_t *stride, const int64_t *padding,
                                    const int64_t *dilation, int dims, int64_t groups,
                                    const int *mask) {
  try {
    std::vector<int64_t> output_padding(dims, 0);
    auto grads = at::convolution_backward(
        *grad_output, *input, *weight, std::nullopt, at::IntArrayRef(stride, dims),
        at::IntArrayRef(padding, dims), at::IntArrayRef(dilation, dims), false, output_padding,
        groups, {mask[0] != 0, mask[1] != 0, false});
    out[0] = defined_or_null(std::get<0>(grads));
    out[1] = defined_or_null(std::get<1>(grads));
    return nullptr;
  } catch (const std::exception &e) {
    return error_of(e);
  }
}

// The gradients of at::native_batch_norm in training with respect to the input, gamma and beta,
// from the batch's mean and inverse standard deviation that the forward saved.
char *burn_tch_batch_norm_backward(tensor *out, tensor grad_output, tensor input, tensor gamma,
                                   tensor save_mean, tensor save_invstd, double epsilon) {
  try {
    auto grads = at::native_batch_norm_backward(*grad_output, *input, *gamma, std::nullopt,
                                                std::nullopt, *save_mean, *save_invstd, true,
                                                epsilon, {true, true, true});
    out[0] = defined_or_null(std::get<0>(grads));
    out[1] = defined_or_null(std::get<1>(grads));
    out[2] = defined_or_null(std::get<2>(grads));
    return nullptr;
  } catch (const std::exception &e) {
    return error_of(e);
  }
}
}

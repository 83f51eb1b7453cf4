//! The model registry: every architecture a spec can name, behind one `Classifier`, built in
//! burn from the layouts in `crate::arch`. Adding a family is one file here plus one arm in
//! each match below (construction), and its cost in `arch`.

mod cnn;
mod densenet;
mod mlp;
mod preact_resnet;

use anyhow::{Result, bail};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, PaddingConfig2d};
use burn::prelude::*;

pub use cnn::Cnn;
pub use densenet::Densenet;
pub use mlp::Mlp;
pub use preact_resnet::PreactResnet;

use crate::arch::{Shape, densenet_layout, preact_layout};
use crate::spec::ModelSpec;

/// Any registered architecture; maps `[batch, channels, height, width]` images to logits.
#[derive(Module, Debug)]
pub enum Classifier {
    Mlp(Mlp),
    Cnn(Cnn),
    PreactResnet(PreactResnet),
    Densenet(Densenet),
}

impl Classifier {
    pub fn new(spec: &ModelSpec, shape: Shape, device: &Device) -> Classifier {
        match spec {
            ModelSpec::Mlp { hidden } => Classifier::Mlp(Mlp::new(hidden, shape, device)),
            ModelSpec::Cnn { width } => Classifier::Cnn(Cnn::new(*width, shape, device)),
            ModelSpec::PreactResnet { .. } | ModelSpec::WideResnet { .. } => {
                Classifier::PreactResnet(PreactResnet::new(&preact_layout(spec), shape, device))
            }
            ModelSpec::DensenetBc { .. } => {
                Classifier::Densenet(Densenet::new(&densenet_layout(spec), shape, device))
            }
        }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Classifier::Mlp(m) => m.forward(images),
            Classifier::Cnn(m) => m.forward(images),
            Classifier::PreactResnet(m) => m.forward(images),
            Classifier::Densenet(m) => m.forward(images),
        }
    }

    /// The first convolution, which reads the images (an MLP has none).
    pub fn first_conv(&self) -> Option<&Conv2d> {
        match self {
            Classifier::Mlp(_) => None,
            Classifier::Cnn(m) => Some(&m.blocks[0].conv),
            Classifier::PreactResnet(m) => Some(&m.stem),
            Classifier::Densenet(m) => Some(&m.stem),
        }
    }

    /// The linear layer that maps pooled features to logits.
    pub fn output(&self) -> &Linear {
        match self {
            Classifier::Mlp(m) => &m.output,
            Classifier::Cnn(m) => &m.output,
            Classifier::PreactResnet(m) => &m.output,
            Classifier::Densenet(m) => &m.output,
        }
    }

    fn shared_layers_mut(&mut self) -> (Option<&mut Conv2d>, &mut Linear) {
        match self {
            Classifier::Mlp(m) => (None, &mut m.output),
            Classifier::Cnn(m) => (Some(&mut m.blocks[0].conv), &mut m.output),
            Classifier::PreactResnet(m) => (Some(&mut m.stem), &mut m.output),
            Classifier::Densenet(m) => (Some(&mut m.stem), &mut m.output),
        }
    }

    /// This model with `teacher`'s first convolution and output layer (weights and biases) in
    /// place of its own, copied onto `device` and frozen, so the optimiser never updates them:
    /// the BAN paper's cross-architecture students (Table 5). `Spec` validation rules out
    /// mismatching shapes from the specs; this checks the built layers.
    pub fn with_shared(mut self, teacher: &Classifier, device: &Device) -> Result<Classifier> {
        let (Some(conv), Some(teacher_conv)) = (self.first_conv(), teacher.first_conv()) else {
            bail!("an MLP has no convolution to share");
        };
        let (conv, teacher_conv) = (conv.weight.dims(), teacher_conv.weight.dims());
        let (output, teacher_output) =
            (self.output().weight.dims(), teacher.output().weight.dims());
        if conv != teacher_conv || output != teacher_output {
            bail!(
                "first conv weights {teacher_conv:?} vs {conv:?}, output layer weights {teacher_output:?} vs {output:?} (teacher vs student)"
            );
        }
        // `no_grad` persists through `train`, which turns the eval snapshot's tensors back into
        // autodiff ones on the training device.
        let frozen_conv = teacher
            .first_conv()
            .cloned()
            .map(|c| c.no_grad().fork(device).train());
        let frozen_output = teacher.output().clone().no_grad().fork(device).train();
        let (conv, output) = self.shared_layers_mut();
        if let (Some(conv), Some(frozen)) = (conv, frozen_conv) {
            *conv = frozen;
        }
        *output = frozen_output;
        Ok(self)
    }
}

/// A biasless convolution padded by `kernel / 2` on every side, the CIFAR ResNets' and
/// DenseNets' convention (biases are redundant before batch norm).
fn conv(from: usize, to: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let p = kernel / 2;
    Conv2dConfig::new([from, to], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .init(device)
}

#[cfg(test)]
mod tests {
    use burn::module::{ModuleVisitor, Param};

    use super::*;
    use crate::arch::parameter_count;
    use crate::arch::tests::{CIFAR, CIFAR100, MNIST, bottleneck, densenet, wrn};

    #[test]
    fn every_model_maps_images_to_logits() {
        let device = Device::flex();
        for (spec, shape) in [
            (ModelSpec::Mlp { hidden: vec![32] }, MNIST),
            (ModelSpec::Cnn { width: 4 }, MNIST),
            (ModelSpec::preact_resnet(8, 1), CIFAR),
            (densenet(40, 4), CIFAR),
            (wrn(10, 1), CIFAR),
            (bottleneck(11, &[], &[], &[]), CIFAR),
            // Odd map sizes after pooling (28 -> 14 -> 7 -> 3).
            (densenet(10, 2), MNIST),
            (wrn(10, 2), MNIST),
            (bottleneck(14, &[2, 3, 4], &[6, 8, 12], &[1, 2, 1]), MNIST),
        ] {
            let model = Classifier::new(&spec, shape, &device);
            let x = Tensor::zeros([2, shape.channels, shape.height, shape.width], &device);
            assert_eq!(model.forward(x).dims(), [2, shape.classes], "{spec}");
        }
    }

    /// Parameters the optimiser updates (`num_params` minus batch norm's running statistics).
    fn trainable_params(model: &Classifier) -> usize {
        struct Count(usize);
        impl ModuleVisitor for Count {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if param.val().is_require_grad() {
                    self.0 += param.shape().num_elements();
                }
            }
        }
        let mut count = Count(0);
        model.visit(&mut count);
        count.0
    }

    #[test]
    fn analytic_parameter_counts_match_the_built_models() {
        // On an autodiff device, where running statistics are the only untracked tensors.
        let device = Device::flex().autodiff();
        for (spec, shape) in [
            (
                ModelSpec::Mlp {
                    hidden: vec![32, 16],
                },
                MNIST,
            ),
            (ModelSpec::Cnn { width: 4 }, MNIST),
            (ModelSpec::preact_resnet(14, 2), CIFAR),
            (densenet(22, 6), CIFAR100),
            (
                ModelSpec::DensenetBc {
                    depth: 18,
                    growth: 5,
                    compression: 0.75,
                    block_layers: vec![1, 3, 3],
                    stem: Some(7),
                },
                CIFAR,
            ),
            // Widen 1 has an identity shortcut in the first stage, widen 2 a projection.
            (wrn(16, 1), CIFAR),
            (wrn(10, 2), CIFAR100),
            (bottleneck(11, &[], &[], &[]), CIFAR),
            // Identity shortcuts inside a stage, explicit inner widths and stem.
            (
                bottleneck(14, &[2, 3, 4], &[6, 8, 12], &[1, 2, 1]),
                CIFAR100,
            ),
        ] {
            let model = Classifier::new(&spec, shape, &device);
            assert_eq!(
                parameter_count(&spec, shape),
                trainable_params(&model),
                "{spec}"
            );
        }
    }
}

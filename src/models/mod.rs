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
        self.forward_keeping(images, &mut Sections::skipped())
    }

    /// The logits and every section's first and last maps (`arch::sections` lists their
    /// shapes), from one forward pass: what FitNets and FSP read.
    pub fn forward_with_sections(&self, images: Tensor<4>) -> (Tensor<2>, Vec<Section>) {
        let mut sections = Sections::kept();
        let logits = self.forward_keeping(images, &mut sections);
        (logits, sections.kept.unwrap_or_default())
    }

    fn forward_keeping(&self, images: Tensor<4>, sections: &mut Sections) -> Tensor<2> {
        match self {
            Classifier::Mlp(m) => m.forward(images),
            Classifier::Cnn(m) => m.forward(images, sections),
            Classifier::PreactResnet(m) => m.forward(images, sections),
            Classifier::Densenet(m) => m.forward(images, sections),
        }
    }

    /// FitNets' regressor, while the student has one (its hint stage).
    pub fn regressor(&self) -> Option<&Conv2d> {
        match self {
            Classifier::Mlp(_) => None,
            Classifier::Cnn(m) => m.regressor.as_ref(),
            Classifier::PreactResnet(m) => m.regressor.as_ref(),
            Classifier::Densenet(m) => m.regressor.as_ref(),
        }
    }

    /// This model with `regressor` as part of it (trained with it, saved with it), or without
    /// one (`None`, once the hint stage is over). An MLP, which FitNets refuses, keeps none.
    pub fn with_regressor(mut self, regressor: Option<Conv2d>) -> Classifier {
        match &mut self {
            Classifier::Mlp(_) => {}
            Classifier::Cnn(m) => m.regressor = regressor,
            Classifier::PreactResnet(m) => m.regressor = regressor,
            Classifier::Densenet(m) => m.regressor = regressor,
        }
        self
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

/// FitNets' regressor r (Romero et al. 2015, Eq. 3): a 1x1 convolution with bias from the
/// student's guided channels to the teacher's hint channels. On maps of one size the paper's
/// convolutional regressor has a 1x1 kernel (its kernel is the difference of the map sizes
/// plus one).
pub fn hint_regressor(from: usize, to: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([from, to], [1, 1]).init(device)
}

/// One section's first and last feature maps.
#[derive(Debug, Clone)]
pub struct Section {
    pub first: Tensor<4>,
    pub last: Tensor<4>,
}

/// What a forward pass keeps of its sections: nothing (`skipped`), or each section's maps.
pub(crate) struct Sections {
    kept: Option<Vec<Section>>,
    first: Option<Tensor<4>>,
}

impl Sections {
    fn skipped() -> Sections {
        Sections {
            kept: None,
            first: None,
        }
    }

    fn kept() -> Sections {
        Sections {
            kept: Some(Vec::new()),
            first: None,
        }
    }

    /// After a layer of a section: the section's first such output is its first map.
    fn layer(&mut self, x: &Tensor<4>) {
        if self.kept.is_some() && self.first.is_none() {
            self.first = Some(x.clone());
        }
    }

    /// At a section's end, `x` is its last map (and its first, for a section without layers).
    fn end(&mut self, x: &Tensor<4>) {
        if let Some(kept) = &mut self.kept {
            kept.push(Section {
                first: self.first.take().unwrap_or_else(|| x.clone()),
                last: x.clone(),
            });
        }
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

    /// `arch::sections` (what validation pairs) says what the built models' sections are.
    #[test]
    fn built_sections_have_the_shapes_the_arithmetic_says() {
        let device = Device::flex();
        for (spec, shape) in [
            (ModelSpec::Cnn { width: 4 }, MNIST),
            (ModelSpec::preact_resnet(8, 1), CIFAR),
            (wrn(10, 2), MNIST),
            (bottleneck(14, &[2, 3, 4], &[6, 8, 12], &[1, 2, 1]), MNIST),
            (densenet(10, 2), MNIST),
            (densenet(40, 4), CIFAR),
        ] {
            let model = Classifier::new(&spec, shape, &device);
            let x = Tensor::zeros([2, shape.channels, shape.height, shape.width], &device);
            let (logits, sections) = model.forward_with_sections(x);
            assert_eq!(logits.dims(), [2, shape.classes], "{spec}");
            let built: Vec<_> = sections
                .iter()
                .map(|s| {
                    let [_, first, h, w] = s.first.dims();
                    let [_, last, h2, w2] = s.last.dims();
                    assert_eq!([h, w], [h2, w2], "{spec}: one size per section");
                    crate::arch::SectionShape {
                        first,
                        last,
                        size: [h, w],
                    }
                })
                .collect();
            assert_eq!(built, crate::arch::sections(&spec, shape), "{spec}");
            assert_eq!(built.len(), 3, "{spec}");
        }
        assert!(crate::arch::sections(&ModelSpec::Mlp { hidden: vec![8] }, MNIST).is_empty());
    }

    /// FitNets' regressor maps the student's guided channels onto the teacher's hint channels
    /// at the same map size, and the hint loss reads the two.
    #[test]
    fn the_regressor_maps_the_guided_section_onto_the_hint() {
        let device = Device::flex();
        let student = Classifier::new(&ModelSpec::Cnn { width: 4 }, MNIST, &device);
        let teacher = Classifier::new(&densenet(10, 2), MNIST, &device);
        let [guided, hint] = [
            crate::arch::sections(&ModelSpec::Cnn { width: 4 }, MNIST)[1],
            crate::arch::sections(&densenet(10, 2), MNIST)[1],
        ];
        let student = student.with_regressor(Some(hint_regressor(guided.last, hint.last, &device)));
        let x = Tensor::ones([3, 1, 28, 28], &device);
        let (_, s) = student.forward_with_sections(x.clone());
        let (_, t) = teacher.forward_with_sections(x);
        let regressed = student.regressor().unwrap().forward(s[1].last.clone());
        assert_eq!(regressed.dims(), t[1].last.dims());
        let loss: f32 =
            crate::distill::hint_loss(t[1].last.clone(), regressed.clone()).into_scalar();
        let by_hand = (t[1].last.clone() - regressed)
            .square()
            .sum()
            .into_scalar::<f32>()
            / 6.0;
        assert!(
            (loss - by_hand).abs() <= 1e-4 * by_hand.abs().max(1.0),
            "{loss} vs {by_hand}"
        );
        assert!(student.with_regressor(None).regressor().is_none());
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

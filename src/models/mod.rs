//! The model registry: every architecture a spec can name, behind one `Classifier`.
//! Adding a family is one file plus one arm in each match below.

mod cnn;
mod mlp;
mod preact_resnet;

use burn::prelude::*;

pub use cnn::Cnn;
pub use mlp::Mlp;
pub use preact_resnet::PreactResnet;

use crate::spec::ModelSpec;

/// Input geometry and class count a model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

/// Any registered architecture; maps `[batch, channels, height, width]` images to logits.
#[derive(Module, Debug)]
pub enum Classifier {
    Mlp(Mlp),
    Cnn(Cnn),
    PreactResnet(PreactResnet),
}

impl Classifier {
    pub fn new(spec: &ModelSpec, shape: Shape, device: &Device) -> Classifier {
        match spec {
            ModelSpec::Mlp { hidden } => Classifier::Mlp(Mlp::new(hidden, shape, device)),
            ModelSpec::Cnn { width } => Classifier::Cnn(Cnn::new(*width, shape, device)),
            ModelSpec::PreactResnet { depth, width } => {
                Classifier::PreactResnet(PreactResnet::new(*depth, *width, shape, device))
            }
        }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Classifier::Mlp(m) => m.forward(images),
            Classifier::Cnn(m) => m.forward(images),
            Classifier::PreactResnet(m) => m.forward(images),
        }
    }
}

/// Parameter count of an architecture, computed by building it on the CPU.
pub fn parameter_count(spec: &ModelSpec, shape: Shape) -> usize {
    Classifier::new(spec, shape, &Device::flex()).num_params()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MNIST: Shape = Shape { channels: 1, height: 28, width: 28, classes: 10 };
    const CIFAR: Shape = Shape { channels: 3, height: 32, width: 32, classes: 10 };

    #[test]
    fn every_model_maps_images_to_logits() {
        let device = Device::flex();
        for (spec, shape) in [
            (ModelSpec::Mlp { hidden: vec![32] }, MNIST),
            (ModelSpec::Cnn { width: 4 }, MNIST),
            (ModelSpec::PreactResnet { depth: 8, width: 1 }, CIFAR),
        ] {
            let model = Classifier::new(&spec, shape, &device);
            let x = Tensor::zeros([2, shape.channels, shape.height, shape.width], &device);
            assert_eq!(model.forward(x).dims(), [2, shape.classes], "{spec}");
        }
    }

    #[test]
    fn parameter_counts_follow_the_definitions() {
        // 784*32 + 32 + 32*10 + 10
        assert_eq!(parameter_count(&ModelSpec::Mlp { hidden: vec![32] }, MNIST), 25_450);
        // PreAct ResNet-20 (0.27M in He et al.) with biasless convs and BN affine parameters.
        let n = parameter_count(&ModelSpec::PreactResnet { depth: 20, width: 1 }, CIFAR);
        assert!((268_000..275_000).contains(&n), "{n}");
    }
}

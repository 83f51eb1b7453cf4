use burn::nn::{Linear, LinearConfig, Relu};
use burn::prelude::*;

use crate::arch::Shape;

/// Multi-layer perceptron over flattened pixels.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    pub(super) output: Linear,
    activation: Relu,
}

impl Mlp {
    pub fn new(hidden: &[usize], shape: Shape, device: &Device) -> Mlp {
        let mut inputs = shape.channels * shape.height * shape.width;
        let mut layers = Vec::new();
        for &h in hidden {
            layers.push(LinearConfig::new(inputs, h).init(device));
            inputs = h;
        }
        Mlp {
            hidden: layers,
            output: LinearConfig::new(inputs, shape.classes).init(device),
            activation: Relu::new(),
        }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x: Tensor<2> = images.flatten(1, 3);
        for layer in &self.hidden {
            x = self.activation.forward(layer.forward(x));
        }
        self.output.forward(x)
    }
}

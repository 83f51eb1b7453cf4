use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

use super::Sections;
use crate::arch::Shape;
use crate::arch::cnn::{convs, pools_after};

/// conv3x3 -> batch norm -> ReLU.
#[derive(Module, Debug)]
pub(super) struct ConvBlock {
    pub(super) conv: Conv2d,
    norm: BatchNorm,
    activation: Relu,
}

impl ConvBlock {
    fn new(from: usize, to: usize, device: &Device) -> ConvBlock {
        ConvBlock {
            conv: Conv2dConfig::new([from, to], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(to).init(device),
            activation: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.activation
            .forward(self.norm.forward(self.conv.forward(x)))
    }
}

/// A small CNN that learns Fashion-MNIST-sized images in minutes on a CPU: two stages of two
/// conv blocks with max-pooling, a widening conv, and a global-average-pool head (steadier
/// across generations than a flatten + dense head).
#[derive(Module, Debug)]
pub struct Cnn {
    pub(super) blocks: Vec<ConvBlock>,
    pool: MaxPool2d,
    head_pool: AdaptiveAvgPool2d,
    pub(super) output: Linear,
    /// FitNets' regressor during its hint stage (`Classifier::with_regressor`).
    pub(super) regressor: Option<Conv2d>,
}

impl Cnn {
    pub fn new(width: usize, shape: Shape, device: &Device) -> Cnn {
        Cnn {
            blocks: convs(width, shape.channels)
                .into_iter()
                .map(|(from, to)| ConvBlock::new(from, to, device))
                .collect(),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            head_pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            output: LinearConfig::new(4 * width, shape.classes).init(device),
            regressor: None,
        }
    }

    /// A section ends at each max pool and at the last block.
    pub(super) fn forward(&self, images: Tensor<4>, sections: &mut Sections) -> Tensor<2> {
        let mut x = images;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            sections.layer(&x);
            if pools_after(i) || i + 1 == self.blocks.len() {
                sections.end(&x);
            }
            if pools_after(i) {
                x = self.pool.forward(x);
            }
        }
        let x: Tensor<2> = self.head_pool.forward(x).flatten(1, 3);
        self.output.forward(x)
    }
}

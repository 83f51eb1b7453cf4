//! DenseNet-BC (Huang et al. 2017, "Densely Connected Convolutional Networks") built from its
//! layout in `crate::arch::densenet`, which also says why the layout has `stem` and
//! `block_layers`.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, Relu};
use burn::prelude::*;

use super::{Sections, conv};
use crate::arch::Shape;
use crate::arch::densenet::DensenetLayout;

/// Bottleneck layer: BN-ReLU-conv1x1 to 4k channels, BN-ReLU-conv3x3 to k, whose output is
/// concatenated to the layer's input (the "B" in BC: Huang et al. 2017, section 3).
#[derive(Module, Debug)]
struct DenseLayer {
    norm1: BatchNorm,
    conv1: Conv2d,
    norm2: BatchNorm,
    conv2: Conv2d,
    activation: Relu,
}

impl DenseLayer {
    fn new(from: usize, growth: usize, device: &Device) -> DenseLayer {
        DenseLayer {
            norm1: BatchNormConfig::new(from).init(device),
            conv1: conv(from, 4 * growth, 1, 1, device),
            norm2: BatchNormConfig::new(4 * growth).init(device),
            conv2: conv(4 * growth, growth, 3, 1, device),
            activation: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.activation.forward(self.norm1.forward(x.clone()));
        let out = self.conv1.forward(out);
        let out = self
            .conv2
            .forward(self.activation.forward(self.norm2.forward(out)));
        Tensor::cat(vec![x, out], 1)
    }
}

#[derive(Module, Debug)]
struct DenseBlock {
    layers: Vec<DenseLayer>,
}

/// Transition: BN-ReLU-conv1x1 to `compression` times the channels (the "C" in BC), then 2x2
/// average pooling.
#[derive(Module, Debug)]
struct Transition {
    norm: BatchNorm,
    conv: Conv2d,
    activation: Relu,
    pool: AvgPool2d,
}

impl Transition {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.activation.forward(self.norm.forward(x));
        self.pool.forward(self.conv.forward(x))
    }
}

/// DenseNet-BC: a 3x3 stem conv, dense blocks separated by transitions, then BN-ReLU, global
/// average pooling and a linear head.
#[derive(Module, Debug)]
pub struct Densenet {
    pub(super) stem: Conv2d,
    blocks: Vec<DenseBlock>,
    transitions: Vec<Transition>,
    norm: BatchNorm,
    activation: Relu,
    pool: AdaptiveAvgPool2d,
    pub(super) output: Linear,
    /// FitNets' regressor during its hint stage (`Classifier::with_regressor`).
    pub(super) regressor: Option<Conv2d>,
}

impl Densenet {
    pub fn new(layout: &DensenetLayout, shape: Shape, device: &Device) -> Densenet {
        let growth = layout.growth;
        let mut channels = layout.stem;
        let stem = conv(shape.channels, channels, 3, 1, device);
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (b, &n) in layout.block_layers.iter().enumerate() {
            let mut layers = Vec::new();
            for _ in 0..n {
                layers.push(DenseLayer::new(channels, growth, device));
                channels += growth;
            }
            blocks.push(DenseBlock { layers });
            if layout.has_transition(b) {
                let out = layout.compress(channels);
                transitions.push(Transition {
                    norm: BatchNormConfig::new(channels).init(device),
                    conv: conv(channels, out, 1, 1, device),
                    activation: Relu::new(),
                    pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                });
                channels = out;
            }
        }
        Densenet {
            stem,
            blocks,
            transitions,
            norm: BatchNormConfig::new(channels).init(device),
            activation: Relu::new(),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            output: LinearConfig::new(channels, shape.classes).init(device),
            regressor: None,
        }
    }

    /// A section is a dense block, before its transition.
    pub(super) fn forward(&self, images: Tensor<4>, sections: &mut Sections) -> Tensor<2> {
        let mut x = self.stem.forward(images);
        for (b, block) in self.blocks.iter().enumerate() {
            for layer in &block.layers {
                x = layer.forward(x);
                sections.layer(&x);
            }
            sections.end(&x);
            if let Some(transition) = self.transitions.get(b) {
                x = transition.forward(x);
            }
        }
        let x = self.activation.forward(self.norm.forward(x));
        let x: Tensor<2> = self.pool.forward(x).flatten(1, 3);
        self.output.forward(x)
    }
}

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::prelude::*;

use super::Shape;

fn conv(from: usize, to: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([from, to], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(kernel / 2, kernel / 2, kernel / 2, kernel / 2))
        .with_bias(false)
        .init(device)
}

/// Pre-activation basic block (He et al., "Identity Mappings in Deep Residual Networks"):
/// BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus a shortcut (1x1 conv when the shape changes).
#[derive(Module, Debug)]
struct PreactBlock {
    norm1: BatchNorm,
    conv1: Conv2d,
    norm2: BatchNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
    activation: Relu,
}

impl PreactBlock {
    fn new(from: usize, to: usize, stride: usize, device: &Device) -> PreactBlock {
        PreactBlock {
            norm1: BatchNormConfig::new(from).init(device),
            conv1: conv(from, to, 3, stride, device),
            norm2: BatchNormConfig::new(to).init(device),
            conv2: conv(to, to, 3, 1, device),
            shortcut: (stride != 1 || from != to).then(|| conv(from, to, 1, stride, device)),
            activation: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.activation.forward(self.norm1.forward(x.clone()));
        // The projection shortcut reads the pre-activated input, as in the reference code.
        let shortcut = match &self.shortcut {
            Some(projection) => projection.forward(out.clone()),
            None => x,
        };
        let out = self.conv1.forward(out);
        let out = self.conv2.forward(self.activation.forward(self.norm2.forward(out)));
        out + shortcut
    }
}

/// CIFAR-style pre-activation ResNet: depth = 6n + 2 (three stages of n blocks at 16w, 32w
/// and 64w channels, strides 1, 2, 2), then BN-ReLU, global average pool and a linear head.
#[derive(Module, Debug)]
pub struct PreactResnet {
    stem: Conv2d,
    blocks: Vec<PreactBlock>,
    norm: BatchNorm,
    activation: Relu,
    pool: AdaptiveAvgPool2d,
    output: Linear,
}

impl PreactResnet {
    pub fn new(depth: usize, width: usize, shape: Shape, device: &Device) -> PreactResnet {
        let per_stage = (depth - 2) / 6;
        let channels = [16 * width, 32 * width, 64 * width];
        let mut blocks = Vec::new();
        let mut from = 16;
        for (stage, &to) in channels.iter().enumerate() {
            for i in 0..per_stage {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                blocks.push(PreactBlock::new(from, to, stride, device));
                from = to;
            }
        }
        PreactResnet {
            stem: conv(shape.channels, 16, 3, 1, device),
            blocks,
            norm: BatchNormConfig::new(from).init(device),
            activation: Relu::new(),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            output: LinearConfig::new(from, shape.classes).init(device),
        }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(images);
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = self.activation.forward(self.norm.forward(x));
        let x: Tensor<2> = self.pool.forward(x).flatten(1, 3);
        self.output.forward(x)
    }
}

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, Relu};
use burn::prelude::*;

use super::{Cost, Shape, conv, conv_out};

/// Pre-activation basic block (He et al., "Identity Mappings in Deep Residual Networks"):
/// BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus a shortcut (1x1 conv when the shape changes). With
/// dropout before the second conv it is Wide-ResNet's "wide-dropout" block B(3,3).
#[derive(Module, Debug)]
struct PreactBlock {
    norm1: BatchNorm,
    conv1: Conv2d,
    norm2: BatchNorm,
    dropout: Dropout,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
    activation: Relu,
}

impl PreactBlock {
    fn new(from: usize, to: usize, stride: usize, dropout: f64, device: &Device) -> PreactBlock {
        PreactBlock {
            norm1: BatchNormConfig::new(from).init(device),
            conv1: conv(from, to, 3, stride, device),
            norm2: BatchNormConfig::new(to).init(device),
            dropout: DropoutConfig::new(dropout).init(),
            conv2: conv(to, to, 3, 1, device),
            shortcut: has_projection(from, to, stride).then(|| conv(from, to, 1, stride, device)),
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
        let out = self.activation.forward(self.norm2.forward(out));
        self.conv2.forward(self.dropout.forward(out)) + shortcut
    }
}

fn has_projection(from: usize, to: usize, stride: usize) -> bool {
    stride != 1 || from != to
}

/// A pre-activation ResNet's layout with the spec's defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PreactLayout {
    pub(super) stem: usize,
    pub(super) channels: [usize; 3],
    pub(super) blocks: [usize; 3],
    /// Dropout probability between a block's convolutions (0 but in Wide-ResNets).
    pub(super) dropout: f64,
}

impl PreactLayout {
    /// Defaults (He et al.): a 16-channel stem, stages of 16w, 32w and 64w channels and
    /// (depth - 2) / 6 blocks each. The explicit fields let a student match another family's
    /// stem and feature width (the BAN paper's Table 5, which shares them with a DenseNet).
    pub fn new(
        depth: usize,
        width: usize,
        stem: Option<usize>,
        channels: &[usize],
        blocks: &[usize],
    ) -> PreactLayout {
        let stages = |given: &[usize], default: [usize; 3]| given.try_into().unwrap_or(default);
        PreactLayout {
            stem: stem.unwrap_or(16),
            channels: stages(channels, [16 * width, 32 * width, 64 * width]),
            blocks: stages(blocks, [(depth - 2) / 6; 3]),
            dropout: 0.0,
        }
    }

    /// Channels of the stem conv.
    pub fn stem(&self) -> usize {
        self.stem
    }

    /// Channels the global pool feeds to the linear head.
    pub fn features(&self) -> usize {
        self.channels[2]
    }

    /// The blocks' (from, to, stride): three stages with strides 1, 2, 2 after the stem.
    fn plan(&self) -> Vec<(usize, usize, usize)> {
        let mut from = self.stem;
        let mut plan = Vec::new();
        for (stage, (&to, &n)) in self.channels.iter().zip(&self.blocks).enumerate() {
            for i in 0..n {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                plan.push((from, to, stride));
                from = to;
            }
        }
        plan
    }
}

/// CIFAR-style pre-activation ResNet: a 3x3 stem conv, three stages of blocks (by default
/// depth = 6n + 2: n blocks at 16w, 32w and 64w channels; strides 1, 2, 2), then BN-ReLU, global
/// average pool and a linear head.
#[derive(Module, Debug)]
pub struct PreactResnet {
    pub(super) stem: Conv2d,
    blocks: Vec<PreactBlock>,
    norm: BatchNorm,
    activation: Relu,
    pool: AdaptiveAvgPool2d,
    pub(super) output: Linear,
}

impl PreactResnet {
    pub fn new(layout: &PreactLayout, shape: Shape, device: &Device) -> PreactResnet {
        let channels = layout.features();
        PreactResnet {
            stem: conv(shape.channels, layout.stem, 3, 1, device),
            blocks: layout
                .plan()
                .into_iter()
                .map(|(from, to, stride)| {
                    PreactBlock::new(from, to, stride, layout.dropout, device)
                })
                .collect(),
            norm: BatchNormConfig::new(channels).init(device),
            activation: Relu::new(),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            output: LinearConfig::new(channels, shape.classes).init(device),
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

/// Parameters and multiply-accumulates, layer by layer as `PreactResnet::new` builds them.
pub(super) fn cost(layout: &PreactLayout, shape: Shape) -> Cost {
    let mut cost = Cost::default();
    let mut size = [shape.height, shape.width];
    cost.conv(shape.channels, layout.stem, 3, size);
    for (from, to, stride) in layout.plan() {
        let out = size.map(|s| conv_out(s, 3, stride));
        cost.norm(from);
        cost.conv(from, to, 3, out);
        cost.norm(to);
        cost.conv(to, to, 3, out);
        if has_projection(from, to, stride) {
            cost.conv(from, to, 1, out);
        }
        size = out;
    }
    cost.norm(layout.features());
    cost.linear(layout.features(), shape.classes);
    cost
}

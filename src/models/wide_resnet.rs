//! Wide-ResNet-d-k (Zagoruyko & Komodakis 2016, "Wide Residual Networks"): the BAN paper's
//! Tables 1 and 3.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, Relu};
use burn::prelude::*;

use super::{Cost, Shape, conv, conv_out};

/// Pre-activation "wide-dropout" block, B(3,3) in the WRN paper: BN-ReLU-conv3x3-BN-ReLU-
/// dropout-conv3x3, plus a 1x1 projection shortcut when the shape changes.
#[derive(Module, Debug)]
struct WideBlock {
    norm1: BatchNorm,
    conv1: Conv2d,
    norm2: BatchNorm,
    dropout: Dropout,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
    activation: Relu,
}

impl WideBlock {
    fn new(from: usize, to: usize, stride: usize, dropout: f64, device: &Device) -> WideBlock {
        WideBlock {
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
        // The projection reads the pre-activated input, as in the WRN reference code.
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

/// The blocks' (from, to, stride): depth = 6n + 4 gives three stages of n blocks at 16k, 32k
/// and 64k channels with strides 1, 2, 2, after a 16-channel stem.
fn blocks(depth: usize, widen: usize) -> Vec<(usize, usize, usize)> {
    let per_stage = (depth - 4) / 6;
    let mut from = 16;
    let mut plan = Vec::new();
    for (stage, to) in [16 * widen, 32 * widen, 64 * widen].into_iter().enumerate() {
        for i in 0..per_stage {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            plan.push((from, to, stride));
            from = to;
        }
    }
    plan
}

/// Wide-ResNet: 3x3 stem conv to 16 channels, the wide blocks, then BN-ReLU, global average
/// pooling and a linear head.
#[derive(Module, Debug)]
pub struct WideResnet {
    pub(super) stem: Conv2d,
    blocks: Vec<WideBlock>,
    norm: BatchNorm,
    activation: Relu,
    pool: AdaptiveAvgPool2d,
    pub(super) output: Linear,
}

impl WideResnet {
    pub fn new(
        depth: usize,
        widen: usize,
        dropout: f64,
        shape: Shape,
        device: &Device,
    ) -> WideResnet {
        let plan = blocks(depth, widen);
        let channels = 64 * widen;
        WideResnet {
            stem: conv(shape.channels, 16, 3, 1, device),
            blocks: plan
                .into_iter()
                .map(|(from, to, stride)| WideBlock::new(from, to, stride, dropout, device))
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

/// Parameters and multiply-accumulates, layer by layer as `WideResnet::new` builds them.
pub(super) fn cost(depth: usize, widen: usize, shape: Shape) -> Cost {
    let mut cost = Cost::default();
    let mut size = [shape.height, shape.width];
    cost.conv(shape.channels, 16, 3, size);
    for (from, to, stride) in blocks(depth, widen) {
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
    cost.norm(64 * widen);
    cost.linear(64 * widen, shape.classes);
    cost
}

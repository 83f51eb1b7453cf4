use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, Relu};
use burn::prelude::*;

use super::{Cost, Shape, conv, conv_out};

/// One convolution of a residual unit, read after a BN-ReLU of its input.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ConvPlan {
    from: usize,
    to: usize,
    kernel: usize,
    stride: usize,
}

/// A residual unit's shape: its convolutions in order, and the shortcut's input and output.
#[derive(Debug, Clone, PartialEq)]
struct UnitPlan {
    convs: Vec<ConvPlan>,
    from: usize,
    to: usize,
    stride: usize,
}

impl UnitPlan {
    /// He et al.'s shortcut: identity unless the unit changes the channels or the resolution.
    fn has_projection(&self) -> bool {
        self.stride != 1 || self.from != self.to
    }
}

/// Pre-activation residual unit (He et al., "Identity Mappings in Deep Residual Networks"):
/// BN-ReLU-conv for each planned conv (3x3, 3x3 for a basic unit; 1x1, 3x3, 1x1 for a
/// bottleneck) plus a shortcut (1x1 conv when the shape changes). Dropout before the last conv
/// makes the basic unit Wide-ResNet's "wide-dropout" block B(3,3).
#[derive(Module, Debug)]
struct PreactUnit {
    norms: Vec<BatchNorm>,
    convs: Vec<Conv2d>,
    dropout: Dropout,
    shortcut: Option<Conv2d>,
    activation: Relu,
}

impl PreactUnit {
    fn new(plan: &UnitPlan, dropout: f64, device: &Device) -> PreactUnit {
        PreactUnit {
            norms: plan
                .convs
                .iter()
                .map(|c| BatchNormConfig::new(c.from).init(device))
                .collect(),
            convs: plan
                .convs
                .iter()
                .map(|c| conv(c.from, c.to, c.kernel, c.stride, device))
                .collect(),
            dropout: DropoutConfig::new(dropout).init(),
            shortcut: plan
                .has_projection()
                .then(|| conv(plan.from, plan.to, 1, plan.stride, device)),
            activation: Relu::new(),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let last = self.convs.len() - 1;
        let mut out = x.clone();
        let mut shortcut = x;
        for (i, (norm, conv)) in self.norms.iter().zip(&self.convs).enumerate() {
            out = self.activation.forward(norm.forward(out));
            if i == 0 {
                // The projection shortcut reads the pre-activated input, as in the reference code.
                if let Some(projection) = &self.shortcut {
                    shortcut = projection.forward(out.clone());
                }
            }
            if i == last {
                out = self.dropout.forward(out);
            }
            out = conv.forward(out);
        }
        out + shortcut
    }
}

/// A pre-activation ResNet's layout with the spec's defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PreactLayout {
    pub(super) stem: usize,
    pub(super) channels: [usize; 3],
    pub(super) blocks: [usize; 3],
    /// A bottleneck unit's inner width per stage; basic units when absent.
    pub(super) inner: Option<[usize; 3]>,
    /// Dropout probability before a unit's last convolution (0 but in Wide-ResNets).
    pub(super) dropout: f64,
}

impl PreactLayout {
    /// Defaults (He et al.): a 16-channel stem and (depth - 2) / 6 basic units per stage at
    /// 16w, 32w and 64w channels, or (depth - 2) / 9 bottleneck units per stage at 64w, 128w
    /// and 256w channels with a quarter of that inside. The explicit fields let a student
    /// match another family's stem and stage widths (the BAN paper's Table 5, which shares
    /// them with a DenseNet).
    pub fn new(
        depth: usize,
        width: usize,
        bottleneck: bool,
        inner: &[usize],
        stem: Option<usize>,
        channels: &[usize],
        blocks: &[usize],
    ) -> PreactLayout {
        let stages = |given: &[usize], default: [usize; 3]| given.try_into().unwrap_or(default);
        let (expansion, layers) = if bottleneck { (4, 3) } else { (1, 2) };
        let channels = stages(channels, [16, 32, 64].map(|c| c * width * expansion));
        PreactLayout {
            stem: stem.unwrap_or(16),
            channels,
            blocks: stages(blocks, [(depth - 2) / (3 * layers); 3]),
            inner: bottleneck.then(|| stages(inner, channels.map(|c| (c / 4).max(1)))),
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

    /// The units in order: three stages with strides 1, 2, 2 after the stem; a bottleneck
    /// unit strides in its first 1x1 conv, as He et al.'s reference code (resnet-pre-act.lua)
    /// does.
    fn plan(&self) -> Vec<UnitPlan> {
        let mut from = self.stem;
        let mut plan = Vec::new();
        for stage in 0..3 {
            let to = self.channels[stage];
            for i in 0..self.blocks[stage] {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let c = |from, to, kernel, stride| ConvPlan {
                    from,
                    to,
                    kernel,
                    stride,
                };
                let convs = match self.inner {
                    None => vec![c(from, to, 3, stride), c(to, to, 3, 1)],
                    Some(inner) => {
                        let m = inner[stage];
                        vec![c(from, m, 1, stride), c(m, m, 3, 1), c(m, to, 1, 1)]
                    }
                };
                plan.push(UnitPlan {
                    convs,
                    from,
                    to,
                    stride,
                });
                from = to;
            }
        }
        plan
    }
}

/// CIFAR-style pre-activation ResNet: a 3x3 stem conv, three stages of residual units
/// (strides 1, 2, 2), then BN-ReLU, global average pool and a linear head.
#[derive(Module, Debug)]
pub struct PreactResnet {
    pub(super) stem: Conv2d,
    units: Vec<PreactUnit>,
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
            units: layout
                .plan()
                .iter()
                .map(|unit| PreactUnit::new(unit, layout.dropout, device))
                .collect(),
            norm: BatchNormConfig::new(channels).init(device),
            activation: Relu::new(),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            output: LinearConfig::new(channels, shape.classes).init(device),
        }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(images);
        for unit in &self.units {
            x = unit.forward(x);
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
    for unit in layout.plan() {
        let unit_in = size;
        for c in &unit.convs {
            size = size.map(|s| conv_out(s, c.kernel, c.stride));
            cost.norm(c.from);
            cost.conv(c.from, c.to, c.kernel, size);
        }
        if unit.has_projection() {
            cost.conv(
                unit.from,
                unit.to,
                1,
                unit_in.map(|s| conv_out(s, 1, unit.stride)),
            );
        }
    }
    cost.norm(layout.features());
    cost.linear(layout.features(), shape.classes);
    cost
}

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, Relu};
use burn::prelude::*;

use super::{Sections, conv};
use crate::arch::Shape;
use crate::arch::preact_resnet::{PreactLayout, UnitPlan};

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

    /// Whether the unit downsamples (the first of a stage after the first).
    fn strides(&self) -> bool {
        self.convs[0].stride[0] > 1
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
    /// FitNets' regressor during its hint stage (`Classifier::with_regressor`).
    pub(super) regressor: Option<Conv2d>,
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
            regressor: None,
        }
    }

    /// A section is a stage: it ends before each unit that strides, and at the last unit.
    pub(super) fn forward(&self, images: Tensor<4>, sections: &mut Sections) -> Tensor<2> {
        let mut x = self.stem.forward(images);
        for (i, unit) in self.units.iter().enumerate() {
            if i > 0 && unit.strides() {
                sections.end(&x);
            }
            x = unit.forward(x);
            sections.layer(&x);
        }
        sections.end(&x);
        let x = self.activation.forward(self.norm.forward(x));
        let x: Tensor<2> = self.pool.forward(x).flatten(1, 3);
        self.output.forward(x)
    }
}

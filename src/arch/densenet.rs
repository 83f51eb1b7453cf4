//! DenseNet-BC (Huang et al. 2017, "Densely Connected Convolutional Networks") for CIFAR-sized
//! images: the BAN paper's main family (its Tables 1, 2 and 4).
//!
//! Table 4 of the BAN paper trains students of a DenseNet-90-60 teacher that keep the size of
//! the hidden state after each downsampling but differ in depth or compression. A dense block
//! of n layers at growth k turns c channels into c + n*k, so a student with f times the layers
//! per block keeps every post-transition width when its growth is k / f (n*k stays 14 * 60 =
//! 840) and its stem keeps the teacher's 2 * 60 = 120 channels: 2xDepth is `depth = 172,
//! growth = 30, stem = 120` (0.5x: 46-120, 3x: 256-20, 4x: 340-15, all with `stem = 120`).
//! Hence `stem`, and `block_layers` for blocks of unequal length. The compression students
//! (0.5x, 0.75x, 1.5x) set `compression` to 0.25, 0.375 and 0.75, which by definition changes
//! the width after each transition. The parameter counts the paper prints for these students
//! do not follow from this reading (nor from the standard formula for its teacher), so presets
//! should show the paper's and the measured counts side by side.

use super::{Cost, Shape};

/// A DenseNet-BC's layout with the spec's defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct DensenetLayout {
    pub(crate) growth: usize,
    compression: f64,
    pub(crate) block_layers: Vec<usize>,
    pub(crate) stem: usize,
}

impl DensenetLayout {
    /// Empty `block_layers` means three blocks of (depth - 4) / 6 bottleneck layers, rounded
    /// down as in densenet.pytorch (so the BAN paper's DenseNet-90-60 has 14 per block); no
    /// `stem` means 2k channels (Huang et al.). Panics where `try_new` finds no layout (a depth
    /// below 4, a stem that overflows): validation refuses those specs.
    pub fn new(
        depth: usize,
        growth: usize,
        compression: f64,
        block_layers: &[usize],
        stem: Option<usize>,
    ) -> DensenetLayout {
        DensenetLayout::try_new(depth, growth, compression, block_layers, stem)
            .expect("a validated DenseNet-BC spec has a layout")
    }

    /// The layout, or `None` for a depth below 4 or a default stem (2k) that overflows.
    pub fn try_new(
        depth: usize,
        growth: usize,
        compression: f64,
        block_layers: &[usize],
        stem: Option<usize>,
    ) -> Option<DensenetLayout> {
        let block_layers = if block_layers.is_empty() {
            vec![depth.checked_sub(4)? / 6; 3]
        } else {
            block_layers.to_vec()
        };
        Some(DensenetLayout {
            growth,
            compression,
            block_layers,
            stem: match stem {
                Some(stem) => stem,
                None => growth.checked_mul(2)?,
            },
        })
    }

    /// Channels of the stem conv.
    pub fn stem(&self) -> usize {
        self.stem
    }

    /// Channels the global pool feeds to the linear head. Panics where `try_features` cannot
    /// count them (validation refuses those specs).
    pub fn features(&self) -> usize {
        self.try_features()
            .expect("a validated DenseNet-BC spec has countable widths")
    }

    /// Channels the global pool feeds to the linear head, or `None` when the count overflows.
    pub fn try_features(&self) -> Option<usize> {
        let mut channels = self.stem;
        for (b, &n) in self.block_layers.iter().enumerate() {
            channels = channels.checked_add(n.checked_mul(self.growth)?)?;
            if self.has_transition(b) {
                channels = self.compress(channels);
            }
        }
        Some(channels)
    }

    /// Channels after a transition, rounded down as in Huang et al.'s code (a float product,
    /// saturating at the ends of `usize`).
    pub(crate) fn compress(&self, channels: usize) -> usize {
        (self.compression * channels as f64).floor() as usize
    }

    /// Whether dense block `block` is followed by a transition (all but the last are).
    pub(crate) fn has_transition(&self, block: usize) -> bool {
        block + 1 < self.block_layers.len()
    }
}

/// Parameters, multiply-accumulates and feature maps, layer by layer as `Densenet::new` builds
/// them.
pub(super) fn cost(layout: &DensenetLayout, shape: Shape) -> Option<Cost> {
    let mut cost = Cost::default();
    let growth = layout.growth;
    let inner = growth.checked_mul(4)?;
    let mut size = [shape.height, shape.width];
    let mut channels = layout.stem;
    cost.map(shape.channels, size)?;
    cost.conv(shape.channels, channels, 3, size)?;
    for (b, &n) in layout.block_layers.iter().enumerate() {
        for _ in 0..n {
            cost.norm(channels, size)?;
            cost.conv(channels, inner, 1, size)?;
            cost.norm(inner, size)?;
            cost.conv(inner, growth, 3, size)?;
            channels = channels.checked_add(growth)?;
            // The concatenation of the layer's input and output.
            cost.map(channels, size)?;
        }
        if layout.has_transition(b) {
            let out = layout.compress(channels);
            cost.norm(channels, size)?;
            cost.conv(channels, out, 1, size)?;
            // The unpadded 2x2 stride-2 average pool rounds down.
            size = size.map(|s| s / 2);
            cost.map(out, size)?;
            channels = out;
        }
    }
    cost.norm(channels, size)?;
    cost.map(channels, [1, 1])?;
    cost.linear(channels, shape.classes)?;
    Some(cost)
}

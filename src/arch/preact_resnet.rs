use super::{Cost, Shape, conv_out};

/// One convolution of a residual unit, read after a BN-ReLU of its input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ConvPlan {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) kernel: usize,
    pub(crate) stride: usize,
}

/// A residual unit's shape: its convolutions in order, and the shortcut's input and output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnitPlan {
    pub(crate) convs: Vec<ConvPlan>,
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) stride: usize,
}

impl UnitPlan {
    /// He et al.'s shortcut: identity unless the unit changes the channels or the resolution.
    pub(crate) fn has_projection(&self) -> bool {
        self.stride != 1 || self.from != self.to
    }
}

/// A pre-activation ResNet's layout with the spec's defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct PreactLayout {
    pub(crate) stem: usize,
    channels: [usize; 3],
    blocks: [usize; 3],
    /// A bottleneck unit's inner width per stage; basic units when absent.
    inner: Option<[usize; 3]>,
    /// Dropout probability before a unit's last convolution (0 but in Wide-ResNets).
    pub(crate) dropout: f64,
}

impl PreactLayout {
    /// Defaults (He et al.): a 16-channel stem and (depth - 2) / 6 basic units per stage at
    /// 16w, 32w and 64w channels, or (depth - 2) / 9 bottleneck units per stage at 64w, 128w
    /// and 256w channels with a quarter of that inside. The explicit fields let a student
    /// match another family's stem and stage widths (the BAN paper's Table 5, which shares
    /// them with a DenseNet). Panics where `try_new` finds no layout (validation refuses those
    /// specs).
    pub fn new(
        depth: usize,
        width: usize,
        bottleneck: bool,
        inner: &[usize],
        stem: Option<usize>,
        channels: &[usize],
        blocks: &[usize],
    ) -> PreactLayout {
        PreactLayout::try_new(depth, width, bottleneck, inner, stem, channels, blocks)
            .expect("a validated pre-activation ResNet spec has a layout")
    }

    /// The layout, or `None` for a depth below 2 or stage widths that overflow.
    pub fn try_new(
        depth: usize,
        width: usize,
        bottleneck: bool,
        inner: &[usize],
        stem: Option<usize>,
        channels: &[usize],
        blocks: &[usize],
    ) -> Option<PreactLayout> {
        let (expansion, layers) = if bottleneck { (4, 3) } else { (1, 2) };
        let channels: [usize; 3] = match channels.try_into() {
            Ok(given) => given,
            Err(_) => {
                let per_unit = width.checked_mul(expansion)?;
                [
                    16usize.checked_mul(per_unit)?,
                    32usize.checked_mul(per_unit)?,
                    64usize.checked_mul(per_unit)?,
                ]
            }
        };
        let blocks = match blocks.try_into() {
            Ok(given) => given,
            Err(_) => [depth.checked_sub(2)? / (3 * layers); 3],
        };
        Some(PreactLayout {
            stem: stem.unwrap_or(16),
            channels,
            blocks,
            inner: bottleneck.then(|| inner.try_into().unwrap_or(channels.map(|c| (c / 4).max(1)))),
            dropout: 0.0,
        })
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
    pub(crate) fn plan(&self) -> Vec<UnitPlan> {
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

/// Wide-ResNet-d-k (Zagoruyko & Komodakis 2016, "Wide Residual Networks"): the BAN paper's
/// Tables 1 and 3. A Wide-ResNet is a pre-activation ResNet with other stage widths, another
/// depth rule and dropout, so it is built by `PreactResnet` from this layout.
///
/// WRN-d-k: a 16-channel stem, stages of 16k, 32k and 64k channels, depth = 6n + 4 (n blocks
/// per stage; the 4 counts the stem, the head and the projection shortcuts), and dropout
/// between each block's convolutions ("wide-dropout" blocks B(3,3)).
/// `None` for a depth below 4 or widths that overflow.
pub(super) fn wide_resnet_layout(depth: usize, widen: usize, dropout: f64) -> Option<PreactLayout> {
    Some(PreactLayout {
        stem: 16,
        channels: [
            16usize.checked_mul(widen)?,
            32usize.checked_mul(widen)?,
            64usize.checked_mul(widen)?,
        ],
        blocks: [depth.checked_sub(4)? / 6; 3],
        inner: None,
        dropout,
    })
}

/// Parameters, multiply-accumulates and feature maps, layer by layer as `PreactResnet::new`
/// builds them.
pub(super) fn cost(layout: &PreactLayout, shape: Shape) -> Option<Cost> {
    let mut cost = Cost::default();
    let mut size = [shape.height, shape.width];
    cost.map(shape.channels, size)?;
    cost.conv(shape.channels, layout.stem, 3, size)?;
    for unit in layout.plan() {
        let unit_in = size;
        for c in &unit.convs {
            cost.norm(c.from, size)?;
            size = size.map(|s| conv_out(s, c.kernel, c.stride));
            cost.conv(c.from, c.to, c.kernel, size)?;
        }
        if unit.has_projection() {
            cost.conv(
                unit.from,
                unit.to,
                1,
                unit_in.map(|s| conv_out(s, 1, unit.stride)),
            )?;
        }
        // The sum of the shortcut and the residual.
        cost.map(unit.to, size)?;
    }
    cost.norm(layout.features(), size)?;
    cost.map(layout.features(), [1, 1])?;
    cost.linear(layout.features(), shape.classes)?;
    Some(cost)
}

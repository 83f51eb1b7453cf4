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
pub(super) fn wide_resnet_layout(depth: usize, widen: usize, dropout: f64) -> PreactLayout {
    PreactLayout {
        stem: 16,
        channels: [16 * widen, 32 * widen, 64 * widen],
        blocks: [(depth - 4) / 6; 3],
        inner: None,
        dropout,
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

//! Model architectures as a spec names them: the families and their sizes, the names tables
//! show, and the checks a spec's `[teacher]` and `[student]` sections pass.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::arch::MAX_DEPTH;

/// An architecture and its size; the registry in `models` builds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelSpec {
    /// Multi-layer perceptron with ReLU hidden layers.
    Mlp {
        #[serde(default = "default_mlp_hidden")]
        hidden: Vec<usize>,
    },
    /// A small batch-normalised CNN with a global-average-pool head.
    Cnn {
        #[serde(default = "default_cnn_width")]
        width: usize,
    },
    /// CIFAR-style pre-activation ResNet (He et al. 2016): depth = 6n + 2 with basic units,
    /// 9n + 2 with bottleneck units; width multiplies the 16/32/64 channels of the three stages
    /// (x4 at a bottleneck unit's output).
    PreactResnet {
        depth: usize,
        #[serde(default = "default_resnet_width")]
        width: usize,
        /// Basic units (two 3x3 convs) or bottleneck units (1x1, 3x3, 1x1; He et al.'s
        /// ResNet-164 and ResNet-1001).
        #[serde(default, skip_serializing_if = "ResidualUnit::is_basic")]
        unit: ResidualUnit,
        /// A bottleneck unit's inner width per stage (a quarter of the stage's channels when
        /// absent).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        inner: Vec<usize>,
        /// Channels of the stem conv (16 when absent); the BAN paper's Table 5 students take
        /// their DenseNet teacher's, which they share.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stem: Option<usize>,
        /// Channels of the three stages, replacing 16w/32w/64w; the last one is the feature
        /// width the output layer reads (Table 5: the teacher's, which they share).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        channels: Vec<usize>,
        /// Units per stage, overriding the split derived from `depth` (which must then be
        /// 2 x their sum + 2 for basic units, 3 x their sum + 2 for bottleneck units).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blocks: Vec<usize>,
    },
    /// DenseNet-BC (Huang et al. 2017): a 3x3 stem conv to 2k channels, three dense blocks of
    /// bottleneck layers (BN-ReLU-conv1x1 to 4k, BN-ReLU-conv3x3 to k) joined by transitions
    /// (BN-ReLU-conv1x1 to `compression` x the channels, 2x2 average pool). The BAN paper's
    /// "DenseNet-90-60" is `depth = 90, growth = 60`.
    DensenetBc {
        /// Layers with weights; each block has (depth - 4) / 6 bottleneck layers, rounded down
        /// (90 and 80, the BAN paper's depths, give 14 and 12).
        depth: usize,
        /// Growth rate k: channels each bottleneck layer adds.
        growth: usize,
        /// Fraction of the channels a transition keeps (0.5 in DenseNet-BC).
        #[serde(default = "default_densenet_compression")]
        compression: f64,
        /// Bottleneck layers per dense block, overriding the split derived from `depth` (which
        /// must then be 2 x their sum + 4): for the BAN paper's Table 4 students.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        block_layers: Vec<usize>,
        /// Channels of the stem conv (2 x growth when absent); Table 4's deeper, thinner
        /// students keep their teacher's so that every post-transition width matches.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stem: Option<usize>,
    },
    /// Wide-ResNet-d-k (Zagoruyko & Komodakis 2016): depth = 6n + 4, three stages of n
    /// pre-activation blocks at 16k, 32k and 64k channels, dropout between each block's convs.
    WideResnet {
        depth: usize,
        /// Width multiplier k.
        widen: usize,
        /// Dropout probability between the two convs of a block (0.3 in the WRN paper).
        #[serde(default = "default_wrn_dropout")]
        dropout: f64,
    },
}

/// The residual unit of a pre-activation ResNet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResidualUnit {
    /// BN-ReLU-conv3x3 twice: 2 layers per unit.
    #[default]
    Basic,
    /// BN-ReLU-conv1x1 to the inner width, BN-ReLU-conv3x3, BN-ReLU-conv1x1 back out: 3 layers.
    Bottleneck,
}

impl ResidualUnit {
    fn is_basic(&self) -> bool {
        *self == ResidualUnit::Basic
    }

    /// The name a spec writes.
    pub fn name(self) -> &'static str {
        match self {
            ResidualUnit::Basic => "basic",
            ResidualUnit::Bottleneck => "bottleneck",
        }
    }

    /// Weighted layers per unit, which the depth counts.
    pub fn layers(self) -> usize {
        match self {
            ResidualUnit::Basic => 2,
            ResidualUnit::Bottleneck => 3,
        }
    }
}

fn default_mlp_hidden() -> Vec<usize> {
    vec![256, 128]
}
fn default_cnn_width() -> usize {
    16
}
fn default_resnet_width() -> usize {
    1
}
fn default_densenet_compression() -> f64 {
    0.5
}
fn default_wrn_dropout() -> f64 {
    0.3
}

impl ModelSpec {
    /// A pre-activation ResNet of the standard layout (He et al. 2016).
    pub fn preact_resnet(depth: usize, width: usize) -> ModelSpec {
        ModelSpec::PreactResnet {
            depth,
            width,
            unit: ResidualUnit::Basic,
            inner: Vec::new(),
            stem: None,
            channels: Vec::new(),
            blocks: Vec::new(),
        }
    }
}

/// The sum of a list, or `None` when it overflows.
fn checked_sum(list: &[usize]) -> Option<usize> {
    list.iter().try_fold(0usize, |sum, &n| sum.checked_add(n))
}

/// Refuses a depth beyond `arch::MAX_DEPTH`.
fn at_most_max_depth(depth: usize) -> Result<(), (&'static str, String)> {
    if depth > MAX_DEPTH {
        return Err((
            "depth",
            format!("expected at most {MAX_DEPTH} layers, found {depth}"),
        ));
    }
    Ok(())
}

/// A per-stage list of a three-stage network: three entries, none zero.
fn three_stages(
    key: &'static str,
    list: &[usize],
    what: &str,
) -> Result<(), (&'static str, String)> {
    if list.len() != 3 || list.contains(&0) {
        return Err((
            key,
            format!("expected three stages of at least 1 {what} each, found {list:?}"),
        ));
    }
    Ok(())
}

/// " key=a/b/c" for an explicit list, nothing for an empty (default) one.
fn write_list(f: &mut fmt::Formatter<'_>, key: &str, list: &[usize]) -> fmt::Result {
    if list.is_empty() {
        return Ok(());
    }
    let items: Vec<String> = list.iter().map(|n| n.to_string()).collect();
    write!(f, " {key}={}", items.join("/"))
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Mlp { hidden } => {
                let sizes: Vec<String> = hidden.iter().map(|h| h.to_string()).collect();
                write!(f, "MLP-{}", sizes.join("-"))
            }
            ModelSpec::Cnn { width } => write!(f, "CNN-{width}"),
            ModelSpec::PreactResnet {
                depth,
                width,
                unit,
                inner,
                stem,
                channels,
                blocks,
            } => {
                // Only what departs from the standard layout, so the usual names stay short.
                write!(f, "PreAct-ResNet-{depth}")?;
                if channels.is_empty() {
                    write!(f, "-{width}")?;
                }
                if *unit == ResidualUnit::Bottleneck {
                    write!(f, " bottleneck")?;
                }
                write_list(f, "inner", inner)?;
                write_list(f, "blocks", blocks)?;
                if let Some(stem) = stem {
                    write!(f, " stem={stem}")?;
                }
                write_list(f, "channels", channels)
            }
            ModelSpec::DensenetBc {
                depth,
                growth,
                compression,
                block_layers,
                stem,
            } => {
                write!(f, "DenseNet-BC-{depth}-{growth}")?;
                // Only what departs from DenseNet-BC's definition, so paper names stay short.
                write_list(f, "blocks", block_layers)?;
                if let Some(stem) = stem {
                    write!(f, " stem={stem}")?;
                }
                if *compression != default_densenet_compression() {
                    write!(f, " compression={compression}")?;
                }
                Ok(())
            }
            ModelSpec::WideResnet { depth, widen, .. } => write!(f, "WRN-{depth}-{widen}"),
        }
    }
}

impl ModelSpec {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            ModelSpec::Mlp { hidden } => {
                if hidden.contains(&0) {
                    return Err(("hidden", "expected layer sizes >= 1".into()));
                }
                if hidden.len() > MAX_DEPTH {
                    return Err((
                        "hidden",
                        format!(
                            "expected at most {MAX_DEPTH} layers, found {}",
                            hidden.len()
                        ),
                    ));
                }
            }
            ModelSpec::Cnn { width } => {
                if *width == 0 || *width > 512 {
                    return Err(("width", format!("expected 1..=512, found {width}")));
                }
            }
            ModelSpec::PreactResnet {
                depth,
                width,
                unit,
                inner,
                stem,
                channels,
                blocks,
            } => {
                let layers = unit.layers();
                at_most_max_depth(*depth)?;
                if blocks.is_empty() {
                    let smallest = 3 * layers + 2;
                    if *depth < smallest || (depth - 2) % (3 * layers) != 0 {
                        let examples = match unit {
                            ResidualUnit::Basic => "8, 14, 20, 32, 56, 110, ...",
                            ResidualUnit::Bottleneck => "11, 164, 1001, ...",
                        };
                        return Err((
                            "depth",
                            format!(
                                "expected {}n + 2 with n >= 1 for {} units ({examples}), found {depth}",
                                3 * layers,
                                unit.name()
                            ),
                        ));
                    }
                } else {
                    three_stages("blocks", blocks, "unit")?;
                    let expected = checked_sum(blocks)
                        .and_then(|n| n.checked_mul(layers)?.checked_add(2))
                        .ok_or(("blocks", format!("{blocks:?} has too many units to count")))?;
                    if *depth != expected {
                        return Err((
                            "depth",
                            format!(
                                "expected {expected} = {layers} x (sum of blocks) + 2 for {} units, found {depth}",
                                unit.name()
                            ),
                        ));
                    }
                }
                if *width == 0 || *width > 64 {
                    return Err(("width", format!("expected 1..=64, found {width}")));
                }
                if !channels.is_empty() {
                    three_stages("channels", channels, "channel")?;
                    if *width != 1 {
                        return Err((
                            "width",
                            "`channels` replaces the width multiplier; leave width at 1".into(),
                        ));
                    }
                }
                if !inner.is_empty() {
                    if *unit != ResidualUnit::Bottleneck {
                        return Err((
                            "inner",
                            "only bottleneck units have an inner width; set unit = \"bottleneck\""
                                .into(),
                        ));
                    }
                    three_stages("inner", inner, "channel")?;
                }
                if *stem == Some(0) {
                    return Err(("stem", "expected at least 1 channel".into()));
                }
            }
            ModelSpec::DensenetBc {
                depth,
                growth,
                compression,
                block_layers,
                stem,
            } => {
                if *growth == 0 || *growth > 512 {
                    return Err(("growth", format!("expected 1..=512, found {growth}")));
                }
                if !(compression.is_finite() && *compression > 0.0 && *compression <= 1.0) {
                    return Err((
                        "compression",
                        format!(
                            "expected 0 < compression <= 1 (DenseNet-BC uses 0.5), found {compression}"
                        ),
                    ));
                }
                if *stem == Some(0) {
                    return Err(("stem", "expected at least 1 channel".into()));
                }
                at_most_max_depth(*depth)?;
                let blocks = if block_layers.is_empty() {
                    if *depth < 10 {
                        return Err((
                            "depth",
                            format!(
                                "expected at least 10: three blocks of (depth - 4) / 6 layers (40, 100, 190, 250, ...), found {depth}"
                            ),
                        ));
                    }
                    vec![(depth - 4) / 6; 3]
                } else {
                    three_stages("block_layers", block_layers, "layer")?;
                    let expected = checked_sum(block_layers)
                        .and_then(|n| n.checked_mul(2)?.checked_add(4))
                        .ok_or((
                            "block_layers",
                            format!("{block_layers:?} has too many layers to count"),
                        ))?;
                    if *depth != expected {
                        return Err((
                            "depth",
                            format!(
                                "expected {expected} = 2 x (sum of block_layers) + 4, found {depth}"
                            ),
                        ));
                    }
                    block_layers.clone()
                };
                // Each transition must keep at least one channel.
                let mut channels = stem.unwrap_or(2 * growth);
                for n in &blocks[..blocks.len() - 1] {
                    let before = n
                        .checked_mul(*growth)
                        .and_then(|added| channels.checked_add(added))
                        .ok_or((
                            "stem",
                            format!("{channels} channels and {n} layers of {growth} are too many to count"),
                        ))?;
                    channels = (compression * before as f64).floor() as usize;
                    if channels == 0 {
                        return Err((
                            "compression",
                            format!(
                                "compression {compression} leaves a transition with no channels"
                            ),
                        ));
                    }
                }
            }
            ModelSpec::WideResnet {
                depth,
                widen,
                dropout,
            } => {
                at_most_max_depth(*depth)?;
                if *depth < 10 || (depth - 4) % 6 != 0 {
                    return Err((
                        "depth",
                        format!(
                            "expected 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), found {depth}"
                        ),
                    ));
                }
                if *widen == 0 || *widen > 64 {
                    return Err(("widen", format!("expected 1..=64, found {widen}")));
                }
                if !(0.0..1.0).contains(dropout) {
                    return Err((
                        "dropout",
                        format!("expected 0 <= dropout < 1, found {dropout}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::tests::{MINIMAL, parse};

    #[test]
    fn range_errors_name_section_field_and_line() {
        let bad = MINIMAL.replace("arch = \"cnn\"", "arch = \"preact-resnet\"\ndepth = 10");
        let err = parse(&bad).unwrap_err();
        assert_eq!(err.field, "teacher.depth");
        assert_eq!(err.line, Some(7));
    }
}

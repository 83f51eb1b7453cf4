//! Architecture arithmetic without burn: the input shape, every family's layer layout as a spec
//! resolves it, parameter counts, FLOPs and the layer-sharing rules. `models` builds and runs
//! the networks from these layouts; specs, data and the terminal UI read them from here.
//! Adding a family is one file here (its cost, and its layout if it has one) plus one arm in
//! each match below.

pub mod cnn;
pub mod densenet;
pub mod language;
mod mlp;
pub mod preact_resnet;

use densenet::DensenetLayout;
use preact_resnet::PreactLayout;

use crate::spec::{ModelSpec, ResidualUnit};

/// Input geometry and class count a model is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

/// The shapes of the layers a student shares with its teacher under
/// `generations.share_teacher_layers` (the input channels and classes come from the data, so
/// they always agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedShapes {
    /// Output channels of the first convolution.
    pub first_conv: usize,
    /// Its kernel size.
    pub kernel: usize,
    /// Features the output layer reads.
    pub features: usize,
}

impl std::fmt::Display for SharedShapes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            first_conv,
            kernel,
            features,
        } = self;
        write!(
            f,
            "first conv {kernel}x{kernel} to {first_conv} channels, output layer from {features} features"
        )
    }
}

/// The shapes `spec`'s first convolution and output layer have; `None` for the MLP, which has
/// no convolution.
pub fn shared_shapes(spec: &ModelSpec) -> Option<SharedShapes> {
    let (first_conv, features) = match spec {
        ModelSpec::Mlp { .. } => return None,
        ModelSpec::Cnn { width } => (*width, 4 * width),
        ModelSpec::PreactResnet { .. } | ModelSpec::WideResnet { .. } => {
            let layout = preact_layout(spec);
            (layout.stem(), layout.features())
        }
        ModelSpec::DensenetBc { .. } => {
            let layout = densenet_layout(spec);
            (layout.stem(), layout.features())
        }
    };
    Some(SharedShapes {
        first_conv,
        kernel: 3,
        features,
    })
}

/// Why a `student` cannot take `teacher`'s first convolution and output layer, if it cannot.
pub fn sharing_mismatch(teacher: &ModelSpec, student: &ModelSpec) -> Option<String> {
    match (shared_shapes(teacher), shared_shapes(student)) {
        (Some(t), Some(s)) if t == s => None,
        (Some(t), Some(s)) => Some(format!(
            "the student {student} cannot share the first conv and output layer of its teacher {teacher}: the teacher has {t}, the student {s}"
        )),
        _ => Some(format!(
            "the student {student} cannot share the first conv and output layer of its teacher {teacher}: an MLP has no convolution"
        )),
    }
}

/// Pre-activation ResNets and Wide-ResNets are one family of networks.
pub(crate) fn preact_layout(spec: &ModelSpec) -> PreactLayout {
    match spec {
        ModelSpec::PreactResnet {
            depth,
            width,
            unit,
            inner,
            stem,
            channels,
            blocks,
        } => PreactLayout::new(
            *depth,
            *width,
            *unit == ResidualUnit::Bottleneck,
            inner,
            *stem,
            channels,
            blocks,
        ),
        ModelSpec::WideResnet {
            depth,
            widen,
            dropout,
        } => preact_resnet::wide_resnet_layout(*depth, *widen, *dropout),
        _ => unreachable!("called with a pre-activation ResNet or Wide-ResNet spec"),
    }
}

pub(crate) fn densenet_layout(spec: &ModelSpec) -> DensenetLayout {
    let ModelSpec::DensenetBc {
        depth,
        growth,
        compression,
        block_layers,
        stem,
    } = spec
    else {
        unreachable!("called with a DenseNet-BC spec")
    };
    DensenetLayout::new(*depth, *growth, *compression, block_layers, *stem)
}

/// Trainable parameters of an architecture, as papers (and PyTorch's `parameters()`) count
/// them: burn's `num_params()` also counts batch norm's running statistics. Computed from the
/// definition without building the model; a test keeps it equal to the built model's trainable
/// parameters for every family.
pub fn parameter_count(spec: &ModelSpec, shape: Shape) -> usize {
    cost(spec, shape).params
}

/// Forward FLOPs per sample: 2 x the multiply-accumulates of every convolution and linear layer
/// (their biases, batch norm, activations, pooling, dropout and concatenation are not counted;
/// they are a small fraction of the total for these networks).
pub fn forward_flops(spec: &ModelSpec, shape: Shape) -> u64 {
    2 * cost(spec, shape).macs
}

fn cost(spec: &ModelSpec, shape: Shape) -> Cost {
    match spec {
        ModelSpec::Mlp { hidden } => mlp::cost(hidden, shape),
        ModelSpec::Cnn { width } => cnn::cost(*width, shape),
        ModelSpec::PreactResnet { .. } | ModelSpec::WideResnet { .. } => {
            preact_resnet::cost(&preact_layout(spec), shape)
        }
        ModelSpec::DensenetBc { .. } => densenet::cost(&densenet_layout(spec), shape),
    }
}

/// Parameters and forward multiply-accumulates per sample, added up layer by layer by each
/// family's `cost`, which walks the same layers as its constructor.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Cost {
    params: usize,
    macs: u64,
}

impl Cost {
    /// A biasless `kernel` x `kernel` convolution whose output map is `out` (height, width).
    fn conv(&mut self, from: usize, to: usize, kernel: usize, out: [usize; 2]) {
        let weights = from * to * kernel * kernel;
        self.params += weights;
        self.macs += (weights * out[0] * out[1]) as u64;
    }

    /// A linear layer with bias.
    fn linear(&mut self, from: usize, to: usize) {
        self.params += from * to + to;
        self.macs += (from * to) as u64;
    }

    /// Batch norm: a scale and a shift per channel (the running statistics are not parameters).
    fn norm(&mut self, channels: usize) {
        self.params += 2 * channels;
    }
}

/// Output size along one axis of a convolution padded by `kernel / 2` on every side (the
/// models' biasless `conv`).
fn conv_out(size: usize, kernel: usize, stride: usize) -> usize {
    (size + 2 * (kernel / 2) - kernel) / stride + 1
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const MNIST: Shape = Shape {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
    };
    pub(crate) const CIFAR: Shape = Shape {
        channels: 3,
        height: 32,
        width: 32,
        classes: 10,
    };
    pub(crate) const CIFAR100: Shape = Shape {
        classes: 100,
        ..CIFAR
    };

    pub(crate) fn densenet(depth: usize, growth: usize) -> ModelSpec {
        ModelSpec::DensenetBc {
            depth,
            growth,
            compression: 0.5,
            block_layers: vec![],
            stem: None,
        }
    }

    pub(crate) fn wrn(depth: usize, widen: usize) -> ModelSpec {
        ModelSpec::WideResnet {
            depth,
            widen,
            dropout: 0.3,
        }
    }

    /// A pre-activation ResNet of bottleneck units; explicit lists when not empty.
    pub(crate) fn bottleneck(
        depth: usize,
        inner: &[usize],
        channels: &[usize],
        blocks: &[usize],
    ) -> ModelSpec {
        ModelSpec::PreactResnet {
            depth,
            width: 1,
            unit: ResidualUnit::Bottleneck,
            inner: inner.to_vec(),
            stem: (!channels.is_empty()).then_some(5),
            channels: channels.to_vec(),
            blocks: blocks.to_vec(),
        }
    }

    fn assert_within_1_percent(spec: &ModelSpec, shape: Shape, reference: f64) {
        let n = parameter_count(spec, shape) as f64;
        assert!(
            (n / reference - 1.0).abs() < 0.01,
            "{spec}: {n} parameters, reference {reference}"
        );
    }

    #[test]
    fn parameter_counts_follow_the_definitions() {
        // 784*32 + 32 + 32*10 + 10
        assert_eq!(
            parameter_count(&ModelSpec::Mlp { hidden: vec![32] }, MNIST),
            25_450
        );
        // PreAct ResNet-20 (0.27M in He et al.) with biasless convs and BN affine parameters.
        let n = parameter_count(&ModelSpec::preact_resnet(20, 1), CIFAR);
        assert!((268_000..275_000).contains(&n), "{n}");
    }

    #[test]
    fn densenet_bc_parameter_counts_match_huang_et_al() {
        assert_within_1_percent(&densenet(100, 12), CIFAR, 0.77e6);
        assert_within_1_percent(&densenet(250, 24), CIFAR, 15.3e6);
        assert_within_1_percent(&densenet(190, 40), CIFAR, 25.6e6);
        // The BAN paper's CIFAR-100 DenseNets, by the same formula (see paper.md: the paper
        // itself prints 6.3M, 16.1M, 22.4M and 50.4M).
        assert_within_1_percent(&densenet(112, 33), CIFAR100, 6.99e6);
        assert_within_1_percent(&densenet(90, 60), CIFAR100, 15.19e6);
        assert_within_1_percent(&densenet(80, 80), CIFAR100, 21.10e6);
        assert_within_1_percent(&densenet(80, 120), CIFAR100, 47.28e6);
    }

    #[test]
    fn bottleneck_preact_resnet_counts_match_he_et_al() {
        // "Identity Mappings in Deep Residual Networks", CIFAR-10: ResNet-164 1.7M,
        // ResNet-1001 10.2M (rounded; ours has BN affine parameters and a biasless stem).
        let n164 = parameter_count(&bottleneck(164, &[], &[], &[]), CIFAR);
        assert!((1_650_000..1_750_000).contains(&n164), "{n164}");
        let n1001 = parameter_count(&bottleneck(1001, &[], &[], &[]), CIFAR);
        assert!((10_150_000..10_350_000).contains(&n1001), "{n1001}");
    }

    #[test]
    fn wide_resnet_parameter_counts_match_zagoruyko_and_komodakis() {
        assert_within_1_percent(&wrn(28, 1), CIFAR, 0.369e6);
        assert_within_1_percent(&wrn(28, 2), CIFAR, 1.468e6);
        assert_within_1_percent(&wrn(28, 5), CIFAR, 9.133e6);
        assert_within_1_percent(&wrn(28, 10), CIFAR, 36.48e6);
    }

    #[test]
    fn flops_of_small_models_by_hand() {
        // 2 x (784*32 + 32*10)
        assert_eq!(
            forward_flops(&ModelSpec::Mlp { hidden: vec![32] }, MNIST),
            50_816
        );

        // CNN-1 on 1x4x4, 2 classes: 3x3 convs 1->1 and 1->1 at 4x4 (144 MACs each), pool to
        // 2x2, 1->2 (72) and 2->2 (144), pool to 1x1, 2->4 (72), linear 4->2 (8): 584 MACs.
        let tiny = Shape {
            channels: 1,
            height: 4,
            width: 4,
            classes: 2,
        };
        assert_eq!(forward_flops(&ModelSpec::Cnn { width: 1 }, tiny), 2 * 584);

        // DenseNet-BC-10-1 on 3x4x4: stem 3->2 (54*16 = 864); block 1 at 4x4: 1x1 2->4 (128),
        // 3x3 4->1 (576); transition 1x1 3->1 (48), pool to 2x2; block 2: 1->4 (16), 4->1
        // (144); transition 2->1 (8), pool to 1x1; block 3: 1->4 (4), 4->1 (36); linear 2->10
        // (20): 1844 MACs.
        let tiny = Shape {
            channels: 3,
            height: 4,
            width: 4,
            classes: 10,
        };
        assert_eq!(forward_flops(&densenet(10, 1), tiny), 2 * 1844);

        // WRN-10-1 on 3x4x4: stem 3->16 (432*16 = 6912); stage 1 at 4x4: two 3x3 16->16
        // (2304*16 = 36864 each), identity shortcut; stage 2 at 2x2: 3x3 16->32 (4608*4 = 18432), 3x3 32->32
        // (9216*4 = 36864), 1x1 shortcut 16->32 (512*4 = 2048); stage 3 at 1x1: 3x3 32->64
        // (18432), 64->64 (36864), shortcut 32->64 (2048); linear 64->10 (640).
        let macs = 6912 + 2 * 36_864 + 18_432 + 36_864 + 2048 + 18_432 + 36_864 + 2048 + 640;
        assert_eq!(forward_flops(&wrn(10, 1), tiny), 2 * macs);
    }

    fn parse_model(model: &str) -> Result<ModelSpec, crate::spec::SpecError> {
        let toml = format!(
            "name = \"t\"\n[data]\nsource = \"embedded\"\n[teacher]\n{model}\n\
             [schedule]\nepochs = 1\nbatch_size = 8\nlr = 0.1\n\
             [generations]\ncount = 1\ncontrol = \"ban\"\n"
        );
        let spec = crate::spec::Spec::parse(&toml, "x.toml".as_ref(), &Default::default())?;
        Ok(spec.teacher)
    }

    #[test]
    fn new_families_parse_with_defaults_and_paper_names() {
        let m = parse_model("arch = \"densenet-bc\"\ndepth = 100\ngrowth = 12").unwrap();
        assert_eq!(m, densenet(100, 12));
        assert_eq!(m.to_string(), "DenseNet-BC-100-12");
        let m = parse_model("arch = \"wide-resnet\"\ndepth = 28\nwiden = 10").unwrap();
        assert_eq!(m, wrn(28, 10));
        assert_eq!(m.to_string(), "WRN-28-10");
        // Table 4's 2xDepth student of DenseNet-90-60, spelled with explicit blocks.
        let m = parse_model(
            "arch = \"densenet-bc\"\ndepth = 172\ngrowth = 30\nblock_layers = [28, 28, 28]\n\
             stem = 120\ncompression = 0.75",
        )
        .unwrap();
        assert_eq!(
            m.to_string(),
            "DenseNet-BC-172-30 blocks=28/28/28 stem=120 compression=0.75"
        );
    }

    #[test]
    fn new_families_reject_bad_sizes_with_the_field_and_rule() {
        for (model, field, rule) in [
            (
                "arch = \"wide-resnet\"\ndepth = 27\nwiden = 1",
                "teacher.depth",
                "6n + 4",
            ),
            (
                "arch = \"wide-resnet\"\ndepth = 28\nwiden = 1\ndropout = 1.0",
                "teacher.dropout",
                "< 1",
            ),
            (
                "arch = \"densenet-bc\"\ndepth = 4\ngrowth = 12",
                "teacher.depth",
                "at least 10",
            ),
            (
                "arch = \"densenet-bc\"\ndepth = 40\ngrowth = 0",
                "teacher.growth",
                "1..=512",
            ),
            (
                "arch = \"densenet-bc\"\ndepth = 40\ngrowth = 12\ncompression = 0.0",
                "teacher.compression",
                "0 < compression",
            ),
            (
                "arch = \"densenet-bc\"\ndepth = 40\ngrowth = 1\ncompression = 0.1",
                "teacher.compression",
                "no channels",
            ),
            (
                "arch = \"densenet-bc\"\ndepth = 40\ngrowth = 12\nblock_layers = [6, 6]",
                "teacher.block_layers",
                "three",
            ),
            (
                "arch = \"densenet-bc\"\ndepth = 40\ngrowth = 12\nblock_layers = [6, 6, 7]",
                "teacher.depth",
                "expected 42",
            ),
            (
                "arch = \"preact-resnet\"\nunit = \"bottleneck\"\ndepth = 100",
                "teacher.depth",
                "9n + 2",
            ),
            (
                "arch = \"preact-resnet\"\nunit = \"bottleneck\"\ndepth = 14\nblocks = [2, 2, 2]",
                "teacher.depth",
                "expected 20 = 3 x (sum of blocks) + 2",
            ),
            (
                "arch = \"preact-resnet\"\ndepth = 20\ninner = [4, 4, 4]",
                "teacher.inner",
                "unit = \"bottleneck\"",
            ),
            (
                "arch = \"preact-resnet\"\nunit = \"bottleneck\"\ndepth = 11\ninner = [4, 0, 4]",
                "teacher.inner",
                "three stages",
            ),
        ] {
            let err = parse_model(model).unwrap_err();
            assert_eq!(err.field, field, "{model}");
            assert!(err.message.contains(rule), "{model}: {}", err.message);
        }
    }
}

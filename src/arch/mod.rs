//! Architecture arithmetic without burn: the input shape, every family's layer layout as a spec
//! resolves it, parameter counts, FLOPs, the smallest input each network takes, a training
//! memory estimate and the layer-sharing rules. `models` builds and runs the networks from these
//! layouts; specs, data and the terminal UI read them from here. Adding a family is one file
//! here (its cost, and its layout if it has one) plus one arm in each match below.
//!
//! Every derived count is checked arithmetic: a spec whose sizes overflow a count is refused by
//! validation (`check_input`, `check_size`) instead of wrapping into a small, wrong number.

pub mod cnn;
pub mod densenet;
pub mod language;
mod mlp;
pub mod preact_resnet;
mod sections;

pub use sections::{SectionShape, check_pairing, sections};

use densenet::DensenetLayout;
use preact_resnet::PreactLayout;

use crate::spec::{ModelSpec, ResidualUnit, Spec};

/// The most trainable parameters a spec may ask for (4 x 10^9: 16 GB of f32 weights, 48 GB with
/// their gradients and momentum, before any activation). Beyond it no machine this bench targets
/// trains the model; below it, `check_memory` compares the estimate with the device's memory.
pub const MAX_PARAMETERS: usize = 4_000_000_000;

/// The most weighted layers a vision network may have (ResNet-1001 is the deepest in the
/// papers), which also bounds how long counting its layers takes.
pub const MAX_DEPTH: usize = 10_000;

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
/// no convolution, and for a network whose widths overflow a count (which validation refuses).
pub fn shared_shapes(spec: &ModelSpec) -> Option<SharedShapes> {
    let (first_conv, features) = match spec {
        ModelSpec::Mlp { .. } => return None,
        ModelSpec::Cnn { width } => (*width, width.checked_mul(4)?),
        ModelSpec::PreactResnet { .. } | ModelSpec::WideResnet { .. } => {
            let layout = try_preact_layout(spec)?;
            (layout.stem(), layout.features())
        }
        ModelSpec::DensenetBc { .. } => {
            let layout = try_densenet_layout(spec)?;
            (layout.stem(), layout.try_features()?)
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
    let mlp = |m: &ModelSpec| matches!(m, ModelSpec::Mlp { .. });
    match (shared_shapes(teacher), shared_shapes(student)) {
        (Some(t), Some(s)) if t == s => None,
        (Some(t), Some(s)) => Some(format!(
            "the student {student} cannot share the first conv and output layer of its teacher {teacher}: the teacher has {t}, the student {s}"
        )),
        _ if mlp(teacher) || mlp(student) => Some(format!(
            "the student {student} cannot share the first conv and output layer of its teacher {teacher}: an MLP has no convolution"
        )),
        _ => Some(format!(
            "the student {student} or its teacher {teacher} has widths too large to count"
        )),
    }
}

/// Pre-activation ResNets and Wide-ResNets are one family of networks. Panics for a spec whose
/// sizes overflow (validation refuses those; `try_preact_layout` says so instead).
pub(crate) fn preact_layout(spec: &ModelSpec) -> PreactLayout {
    try_preact_layout(spec).expect("a validated pre-activation ResNet spec has a countable layout")
}

/// The layout of a pre-activation ResNet or Wide-ResNet; `None` when a derived count overflows
/// or the depth is below the family's smallest.
pub(crate) fn try_preact_layout(spec: &ModelSpec) -> Option<PreactLayout> {
    match spec {
        ModelSpec::PreactResnet {
            depth,
            width,
            unit,
            inner,
            stem,
            channels,
            blocks,
        } => PreactLayout::try_new(
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

/// A DenseNet-BC's layout. Panics for a spec whose sizes overflow (validation refuses those;
/// `try_densenet_layout` says so instead).
pub(crate) fn densenet_layout(spec: &ModelSpec) -> DensenetLayout {
    try_densenet_layout(spec).expect("a validated DenseNet-BC spec has a countable layout")
}

/// A DenseNet-BC's layout; `None` when a derived count overflows or the depth is below 4.
pub(crate) fn try_densenet_layout(spec: &ModelSpec) -> Option<DensenetLayout> {
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
    DensenetLayout::try_new(*depth, *growth, *compression, block_layers, *stem)
}

/// Trainable parameters of an architecture, as papers (and PyTorch's `parameters()`) count
/// them: burn's `num_params()` also counts batch norm's running statistics. Computed from the
/// definition without building the model; a test keeps it equal to the built model's trainable
/// parameters for every family. Saturates at `usize::MAX` for a model too large to count
/// (validation refuses those); `checked_parameter_count` says so instead.
pub fn parameter_count(spec: &ModelSpec, shape: Shape) -> usize {
    checked_parameter_count(spec, shape).unwrap_or(usize::MAX)
}

/// Trainable parameters, or `None` when the count overflows.
pub fn checked_parameter_count(spec: &ModelSpec, shape: Shape) -> Option<usize> {
    cost(spec, shape).map(|c| c.params)
}

/// Forward FLOPs per sample: 2 x the multiply-accumulates of every convolution and linear layer
/// (their biases, batch norm, activations, pooling, dropout and concatenation are not counted;
/// they are a small fraction of the total for these networks). Saturates at `u64::MAX` for a
/// model too large to count; `checked_forward_flops` says so instead.
pub fn forward_flops(spec: &ModelSpec, shape: Shape) -> u64 {
    checked_forward_flops(spec, shape).unwrap_or(u64::MAX)
}

/// Forward FLOPs per sample, or `None` when the count overflows.
pub fn checked_forward_flops(spec: &ModelSpec, shape: Shape) -> Option<u64> {
    cost(spec, shape)?.macs.checked_mul(2)
}

/// Elements of the feature maps one sample's forward pass produces (the input, every
/// convolution, batch norm, ReLU, pooling, concatenation and sum), or `None` when the count
/// overflows: what the training memory estimate multiplies by the batch.
pub fn activations_per_sample(spec: &ModelSpec, shape: Shape) -> Option<u64> {
    cost(spec, shape).map(|c| c.activations)
}

fn cost(spec: &ModelSpec, shape: Shape) -> Option<Cost> {
    match spec {
        ModelSpec::Mlp { hidden } => mlp::cost(hidden, shape),
        ModelSpec::Cnn { width } => cnn::cost(*width, shape),
        ModelSpec::PreactResnet { .. } | ModelSpec::WideResnet { .. } => {
            preact_resnet::cost(&try_preact_layout(spec)?, shape)
        }
        ModelSpec::DensenetBc { .. } => densenet::cost(&try_densenet_layout(spec)?, shape),
    }
}

/// The smallest images (height, width) `spec` can take: every downsampling that is not padded
/// (the CNN's 2x2 max pools, a DenseNet-BC transition's 2x2 average pool) halves the map,
/// rounding down, and the global pool at the end needs at least one pixel. The pre-activation
/// ResNets and Wide-ResNets downsample with padded strided convolutions (1 pixel stays 1) and
/// the MLP has no maps, so 1x1 is enough for them.
pub fn minimum_input(spec: &ModelSpec) -> (usize, usize) {
    let side = 1usize << halvings(spec).min(usize::BITS as usize - 1);
    (side, side)
}

/// Unpadded 2x2 stride-2 poolings before the global pool, and what they are, for messages.
fn halvings(spec: &ModelSpec) -> usize {
    match spec {
        ModelSpec::Cnn { .. } => (0..5).filter(|&b| cnn::pools_after(b)).count(),
        // A transition after every block but the last (three blocks by default).
        ModelSpec::DensenetBc { block_layers, .. } => match block_layers.len() {
            0 => 2,
            n => n - 1,
        },
        ModelSpec::Mlp { .. } | ModelSpec::PreactResnet { .. } | ModelSpec::WideResnet { .. } => 0,
    }
}

fn halving_reason(spec: &ModelSpec) -> String {
    let n = match halvings(spec) {
        1 => "one".to_string(),
        2 => "two".to_string(),
        3 => "three".to_string(),
        n => n.to_string(),
    };
    match spec {
        ModelSpec::Cnn { .. } => {
            format!("its {n} 2x2 max pools each halve the map, rounding down")
        }
        ModelSpec::DensenetBc { .. } => {
            format!("its {n} transitions' 2x2 average pools each halve the map, rounding down")
        }
        _ => "every stage needs at least one pixel".into(),
    }
}

/// Whether `spec` can be built for images of `shape`: large enough for every stage to keep at
/// least one pixel (`minimum_input`), and a model whose parameters and operations can be
/// counted and stay within `MAX_PARAMETERS`. The message says what the images are and what is
/// needed; the data loader puts the data file in front of it.
pub fn check_input(spec: &ModelSpec, shape: Shape) -> Result<(), String> {
    let (h, w) = minimum_input(spec);
    if shape.height < h || shape.width < w {
        return Err(format!(
            "images of {}x{} pixels are too small for {spec}, which needs at least {h}x{w} ({})",
            shape.height,
            shape.width,
            halving_reason(spec)
        ));
    }
    check_size(spec, shape)
}

/// Whether `spec`'s parameters and operations on images of `shape` can be counted and its
/// parameters stay within `MAX_PARAMETERS`.
pub fn check_size(spec: &ModelSpec, shape: Shape) -> Result<(), String> {
    let on = format!(
        "{}x{}x{} images and {} classes",
        shape.channels, shape.height, shape.width, shape.classes
    );
    match cost(spec, shape) {
        None => Err(format!(
            "{spec} on {on} has more parameters or operations than can be counted"
        )),
        Some(c) if c.params > MAX_PARAMETERS => Err(format!(
            "{spec} on {on} has {} parameters, more than the {MAX_PARAMETERS} any machine here can train",
            c.params
        )),
        Some(c) if c.macs.checked_mul(2).is_none() => Err(format!(
            "{spec} on {on} has more operations per image than can be counted"
        )),
        Some(_) => Ok(()),
    }
}

/// Bytes of an f32, the one element type of every tensor here.
const F32: u64 = 4;

/// How much more than the forward pass's maps the backward pass holds at its peak: each map kept
/// for the backward pass gets a gradient of its size while backpropagation runs through it
/// (burn frees gradients once consumed), so twice the forward maps is a round upper bound.
pub const BACKWARD_FACTOR: u64 = 2;

/// Batch of the evaluation passes (`task::vision::predict` runs at least 256 images at a time).
const EVAL_BATCH: u64 = 256;

/// Maps alive at once in a pass without gradients, in units of the largest map: the layer's
/// input, its output and a block's running concatenation (or a shortcut); the others are freed
/// as the pass goes.
const INFERENCE_MAPS: u64 = 3;

/// Estimated bytes to train one generation of `student` on batches of `batch` images of `shape`,
/// reading the outputs of `teacher` (run in inference, without gradients) when it has one:
///
/// - the student's weights, their gradients and, with `momentum`, SGD's momentum buffer: 4
///   bytes per parameter each;
/// - the teacher's weights: 4 bytes per parameter;
/// - the feature maps of one batch's forward pass (`activations_per_sample` x batch x 4 bytes)
///   times `BACKWARD_FACTOR` for the backward pass; the teacher's forward pass runs without
///   gradients (`INFERENCE_MAPS` of its largest map alive at once, per image) before the
///   student's, so only the larger of the two counts;
/// - or, when larger, an evaluation pass: the weights and `INFERENCE_MAPS` largest maps of each
///   of at least 256 images.
///
/// The data set itself (its u8 pixels) is not included. `None` when a count overflows.
pub fn training_memory(
    student: &ModelSpec,
    teacher: Option<&ModelSpec>,
    shape: Shape,
    batch: usize,
    momentum: bool,
) -> Option<u64> {
    let s = cost(student, shape)?;
    let t = match teacher {
        Some(t) => cost(t, shape)?,
        None => Cost::default(),
    };
    let copies = if momentum { 3 } else { 2 };
    let weights = (s.params as u64)
        .checked_mul(copies)?
        .checked_add(t.params as u64)?
        .checked_mul(F32)?;
    let batch = batch as u64;
    let student_maps = s
        .activations
        .checked_mul(batch)?
        .checked_mul(BACKWARD_FACTOR)?;
    let teacher_maps = t.inference_maps()?.checked_mul(batch)?;
    let train = weights.checked_add(student_maps.max(teacher_maps).checked_mul(F32)?)?;
    let eval_maps = s.inference_maps()?.checked_mul(batch.max(EVAL_BATCH))?;
    let eval = (s.params as u64).checked_add(eval_maps)?.checked_mul(F32)?;
    Some(train.max(eval))
}

/// The most memory any generation of the vision chain `spec` needs on `train_samples` training
/// images of `shape` (`training_memory` of each generation, with its teacher when its control
/// reads one, at the batch size or the whole training set when that is smaller); `None` when a
/// count overflows.
pub fn chain_memory(spec: &Spec, shape: Shape, train_samples: usize) -> Option<u64> {
    let s = &spec.schedule;
    let momentum = s.momentum > 0.0;
    let batch = s.batch_size.min(train_samples);
    (0..=spec.generations.count)
        .map(|k| {
            let teacher = (k > 0 && spec.generations.control_of(k).needs_teacher())
                .then(|| spec.model_of(k - 1));
            training_memory(spec.model_of(k), teacher, shape, batch, momentum)
        })
        .try_fold(0u64, |most, m| Some(most.max(m?)))
}

/// Refuses a vision chain whose estimated memory (`chain_memory`) is beyond `available_bytes`
/// (or beyond counting), saying the estimate and the limit.
pub fn check_chain_memory(
    spec: &Spec,
    shape: Shape,
    train_samples: usize,
    available_bytes: u64,
) -> Result<(), String> {
    match chain_memory(spec, shape, train_samples) {
        Some(estimate) => check_memory(estimate, available_bytes),
        None => Err(format!(
            "the models and batch need more memory than can be counted, more than the {} available",
            gigabytes(available_bytes)
        )),
    }
}

/// Refuses an estimate beyond the memory available, saying both.
pub fn check_memory(estimate_bytes: u64, available_bytes: u64) -> Result<(), String> {
    if estimate_bytes > available_bytes {
        return Err(format!(
            "the models and batch need about {} (estimated: weights, gradients, momentum and {BACKWARD_FACTOR}x the feature maps of a batch), more than the {} available",
            gigabytes(estimate_bytes),
            gigabytes(available_bytes)
        ));
    }
    Ok(())
}

/// "12.3 GB".
pub fn gigabytes(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// This machine's available memory in bytes (`MemAvailable` of /proc/meminfo), for CPU
/// devices; `None` where that cannot be read (not Linux).
pub fn available_memory() -> Option<u64> {
    mem_available(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// `MemAvailable` of a /proc/meminfo text, in bytes.
pub(crate) fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let mut words = line.split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    let unit = match words.next() {
        Some("kB") => 1024,
        None => 1,
        Some(_) => return None,
    };
    n.checked_mul(unit)
}

/// Parameters, forward multiply-accumulates and feature-map elements per sample, added up layer
/// by layer by each family's `cost`, which walks the same layers as its constructor. Every sum
/// and product is checked: `None` means a count overflowed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Cost {
    params: usize,
    macs: u64,
    activations: u64,
    /// Elements of the largest single map.
    largest: u64,
}

fn area(size: [usize; 2]) -> Option<u64> {
    (size[0] as u64).checked_mul(size[1] as u64)
}

impl Cost {
    /// Elements alive at once per image in a pass without gradients: `INFERENCE_MAPS` of the
    /// largest map, or all of them when there are fewer.
    fn inference_maps(&self) -> Option<u64> {
        Some(
            self.largest
                .checked_mul(INFERENCE_MAPS)?
                .min(self.activations),
        )
    }

    /// A biasless `kernel` x `kernel` convolution whose output map is `out` (height, width).
    fn conv(&mut self, from: usize, to: usize, kernel: usize, out: [usize; 2]) -> Option<()> {
        let weights = from
            .checked_mul(to)?
            .checked_mul(kernel.checked_mul(kernel)?)?;
        self.params = self.params.checked_add(weights)?;
        let macs = (weights as u64).checked_mul(area(out)?)?;
        self.macs = self.macs.checked_add(macs)?;
        self.map(to, out)
    }

    /// A linear layer with bias.
    fn linear(&mut self, from: usize, to: usize) -> Option<()> {
        let weights = from.checked_mul(to)?;
        self.params = self.params.checked_add(weights)?.checked_add(to)?;
        self.macs = self.macs.checked_add(weights as u64)?;
        self.map(to, [1, 1])
    }

    /// Batch norm and the ReLU after it on a `size` map: a scale and a shift per channel (the
    /// running statistics are not parameters), and two maps.
    fn norm(&mut self, channels: usize, size: [usize; 2]) -> Option<()> {
        self.params = self.params.checked_add(channels.checked_mul(2)?)?;
        self.map(channels, size)?;
        self.map(channels, size)
    }

    /// A feature map of `channels` x `size` (an input, a pooling, a concatenation, a sum).
    fn map(&mut self, channels: usize, size: [usize; 2]) -> Option<()> {
        let elements = (channels as u64).checked_mul(area(size)?)?;
        self.activations = self.activations.checked_add(elements)?;
        self.largest = self.largest.max(elements);
        Some(())
    }
}

/// Output size along one axis of a convolution padded by `kernel / 2` on every side (the
/// models' biasless `conv`); an empty map stays empty.
fn conv_out(size: usize, kernel: usize, stride: usize) -> usize {
    match size
        .checked_add(2 * (kernel / 2))
        .and_then(|s| s.checked_sub(kernel))
    {
        Some(inner) if size > 0 => inner / stride.max(1) + 1,
        _ => 0,
    }
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

    #[test]
    fn minimum_inputs_follow_each_familys_downsampling() {
        assert_eq!(minimum_input(&ModelSpec::Mlp { hidden: vec![8] }), (1, 1));
        assert_eq!(minimum_input(&ModelSpec::Cnn { width: 2 }), (4, 4));
        assert_eq!(minimum_input(&densenet(10, 2)), (4, 4));
        assert_eq!(minimum_input(&ModelSpec::preact_resnet(8, 1)), (1, 1));
        assert_eq!(minimum_input(&bottleneck(11, &[], &[], &[])), (1, 1));
        assert_eq!(minimum_input(&wrn(10, 1)), (1, 1));
        let side = |s| Shape {
            channels: 1,
            height: s,
            width: s,
            classes: 10,
        };
        let cnn = ModelSpec::Cnn { width: 2 };
        let err = check_input(&cnn, side(3)).unwrap_err();
        assert!(
            err.contains("3x3 pixels") && err.contains("at least 4x4") && err.contains("max pool"),
            "{err}"
        );
        assert!(check_input(&cnn, side(4)).is_ok());
        let err = check_input(
            &densenet(10, 2),
            Shape {
                width: 2,
                ..side(9)
            },
        )
        .unwrap_err();
        assert!(
            err.contains("9x2 pixels") && err.contains("average pool"),
            "{err}"
        );
        assert!(check_input(&wrn(10, 1), side(1)).is_ok());
    }

    #[test]
    fn counts_that_overflow_are_refused_not_wrapped() {
        let huge = ModelSpec::Mlp {
            hidden: vec![1 << 62, 1 << 62],
        };
        assert_eq!(checked_parameter_count(&huge, MNIST), None);
        assert_eq!(parameter_count(&huge, MNIST), usize::MAX);
        assert_eq!(forward_flops(&huge, MNIST), u64::MAX);
        assert!(check_size(&huge, MNIST).unwrap_err().contains("counted"));
        let big = ModelSpec::Mlp {
            hidden: vec![1_000_000_000_000],
        };
        let err = check_size(&big, MNIST).unwrap_err();
        assert!(err.contains("795000000000010 parameters"), "{err}");
        // Channel products of explicit widths.
        let wide = bottleneck(11, &[1 << 40, 1, 1], &[1 << 40, 1 << 40, 1 << 40], &[]);
        assert_eq!(checked_parameter_count(&wide, CIFAR), None);
        let stem = ModelSpec::DensenetBc {
            depth: 10,
            growth: 12,
            compression: 0.5,
            block_layers: vec![],
            stem: Some(usize::MAX),
        };
        assert_eq!(checked_parameter_count(&stem, CIFAR), None);
        assert_eq!(shared_shapes(&stem), None);
        // Layouts of impossible depths are no layouts, not wrapped subtractions.
        assert_eq!(try_densenet_layout(&densenet(3, 12)), None);
        assert_eq!(try_preact_layout(&wrn(3, 1)), None);
        assert!(check_size(&densenet(100, 12), CIFAR).is_ok());
    }

    #[test]
    fn training_memory_adds_weights_gradients_momentum_and_maps() {
        // MLP-32 on 784 inputs, 10 classes: 25,450 parameters; maps per sample: the input
        // (784), the hidden layer and its ReLU (32 + 32) and the logits (10) = 858; the largest
        // map is the input.
        let mlp = ModelSpec::Mlp { hidden: vec![32] };
        assert_eq!(activations_per_sample(&mlp, MNIST), Some(858));
        let weights = 4 * 25_450 * 3;
        let maps = 4 * 858 * 1000 * BACKWARD_FACTOR;
        assert_eq!(
            training_memory(&mlp, None, MNIST, 1000, true),
            Some(weights + maps)
        );
        // No momentum buffer without momentum; a teacher adds its weights.
        assert_eq!(
            training_memory(&mlp, Some(&mlp), MNIST, 1000, false),
            Some(4 * 25_450 * 3 + maps)
        );
        // A small batch: the evaluation pass of 256 images dominates.
        assert_eq!(
            training_memory(&mlp, None, MNIST, 2, true),
            Some(4 * (25_450 + 858 * 256))
        );
        // Paper-sized models stay in the range measured runs suggest (the estimate is about
        // twice a measured peak: PreAct-ResNet-20 at batch 128 peaked at 0.39 GB).
        let resnet20 =
            training_memory(&ModelSpec::preact_resnet(20, 1), None, CIFAR, 128, true).unwrap();
        assert!((0.5e9..1.0e9).contains(&(resnet20 as f64)), "{resnet20}");
        let wrn = training_memory(&wrn(28, 10), Some(&wrn(28, 10)), CIFAR, 128, true).unwrap();
        assert!((5e9..20e9).contains(&(wrn as f64)), "{wrn}");
        assert_eq!(
            training_memory(
                &ModelSpec::Mlp {
                    hidden: vec![1 << 62]
                },
                None,
                MNIST,
                2,
                true
            ),
            None
        );
    }

    #[test]
    fn memory_checks_compare_with_meminfo() {
        let meminfo =
            "MemTotal:       24000000 kB\nMemFree:        1000 kB\nMemAvailable:   2000000 kB\n";
        assert_eq!(mem_available(meminfo), Some(2_048_000_000));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        assert!(check_memory(2_000_000_000, 2_048_000_000).is_ok());
        let err = check_memory(12_300_000_000, 2_048_000_000).unwrap_err();
        assert!(
            err.contains("12.3 GB") && err.contains("2.0 GB available"),
            "{err}"
        );
        if std::path::Path::new("/proc/meminfo").exists() {
            assert!(available_memory().is_some_and(|b| b > 0));
        }
    }
}

//! The experiment spec: a TOML file that is the single source of truth for a run.
//!
//! Parsing rejects unknown keys and ill-typed values (serde + toml report the line); the
//! `validate` pass checks what types cannot (ranges, cross-field rules) and reports the line of
//! the offending key by looking it up in the source text.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A whole experiment: one chain of generations (teacher, BAN-1, ..., BAN-k) and its ensembles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Short name, shown in tables and the TUI.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Seed of the teacher; generation k uses `seed + k`, so each generation is freshly
    /// initialised from its own seed.
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub data: DataSpec,
    pub teacher: ModelSpec,
    /// The students' architecture; absent means the teacher's (a born-again network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<ModelSpec>,
    pub schedule: Schedule,
    pub generations: Generations,
    /// Ensembles of generations (BANE). Absent means Ens*k = BAN-1..BAN-k for every k >= 2.
    #[serde(default, rename = "ensemble", skip_serializing_if = "Vec::is_empty")]
    pub ensembles: Vec<EnsembleSpec>,
    /// The paper's test error (%) per row label ("Teacher", "BAN-1", "Ens*2", ...), shown beside
    /// the measured numbers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub paper: BTreeMap<String, f64>,
}

fn default_seed() -> u64 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataSource {
    /// The Fashion-MNIST subset compiled into the binary.
    Embedded,
    /// MNIST-layout IDX files in `path` (default /usr/share/datasets/fashion-mnist).
    Idx,
    Cifar10,
    Cifar100,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cifar100Labels {
    #[default]
    Fine,
    Coarse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub source: DataSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub labels: Cifar100Labels,
    /// Class-balanced subset of the training split (all of it when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_samples: Option<usize>,
    /// Class-balanced subset of the test split (all of it when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_samples: Option<usize>,
    /// Samples held out of the training split for validation (never the test set).
    #[serde(default)]
    pub validation_samples: usize,
    /// Random crop padding in pixels (reflection); 0 disables cropping.
    #[serde(default)]
    pub crop_padding: usize,
    #[serde(default)]
    pub horizontal_flip: bool,
}

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

/// SGD with Nesterov momentum and a multi-step learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// PyTorch's and the paper's dampening is 0 (burn's default would be 0.1).
    #[serde(default)]
    pub dampening: f64,
    #[serde(default = "default_true")]
    pub nesterov: bool,
    #[serde(default)]
    pub weight_decay: f64,
    /// Epochs after which the learning rate is multiplied by `lr_factor`.
    #[serde(default)]
    pub milestones: Vec<usize>,
    #[serde(default = "default_lr_factor")]
    pub lr_factor: f64,
}

fn default_momentum() -> f64 {
    0.9
}
fn default_true() -> bool {
    true
}
fn default_lr_factor() -> f64 {
    0.2
}

impl Schedule {
    /// Learning rate during `epoch` (0-based): lr times `lr_factor` per milestone passed.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| epoch >= m).count();
        self.lr * self.lr_factor.powi(passed as i32)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlKind {
    /// Labels only (a plain retrain: the "teacher" control).
    Label,
    /// Teacher distribution only.
    Ban,
    /// Labels plus the teacher distribution.
    #[serde(rename = "ban+l")]
    BanL,
    /// Confidence Weighted by Teacher Max.
    Cwtm,
    /// Dark Knowledge with Permuted Predictions.
    Dkpp,
    /// Hinton et al. 2015 knowledge distillation.
    Kd,
}

/// How a generation learns from labels and its predecessor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    Label,
    Ban { temperature: f64 },
    BanL { temperature: f64 },
    Cwtm,
    Dkpp { temperature: f64 },
    Kd { temperature: f64, alpha: f64 },
}

impl Control {
    pub fn new(kind: ControlKind, temperature: f64, alpha: f64) -> Control {
        match kind {
            ControlKind::Label => Control::Label,
            ControlKind::Ban => Control::Ban { temperature },
            ControlKind::BanL => Control::BanL { temperature },
            ControlKind::Cwtm => Control::Cwtm,
            ControlKind::Dkpp => Control::Dkpp { temperature },
            ControlKind::Kd => Control::Kd { temperature, alpha },
        }
    }

    /// Whether the loss reads the previous generation's outputs.
    pub fn needs_teacher(&self) -> bool {
        !matches!(self, Control::Label)
    }

    /// The paper's name for the control.
    pub fn name(&self) -> String {
        let t = |t: &f64| {
            if *t == 1.0 {
                String::new()
            } else {
                format!(" T={t}")
            }
        };
        match self {
            Control::Label => "labels".into(),
            Control::Ban { temperature } => format!("BAN{}", t(temperature)),
            Control::BanL { temperature } => format!("BAN+L{}", t(temperature)),
            Control::Cwtm => "CWTM".into(),
            Control::Dkpp { temperature } => format!("DKPP{}", t(temperature)),
            Control::Kd { temperature, alpha } => format!("KD T={temperature} a={alpha}"),
        }
    }
}

/// How generations 1..=count learn from their predecessor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generations {
    /// Student generations after the teacher.
    pub count: usize,
    pub control: ControlKind,
    /// Softmax temperature of the distillation term (ban, ban+l, dkpp, kd).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Weight of the soft term in Hinton KD (1 - alpha goes to the labels).
    #[serde(default = "default_kd_alpha")]
    pub kd_alpha: f64,
    /// Per-generation controls (generation 1 first), overriding `control`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_generation: Vec<ControlKind>,
    /// Each student takes generation k-1's first conv and output layer, frozen, instead of
    /// initialising its own (the BAN paper's cross-architecture students, Table 5).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub share_teacher_layers: bool,
}

fn default_temperature() -> f64 {
    1.0
}
fn default_kd_alpha() -> f64 {
    0.9
}

impl Generations {
    /// The control generation `k` (>= 1) trains with.
    pub fn control_of(&self, k: usize) -> Control {
        let kind = self
            .per_generation
            .get(k.wrapping_sub(1))
            .copied()
            .unwrap_or(self.control);
        Control::new(kind, self.temperature, self.kd_alpha)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Averaging {
    /// Mean of the members' softmax outputs (the default).
    #[default]
    Probabilities,
    /// Mean of the members' logits, then softmax.
    Logits,
}

impl fmt::Display for Averaging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Averaging::Probabilities => "probabilities",
            Averaging::Logits => "logits",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleSpec {
    pub name: String,
    /// Generation indices: 0 is the teacher, k is BAN-k.
    pub members: Vec<usize>,
    #[serde(default)]
    pub average: Averaging,
}

/// A spec error: where (file, line when known, field) and what was expected.
#[derive(Debug, thiserror::Error)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl SpecError {
    /// A file that cannot be read.
    pub(crate) fn unreadable(path: &Path, e: std::io::Error) -> SpecError {
        SpecError {
            file: path.to_path_buf(),
            line: None,
            field: String::new(),
            message: format!("cannot read: {e}"),
        }
    }

    /// A problem with `field` ("section.key", or a top-level key), at the key's line in
    /// `source` (the section's when the key is absent).
    pub(crate) fn at(file: &Path, source: &str, field: String, message: String) -> SpecError {
        let (section, key) = field.split_once('.').unwrap_or(("", &field));
        SpecError {
            file: file.to_path_buf(),
            line: locate(source, section, key),
            field,
            message,
        }
    }
}

/// Deserializes TOML text; `file` names it in errors.
pub(crate) fn from_toml<T: serde::de::DeserializeOwned>(
    source: &str,
    file: &Path,
) -> Result<T, SpecError> {
    toml::from_str(source).map_err(|e| SpecError {
        file: file.to_path_buf(),
        line: e.span().map(|s| line_of_offset(source, s.start)),
        field: String::new(),
        message: e.message().trim().to_string(),
    })
}

/// A spec's ensembles, or by default Ens*k = BAN-1..BAN-k (probabilities averaged) for every
/// k >= 2 up to `students` (vision and language runs alike).
pub(crate) fn ensembles_or_default(given: &[EnsembleSpec], students: usize) -> Vec<EnsembleSpec> {
    if !given.is_empty() {
        return given.to_vec();
    }
    (2..=students)
        .map(|k| EnsembleSpec {
            name: format!("Ens*{k}"),
            members: (1..=k).collect(),
            average: Averaging::Probabilities,
        })
        .collect()
}

/// Command-line overrides applied to a spec before validation.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub epochs: Option<usize>,
    pub seed: Option<u64>,
    /// Directory of the data files (`data.path`).
    pub data: Option<PathBuf>,
}

impl Spec {
    /// Reads, parses, applies overrides and validates a spec file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Spec, SpecError> {
        let source = std::fs::read_to_string(path).map_err(|e| SpecError::unreadable(path, e))?;
        Spec::parse(&source, path, overrides)
    }

    /// Parses a spec from TOML text; `file` is only used in error messages.
    pub fn parse(source: &str, file: &Path, overrides: &Overrides) -> Result<Spec, SpecError> {
        let mut spec: Spec = from_toml(source, file)?;
        spec.apply(overrides);
        spec.validate().map_err(|(section, key, message)| {
            let field = if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            };
            SpecError::at(file, source, field, message)
        })?;
        Ok(spec)
    }

    fn apply(&mut self, overrides: &Overrides) {
        if let Some(seed) = overrides.seed {
            self.seed = seed;
        }
        if overrides.data.is_some() && self.data.source != DataSource::Embedded {
            self.data.path = overrides.data.clone();
        }
        if let Some(epochs) = overrides.epochs {
            // Keep the schedule's shape: milestones move in proportion to the new length.
            let old = self.schedule.epochs.max(1);
            self.schedule.milestones = self
                .schedule
                .milestones
                .iter()
                .map(|&m| (m * epochs).div_ceil(old).max(1))
                .filter(|&m| m < epochs)
                .collect();
            self.schedule.milestones.dedup();
            self.schedule.epochs = epochs;
        }
    }

    /// The student architecture (the teacher's for a born-again network).
    pub fn student(&self) -> &ModelSpec {
        self.student.as_ref().unwrap_or(&self.teacher)
    }

    /// Architecture of generation `k`.
    pub fn model_of(&self, k: usize) -> &ModelSpec {
        if k == 0 {
            &self.teacher
        } else {
            self.student()
        }
    }

    /// The ensembles to evaluate: the spec's, or Ens*k = BAN-1..BAN-k for k >= 2.
    pub fn ensembles(&self) -> Vec<EnsembleSpec> {
        ensembles_or_default(&self.ensembles, self.generations.count)
    }

    /// The resolved spec as TOML (what a run directory stores).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a Spec always serialises to TOML")
    }

    /// Checks what serde's types cannot; errors are (section, key, message).
    fn validate(&self) -> Result<(), (&'static str, &'static str, String)> {
        if self.name.trim().is_empty() {
            return Err(("", "name", "expected a non-empty name".into()));
        }
        let d = &self.data;
        if matches!(d.source, DataSource::Cifar10 | DataSource::Cifar100) && d.path.is_none() {
            return Err((
                "data",
                "source",
                "CIFAR data needs `path = \"DIR\"` (the directory of the binary version)".into(),
            ));
        }
        if d.source == DataSource::Embedded && d.path.is_some() {
            return Err((
                "data",
                "path",
                "the embedded data set takes no path; use source = \"idx\" for files".into(),
            ));
        }
        if d.train_samples == Some(0) {
            return Err(("data", "train_samples", "expected at least 1".into()));
        }
        if d.test_samples == Some(0) {
            return Err(("data", "test_samples", "expected at least 1".into()));
        }
        if d.crop_padding > 16 {
            return Err(("data", "crop_padding", "expected 0..=16 pixels".into()));
        }
        for model in [Some(&self.teacher), self.student.as_ref()]
            .into_iter()
            .flatten()
        {
            let section = if std::ptr::eq(model, &self.teacher) {
                "teacher"
            } else {
                "student"
            };
            model.validate().map_err(|(key, msg)| (section, key, msg))?;
        }
        let s = &self.schedule;
        if s.epochs == 0 {
            return Err(("schedule", "epochs", "expected at least 1".into()));
        }
        if s.batch_size == 0 {
            return Err(("schedule", "batch_size", "expected at least 1".into()));
        }
        if !(s.lr.is_finite() && s.lr > 0.0) {
            return Err((
                "schedule",
                "lr",
                format!("expected a positive number, found {}", s.lr),
            ));
        }
        if !(0.0..1.0).contains(&s.momentum) {
            return Err((
                "schedule",
                "momentum",
                format!("expected 0 <= momentum < 1, found {}", s.momentum),
            ));
        }
        if !(0.0..=1.0).contains(&s.dampening) {
            return Err((
                "schedule",
                "dampening",
                format!("expected 0..=1, found {}", s.dampening),
            ));
        }
        if s.nesterov && (s.momentum == 0.0 || s.dampening != 0.0) {
            return Err((
                "schedule",
                "nesterov",
                "Nesterov momentum needs momentum > 0 and dampening = 0".into(),
            ));
        }
        if !(s.weight_decay.is_finite() && s.weight_decay >= 0.0) {
            return Err((
                "schedule",
                "weight_decay",
                format!("expected a number >= 0, found {}", s.weight_decay),
            ));
        }
        if !(s.lr_factor > 0.0 && s.lr_factor <= 1.0) {
            return Err((
                "schedule",
                "lr_factor",
                format!("expected 0 < lr_factor <= 1, found {}", s.lr_factor),
            ));
        }
        if let Some(&m) = s.milestones.iter().find(|&&m| m == 0 || m >= s.epochs) {
            return Err((
                "schedule",
                "milestones",
                format!("milestone {m} is outside 1..{} (the epochs)", s.epochs),
            ));
        }
        if s.milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err((
                "schedule",
                "milestones",
                "expected strictly increasing epochs".into(),
            ));
        }
        let g = &self.generations;
        if g.count > 20 {
            return Err((
                "generations",
                "count",
                format!("expected 0..=20 generations, found {}", g.count),
            ));
        }
        if !(g.temperature.is_finite() && g.temperature > 0.0) {
            return Err((
                "generations",
                "temperature",
                format!("expected a positive number, found {}", g.temperature),
            ));
        }
        if !(0.0..=1.0).contains(&g.kd_alpha) {
            return Err((
                "generations",
                "kd_alpha",
                format!("expected 0..=1, found {}", g.kd_alpha),
            ));
        }
        if !g.per_generation.is_empty() && g.per_generation.len() != g.count {
            return Err((
                "generations",
                "per_generation",
                format!(
                    "expected one control per generation ({}), found {}",
                    g.count,
                    g.per_generation.len()
                ),
            ));
        }
        if g.share_teacher_layers && g.count > 0 {
            // Generation 1 shares with the teacher; later ones with a student like themselves.
            if let Some(message) = crate::arch::sharing_mismatch(&self.teacher, self.student()) {
                return Err(("generations", "share_teacher_layers", message));
            }
        }
        for e in &self.ensembles {
            if e.members.len() < 2 {
                return Err((
                    "ensemble",
                    "members",
                    format!("ensemble `{}` needs at least 2 members", e.name),
                ));
            }
            if let Some(&m) = e.members.iter().find(|&&m| m > g.count) {
                return Err((
                    "ensemble",
                    "members",
                    format!(
                        "ensemble `{}` names generation {m}, but the run has generations 0..={}",
                        e.name, g.count
                    ),
                ));
            }
            let mut sorted = e.members.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != e.members.len() {
                return Err((
                    "ensemble",
                    "members",
                    format!("ensemble `{}` lists a generation twice", e.name),
                ));
            }
        }
        Ok(())
    }
}

impl ModelSpec {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        match self {
            ModelSpec::Mlp { hidden } => {
                if hidden.contains(&0) {
                    return Err(("hidden", "expected layer sizes >= 1".into()));
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
                    let expected = layers * blocks.iter().sum::<usize>() + 2;
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
                    let expected = 2 * block_layers.iter().sum::<usize>() + 4;
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
                    channels = (compression * (channels + n * growth) as f64).floor() as usize;
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

fn line_of_offset(source: &str, offset: usize) -> usize {
    source[..offset.min(source.len())].matches('\n').count() + 1
}

/// The 1-based line of `key` inside `[section]` (or `[[section]]`), or of the section header
/// when the key is absent (a default value was wrong, or the key came from an override).
fn locate(source: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    let mut header_line = None;
    for (i, line) in source.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if current == section && header_line.is_none() {
                header_line = Some(i + 1);
            }
            continue;
        }
        let name = t.split('=').next().unwrap_or("").trim();
        if current == section && name == key {
            return Some(i + 1);
        }
    }
    header_line
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const MINIMAL: &str = r#"
name = "t"
[data]
source = "embedded"
[teacher]
arch = "cnn"
[schedule]
epochs = 4
batch_size = 32
lr = 0.1
milestones = [2, 3]
[generations]
count = 2
control = "ban"
"#;

    fn parse(s: &str) -> Result<Spec, SpecError> {
        Spec::parse(s, Path::new("x.toml"), &Overrides::default())
    }

    #[test]
    fn minimal_spec_parses_with_defaults() {
        let spec = parse(MINIMAL).unwrap();
        assert_eq!(spec.seed, 1);
        assert_eq!(spec.student(), &ModelSpec::Cnn { width: 16 });
        assert_eq!(spec.schedule.dampening, 0.0);
        assert!(spec.schedule.nesterov);
        let ens = spec.ensembles();
        assert_eq!(ens.len(), 1);
        assert_eq!(ens[0].members, vec![1, 2]);
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let bad = MINIMAL.replace("batch_size = 32", "batch_size = 32\nbatchsize = 3");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains("x.toml:10:"), "{err}");
        assert!(err.contains("batchsize"), "{err}");
    }

    #[test]
    fn bad_control_lists_the_choices() {
        let bad = MINIMAL.replace("control = \"ban\"", "control = \"bam\"");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains("x.toml:14:"), "{err}");
        assert!(err.contains("cwtm") && err.contains("dkpp"), "{err}");
    }

    #[test]
    fn range_errors_name_field_and_line() {
        let bad = MINIMAL.replace("milestones = [2, 3]", "milestones = [2, 9]");
        let err = parse(&bad).unwrap_err();
        assert_eq!(err.field, "schedule.milestones");
        assert_eq!(err.line, Some(11));
        assert!(err.message.contains("outside 1..4"), "{}", err.message);

        let bad = MINIMAL.replace("arch = \"cnn\"", "arch = \"preact-resnet\"\ndepth = 10");
        let err = parse(&bad).unwrap_err();
        assert_eq!(err.field, "teacher.depth");
        assert_eq!(err.line, Some(7));
    }

    #[test]
    fn ensemble_members_must_exist() {
        let bad = format!("{MINIMAL}\n[[ensemble]]\nname = \"e\"\nmembers = [1, 5]\n");
        let err = parse(&bad).unwrap_err();
        assert_eq!(err.field, "ensemble.members");
        assert!(err.message.contains("generation 5"));
    }

    #[test]
    fn epochs_override_rescales_milestones() {
        let o = Overrides {
            epochs: Some(200),
            seed: Some(9),
            data: None,
        };
        let spec = Spec::parse(MINIMAL, Path::new("x"), &o).unwrap();
        assert_eq!(spec.schedule.epochs, 200);
        assert_eq!(spec.schedule.milestones, vec![100, 150]);
        assert_eq!(spec.seed, 9);
        let o = Overrides {
            epochs: Some(1),
            ..Default::default()
        };
        let spec = Spec::parse(MINIMAL, Path::new("x"), &o).unwrap();
        assert!(spec.schedule.milestones.is_empty());
    }

    #[test]
    fn resolved_spec_round_trips() {
        let spec = parse(MINIMAL).unwrap();
        let again = parse(&spec.to_toml()).unwrap();
        assert_eq!(spec, again);
    }

    #[test]
    fn multistep_schedule() {
        let spec = parse(MINIMAL).unwrap();
        let s = &spec.schedule;
        assert_eq!(s.lr_at(0), 0.1);
        assert!((s.lr_at(2) - 0.02).abs() < 1e-12);
        assert!((s.lr_at(3) - 0.004).abs() < 1e-12);
    }
}

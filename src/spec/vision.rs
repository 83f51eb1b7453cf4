//! The vision chain's experiment spec: a TOML file that is the single source of truth for a run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::feature_controls::{
    FirstStage, FitnetsSpec, FspSpec, MAX_SECTIONS, SectionSet, check_stage,
};
use super::{
    EnsembleSpec, ModelSpec, Overrides, Seeds, SpecError, check_ensembles, check_name,
    check_paper_label, check_paper_value, ensembles_or_default, from_toml,
};

/// A whole experiment: one chain of generations (teacher, BAN-1, ..., BAN-k) and its ensembles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Short name, shown in tables and the TUI.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The experiment's seed; generation k draws from a seed of its own derived from it
    /// (`seeds::generation_seed`), so each generation is freshly initialised.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// A study: the whole chain once per seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Seeds>,
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
    /// Evaluate the test (and validation) images after every this many epochs, and after a
    /// generation's last: evaluation is a large share of a short epoch.
    #[serde(default = "default_evaluate_every", skip_serializing_if = "is_one")]
    pub evaluate_every: usize,
}

fn default_evaluate_every() -> usize {
    1
}
fn is_one(n: &usize) -> bool {
    *n == 1
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
    /// Ba & Caruana 2014: regress the teacher's logits.
    LogitsL2,
    /// Romero et al. 2015: a hint stage on a middle section, then KD.
    Fitnets,
    /// Yim et al. 2017: an FSP stage matching the flow between sections' maps, then labels.
    Fsp,
}

/// How a generation learns from labels and its predecessor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Control {
    Label,
    Ban {
        temperature: f64,
    },
    BanL {
        temperature: f64,
    },
    Cwtm,
    Dkpp {
        temperature: f64,
    },
    Kd {
        temperature: f64,
        alpha: f64,
    },
    LogitsL2,
    /// The KD stage's soft term is read at `temperature`.
    Fitnets {
        temperature: f64,
        fitnets: FitnetsSpec,
    },
    Fsp {
        sections: SectionSet,
        epochs: usize,
        lr: f64,
    },
}

impl Control {
    /// `kind` with the parameters `generations` gives it.
    pub fn new(kind: ControlKind, generations: &Generations) -> Control {
        let temperature = generations.temperature;
        match kind {
            ControlKind::Label => Control::Label,
            ControlKind::Ban => Control::Ban { temperature },
            ControlKind::BanL => Control::BanL { temperature },
            ControlKind::Cwtm => Control::Cwtm,
            ControlKind::Dkpp => Control::Dkpp { temperature },
            ControlKind::Kd => Control::Kd {
                temperature,
                alpha: generations.kd_alpha,
            },
            ControlKind::LogitsL2 => Control::LogitsL2,
            ControlKind::Fitnets => Control::Fitnets {
                temperature,
                fitnets: generations.fitnets.unwrap_or_default(),
            },
            ControlKind::Fsp => {
                let fsp = generations.fsp.clone().unwrap_or_default();
                Control::Fsp {
                    // Validation refuses a section number beyond the set's.
                    sections: SectionSet::new(&fsp.sections).unwrap_or_default(),
                    epochs: fsp.epochs,
                    lr: fsp.lr,
                }
            }
        }
    }

    /// The stage that trains before the schedule's epochs, for the two-stage controls.
    pub fn first_stage(&self) -> Option<FirstStage> {
        match *self {
            Control::Fitnets { fitnets, .. } => Some(FirstStage {
                name: "hint",
                then: "KD",
                table: "fitnets",
                epochs: fitnets.epochs,
                lr: fitnets.lr,
            }),
            Control::Fsp { epochs, lr, .. } => Some(FirstStage {
                name: "FSP",
                then: "labels",
                table: "fsp",
                epochs,
                lr,
            }),
            _ => None,
        }
    }

    /// Whether the loss reads the previous generation's outputs.
    pub fn needs_teacher(&self) -> bool {
        !matches!(self, Control::Label)
    }

    /// Whether the loss on the logits reads the teacher's logits (FSP's reads only its
    /// features, in the first stage).
    pub fn reads_teacher_logits(&self) -> bool {
        !matches!(self, Control::Label | Control::Fsp { .. })
    }

    /// The temperature at which the teacher's distribution enters the loss, where it does
    /// (CWTM reads the teacher's confidence at 1); the gradient split is measured at it.
    pub fn temperature(&self) -> Option<f64> {
        match *self {
            // Logit matching reads no distribution; FSP's stages read features, then labels.
            Control::Label | Control::LogitsL2 | Control::Fsp { .. } => None,
            Control::Cwtm => Some(1.0),
            Control::Ban { temperature }
            | Control::BanL { temperature }
            | Control::Dkpp { temperature }
            | Control::Kd { temperature, .. }
            | Control::Fitnets { temperature, .. } => Some(temperature),
        }
    }

    /// The paper's name for the control.
    pub fn name(&self) -> String {
        // Tiny or huge settings in exponent form: 1e-300, not three hundred digits.
        let number = |x: f64| {
            if x != 0.0 && !(1e-4..1e6).contains(&x.abs()) {
                format!("{x:e}")
            } else {
                format!("{x}")
            }
        };
        let t = |t: &f64| {
            if *t == 1.0 {
                String::new()
            } else {
                format!(" T={}", number(*t))
            }
        };
        match self {
            Control::Label => "labels".into(),
            Control::Ban { temperature } => format!("BAN{}", t(temperature)),
            Control::BanL { temperature } => format!("BAN+L{}", t(temperature)),
            Control::Cwtm => "CWTM".into(),
            Control::Dkpp { temperature } => format!("DKPP{}", t(temperature)),
            Control::Kd { temperature, alpha } => {
                format!("KD T={} a={alpha}", number(*temperature))
            }
            Control::LogitsL2 => "logits-L2".into(),
            Control::Fitnets { temperature, .. } => format!("FitNets{}", t(temperature)),
            Control::Fsp { .. } => "FSP".into(),
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
    /// FitNets' sections, hint stage and KD weights (`control = "fitnets"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fitnets: Option<FitnetsSpec>,
    /// FSP's sections and stage (`control = "fsp"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsp: Option<FspSpec>,
}

fn default_temperature() -> f64 {
    1.0
}
fn default_kd_alpha() -> f64 {
    0.9
}

impl Generations {
    /// The kind of control generation `k` (>= 1) trains with.
    pub fn kind_of(&self, k: usize) -> ControlKind {
        self.per_generation
            .get(k.wrapping_sub(1))
            .copied()
            .unwrap_or(self.control)
    }

    /// The control generation `k` (>= 1) trains with.
    pub fn control_of(&self, k: usize) -> Control {
        Control::new(self.kind_of(k), self)
    }

    /// Whether any student generation trains with `kind`.
    pub fn uses(&self, kind: ControlKind) -> bool {
        (1..=self.count).any(|k| self.kind_of(k) == kind)
    }
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
        check_ensembles(&spec.ensembles, spec.generations.count).map_err(|(i, key, message)| {
            SpecError::at_nth(file, source, format!("ensemble.{key}"), i, message)
        })?;
        if let Some((label, message)) = spec.paper_problem() {
            return Err(SpecError::at(
                file,
                source,
                format!("paper.{label}"),
                message,
            ));
        }
        Ok(spec)
    }

    /// The first `[paper]` value that is not a test error (a finite percentage) of one of the
    /// run's rows, as (label, message). Tables fill `paper` from their cells, and check it here
    /// too.
    pub(crate) fn paper_problem(&self) -> Option<(String, String)> {
        self.paper.iter().find_map(|(label, &value)| {
            check_paper_label(label, self.generations.count, &self.ensembles)
                .and_then(|()| check_paper_value(value, 0.0..=100.0, "a test error in %"))
                .err()
                .map(|message| (label.clone(), message))
        })
    }

    fn apply(&mut self, overrides: &Overrides) {
        if let Some(seed) = overrides.seed {
            self.seed = seed;
        }
        if let Some(seeds) = &overrides.seeds {
            self.seeds = Some(seeds.clone());
        }
        if overrides.data.is_some() && self.data.source != DataSource::Embedded {
            self.data.path = overrides.data.clone();
        }
        if let Some(epochs) = overrides.epochs {
            // Keep the schedule's shape: milestones move in proportion to the new length.
            // In u128: a milestone times the epochs may not fit a usize (and is then past them).
            let old = self.schedule.epochs.max(1) as u128;
            self.schedule.milestones = self
                .schedule
                .milestones
                .iter()
                .map(|&m| (m as u128 * epochs as u128).div_ceil(old).max(1))
                .filter(|&m| m < epochs as u128)
                .map(|m| m as usize)
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
        check_name(&self.name).map_err(|message| ("", "name", message))?;
        if let Some(seeds) = &self.seeds {
            seeds
                .resolve(self.seed)
                .map_err(|message| ("", "seeds", message))?;
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
        if d.labels == Cifar100Labels::Coarse && d.source != DataSource::Cifar100 {
            return Err((
                "data",
                "labels",
                "only CIFAR-100 has coarse labels (source = \"cifar100\"); other data sets take labels = \"fine\" or none".into(),
            ));
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
            // The images' shape is known here for the embedded and CIFAR data; IDX files are
            // checked again with theirs once loaded (`data::check_models`).
            let shape = crate::data::shape_of(d);
            if d.source != DataSource::Idx
                && let Err(message) = check_minimum_input(model, shape)
            {
                return Err(("data", "source", message));
            }
            crate::arch::check_size(model, shape).map_err(|msg| (section, size_key(model), msg))?;
        }
        let s = &self.schedule;
        if s.epochs == 0 {
            return Err(("schedule", "epochs", "expected at least 1".into()));
        }
        if s.batch_size < 2 {
            return Err((
                "schedule",
                "batch_size",
                format!(
                    "expected at least 2, found {}: batch norm cannot normalise a batch of one, so training skips such batches and would train nothing",
                    s.batch_size
                ),
            ));
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
        if s.evaluate_every == 0 {
            return Err((
                "schedule",
                "evaluate_every",
                "expected at least 1 (epochs between evaluations)".into(),
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
        self.check_feature_controls()
            .map_err(|(key, message)| ("generations", key, message))?;
        if g.share_teacher_layers && g.count > 0 {
            // Generation 1 shares with the teacher; later ones with a student like themselves.
            if let Some(message) = crate::arch::sharing_mismatch(&self.teacher, self.student()) {
                return Err(("generations", "share_teacher_layers", message));
            }
        }
        Ok(())
    }
}

impl Spec {
    /// Epochs of generation `k`: a two-stage control's first stage, then the schedule's.
    pub fn epochs_of(&self, k: usize) -> usize {
        let first = match k {
            0 => None,
            k => self.generations.control_of(k).first_stage(),
        };
        self.schedule.epochs + first.map_or(0, |stage| stage.epochs)
    }

    /// The learning rate of generation `k`'s `epoch` (0-based): a first stage's own, then the
    /// schedule's from its first epoch.
    pub fn lr_of(&self, k: usize, epoch: usize) -> f64 {
        let first = (k > 0)
            .then(|| self.generations.control_of(k).first_stage())
            .flatten();
        match first {
            Some(stage) if epoch < stage.epochs => stage.lr,
            _ => self.schedule.lr_at(epoch - first.map_or(0, |s| s.epochs)),
        }
    }

    /// FitNets' and FSP's parameters, and that every teacher-student pair of the chain has the
    /// sections they read (`arch::check_pairing`); errors are (key, message).
    fn check_feature_controls(&self) -> Result<(), (&'static str, String)> {
        let g = &self.generations;
        if let Some(fsp) = &g.fsp
            && let Err(s) = SectionSet::new(&fsp.sections)
        {
            return Err((
                "fsp.sections",
                format!("section {s} is not one of 1..={MAX_SECTIONS}"),
            ));
        }
        if let Some(f) = &g.fitnets
            && !f.lambda.iter().all(|l| l.is_finite() && *l >= 0.0)
        {
            return Err((
                "fitnets.lambda",
                format!("expected two weights >= 0, found {:?}", f.lambda),
            ));
        }
        for (kind, table, given) in [
            (ControlKind::Fitnets, "fitnets", g.fitnets.is_some()),
            (ControlKind::Fsp, "fsp", g.fsp.is_some()),
        ] {
            if given && !g.uses(kind) {
                return Err((
                    table,
                    format!(
                        "no generation trains with control = \"{table}\", which is what [generations.{table}] sets up"
                    ),
                ));
            }
            let shape = crate::data::shape_of(&self.data);
            for k in (1..=g.count).filter(|&k| g.kind_of(k) == kind) {
                let control = g.control_of(k);
                let stage = control.first_stage().expect("a two-stage control");
                check_stage(table, stage.epochs, stage.lr)?;
                crate::arch::check_pairing(
                    &control,
                    self.model_of(k - 1),
                    self.model_of(k),
                    shape,
                )?;
            }
        }
        Ok(())
    }
}

/// `arch::check_input`'s size rule alone: the parameter bound names the model's own field.
fn check_minimum_input(model: &ModelSpec, shape: crate::arch::Shape) -> Result<(), String> {
    let (h, w) = crate::arch::minimum_input(model);
    if shape.height < h || shape.width < w {
        return crate::arch::check_input(model, shape);
    }
    Ok(())
}

/// The key of a model section that sets its size and holds the largest number, where a model too
/// large to count or train is reported.
fn size_key(model: &ModelSpec) -> &'static str {
    let largest = |keys: &[(&'static str, usize)]| {
        keys.iter()
            .max_by_key(|(_, n)| *n)
            .map_or("arch", |(key, _)| *key)
    };
    let most = |list: &[usize]| list.iter().copied().max().unwrap_or(0);
    match model {
        ModelSpec::Mlp { .. } => "hidden",
        ModelSpec::Cnn { .. } => "width",
        ModelSpec::PreactResnet {
            width,
            inner,
            stem,
            channels,
            ..
        } => largest(&[
            ("width", *width),
            ("stem", stem.unwrap_or(0)),
            ("channels", most(channels)),
            ("inner", most(inner)),
        ]),
        ModelSpec::DensenetBc { growth, stem, .. } => {
            largest(&[("growth", *growth), ("stem", stem.unwrap_or(0))])
        }
        ModelSpec::WideResnet { .. } => "widen",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_names_print_extreme_temperatures_in_exponent_form() {
        assert_eq!(
            Control::Ban {
                temperature: 1e-300
            }
            .name(),
            "BAN T=1e-300"
        );
        assert_eq!(Control::Dkpp { temperature: 2.5 }.name(), "DKPP T=2.5");
        assert_eq!(Control::BanL { temperature: 1.0 }.name(), "BAN+L");
        let kd = Control::Kd {
            temperature: 4.0,
            alpha: 0.9,
        };
        assert_eq!(kd.name(), "KD T=4 a=0.9");
    }

    use super::*;
    use crate::spec::tests::{MINIMAL, parse};

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
            ..Overrides::default()
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

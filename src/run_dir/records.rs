//! The records a run directory stores (metrics.jsonl, results.json), one model for both tasks:
//! a task names its metrics, and every generation and ensemble carries a map of them, so a new
//! metric or task is one change here. No burn types: the UI reads these.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use super::gradient_split::GradientSplit;
use crate::agreement::Agreement;

use crate::ensemble::Metrics;
use crate::spec::Averaging;

/// What a chain of generations learns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Image classification (the paper's Tables 1-5).
    #[default]
    Vision,
    /// Language modelling (Table 6).
    Language,
}

impl Task {
    /// The metrics every generation of the task reports, in table order.
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Task::Vision => &[
                Metric::Top1Error,
                Metric::Top5Error,
                Metric::Nll,
                Metric::Ece,
            ],
            Task::Language => &[
                Metric::ValidationPerplexity,
                Metric::TestPerplexity,
                Metric::TestError,
            ],
        }
    }

    /// The metric a generation is judged by first (lower is better): the paper's tables show it.
    pub fn primary(self) -> Metric {
        match self {
            Task::Vision => Metric::Top1Error,
            Task::Language => Metric::TestPerplexity,
        }
    }

    /// The metrics the paper reports for the task, which presets carry its numbers of.
    pub fn paper_metrics(self) -> &'static [Metric] {
        match self {
            Task::Vision => &[Metric::Top1Error],
            Task::Language => &[Metric::ValidationPerplexity, Metric::TestPerplexity],
        }
    }

    /// What one training sample is, for throughput ("img/s").
    pub fn sample_unit(self) -> &'static str {
        match self {
            Task::Vision => "img/s",
            Task::Language => "tok/s",
        }
    }
}

/// A test-set quality measure; every one of them is better when lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Top-1 error, percent.
    Top1Error,
    /// Top-5 error (top-k with k = min(5, classes)), percent.
    Top5Error,
    /// Mean negative log-likelihood of the true class, nats.
    Nll,
    /// Expected calibration error over 15 equal-width bins, percent.
    Ece,
    /// Perplexity on the validation split (a language model's selection criterion).
    ValidationPerplexity,
    TestPerplexity,
    /// Next-token top-1 error on the test split, percent.
    TestError,
}

impl Metric {
    /// Column header in tables.
    pub fn header(self) -> &'static str {
        match self {
            Metric::Top1Error => "Top-1 err",
            Metric::Top5Error => "Top-5 err",
            Metric::Nll => "NLL",
            Metric::Ece => "ECE",
            Metric::ValidationPerplexity => "Val ppl",
            Metric::TestPerplexity => "Test ppl",
            Metric::TestError => "Test err",
        }
    }

    /// The value as tables print it.
    pub fn format(self, value: f64) -> String {
        match self {
            Metric::Nll => format!("{value:.4}"),
            _ => format!("{value:.2}"),
        }
    }

    /// "top-1 error 12.60%": the value in a sentence (log lines).
    pub fn describe(self, value: f64) -> String {
        match self {
            Metric::Top1Error => format!("top-1 error {value:.2}%"),
            Metric::Top5Error => format!("top-5 {value:.2}%"),
            Metric::Nll => format!("NLL {value:.4}"),
            Metric::Ece => format!("ECE {value:.2}%"),
            Metric::ValidationPerplexity => format!("validation perplexity {value:.2}"),
            Metric::TestPerplexity => format!("test perplexity {value:.2}"),
            Metric::TestError => format!("next-token error {value:.2}%"),
        }
    }
}

/// Measured (or the paper's) values by metric.
pub type Scores = BTreeMap<Metric, f64>;

impl From<Metrics> for Scores {
    fn from(m: Metrics) -> Scores {
        Scores::from([
            (Metric::Top1Error, m.top1_error),
            (Metric::Top5Error, m.top5_error),
            (Metric::Nll, m.nll),
            (Metric::Ece, m.ece),
        ])
    }
}

/// One line of metrics.jsonl: the end of one epoch of one generation. For a language model the
/// errors are next-token errors, `test_nll` is nats per token and a sample is a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub generation: usize,
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f64,
    /// Percent, on the (augmented) training batches in train mode.
    pub train_error: f64,
    /// Percent, eval mode; absent for an epoch that was not evaluated
    /// (`schedule.evaluate_every`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_error: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_nll: Option<f64>,
    /// Percent, eval mode; present when the run holds out validation data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_error: Option<f64>,
    /// Language models: perplexities of the epoch's model (train: of the label loss).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_perplexity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_perplexity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_perplexity: Option<f64>,
    pub lr: f64,
    /// Images or tokens per second of training.
    #[serde(alias = "images_per_sec")]
    pub samples_per_sec: f64,
    /// Seconds spent in this generation so far.
    pub seconds: f64,
    /// Estimated seconds left in the whole run.
    pub eta_seconds: f64,
    /// The two halves of the distillation gradient over the epoch's batches (generations
    /// trained with a teacher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient: Option<GradientSplit>,
    /// Where the epoch's wall time went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<EpochTime>,
    /// The stage of a two-stage control (FitNets, FSP) the epoch trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

/// One of a two-stage control's stages: 1 trains on features (FitNets' hint, FSP's flow)
/// before the schedule, 2 is the schedule's epochs (KD, labels).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub number: usize,
    pub name: String,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stage {} of 2 ({})", self.number, self.name)
    }
}

/// Where an epoch's wall time went, in seconds, from the end of the previous epoch's record
/// to this one (pauses left out; after a resume within the epoch, the part this process
/// trained). On CUDA, kernels run asynchronously: a part is the host's time until the next
/// part waits for the device, so the teacher's share shows only where its results are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochTime {
    /// The student's training steps: forward, loss, backward, the optimiser's step.
    pub steps: f64,
    /// The teacher's forward passes.
    pub teacher: f64,
    /// Making the batches: reading, augmenting and normalising images, cutting windows.
    pub data: f64,
    /// Evaluating the epoch's model on the held-out splits.
    pub evaluation: f64,
    /// Saves: within the epoch, and the previous epoch's record and resume point.
    pub writes: f64,
    /// The rest: progress reports, reading the gradient split, bookkeeping.
    pub other: f64,
}

impl EpochTime {
    pub fn total(&self) -> f64 {
        self.steps + self.teacher + self.data + self.evaluation + self.writes + self.other
    }

    /// Each part with its name, in the order they are shown.
    pub fn parts(&self) -> [(&'static str, f64); 6] {
        [
            ("steps", self.steps),
            ("teacher", self.teacher),
            ("data", self.data),
            ("eval", self.evaluation),
            ("writes", self.writes),
            ("other", self.other),
        ]
    }

    /// "12.3 s: steps 78%, teacher 12%, data 4%, eval 5%, writes 1%, other 0%".
    pub fn describe(&self) -> String {
        let total = self.total();
        let shares: Vec<String> = self
            .parts()
            .iter()
            .map(|(name, s)| format!("{name} {:.0}%", 100.0 * s / total.max(f64::MIN_POSITIVE)))
            .collect();
        format!("{total:.1} s: {}", shares.join(", "))
    }
}

/// A finished generation as results.json stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationResult {
    pub generation: usize,
    /// "Teacher", "BAN-1", ...
    pub label: String,
    pub model: String,
    pub control: String,
    pub parameters: usize,
    pub train_seconds: f64,
    /// The epoch (1-based) whose model is the generation's, when it is not the last one (a
    /// language model keeps its best-validation checkpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<usize>,
    pub metrics: Scores,
    /// The paper's values for this row, where the spec carries them.
    #[serde(default, skip_serializing_if = "Scores::is_empty")]
    pub paper: Scores,
    /// On the test set, against its teacher and against generation 0 (vision: from the saved
    /// logits; a language model's saved outputs hold only the true token's probability).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Agreements>,
}

/// A student's agreement with the generations before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Agreements {
    pub with_teacher: Agreement,
    /// Against generation 0 (the same as `with_teacher` for BAN-1).
    pub with_generation_0: Agreement,
}

/// An ensemble of saved generations as results.json stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleResult {
    pub name: String,
    pub members: Vec<usize>,
    pub average: Averaging,
    pub metrics: Scores,
    #[serde(default, skip_serializing_if = "Scores::is_empty")]
    pub paper: Scores,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    Finished,
    /// Stopped by the user; finished generations are kept and the run can be resumed.
    Stopped,
    Failed,
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Stopped => "stopped",
            RunState::Failed => "failed",
        })
    }
}

/// results.json: every finished generation and ensemble with its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    #[serde(default)]
    pub task: Task,
    pub name: String,
    /// The data set, or a language model's corpus directory.
    pub dataset: String,
    /// Test samples: images, or a language model's target tokens.
    pub test_samples: usize,
    /// A language model's vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary: Option<usize>,
    pub device: String,
    pub state: RunState,
    pub generations: Vec<GenerationResult>,
    pub ensembles: Vec<EnsembleResult>,
}

impl Results {
    /// The primary metric of the teacher, which "vs teacher" columns subtract.
    pub fn teacher_score(&self) -> Option<f64> {
        let primary = self.task.primary();
        self.generations
            .iter()
            .find(|g| g.generation == 0)
            .and_then(|g| g.metrics.get(&primary).copied())
    }
}

/// The label of generation `k` in tables, as in the paper.
pub fn generation_label(k: usize) -> String {
    if k == 0 {
        "Teacher".into()
    } else {
        format!("BAN-{k}")
    }
}

/// "Teacher + BAN-1 + BAN-2": an ensemble's members as tables name them.
pub fn members_label(members: &[usize]) -> String {
    let labels: Vec<String> = members.iter().map(|&m| generation_label(m)).collect();
    labels.join(" + ")
}

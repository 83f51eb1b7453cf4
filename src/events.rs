//! What the worker tells its driver (the headless printer or the TUI), and the records a run
//! directory stores. No burn types: the UI side depends on this module only.

use serde::{Deserialize, Serialize};

use crate::ensemble::Metrics;
use crate::spec::Averaging;

/// One line of metrics.jsonl: the end of one epoch of one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub generation: usize,
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f64,
    /// Percent, on the (augmented) training batches in train mode.
    pub train_error: f64,
    /// Percent, eval mode.
    pub test_error: f64,
    pub test_nll: f64,
    /// Percent, eval mode; present when the spec holds out validation samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_error: Option<f64>,
    pub lr: f64,
    pub images_per_sec: f64,
    /// Seconds spent in this generation so far.
    pub seconds: f64,
    /// Estimated seconds left in the whole run.
    pub eta_seconds: f64,
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
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_error: Option<f64>,
}

/// An ensemble of saved generations as results.json stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleResult {
    pub name: String,
    pub members: Vec<usize>,
    pub average: Averaging,
    pub metrics: Metrics,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_error: Option<f64>,
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

/// results.json: every finished generation and ensemble with its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub name: String,
    pub dataset: String,
    pub test_samples: usize,
    pub device: String,
    pub state: RunState,
    pub generations: Vec<GenerationResult>,
    pub ensembles: Vec<EnsembleResult>,
}

/// The label of generation `k` in tables, as in the paper.
pub fn generation_label(k: usize) -> String {
    if k == 0 {
        "Teacher".into()
    } else {
        format!("BAN-{k}")
    }
}

/// Events from the worker, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        name: String,
        dataset: String,
        device: String,
        /// Generations including the teacher.
        generations: usize,
        epochs: usize,
        batches_per_epoch: usize,
        /// Generations already in the run directory (a resumed run).
        resumed: Vec<usize>,
    },
    GenerationStarted {
        generation: usize,
        model: String,
        control: String,
        parameters: usize,
    },
    /// Within an epoch, a few times per second at most.
    Progress {
        generation: usize,
        epoch: usize,
        batch: usize,
        batches: usize,
        images_per_sec: f64,
    },
    Epoch(EpochRecord),
    /// A generation was saved; `ensembles` are all the spec's ensembles whose members are now
    /// finished, so a driver can show them during the run.
    GenerationDone {
        generation: GenerationResult,
        ensembles: Vec<EnsembleResult>,
    },
    Log(String),
    /// The run ended (finished or stopped); `results` is what results.json now holds.
    Ended(Results),
    Failed(String),
}

// Language-model runs (src/lm). Their records are separate types rather than new fields on the
// vision ones: a per-epoch line still holds a whole `EpochRecord` (flattened), so every reader of
// metrics.jsonl keeps working, while results.json of a language run is a `LanguageResults`
// (marked `"task": "language"`), because top-1/top-5 error and ECE of an ensemble are undefined
// when only each generation's probability of the target token is saved, and a vision `Results`
// would have to invent them.

/// One line of a language run's metrics.jsonl. In the flattened `EpochRecord`, errors are
/// next-token top-1 errors (%), `test_nll` is nats per token, and `images_per_sec` counts tokens
/// (a language model's samples are tokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageEpochRecord {
    #[serde(flatten)]
    pub record: EpochRecord,
    pub validation_perplexity: f64,
    pub test_perplexity: f64,
    pub train_perplexity: f64,
    pub tokens_per_sec: f64,
}

impl LanguageEpochRecord {
    /// The epoch's printed line (headless output, the TUI's log).
    pub fn line(&self) -> String {
        format!(
            "{:<8} epoch {:>3}/{:<3} loss {:.4}  train ppl {:8.2}  val ppl {:8.2}  test ppl {:8.2}  lr {:.4}  {:.0} tok/s  ETA {}",
            generation_label(self.record.generation),
            self.record.epoch,
            self.record.epochs,
            self.record.train_loss,
            self.train_perplexity,
            self.validation_perplexity,
            self.test_perplexity,
            self.record.lr,
            self.tokens_per_sec,
            crate::headless::format_duration(self.record.eta_seconds)
        )
    }
}

/// A finished language-model generation: the checkpoint of its best validation perplexity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageGeneration {
    pub generation: usize,
    pub label: String,
    pub model: String,
    pub control: String,
    pub parameters: usize,
    pub train_seconds: f64,
    /// The epoch (1-based) whose validation perplexity was best; its model is the generation's.
    pub best_epoch: usize,
    pub validation_perplexity: f64,
    pub test_perplexity: f64,
    /// Next-token top-1 error (%) on the test split.
    pub test_error: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_validation_perplexity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_test_perplexity: Option<f64>,
}

/// An ensemble of language-model generations: the mean of the members' probabilities of each
/// test target token. Only the perplexity is defined from those (no top-1 error or ECE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageEnsemble {
    pub name: String,
    pub members: Vec<usize>,
    pub test_perplexity: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Language,
}

/// results.json of a language-model run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageResults {
    pub task: Task,
    pub name: String,
    pub corpus: String,
    pub vocabulary: usize,
    pub test_tokens: usize,
    pub device: String,
    pub state: RunState,
    pub generations: Vec<LanguageGeneration>,
    pub ensembles: Vec<LanguageEnsemble>,
}

//! What the run process tells whoever follows it: the headless printer in the same process, and
//! any terminal UI through the run directory's events.jsonl, where every event but `Progress` is
//! appended (progress goes to progress.json, overwritten). Both tasks send the same sequence:
//! Started, then per generation GenerationStarted, Progress..., Epoch..., GenerationDone, and
//! finally Ended or Failed. No burn types: the UI side depends on this module only.

use serde::{Deserialize, Serialize};

use crate::experiment::Experiment;
use crate::run_dir::records::{
    EnsembleResult, EpochRecord, GenerationResult, Results, Task, generation_label,
};
use crate::spec::Control;

/// Events from the worker, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        task: Task,
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
    Progress(Progress),
    Epoch(EpochRecord),
    /// A generation was saved; `ensembles` are all the spec's ensembles whose members are now
    /// finished, so a follower can show them during the run.
    GenerationDone {
        generation: GenerationResult,
        ensembles: Vec<EnsembleResult>,
    },
    Log {
        text: String,
    },
    /// The run ended (finished or stopped); `results` is what results.json now holds.
    Ended(Results),
    Failed {
        message: String,
    },
}

/// Where a generation's epoch stands (progress.json holds the latest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub generation: usize,
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    /// Images or tokens per second so far in this epoch.
    pub samples_per_sec: f64,
    /// Whether the run is paused (it reports that as progress too, so followers see it).
    #[serde(default)]
    pub paused: bool,
}

impl Event {
    pub fn log(text: impl Into<String>) -> Event {
        Event::Log { text: text.into() }
    }
}

/// "1h02m", "3m05s", "42s".
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The printed line of an epoch: errors for a vision run, perplexities for a language model.
pub fn epoch_line(r: &EpochRecord, task: Task) -> String {
    let label = generation_label(r.generation);
    let mut line = format!(
        "{label:<8} epoch {:>3}/{:<3} loss {:.4}",
        r.epoch, r.epochs, r.train_loss
    );
    match task {
        Task::Vision => {
            // An epoch between evaluations (`schedule.evaluate_every`) has no test error.
            let test = r
                .test_error
                .map_or("     - ".into(), |e| format!("{e:5.2}%"));
            line.push_str(&format!(
                "  train err {:5.2}%  test err {test}",
                r.train_error
            ));
            if let Some(v) = r.validation_error {
                line.push_str(&format!("  val err {v:5.2}%"));
            }
        }
        Task::Language => {
            let ppl = |p: Option<f64>| p.map_or("-".into(), |p| format!("{p:8.2}"));
            line.push_str(&format!(
                "  train ppl {}  val ppl {}  test ppl {}",
                ppl(r.train_perplexity),
                ppl(r.validation_perplexity),
                ppl(r.test_perplexity)
            ));
        }
    }
    // A first stage's small rate (FitNets', FSP's) in exponent form rather than as 0.0000.
    let lr = if r.lr > 0.0 && r.lr < 1e-3 {
        format!("{:.1e}", r.lr)
    } else {
        format!("{:.4}", r.lr)
    };
    line.push_str(&format!(
        "  lr {lr}  {:.0} {}  ETA {}",
        r.samples_per_sec,
        task.sample_unit(),
        format_duration(r.eta_seconds)
    ));
    if let Some(stage) = &r.stage {
        line.push_str(&format!("  [{stage}]"));
    }
    line
}

/// The printed form of one event (headless output, the TUI's log), or None for events shown
/// only as progress. `task` is the run's.
pub fn event_line(event: &Event, task: Task) -> Option<String> {
    Some(match event {
        Event::Started {
            name,
            dataset,
            device,
            generations,
            epochs,
            resumed,
            ..
        } => {
            let mut line = format!(
                "banbench: {name} on {dataset}, device {device}: teacher + {} generation(s), {epochs} epoch(s) each",
                generations - 1
            );
            if !resumed.is_empty() {
                let labels: Vec<String> = resumed.iter().map(|&g| generation_label(g)).collect();
                line.push_str(&format!(" (resuming: {} already done)", labels.join(", ")));
            }
            line
        }
        Event::GenerationStarted {
            generation,
            model,
            control,
            parameters,
        } => format!(
            "== {} : {model}, {parameters} parameters, trained on {control}",
            generation_label(*generation)
        ),
        Event::Epoch(r) => epoch_line(r, task),
        Event::GenerationDone {
            generation: g,
            ensembles,
        } => {
            let mut line = format!(
                "== {} done in {}:",
                g.label,
                format_duration(g.train_seconds)
            );
            if let Some(best) = g.best_epoch {
                line.push_str(&format!(" best epoch {best},"));
            }
            let scores: Vec<String> = g.metrics.iter().map(|(m, v)| m.describe(*v)).collect();
            line.push_str(&format!(" {}", scores.join(", ")));
            // Ensembles that this generation completed.
            for e in ensembles
                .iter()
                .filter(|e| e.members.contains(&g.generation))
            {
                let scores: Vec<String> = e.metrics.iter().map(|(m, v)| m.describe(*v)).collect();
                line.push_str(&format!("\n   {}: {}", e.name, scores.join(", ")));
            }
            line
        }
        Event::Log { text } => text.clone(),
        // A failure reaches the user as the run's error, printed once by the caller.
        Event::Progress(_) | Event::Ended(_) | Event::Failed { .. } => return None,
    })
}

/// A setting's value as a person writes it: `{}` for ordinary magnitudes, `{:e}` for the very
/// large and very small (1e-300 rather than a 300-digit decimal).
fn setting(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-4..1e6).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// Temperatures outside this range soften or sharpen the outputs until they overflow: dividing
/// logits by a tiny T, or the T² that rescales a distillation term's gradients.
const TEMPERATURES: std::ops::RangeInclusive<f64> = 0.05..=100.0;
/// Weight decay above this shrinks every weight by more than its own size each step.
const MAX_WEIGHT_DECAY: f64 = 1.0;
/// SGD's learning rate above this overshoots (a vision run's; see [`MAX_CLIPPED_LR`]).
const MAX_LR: f64 = 1.0;
/// A language model's gradients are clipped to a norm, so its learning rates run higher (the
/// paper's is 20); above this one they still overshoot.
const MAX_CLIPPED_LR: f64 = 100.0;

/// Why generation `generation`'s training loss became `loss` (NaN or infinite) at `epoch`
/// (1-based) under the learning rate `lr` then in effect: the message names the settings of
/// `experiment` that likely caused it (a temperature far from 1, a large weight decay, a large
/// learning rate), or, when none is out of the ordinary, says to lower the learning rate.
pub fn non_finite_loss_message(
    experiment: &Experiment,
    generation: usize,
    epoch: usize,
    lr: f64,
    loss: impl Into<f64>,
) -> String {
    let loss = loss.into();
    let mut causes = Vec::new();
    let mut fallback = format!("lower schedule.lr (now {})", setting(lr));
    match experiment {
        Experiment::Vision(spec) => {
            // A first stage (FitNets' hint, FSP's) trains at a rate of its own.
            let first = (generation > 0)
                .then(|| spec.generations.control_of(generation).first_stage())
                .flatten();
            if let Some(stage) = first.filter(|s| epoch <= s.epochs) {
                fallback = format!("lower generations.{}.lr (now {})", stage.table, setting(lr));
            }
            let control = if generation == 0 {
                Control::Label
            } else {
                spec.generations.control_of(generation)
            };
            let (name, temperature) = match control {
                Control::Label | Control::Cwtm | Control::LogitsL2 | Control::Fsp { .. } => {
                    (None, None)
                }
                Control::Fitnets { temperature, .. } => (Some("FitNets"), Some(temperature)),
                Control::Ban { temperature } => (Some("BAN"), Some(temperature)),
                Control::BanL { temperature } => (Some("BAN+L"), Some(temperature)),
                Control::Dkpp { temperature } => (Some("DKPP"), Some(temperature)),
                Control::Kd { temperature, .. } => (Some("KD"), Some(temperature)),
            };
            if let (Some(name), Some(t)) = (name, temperature) {
                if t < *TEMPERATURES.start() {
                    causes.push(format!(
                        "generations.temperature = {} (far below 1: the {name} loss divides the logits by it, which overflows; 1 to 20 is usual)",
                        setting(t)
                    ));
                } else if t > *TEMPERATURES.end() {
                    let why = if name == "KD" {
                        "the KD loss is scaled by its square, which overflows".to_string()
                    } else {
                        format!("beyond what the {name} loss's f32 arithmetic holds")
                    };
                    causes.push(format!(
                        "generations.temperature = {} (far above 1: {why}; 1 to 20 is usual)",
                        setting(t)
                    ));
                }
            }
            let decay = spec.schedule.weight_decay;
            if decay > MAX_WEIGHT_DECAY {
                causes.push(format!(
                    "schedule.weight_decay = {} (above {MAX_WEIGHT_DECAY}: each step overshoots zero; 5e-4 is usual)",
                    setting(decay)
                ));
            }
            if lr > MAX_LR {
                causes.push(format!(
                    "a learning rate of {} (above {MAX_LR}; see schedule.lr)",
                    setting(lr)
                ));
            }
        }
        Experiment::Language(spec) => {
            if lr > MAX_CLIPPED_LR {
                causes.push(format!(
                    "a learning rate of {} (above {MAX_CLIPPED_LR} even with clipping; see schedule.lr)",
                    setting(lr)
                ));
            }
            fallback = format!(
                "lower schedule.lr (now {}) or schedule.clip (now {})",
                setting(lr),
                setting(spec.schedule.clip)
            );
        }
    }
    let head = format!(
        "{}: the training loss became {} at epoch {epoch}",
        generation_label(generation),
        setting(loss)
    );
    match causes.len() {
        0 => format!("{head}; {fallback}"),
        1 => format!("{head}; the likely cause: {}", causes[0]),
        _ => format!("{head}; likely causes: {}", causes.join("; ")),
    }
}

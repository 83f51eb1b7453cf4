//! `banbench bench`: training and inference throughput of a preset's models on a device, timed
//! around the project's own code. A training step is the task's [`Trainer::train_batch`], the
//! very function `banbench run` calls per batch (the batch built from the preset's data, the
//! teacher's forward for a student, the loss, backward, the SGD step and the step's
//! diagnostics); inference is the task's per-epoch evaluation, [`Trainer::evaluate_epoch`], in
//! eval mode. `bench/side-by-side.sh` compares these numbers with PyTorch's; speed targets are
//! checked there, never in tests.

use std::time::Instant;

use anyhow::{Context, Result};
use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::chain::Trainer;
use crate::device::DeviceChoice;
use crate::task::Loaded;

/// Warm-up batches before timing: LibTorch spends its first steps starting thread pools and
/// allocating buffers.
pub const WARM_UP: usize = 3;

/// The kinds of step measured, in the order they are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A teacher's step: generation 0 on labels.
    TrainLabels,
    /// A student's step: generation 1 on its control (BAN, BAN+L, ...) with a teacher's forward.
    TrainBan,
    /// One evaluation pass in eval mode, as after every epoch.
    Inference,
}

/// What a throughput counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Images,
    Tokens,
}

impl Unit {
    fn short(self) -> &'static str {
        match self {
            Unit::Images => "img/s",
            Unit::Tokens => "tok/s",
        }
    }
}

/// One measurement: `samples` images (or target tokens) in `seconds`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Throughput {
    pub kind: Kind,
    /// The measured model, as tables name it.
    pub model: String,
    /// Its trainable parameters.
    pub parameters: usize,
    /// What the step trains on ("labels", "BAN", "BAN+L", ...); evaluation has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    pub unit: Unit,
    /// Rows of a training batch (images, or a window's sequences); evaluation's batches are the
    /// task's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Timed training batches; evaluation is one timed pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<usize>,
    pub samples: usize,
    pub seconds: f64,
    pub per_sec: f64,
}

impl Throughput {
    /// The human line: rate, unit and what was measured.
    pub fn line(&self) -> String {
        let what = match (self.kind, &self.control) {
            (Kind::Inference, _) => format!(
                "inference (eval mode, {} {}): {}",
                self.samples,
                match self.unit {
                    Unit::Images => "evaluation images",
                    Unit::Tokens => "validation + test tokens",
                },
                self.model
            ),
            (_, Some(control)) if control == "labels" => {
                format!("train step, labels: {}", self.model)
            }
            (_, control) => format!(
                "train step, {} (with teacher): {}",
                control.as_deref().unwrap_or_default(),
                self.model
            ),
        };
        format!("{:>9.0} {}  {what}", self.per_sec, self.unit.short())
    }

    /// The machine-readable line (`--json`): one JSON object naming the preset and device.
    pub fn json(&self, preset: &str, device: DeviceChoice) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            preset: &'a str,
            device: String,
            #[serde(flatten)]
            throughput: &'a Throughput,
        }
        serde_json::to_string(&Line {
            preset,
            device: device.to_string(),
            throughput: self,
        })
        .expect("a throughput serialises")
    }
}

/// Times `steps` training batches of each kind (after [`WARM_UP`] untimed ones) and one
/// evaluation pass (after an untimed one) of a loaded chain on `device`.
pub fn run(loaded: &Loaded, device: DeviceChoice, steps: usize) -> Result<Vec<Throughput>> {
    let device = device.open().map_err(anyhow::Error::msg)?;
    match loaded {
        Loaded::Vision(t) => measure(t.as_ref(), &device, steps, Unit::Images),
        Loaded::Language(t) => measure(t.as_ref(), &device, steps, Unit::Tokens),
    }
}

fn measure<T: Trainer>(
    trainer: &T,
    device: &Device,
    steps: usize,
    unit: Unit,
) -> Result<Vec<Throughput>> {
    let evaluated = trainer.evaluated_samples();
    let experiment = trainer.experiment();
    let train_device = device.clone().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(experiment.seed());
    // The teacher as a chain hands it to generation 1: made on the autodiff device, then
    // evaluated (`valid()`) on the plain one. Its weights do not matter for speed.
    let teacher = trainer.new_model(0, 0, &train_device, None)?.valid();
    let lr = trainer.learning_rate(0, 0, &[]);
    let mut out = Vec::new();
    for (kind, k) in [(Kind::TrainLabels, 0), (Kind::TrainBan, 1)] {
        let teacher = (k > 0).then_some(&teacher);
        let mut model = trainer.new_model(k, 0, &train_device, teacher)?;
        let mut optimizer = trainer.new_optimizer();
        // The first batches of an epoch, in training order; a longer measurement starts the
        // epoch again, as the next epoch would (a language model's states from zero).
        let batches = trainer.epoch_batches(k, 0);
        let mut carry = T::Carry::default();
        let (mut samples, mut started) = (0, Instant::now());
        for (step, batch) in (0..WARM_UP + steps).zip(batches.iter().cycle()) {
            if step == WARM_UP {
                (samples, started) = (0, Instant::now());
            }
            if step > 0 && step % batches.len() == 0 {
                carry = T::Carry::default();
            }
            let (next, train) = trainer
                .train_batch(
                    k,
                    0,
                    batch,
                    &train_device,
                    model,
                    &mut optimizer,
                    teacher,
                    lr,
                    &mut rng,
                    &mut carry,
                )
                .with_context(|| format!("{} step {step}", experiment.model_of(k)))?;
            model = next;
            samples += train.sums.samples;
        }
        let seconds = started.elapsed().as_secs_f64();
        out.push(Throughput {
            kind,
            model: experiment.model_of(k),
            parameters: trainer.parameters(k),
            control: Some(experiment.control_of(k)),
            unit,
            batch: Some(experiment.batch_size()),
            batches: Some(steps),
            samples,
            seconds,
            per_sec: samples as f64 / seconds,
        });
    }
    trainer.evaluate_epoch(&teacher, device)?;
    let started = Instant::now();
    trainer.evaluate_epoch(&teacher, device)?;
    let seconds = started.elapsed().as_secs_f64();
    out.push(Throughput {
        kind: Kind::Inference,
        model: experiment.model_of(0),
        parameters: trainer.parameters(0),
        control: None,
        unit,
        batch: None,
        batches: None,
        samples: evaluated,
        seconds,
        per_sec: evaluated as f64 / seconds,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::experiment::Experiment;
    use crate::spec::Overrides;

    fn bench(source: &str, steps: usize) -> Vec<Throughput> {
        let experiment =
            Experiment::parse(source, Path::new("bench.toml"), &Overrides::default()).unwrap();
        run(
            &Loaded::new(&experiment).unwrap(),
            DeviceChoice::Flex,
            steps,
        )
        .unwrap()
    }

    fn json(t: &Throughput) -> serde_json::Value {
        serde_json::from_str(&t.json("tiny", DeviceChoice::Flex)).unwrap()
    }

    #[test]
    fn a_vision_preset_gives_one_json_object_per_step_kind() {
        let out = bench(
            r#"
name = "tiny"
[data]
source = "embedded"
train_samples = 40
test_samples = 30
[teacher]
arch = "cnn"
width = 2
[schedule]
epochs = 1
batch_size = 8
lr = 0.05
momentum = 0.9
nesterov = true
[generations]
count = 1
control = "ban"
"#,
            2,
        );
        let lines: Vec<serde_json::Value> = out.iter().map(json).collect();
        let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["train-labels", "train-ban", "inference"]);
        for l in &lines {
            assert_eq!(l["preset"], "tiny");
            assert_eq!(l["device"], "flex");
            assert_eq!(l["model"], "CNN-2");
            assert_eq!(l["unit"], "images");
            assert!(l["parameters"].as_u64().unwrap() > 0, "{l}");
            assert!(l["per_sec"].as_f64().unwrap() > 0.0, "{l}");
        }
        // Two timed batches of 8 images; evaluation reads the 30 test images.
        assert_eq!(lines[0]["control"], "labels");
        assert_eq!(lines[1]["control"], "BAN");
        for l in &lines[..2] {
            assert_eq!(
                (l["batch"].as_u64(), l["batches"].as_u64()),
                (Some(8), Some(2))
            );
            assert_eq!(l["samples"], 16);
        }
        assert_eq!(lines[2]["samples"], 30);
        assert!(lines[2].get("control").is_none() && lines[2].get("batch").is_none());
        assert!(
            out[1]
                .line()
                .contains("train step, BAN (with teacher): CNN-2")
        );
    }

    #[test]
    fn a_language_preset_counts_tokens_and_restarts_its_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let sentence = "a b c d e f g h\n".repeat(20);
        for split in ["train", "valid", "test"] {
            std::fs::write(dir.path().join(format!("ptb.{split}.txt")), &sentence).unwrap();
        }
        // 180 tokens in 4 rows of 45: windows of 10 steps, 5 per epoch (the last of 4 steps);
        // evaluation: 2 rows of 89 per split.
        let out = bench(
            &format!(
                r#"
name = "tiny-lm"
[corpus]
path = "{}"
[model]
arch = "lstm"
layers = 1
hidden = 4
dropout = 0.0
[schedule]
epochs = 1
batch_size = 4
bptt = 10
eval_batch_size = 2
lr = 1.0
plateau_factor = 0.25
clip = 0.25
"#,
                dir.path().display()
            ),
            3,
        );
        let lines: Vec<serde_json::Value> = out.iter().map(json).collect();
        assert_eq!(lines[1]["control"], "BAN+L");
        for l in &lines {
            assert_eq!(l["unit"], "tokens");
        }
        // Three timed windows after three warm-up ones: the epoch's 4th and 5th (4 rows x 10 and
        // 4 rows x 4 steps), then the next epoch's first (4 x 10), from zero states.
        assert_eq!(lines[0]["samples"], 4 * 10 + 4 * 4 + 4 * 10);
        assert_eq!(lines[2]["samples"], 2 * 2 * 89);
        assert!(out[2].line().contains("validation + test tokens"));
    }
}

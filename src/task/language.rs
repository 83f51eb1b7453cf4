//! Language modelling as a chain task: a corpus laid out for truncated backpropagation through
//! time, the tied LSTM and the CNN-LSTM, one epoch of plain SGD with the global gradient norm
//! clipped (labels for the teacher, BAN+L for students: paper Section 4.3), the paper's plateau
//! schedule, and each test token's target probability. A generation is its best-validation
//! checkpoint; test perplexity never selects anything. The generation loop is `crate::chain`'s.

use std::time::Instant;

use anyhow::Result;
use burn::module::{ModuleVisitor, Param};
use burn::nn::LstmState;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, TensorData};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::arch::language::{self, LmModelSpec};
use crate::chain::{BatchTrain, EpochEval, Selection, Trainer};
use crate::distill::{ban_l_loss, label_loss};
use crate::experiment::Experiment;
use crate::lm::corpus::{Batches, Corpus, Window};
use crate::lm::model::{self, LanguageModel, State};
use crate::lm::spec::LmSpec;
use crate::run_dir::records::{EpochRecord, Metric, Scores};
use crate::run_dir::{EpochSums, RunDir};
use crate::spec::Averaging;

/// Trainable parameters of generation `k`'s model (every generation has the teacher's
/// architecture: born-again networks).
pub fn parameter_count(spec: &LmSpec, corpus: &Corpus) -> usize {
    language::parameter_count(
        &spec.model,
        corpus.vocab.len(),
        language::char_count(&corpus.vocab),
    )
}

/// Per-token results of one pass over a split in eval mode.
struct Evaluation {
    /// Mean negative log-likelihood, nats per token.
    nll: f64,
    /// Next-token top-1 error, percent.
    error: f64,
    /// Each target token's probability, in window order.
    target_probabilities: Vec<f32>,
}

impl Evaluation {
    fn perplexity(&self) -> f64 {
        self.nll.exp()
    }
}

fn window_tensors(w: &Window, device: &Device) -> (Tensor<2, Int>, Tensor<1, Int>) {
    let inputs = Tensor::from_data(
        TensorData::new(w.inputs.clone(), [w.batch, w.steps]),
        device,
    );
    let targets = Tensor::from_data(
        TensorData::new(w.targets.clone(), [w.batch * w.steps]),
        device,
    );
    (inputs, targets)
}

/// Log-probability of each target and whether it was the argmax.
fn score(logits: Tensor<2>, targets: Tensor<1, Int>) -> (Vec<f32>, usize) {
    let n = targets.dims()[0];
    let wrong: i64 = logits
        .clone()
        .argmax(1)
        .reshape([n])
        .not_equal(targets.clone())
        .int()
        .sum()
        .into_scalar();
    let log_p = log_softmax(logits, 1)
        .gather(1, targets.reshape([n, 1]))
        .reshape([n]);
    (
        log_p
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 log-probabilities"),
        wrong as usize,
    )
}

/// Runs `model` (eval mode, no autodiff) over `tokens`, carrying its state across windows.
fn evaluate(
    model: &LanguageModel,
    tokens: &[u32],
    spec: &LmSpec,
    device: &Device,
) -> Result<Evaluation> {
    let batches = Batches::new(tokens, spec.schedule.eval_batch_size, spec.schedule.bptt)?;
    let (mut log_likelihood, mut wrong) = (0f64, 0usize);
    let mut target_probabilities = Vec::with_capacity(batches.targets());
    let mut state: Option<State> = None;
    for i in 0..batches.len() {
        let (inputs, targets) = window_tensors(&batches.window(i), device);
        let (logits, next) = model.forward(inputs, state);
        state = Some(next);
        let (log_p, w) = score(logits, targets);
        wrong += w;
        log_likelihood += log_p.iter().map(|&l| l as f64).sum::<f64>();
        target_probabilities.extend(log_p.iter().map(|l| l.exp()));
    }
    let n = target_probabilities.len().max(1) as f64;
    Ok(Evaluation {
        nll: -log_likelihood / n,
        error: 100.0 * wrong as f64 / n,
        target_probabilities,
    })
}

/// The training loss of one window, its tokens flattened to rows: the label cross-entropy for
/// the teacher; for a student, BAN+L for sequences: the label cross-entropy plus the
/// cross-entropy to the teacher's per-token softmax over the whole vocabulary (paper Section
/// 4.3, temperature 1), both averaged over the window's tokens.
pub fn sequence_loss(
    student_logits: Tensor<2>,
    teacher_logits: Option<Tensor<2>>,
    targets: Tensor<1, Int>,
) -> Tensor<1> {
    match teacher_logits {
        None => label_loss(student_logits, targets),
        Some(t) => ban_l_loss(student_logits, t, targets, 1.0),
    }
}

/// Sum of squared gradients over every parameter: the global norm is its square root.
struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    sum: f64,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s: f32 = (g.clone() * g).sum().into_scalar();
            self.sum += s as f64;
        }
    }
}

fn global_norm(model: &LanguageModel, grads: &GradientsParams) -> f64 {
    let mut visitor = SquaredNorm { grads, sum: 0.0 };
    model.visit(&mut visitor);
    visitor.sum.sqrt()
}

/// The hidden states a window hands the next within an epoch (truncated BPTT): the student's,
/// and the teacher's, which reads the same windows. Each epoch starts from zero states.
#[derive(Default)]
pub struct Carried {
    student: Option<State>,
    teacher: Option<State>,
}

/// [`Carried`] as a save within an epoch stores it.
#[derive(Serialize, Deserialize)]
struct SavedCarry {
    student: Option<SavedState>,
    teacher: Option<SavedState>,
}

/// Per LSTM layer, its cell and hidden rows ([batch, hidden], row-major).
type SavedState = Vec<[Vec<f32>; 2]>;

fn saved_state(state: &State) -> Result<SavedState> {
    let floats = |t: &Tensor<2>| {
        t.to_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("a hidden state does not read as f32: {e:?}"))
    };
    state
        .iter()
        .map(|layer| Ok([floats(&layer.cell)?, floats(&layer.hidden)?]))
        .collect()
}

fn loaded_state(
    saved: SavedState,
    layers: usize,
    shape: [usize; 2],
    device: &Device,
) -> Result<State> {
    let size = shape[0] * shape[1];
    if saved.len() != layers || saved.iter().flatten().any(|v| v.len() != size) {
        anyhow::bail!("the saved hidden states are not {layers} layer(s) of {shape:?}");
    }
    let tensor = |values: Vec<f32>| Tensor::from_data(TensorData::new(values, shape), device);
    Ok(saved
        .into_iter()
        .map(|[cell, hidden]| LstmState::new(tensor(cell), tensor(hidden)))
        .collect())
}

/// A language-model chain: its spec, its corpus and the training windows.
pub struct LanguageTrainer {
    experiment: Experiment,
    corpus: Corpus,
    train: Batches,
    valid_tokens: usize,
    test_tokens: usize,
}

impl LanguageTrainer {
    pub fn new(spec: &LmSpec, corpus: Corpus) -> Result<LanguageTrainer> {
        let s = &spec.schedule;
        Ok(LanguageTrainer {
            train: Batches::new(&corpus.train, s.batch_size, s.bptt)?,
            valid_tokens: Batches::new(&corpus.valid, s.eval_batch_size, s.bptt)?.targets(),
            test_tokens: Batches::new(&corpus.test, s.eval_batch_size, s.bptt)?.targets(),
            experiment: Experiment::Language(Box::new(spec.clone())),
            corpus,
        })
    }

    /// Refuses a chain whose models and windows need more than `free` bytes (an estimate).
    pub fn check_memory(&self, free: u64) -> Result<(), String> {
        let s = &self.spec().schedule;
        let vocab = &self.corpus.vocab;
        match language::training_memory(
            &self.spec().model,
            vocab,
            s.batch_size,
            s.bptt,
            s.eval_batch_size,
        ) {
            Some(estimate) => crate::arch::check_memory(estimate, free),
            None => Err("the model and windows need more memory than can be counted".into()),
        }
    }

    /// The corpus as `check` describes it.
    pub fn summary(&self) -> String {
        self.corpus.summary()
    }

    fn spec(&self) -> &LmSpec {
        match &self.experiment {
            Experiment::Language(spec) => spec,
            Experiment::Vision(_) => unreachable!("a language trainer holds a language spec"),
        }
    }
}

impl Trainer for LanguageTrainer {
    type Model = LanguageModel;
    type Batch = usize;
    type Carry = Carried;

    fn experiment(&self) -> &Experiment {
        &self.experiment
    }
    fn dataset(&self) -> String {
        self.corpus.dir.display().to_string()
    }
    fn test_samples(&self) -> usize {
        self.test_tokens
    }
    /// Evaluation reads the validation and the test split.
    fn evaluated_samples(&self) -> usize {
        self.valid_tokens + self.test_tokens
    }
    fn output_len(&self) -> usize {
        self.test_tokens
    }
    fn vocabulary(&self) -> Option<usize> {
        Some(self.corpus.vocab.len())
    }
    fn batches_per_epoch(&self) -> usize {
        self.train.len()
    }
    fn selection(&self) -> Selection {
        Selection::BestValidation
    }

    fn prepare(&self, _run_dir: &RunDir) -> Result<Vec<String>> {
        Ok(vec![self.corpus.summary()])
    }

    /// Every generation has the teacher's architecture: born-again networks.
    fn parameters(&self, _k: usize) -> usize {
        parameter_count(self.spec(), &self.corpus)
    }

    fn new_model(
        &self,
        _k: usize,
        _epoch: usize,
        device: &Device,
        _teacher: Option<&LanguageModel>,
    ) -> Result<LanguageModel> {
        let spec = self.spec();
        Ok(LanguageModel::new(
            &spec.model,
            &self.corpus.vocab,
            spec.schedule.init_range,
            device,
        ))
    }

    /// Plain SGD, as the paper's protocol: no momentum or weight decay. That makes clipping the
    /// global gradient norm the same as scaling this step's learning rate, which is how it is
    /// done.
    fn new_optimizer(&self) -> ModuleOptimizer {
        SgdConfig::new().init()
    }

    /// The paper's plateau schedule: lr x factor after every epoch whose validation perplexity
    /// did not improve (by at least the threshold, for the CNN-LSTM) on the best before it.
    fn learning_rate(&self, _k: usize, _epoch: usize, earlier: &[EpochRecord]) -> f64 {
        let s = &self.spec().schedule;
        let mut lr = s.lr;
        let mut best: Option<f64> = None;
        for val in earlier.iter().filter_map(|r| r.validation_perplexity) {
            if !best.is_none_or(|b| val < b - s.plateau_threshold) {
                lr *= s.plateau_factor;
            }
            if best.is_none_or(|b| val < b) {
                best = Some(val);
            }
        }
        lr
    }

    /// The windows in corpus order: each epoch reads the rows from their start.
    fn epoch_batches(&self, _k: usize, _epoch: usize) -> Vec<usize> {
        (0..self.train.len()).collect()
    }

    fn train_batch(
        &self,
        _k: usize,
        _epoch: usize,
        &window: &usize,
        device: &Device,
        model: LanguageModel,
        optimizer: &mut ModuleOptimizer,
        teacher: Option<&LanguageModel>,
        lr: f64,
        _rng: &mut ChaCha8Rng,
        carried: &mut Carried,
    ) -> Result<(LanguageModel, BatchTrain)> {
        let data_started = Instant::now();
        let (inputs, targets) = window_tensors(&self.train.window(window), device);
        let data_seconds = data_started.elapsed().as_secs_f64();
        let tokens = targets.dims()[0];
        // The teacher runs in eval mode without autodiff, carrying its own state; its per-token
        // logits over the whole vocabulary enter the loss as constants.
        let teacher_started = Instant::now();
        let teacher_logits = teacher.map(|t| {
            let (logits, next) =
                t.forward(inputs.clone().without_autodiff(), carried.teacher.take());
            carried.teacher = Some(next);
            logits
        });
        let teacher_seconds = match teacher_logits {
            Some(_) => teacher_started.elapsed().as_secs_f64(),
            None => 0.0,
        };
        let (logits, next) = model.forward(inputs, carried.student.take());
        carried.student = Some(model::detach(next));
        // Without a teacher the loss is the label NLL itself: no second pass over the vocabulary.
        let label_nll = teacher_logits
            .as_ref()
            .map(|_| label_loss(logits.clone().detach(), targets.clone()));
        let wrong: i64 = logits
            .clone()
            .detach()
            .argmax(1)
            .reshape([tokens])
            .not_equal(targets.clone())
            .int()
            .sum()
            .into_scalar();
        // BAN+L's distillation term is at temperature 1.
        let gradient = teacher_logits.as_ref().map(|t| {
            crate::distill::gradient_split_sums(
                logits.clone().detach(),
                t.clone(),
                targets.clone(),
                1.0,
            )
        });
        let loss = sequence_loss(logits, teacher_logits, targets);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let loss: f32 = loss.into_scalar();
        let label_nll: f32 = label_nll.map_or(loss, Tensor::into_scalar);
        let norm = global_norm(&model, &grads);
        let clip = self.spec().schedule.clip;
        let scale = if norm > clip { clip / norm } else { 1.0 };
        let model = optimizer.step(lr * scale, model, grads);
        let sums = EpochSums {
            loss: loss as f64 * tokens as f64,
            label_nll: Some(label_nll as f64 * tokens as f64),
            wrong: wrong as usize,
            samples: tokens,
        };
        Ok((
            model,
            BatchTrain {
                loss,
                sums,
                gradient,
                data_seconds,
                teacher_seconds,
            },
        ))
    }

    fn save_carry(&self, carried: &Carried) -> Result<serde_json::Value> {
        let saved = SavedCarry {
            student: carried.student.as_ref().map(saved_state).transpose()?,
            teacher: carried.teacher.as_ref().map(saved_state).transpose()?,
        };
        Ok(serde_json::to_value(saved)?)
    }

    fn load_carry(&self, saved: &serde_json::Value, device: &Device) -> Result<Carried> {
        let saved: SavedCarry = serde_json::from_value(saved.clone())
            .map_err(|e| anyhow::anyhow!("the saved hidden states do not read: {e}"))?;
        let (layers, hidden) = match &self.spec().model {
            LmModelSpec::Lstm { layers, hidden, .. }
            | LmModelSpec::CnnLstm { layers, hidden, .. } => (*layers, *hidden),
        };
        let shape = [self.spec().schedule.batch_size, hidden];
        let state = |s: Option<SavedState>, device: &Device| -> Result<Option<State>> {
            s.map(|s| loaded_state(s, layers, shape, device))
                .transpose()
        };
        Ok(Carried {
            student: state(saved.student, device)?,
            // The teacher's state lives where the teacher runs: without autodiff.
            teacher: state(saved.teacher, &device.clone().inner())?,
        })
    }

    /// Test perplexity is reported per epoch like the vision test error; selection uses the
    /// validation split only.
    fn evaluate_epoch(&self, model: &LanguageModel, device: &Device) -> Result<EpochEval> {
        let validation = evaluate(model, &self.corpus.valid, self.spec(), device)?;
        let test = evaluate(model, &self.corpus.test, self.spec(), device)?;
        Ok(EpochEval {
            test_error: test.error,
            test_nll: test.nll,
            validation_error: Some(validation.error),
            validation_perplexity: Some(validation.perplexity()),
            test_perplexity: Some(test.perplexity()),
        })
    }

    fn test_outputs(&self, model: &LanguageModel, device: &Device) -> Result<(Vec<f32>, Scores)> {
        let validation = evaluate(model, &self.corpus.valid, self.spec(), device)?;
        let test = evaluate(model, &self.corpus.test, self.spec(), device)?;
        let scores = Scores::from([
            (Metric::ValidationPerplexity, validation.perplexity()),
            (Metric::TestPerplexity, test.perplexity()),
            (Metric::TestError, test.error),
        ]);
        Ok((test.target_probabilities, scores))
    }

    /// Only each member's probability of the target token is saved, which is all a probability
    /// average needs (specs allow no other averaging for language models).
    fn ensemble_scores(&self, members: &[Vec<f32>], _average: Averaging) -> Scores {
        Scores::from([(
            Metric::TestPerplexity,
            crate::ensemble::ensemble_perplexity(members),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn softmax(z: &[f32]) -> Vec<f32> {
        let m = z.iter().cloned().fold(f32::MIN, f32::max);
        let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f32 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn ban_l_sequence_loss_matches_hand_computation() {
        let device = Device::flex();
        // A window of 2 rows x 2 steps over a 3-word vocabulary: 4 tokens.
        let s = [
            [1.0f32, 0.0, -1.0],
            [0.5, 0.5, 0.0],
            [-1.0, 2.0, 0.0],
            [0.0, 0.0, 3.0],
        ];
        let t = [
            [0.0f32, 2.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0],
            [500.0, 0.0, 0.0],
        ];
        let y = [0i64, 2, 1, 2];
        let rows = |m: &[[f32; 3]; 4]| {
            Tensor::<2>::from_data(
                TensorData::new(m.iter().flatten().copied().collect::<Vec<_>>(), [4, 3]),
                &device,
            )
        };
        let targets = Tensor::<1, Int>::from_data(TensorData::new(y.to_vec(), [4]), &device);
        let mut label = 0f32;
        let mut distill = 0f32;
        for r in 0..4 {
            let q = softmax(&s[r]);
            let p = softmax(&t[r]);
            label -= q[y[r] as usize].ln();
            distill -= (0..3).map(|i| p[i] * q[i].ln()).sum::<f32>();
        }
        let teacher_only: f32 = sequence_loss(rows(&s), None, targets.clone()).into_scalar();
        assert!((teacher_only - label / 4.0).abs() < 1e-5);
        let ban_l: f32 = sequence_loss(rows(&s), Some(rows(&t)), targets).into_scalar();
        // The last teacher row is saturated (its other probabilities are 0 in f32): still finite.
        assert!(
            (ban_l - (label + distill) / 4.0).abs() < 1e-4,
            "{ban_l} vs {}",
            (label + distill) / 4.0
        );
    }
}

//! Language modelling as a chain task: a corpus laid out for truncated backpropagation through
//! time, the tied LSTM and the CNN-LSTM, one epoch of plain SGD with the global gradient norm
//! clipped (labels for the teacher, BAN+L for students: paper Section 4.3), the paper's plateau
//! schedule, and each test token's target probability. A generation is its best-validation
//! checkpoint; test perplexity never selects anything. The generation loop is `crate::chain`'s.

use anyhow::Result;
use burn::module::{ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, TensorData};
use rand_chacha::ChaCha8Rng;

use crate::arch::language;
use crate::chain::{BatchDone, EpochEval, EpochTrain, Flow, Selection, Trainer};
use crate::distill::{ban_l_loss, label_loss};
use crate::experiment::Experiment;
use crate::lm::corpus::{Batches, Corpus, Window};
use crate::lm::model::{self, LanguageModel, State};
use crate::lm::spec::LmSpec;
use crate::run_dir::RunDir;
use crate::run_dir::records::{EpochRecord, Metric, Scores};
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

/// A language-model chain: its spec, its corpus and the training windows.
pub struct LanguageTrainer {
    experiment: Experiment,
    corpus: Corpus,
    train: Batches,
    test_tokens: usize,
}

impl LanguageTrainer {
    pub fn new(spec: &LmSpec, corpus: Corpus) -> Result<LanguageTrainer> {
        let s = &spec.schedule;
        Ok(LanguageTrainer {
            train: Batches::new(&corpus.train, s.batch_size, s.bptt)?,
            test_tokens: Batches::new(&corpus.test, s.eval_batch_size, s.bptt)?.targets(),
            experiment: Experiment::Language(Box::new(spec.clone())),
            corpus,
        })
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

    fn experiment(&self) -> &Experiment {
        &self.experiment
    }
    fn dataset(&self) -> String {
        self.corpus.dir.display().to_string()
    }
    fn test_samples(&self) -> usize {
        self.test_tokens
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
    fn learning_rate(&self, _epoch: usize, earlier: &[EpochRecord]) -> f64 {
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

    fn train_epoch(
        &self,
        _k: usize,
        _epoch: usize,
        device: &Device,
        mut model: LanguageModel,
        optimizer: &mut ModuleOptimizer,
        teacher: Option<&LanguageModel>,
        lr: f64,
        _rng: &mut ChaCha8Rng,
        on_batch: &mut dyn FnMut(BatchDone) -> Result<Flow>,
    ) -> Result<Option<(LanguageModel, EpochTrain)>> {
        let clip = self.spec().schedule.clip;
        let (mut loss_sum, mut label_nll_sum, mut wrong, mut seen) = (0f64, 0f64, 0usize, 0usize);
        // Each epoch reads the rows from their start with a zero state; within it the state
        // carries over from window to window, detached (truncated BPTT).
        let mut state: Option<State> = None;
        let mut teacher_state: Option<State> = None;
        for i in 0..self.train.len() {
            let window = self.train.window(i);
            let (inputs, targets) = window_tensors(&window, device);
            let tokens = targets.dims()[0];
            // The teacher runs in eval mode without autodiff, carrying its own state; its
            // per-token logits over the whole vocabulary enter the loss as constants.
            let teacher_logits = teacher.map(|t| {
                let (logits, next) =
                    t.forward(inputs.clone().without_autodiff(), teacher_state.take());
                teacher_state = Some(next);
                logits
            });
            let (logits, next) = model.forward(inputs, state.take());
            state = Some(model::detach(next));
            let label_nll: f32 = label_loss(logits.clone().detach(), targets.clone()).into_scalar();
            let batch_wrong: i64 = logits
                .clone()
                .detach()
                .argmax(1)
                .reshape([tokens])
                .not_equal(targets.clone())
                .int()
                .sum()
                .into_scalar();
            let loss = sequence_loss(logits, teacher_logits, targets);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let loss: f32 = loss.into_scalar();
            loss_sum += loss as f64 * tokens as f64;
            label_nll_sum += label_nll as f64 * tokens as f64;
            wrong += batch_wrong as usize;
            seen += tokens;
            let done = BatchDone {
                batch: i,
                samples: seen,
                loss,
            };
            if !loss.is_finite() {
                // The runner names the failure; no step is taken on a broken gradient.
                on_batch(done)?;
            }
            let norm = global_norm(&model, &grads);
            let scale = if norm > clip { clip / norm } else { 1.0 };
            model = optimizer.step(lr * scale, model, grads);
            if on_batch(done)? == Flow::Stop {
                return Ok(None);
            }
        }
        let epoch = EpochTrain {
            perplexity: Some((label_nll_sum / seen.max(1) as f64).exp()),
            ..EpochTrain::from_sums(loss_sum, wrong, seen)
        };
        Ok(Some((model, epoch)))
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

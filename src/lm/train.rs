//! The language-model generation loop, top to bottom: for each generation k = 0..=count train a
//! freshly initialised model with truncated backpropagation through time (generation 0 on
//! labels, generation k with BAN+L from generation k-1), keep the checkpoint of its best
//! validation perplexity, measure that checkpoint's test perplexity, save each test token's
//! target probability, and update results and ensembles. Test perplexity never selects anything.
//!
//! It mirrors `crate::train` (the vision loop) and speaks the same [`Event`]s; its run directory
//! holds the language records of `crate::events`.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use burn::module::{ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, TensorData};

use super::corpus::{Batches, Corpus, Window};
use super::model::{self, LanguageModel, State};
use super::spec::LmSpec;
use crate::arch::language;
use crate::device::DeviceChoice;
use crate::distill::{ban_l_loss, label_loss};
use crate::events::{
    EpochRecord, Event, LanguageEnsemble, LanguageEpochRecord, LanguageGeneration, LanguageResults,
    RunState, Task, generation_label,
};
use crate::run_dir::RunDir;
use crate::train::{load_checkpoint, save_checkpoint};
use crate::worker::RunControl;

/// The corpus as one run uses it (after `corpus.max_tokens`).
pub fn load_corpus(spec: &LmSpec) -> Result<Corpus> {
    let mut corpus = Corpus::load(&spec.corpus.path)?;
    if let Some(n) = spec.corpus.max_tokens {
        for split in [&mut corpus.train, &mut corpus.valid, &mut corpus.test] {
            split.truncate(n);
        }
    }
    Ok(corpus)
}

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

/// Everything a generation needs that does not change between generations.
struct Shared<'a> {
    spec: &'a LmSpec,
    corpus: &'a Corpus,
    train: Batches,
    device: Device,
    run_dir: &'a RunDir,
    control: &'a RunControl,
    started: Instant,
    resumed_epochs: usize,
}

/// Runs (or resumes) the spec's chain of language-model generations into `run_dir`.
pub fn run(
    spec: &LmSpec,
    corpus: &Corpus,
    device_choice: DeviceChoice,
    run_dir: &RunDir,
    control: &RunControl,
    emit: &mut dyn FnMut(Event),
) -> Result<LanguageResults> {
    let device = device_choice.open().map_err(anyhow::Error::msg)?;
    let test_tokens = Batches::new(
        &corpus.test,
        spec.schedule.eval_batch_size,
        spec.schedule.bptt,
    )?
    .targets();
    let mut results = run_dir
        .language_results()?
        .unwrap_or_else(|| LanguageResults {
            task: Task::Language,
            name: spec.name.clone(),
            corpus: corpus.dir.display().to_string(),
            vocabulary: corpus.vocab.len(),
            test_tokens,
            device: device_choice.to_string(),
            state: RunState::Running,
            generations: Vec::new(),
            ensembles: Vec::new(),
        });
    // A resumed run keeps the generations it already finished, in order from the teacher.
    let finished = run_dir.finished_generations(
        results.generations.iter().map(|g| g.generation),
        RunDir::target_probabilities_path,
    );
    results.generations.truncate(finished);
    results.device = device_choice.to_string();
    results.state = RunState::Running;
    let mut history: Vec<LanguageEpochRecord> = run_dir.metrics()?;
    history.retain(|r| r.record.generation < finished);
    let ctx = Shared {
        spec,
        corpus,
        train: Batches::new(&corpus.train, spec.schedule.batch_size, spec.schedule.bptt)?,
        device,
        run_dir,
        control,
        started: Instant::now(),
        resumed_epochs: finished * spec.schedule.epochs,
    };
    emit(Event::Started {
        name: spec.name.clone(),
        dataset: corpus.dir.display().to_string(),
        device: device_choice.to_string(),
        generations: spec.generations.count + 1,
        epochs: spec.schedule.epochs,
        batches_per_epoch: ctx.train.len(),
        resumed: (0..finished).collect(),
    });
    emit(Event::Log(corpus.summary()));

    let mut teacher: Option<LanguageModel> = None;
    for k in 0..=spec.generations.count {
        if k < finished {
            if k + 1 == finished && k < spec.generations.count {
                let model = LanguageModel::new(
                    &spec.model,
                    &corpus.vocab,
                    spec.schedule.init_range,
                    &ctx.device,
                );
                teacher = Some(load_checkpoint(model, &run_dir.checkpoint_path(k))?);
            }
            continue;
        }
        let trained =
            train_generation(&ctx, k, teacher.as_ref(), &mut history, emit).inspect_err(|_| {
                results.state = RunState::Failed;
                let _ = run_dir.write_language_results(&results, &spec.description);
            })?;
        let Some((best, best_epoch, validation, train_seconds)) = trained else {
            results.state = RunState::Stopped;
            run_dir.write_language_results(&results, &spec.description)?;
            emit(Event::Log(format!(
                "stopped during {}; finished generations are saved",
                generation_label(k)
            )));
            return Ok(results);
        };

        // The best-validation checkpoint is the generation; only now does the test split run.
        let test = evaluate(&best, &corpus.test, spec, &ctx.device)?;
        run_dir.write_target_probabilities(k, &test.target_probabilities)?;
        save_checkpoint(best.clone(), &run_dir.checkpoint_path(k))?;
        let label = generation_label(k);
        let paper = spec.paper.get(&label);
        let generation = LanguageGeneration {
            generation: k,
            model: spec.model.to_string(),
            control: if k == 0 {
                "labels".into()
            } else {
                "BAN+L".into()
            },
            parameters: parameter_count(spec, corpus),
            train_seconds,
            best_epoch,
            validation_perplexity: validation,
            test_perplexity: test.perplexity(),
            test_error: test.error,
            paper_validation_perplexity: paper.map(|p| p.valid),
            paper_test_perplexity: paper.map(|p| p.test),
            label,
        };
        emit(Event::Log(format!(
            "== {} done in {}: best epoch {best_epoch}, validation perplexity {:.2}, test perplexity {:.2}",
            generation.label,
            crate::headless::format_duration(train_seconds),
            generation.validation_perplexity,
            generation.test_perplexity
        )));
        results.generations.push(generation);
        results.ensembles = evaluate_ensembles(spec, run_dir, &results)?;
        for e in &results.ensembles {
            emit(Event::Log(format!(
                "   {}: test perplexity {:.2}",
                e.name, e.test_perplexity
            )));
        }
        run_dir.write_language_results(&results, &spec.description)?;
        teacher = Some(best);
    }
    results.state = RunState::Finished;
    run_dir.write_language_results(&results, &spec.description)?;
    Ok(results)
}

/// Trains generation `k` for the whole schedule; returns its best-validation model (eval mode),
/// that epoch, its validation perplexity and the training seconds. `None` when stopped.
fn train_generation(
    ctx: &Shared,
    k: usize,
    teacher: Option<&LanguageModel>,
    history: &mut Vec<LanguageEpochRecord>,
    emit: &mut dyn FnMut(Event),
) -> Result<Option<(LanguageModel, usize, f64, f64)>> {
    let spec = ctx.spec;
    let schedule = &spec.schedule;
    if k > 0 && teacher.is_none() {
        bail!("generation {k} needs generation {} as its teacher", k - 1);
    }
    let seed = spec.seed.wrapping_add(k as u64);
    ctx.device.seed(seed);
    let train_device = ctx.device.clone().autodiff();
    let mut model = LanguageModel::new(
        &spec.model,
        &ctx.corpus.vocab,
        schedule.init_range,
        &train_device,
    );
    // Plain SGD, as the paper's protocol: no momentum or weight decay. That makes clipping the
    // global gradient norm the same as scaling this step's learning rate, which is how it is done.
    let mut optimizer: ModuleOptimizer = SgdConfig::new().init();
    let parameters = parameter_count(spec, ctx.corpus);
    emit(Event::GenerationStarted {
        generation: k,
        model: spec.model.to_string(),
        control: if k == 0 {
            "labels".into()
        } else {
            "BAN+L".into()
        },
        parameters,
    });

    let started = Instant::now();
    let mut lr = schedule.lr;
    let mut best: Option<(LanguageModel, usize, f64)> = None;
    for epoch in 0..schedule.epochs {
        let epoch_started = Instant::now();
        let (mut loss_sum, mut label_nll_sum, mut wrong, mut seen) = (0f64, 0f64, 0usize, 0usize);
        let mut last_progress = Instant::now();
        // Each epoch reads the rows from their start with a zero state; within it the state
        // carries over from window to window, detached (truncated BPTT).
        let mut state: Option<State> = None;
        let mut teacher_state: Option<State> = None;
        for i in 0..ctx.train.len() {
            if ctx.control.wait_if_paused() {
                return Ok(None);
            }
            let window = ctx.train.window(i);
            let (inputs, targets) = window_tensors(&window, &train_device);
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
            if !loss.is_finite() {
                bail!(
                    "{}: the training loss became {loss} at epoch {}; lower schedule.lr",
                    generation_label(k),
                    epoch + 1
                );
            }
            let norm = global_norm(&model, &grads);
            let scale = if norm > schedule.clip {
                schedule.clip / norm
            } else {
                1.0
            };
            model = optimizer.step(lr * scale, model, grads);
            loss_sum += loss as f64 * tokens as f64;
            label_nll_sum += label_nll as f64 * tokens as f64;
            wrong += batch_wrong as usize;
            seen += tokens;
            if last_progress.elapsed() > Duration::from_millis(250) {
                last_progress = Instant::now();
                emit(Event::Progress {
                    generation: k,
                    epoch: epoch + 1,
                    batch: i + 1,
                    batches: ctx.train.len(),
                    images_per_sec: seen as f64 / epoch_started.elapsed().as_secs_f64(),
                });
            }
        }
        let tokens_per_sec = seen as f64 / epoch_started.elapsed().as_secs_f64();

        let eval_model = model.valid();
        let validation = evaluate(&eval_model, &ctx.corpus.valid, spec, &ctx.device)?;
        // Reported per epoch like the vision loop's test error; selection uses validation only.
        let test = evaluate(&eval_model, &ctx.corpus.test, spec, &ctx.device)?;
        let epoch_lr = lr;
        let val_ppl = validation.perplexity();
        // The paper's plateau schedule: lr x factor when validation perplexity does not improve
        // (by at least the threshold, for the CNN-LSTM) on the best so far.
        let improved = best
            .as_ref()
            .is_none_or(|(_, _, b)| val_ppl < b - schedule.plateau_threshold);
        if !improved {
            lr *= schedule.plateau_factor;
        }
        if best.as_ref().is_none_or(|(_, _, b)| val_ppl < *b) {
            best = Some((eval_model, epoch + 1, val_ppl));
        }
        let record = LanguageEpochRecord {
            record: EpochRecord {
                generation: k,
                epoch: epoch + 1,
                epochs: schedule.epochs,
                train_loss: loss_sum / seen.max(1) as f64,
                train_error: 100.0 * wrong as f64 / seen.max(1) as f64,
                test_error: test.error,
                test_nll: test.nll,
                validation_error: Some(validation.error),
                lr: epoch_lr,
                images_per_sec: tokens_per_sec,
                seconds: started.elapsed().as_secs_f64(),
                eta_seconds: eta(ctx, k, epoch + 1),
            },
            validation_perplexity: val_ppl,
            test_perplexity: test.perplexity(),
            train_perplexity: (label_nll_sum / seen.max(1) as f64).exp(),
            tokens_per_sec,
        };
        history.push(record.clone());
        ctx.run_dir.write_metrics(history)?;
        emit(Event::Log(record.line()));
        emit(Event::Epoch(record.record));
    }
    let (best, best_epoch, val_ppl) = best.expect("at least one epoch");
    Ok(Some((
        best,
        best_epoch,
        val_ppl,
        started.elapsed().as_secs_f64(),
    )))
}

fn eta(ctx: &Shared, generation: usize, epochs_done: usize) -> f64 {
    let per_gen = ctx.spec.schedule.epochs;
    let total = (ctx.spec.generations.count + 1) * per_gen;
    let done = generation * per_gen + epochs_done;
    let run_here = done.saturating_sub(ctx.resumed_epochs);
    let elapsed = ctx.started.elapsed().as_secs_f64();
    if run_here == 0 {
        0.0
    } else {
        elapsed / run_here as f64 * (total - done) as f64
    }
}

fn evaluate_ensembles(
    spec: &LmSpec,
    run_dir: &RunDir,
    results: &LanguageResults,
) -> Result<Vec<LanguageEnsemble>> {
    let done: Vec<usize> = results.generations.iter().map(|g| g.generation).collect();
    let mut out = Vec::new();
    for e in spec.ensembles() {
        if !e.members.iter().all(|m| done.contains(m)) {
            continue;
        }
        let members: Vec<Vec<f32>> = e
            .members
            .iter()
            .map(|&m| run_dir.read_target_probabilities(m, results.test_tokens))
            .collect::<Result<_>>()?;
        out.push(LanguageEnsemble {
            test_perplexity: crate::ensemble::ensemble_perplexity(&members),
            name: e.name,
            members: e.members,
        });
    }
    Ok(out)
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

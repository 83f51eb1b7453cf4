//! The one generation loop, for every task, top to bottom: open the run directory's records,
//! keep the generations a resumed run already finished, then for each generation k = 0..=count
//! train a freshly initialised network (generation 0 on labels, generation k with its control
//! from generation k-1) epoch by epoch, save its checkpoint and test outputs, and update results
//! and ensembles. What differs between tasks (data, models, one epoch of training, evaluation)
//! comes from a [`Trainer`].
//!
//! This runs on the worker thread of the run process, which owns burn. Every event goes to the
//! run directory (events.jsonl, progress.json) as well as to `emit`, and the run directory's
//! control file can pause or stop it between batches.

mod resume;

use std::cell::Cell;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::agreement::Agreement;
use crate::device::DeviceChoice;
use crate::distill::GradientSplit;
use crate::events::{Event, Progress};
use crate::experiment::Experiment;
use crate::run_dir::records::{
    Agreements, EnsembleResult, EpochRecord, EpochTime, GenerationResult, Results, RunState,
    Scores, Stage, generation_label,
};
use crate::run_dir::{EpochSums, Request, ResumePoint, RunDir, WithinEpoch};
use crate::seeds;
use crate::spec::Averaging;
use crate::worker::RunControl;

/// Which epoch's model a generation keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The last one, as the paper's vision protocol (never pick an epoch by test error).
    LastEpoch,
    /// The one with the lowest validation perplexity (the paper's language models).
    BestValidation,
}

/// One epoch of training, as the task measured it.
#[derive(Debug, Clone, Copy, Default)]
pub struct EpochTrain {
    /// Mean training loss per sample.
    pub loss: f64,
    /// Percent of training samples predicted wrong (train mode).
    pub error: f64,
    pub samples: usize,
    /// Language models: perplexity of the label loss alone.
    pub perplexity: Option<f64>,
    /// The two halves of the distillation gradient, with a teacher.
    pub gradient: Option<GradientSplit>,
    /// Where the batches' time went (steps, teacher, data, saves within the epoch).
    pub time: EpochTime,
    /// Seconds spent paused, which no part of the time counts.
    pub paused_seconds: f64,
}

impl EpochTrain {
    pub fn from_sums(sums: EpochSums) -> EpochTrain {
        let n = sums.samples.max(1) as f64;
        EpochTrain {
            loss: sums.loss / n,
            error: 100.0 * sums.wrong as f64 / n,
            samples: sums.samples,
            perplexity: sums.label_nll.map(|nll| (nll / n).exp()),
            gradient: None,
            time: EpochTime::default(),
            paused_seconds: 0.0,
        }
    }
}

/// One batch of training, as the task measured it.
#[derive(Debug, Clone)]
pub struct BatchTrain {
    /// The batch's mean loss (what the step minimised).
    pub loss: f32,
    pub sums: EpochSums,
    /// With a teacher: the batch's gradient-split sums, on the device
    /// (`distill::gradient_split_sums`), added over the epoch and read once at its end.
    pub gradient: Option<Tensor<1>>,
    /// Seconds of the step spent making the batch, and in the teacher's forward pass.
    pub data_seconds: f64,
    pub teacher_seconds: f64,
}

/// An epoch's model on the held-out splits (eval mode).
#[derive(Debug, Clone, Copy, Default)]
pub struct EpochEval {
    pub test_error: f64,
    pub test_nll: f64,
    pub validation_error: Option<f64>,
    pub validation_perplexity: Option<f64>,
    pub test_perplexity: Option<f64>,
}

/// What a task supplies to the chain runner.
pub trait Trainer {
    /// The network, trained on the autodiff device and evaluated (`valid()`) on the plain one.
    type Model: Module;
    /// One step's share of an epoch: a batch's sample indices, a window's position.
    type Batch;
    /// What one batch hands the next within an epoch (a language model's hidden states).
    type Carry: Default;

    fn experiment(&self) -> &Experiment;
    /// The data set (or corpus) as results name it.
    fn dataset(&self) -> String;
    /// Test images, or test target tokens.
    fn test_samples(&self) -> usize;
    /// Images, or target tokens, that one [`evaluate_epoch`](Trainer::evaluate_epoch) reads.
    fn evaluated_samples(&self) -> usize;
    /// Floats of a generation's saved test outputs.
    fn output_len(&self) -> usize;
    fn vocabulary(&self) -> Option<usize> {
        None
    }
    fn batches_per_epoch(&self) -> usize;
    fn selection(&self) -> Selection;
    /// Writes what readers of the run directory need besides outputs (the test labels), and
    /// returns lines to log at the start.
    fn prepare(&self, run_dir: &RunDir) -> Result<Vec<String>>;
    /// Trainable parameters of generation `k`'s model.
    fn parameters(&self, k: usize) -> usize;
    /// A freshly initialised generation `k` on `device`, shaped as it trains from `epoch`
    /// (0-based) on: a FitNets student carries its regressor through its hint stage (saves
    /// load into this shape; a finished generation's `epoch` is its epochs). A student may
    /// take layers of its `teacher`.
    fn new_model(
        &self,
        k: usize,
        epoch: usize,
        device: &Device,
        teacher: Option<&Self::Model>,
    ) -> Result<Self::Model>;
    /// Generation `k`'s model as its next stage starts from it (a two-stage control).
    fn next_stage(&self, _k: usize, model: Self::Model) -> Self::Model {
        model
    }
    fn new_optimizer(&self) -> ModuleOptimizer;
    /// The learning rate of generation `k`'s `epoch` (0-based), given its `earlier` epochs.
    fn learning_rate(&self, k: usize, epoch: usize, earlier: &[EpochRecord]) -> f64;
    /// The batches of generation `k`'s `epoch` (0-based), in training order.
    fn epoch_batches(&self, k: usize, epoch: usize) -> Vec<Self::Batch>;
    /// One SGD step of generation `k` in `epoch` (0-based) on `batch`, on `device` (the
    /// autodiff one). `rng` is seeded for this batch alone; `carry` is what the previous batch
    /// of the epoch left.
    #[allow(clippy::too_many_arguments)]
    fn train_batch(
        &self,
        k: usize,
        epoch: usize,
        batch: &Self::Batch,
        device: &Device,
        model: Self::Model,
        optimizer: &mut ModuleOptimizer,
        teacher: Option<&Self::Model>,
        lr: f64,
        rng: &mut ChaCha8Rng,
        carry: &mut Self::Carry,
    ) -> Result<(Self::Model, BatchTrain)>;
    /// `carry` as a save within an epoch stores it.
    fn save_carry(&self, carry: &Self::Carry) -> Result<serde_json::Value>;
    /// A carry saved by [`save_carry`](Trainer::save_carry), on the autodiff `device`.
    fn load_carry(&self, saved: &serde_json::Value, device: &Device) -> Result<Self::Carry>;
    /// Whether generation `k`'s `epoch` (0-based) is evaluated on the held-out splits (the
    /// last of a generation always is).
    fn evaluates(&self, _k: usize, _epoch: usize) -> bool {
        true
    }
    /// The epoch's model (eval mode, on the plain `device`) on the held-out splits.
    fn evaluate_epoch(&self, model: &Self::Model, device: &Device) -> Result<EpochEval>;
    /// The generation's saved test outputs and its test metrics.
    fn test_outputs(&self, model: &Self::Model, device: &Device) -> Result<(Vec<f32>, Scores)>;
    /// How a student's saved test outputs agree with its teacher's, where the outputs allow it.
    fn agreement(&self, _teacher: &[f32], _student: &[f32]) -> Option<Agreement> {
        None
    }
    /// Metrics of an ensemble from its members' saved outputs.
    fn ensemble_scores(&self, members: &[Vec<f32>], average: Averaging) -> Scores;
}

/// Everything a generation needs that does not change between generations.
struct Chain<'a, T: Trainer> {
    trainer: &'a T,
    device: Device,
    run_dir: &'a RunDir,
    control: &'a RunControl,
    started: Instant,
    /// Epochs a resumed run found done (not timed by this process).
    resumed_epochs: Cell<usize>,
}

/// Runs (or resumes) the trainer's chain of generations into `run_dir`.
pub fn run<T: Trainer>(
    trainer: &T,
    device_choice: DeviceChoice,
    run_dir: &RunDir,
    control: &RunControl,
    emit: &mut dyn FnMut(Event),
) -> Result<Results> {
    let experiment = trainer.experiment();
    let task = experiment.task();
    // Every event is also the run directory's, for followers in other processes.
    let mut emit = |event: Event| {
        let written = match &event {
            Event::Progress(p) => run_dir.write_progress(p),
            other => run_dir.append_event(other),
        };
        if let Err(e) = written {
            // A closed stderr must not end the run.
            let _ = writeln!(std::io::stderr(), "banbench: {e:#}");
        }
        emit(event);
    };
    let device = device_choice.open().map_err(anyhow::Error::msg)?;
    // A pause or stop asked of an earlier process is not this one's.
    run_dir.request(Request::Run)?;
    let mut notes = trainer.prepare(run_dir)?;
    let removed = run_dir.remove_temporaries()?;
    if !removed.is_empty() {
        notes.push(format!(
            "removed {} temporary file(s) an earlier process left",
            removed.len()
        ));
    }
    let mut history = resume::read_history(run_dir, &mut notes)?;
    // A resumed run keeps the generations it already finished, in order from the teacher, once
    // their checkpoints load and their outputs have the expected size.
    let mut results = resume::results(
        trainer,
        run_dir,
        &device,
        device_choice,
        &history,
        &mut notes,
    )?;
    let finished = resume::verify_finished(trainer, run_dir, &device, &results, &mut notes);
    results.generations.truncate(finished);
    results.device = device_choice.to_string();
    results.state = RunState::Running;
    history.retain(|r| r.generation <= finished);
    // Only the first unfinished generation resumes from its saves: those of finished ones
    // (a kill before their cleanup) are done with, and later ones belong to another teacher.
    for k in (0..=experiment.students()).filter(|&k| k != finished) {
        run_dir.remove_epoch_checkpoints(k, None);
    }
    let chain = Chain {
        trainer,
        device,
        run_dir,
        control,
        started: Instant::now(),
        resumed_epochs: Cell::new(experiment.epochs_before(finished)),
    };
    emit(Event::Started {
        task,
        name: experiment.name().to_string(),
        dataset: trainer.dataset(),
        device: device_choice.to_string(),
        generations: experiment.students() + 1,
        epochs: experiment.epochs(),
        batches_per_epoch: trainer.batches_per_epoch(),
        resumed: (0..finished).collect(),
    });
    for note in notes {
        emit(Event::log(note));
    }

    let mut teacher: Option<T::Model> = None;
    for k in 0..=experiment.students() {
        if k < finished {
            // Only the last finished generation is needed, as the next one's teacher.
            if k + 1 == finished && k < experiment.students() {
                let model = trainer.new_model(k, experiment.epochs_of(k), &chain.device, None)?;
                teacher = Some(load_checkpoint(model, &run_dir.checkpoint_path(k))?.valid());
            }
            continue;
        }
        let trained = train_generation(&chain, k, teacher.as_ref(), &mut history, &mut emit)
            .inspect_err(|_| {
                results.state = RunState::Failed;
                let _ = run_dir.write_results(&results, experiment.description());
            })?;
        let Some(Trained {
            model,
            best_epoch,
            train_seconds,
        }) = trained
        else {
            results.state = RunState::Stopped;
            run_dir.write_results(&results, experiment.description())?;
            emit(Event::log(format!(
                "stopped during {}; what it trained is saved, and running it again resumes there",
                generation_label(k)
            )));
            emit(Event::Ended(results.clone()));
            return Ok(results);
        };

        // Save the generation: test outputs, checkpoint, then the results that point at them;
        // its in-generation saves go last.
        let (outputs, metrics) = trainer.test_outputs(&model, &chain.device)?;
        run_dir.write_outputs(task, k, &outputs)?;
        save_checkpoint(model.clone(), &run_dir.checkpoint_path(k))?;
        let mut generation = generation_result(trainer, k, metrics, best_epoch, train_seconds);
        generation.agreement = agreements(trainer, run_dir, k, &outputs);
        results.generations.push(generation.clone());
        results.ensembles = evaluate_ensembles(trainer, run_dir, &results)?;
        run_dir.write_results(&results, experiment.description())?;
        run_dir.remove_epoch_checkpoints(k, None);
        emit(Event::GenerationDone {
            generation,
            ensembles: results.ensembles.clone(),
        });
        if control.last_generation() == Some(k) && k < experiment.students() {
            results.state = RunState::Stopped;
            run_dir.write_results(&results, experiment.description())?;
            emit(Event::log(format!(
                "stopped after {}, as asked; running the chain again goes on from it",
                generation_label(k)
            )));
            emit(Event::Ended(results.clone()));
            return Ok(results);
        }
        teacher = Some(model);
    }
    results.state = RunState::Finished;
    run_dir.write_results(&results, experiment.description())?;
    emit(Event::Ended(results.clone()));
    Ok(results)
}

/// Generation `k`'s agreement with its teacher and with generation 0, from their saved outputs.
fn agreements<T: Trainer>(
    trainer: &T,
    run_dir: &RunDir,
    k: usize,
    outputs: &[f32],
) -> Option<Agreements> {
    let task = trainer.experiment().task();
    let earlier = |g: usize| run_dir.read_outputs(task, g, trainer.output_len()).ok();
    let with = |g: usize| trainer.agreement(&earlier(g)?, outputs);
    Some(Agreements {
        with_teacher: with(k.checked_sub(1)?)?,
        with_generation_0: with(0)?,
    })
}

/// A finished generation as results.json records it.
fn generation_result<T: Trainer>(
    trainer: &T,
    k: usize,
    metrics: Scores,
    best_epoch: Option<usize>,
    train_seconds: f64,
) -> GenerationResult {
    let experiment = trainer.experiment();
    let label = generation_label(k);
    GenerationResult {
        generation: k,
        model: experiment.model_of(k),
        control: experiment.control_of(k),
        parameters: trainer.parameters(k),
        train_seconds,
        best_epoch,
        metrics,
        paper: experiment.paper(&label),
        label,
        agreement: None,
    }
}

/// Writes a generation's checkpoint (burnpack), replacing an older file.
pub(crate) fn save_checkpoint<M: Module>(model: M, path: &std::path::Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    model
        .save_file(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot save checkpoint: {e:?}", path.display()))
}

/// `model`, built with the checkpoint's architecture, with the checkpoint's parameters.
pub(crate) fn load_checkpoint<M: Module>(model: M, path: &std::path::Path) -> Result<M> {
    model
        .try_load_file(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot load checkpoint: {e:?}", path.display()))
}

/// A generation trained to the end of its schedule.
struct Trained<M> {
    /// The selected model, in eval mode.
    model: M,
    /// The epoch it comes from, when that is not the last.
    best_epoch: Option<usize>,
    train_seconds: f64,
}

/// One generation in training: what its epochs share.
struct Generation<'a, T: Trainer> {
    chain: &'a Chain<'a, T>,
    k: usize,
    seed: u64,
    teacher: Option<&'a T::Model>,
    train_device: Device,
    /// Seconds it trained in earlier processes, and when this one started it.
    earlier_seconds: f64,
    started: Instant,
}

impl<T: Trainer> Generation<'_, T> {
    fn seconds(&self) -> f64 {
        self.earlier_seconds + self.started.elapsed().as_secs_f64()
    }
}

/// Trains generation `k` for the whole schedule, resuming at its last save; `None` when
/// stopped (after saving where it stopped).
fn train_generation<T: Trainer>(
    chain: &Chain<T>,
    k: usize,
    teacher: Option<&T::Model>,
    history: &mut Vec<EpochRecord>,
    emit: &mut dyn FnMut(Event),
) -> Result<Option<Trained<T::Model>>> {
    let trainer = chain.trainer;
    let experiment = trainer.experiment();
    if k > 0 && teacher.is_none() {
        bail!("generation {k} needs generation {} as its teacher", k - 1);
    }
    // A fresh initialisation from this generation's own seed.
    let seed = seeds::generation_seed(experiment.seed(), k);
    chain.device.seed(seed);
    let train_device = chain.device.clone().autodiff();
    let mut notes = Vec::new();
    let resumed = resume::load_epoch(
        trainer,
        chain.run_dir,
        k,
        &chain.device,
        teacher,
        history,
        &mut notes,
    );
    for note in notes {
        emit(Event::log(note));
    }
    let (first_epoch, mut within, mut model, mut optimizer, mut best) = match resumed {
        Some(r) => (r.epochs, r.within, r.model, r.optimizer, r.best),
        None => (
            0,
            None,
            trainer.new_model(k, 0, &train_device, teacher)?,
            trainer.new_optimizer(),
            None,
        ),
    };
    history.retain(|r| r.generation < k || r.epoch <= first_epoch);
    emit(Event::GenerationStarted {
        generation: k,
        model: experiment.model_of(k),
        control: experiment.control_of(k),
        parameters: trainer.parameters(k),
    });
    let epochs = experiment.epochs_of(k);
    if first_epoch > 0 || within.is_some() {
        chain
            .resumed_epochs
            .set(chain.resumed_epochs.get() + first_epoch);
        let batches = within.as_ref().map_or(String::new(), |w| {
            format!(
                ", and {} of its {} batches",
                w.batches,
                trainer.batches_per_epoch()
            )
        });
        emit(Event::log(format!(
            "resuming {} at epoch {} ({first_epoch} of {epochs} epochs saved{batches})",
            generation_label(k),
            first_epoch + 1
        )));
    }

    let generation = Generation {
        chain,
        k,
        seed,
        teacher,
        train_device,
        // A save within an epoch knows its seconds; at an epoch's end, its record does.
        earlier_seconds: within.as_ref().map_or_else(
            || {
                history
                    .iter()
                    .rfind(|r| r.generation == k)
                    .map_or(0.0, |r| r.seconds)
            },
            |w| w.seconds,
        ),
        started: Instant::now(),
    };
    let mut last_save = Instant::now();
    let mut last: Option<T::Model> = None;
    // The previous epoch's record and resume point, which count in this epoch's time.
    let mut closing_writes = 0.0;
    for epoch in first_epoch..epochs {
        let epoch_started = Instant::now();
        let earlier: Vec<EpochRecord> = history
            .iter()
            .filter(|r| r.generation == k)
            .cloned()
            .collect();
        let lr = trainer.learning_rate(k, epoch, &earlier);
        let stage = experiment.stage_of(k, epoch);
        if let Some((name, number)) = stage
            && (epoch == first_epoch || stage != experiment.stage_of(k, epoch - 1))
        {
            let left = (epoch..epochs)
                .take_while(|&e| experiment.stage_of(k, e) == stage)
                .count();
            emit(Event::log(format!(
                "{}: stage {number} of 2 ({name}) from epoch {}, {left} epoch(s) at lr {lr}",
                generation_label(k),
                epoch + 1
            )));
        }
        let best_so_far = best.as_ref().map(|(_, e, v)| (*e, *v));
        let Some((next, train, samples_per_sec)) = train_epoch(
            &generation,
            epoch,
            lr,
            model,
            &mut optimizer,
            best_so_far,
            within.take(),
            &mut last_save,
            emit,
        )?
        else {
            return Ok(None);
        };
        model = next;

        let eval_started = Instant::now();
        let eval_model = model.valid();
        let eval = trainer
            .evaluates(k, epoch)
            .then(|| trainer.evaluate_epoch(&eval_model, &chain.device))
            .transpose()?;
        let mut time = EpochTime {
            evaluation: eval_started.elapsed().as_secs_f64(),
            ..train.time
        };
        let named = time.total();
        time.writes += closing_writes;
        time.other =
            (epoch_started.elapsed().as_secs_f64() - train.paused_seconds - named).max(0.0);
        let record = EpochRecord {
            generation: k,
            epoch: epoch + 1,
            epochs,
            train_loss: train.loss,
            train_error: train.error,
            test_error: eval.map(|e| e.test_error),
            test_nll: eval.map(|e| e.test_nll),
            validation_error: eval.and_then(|e| e.validation_error),
            validation_perplexity: eval.and_then(|e| e.validation_perplexity),
            test_perplexity: eval.and_then(|e| e.test_perplexity),
            train_perplexity: train.perplexity,
            lr,
            samples_per_sec,
            seconds: generation.seconds(),
            eta_seconds: eta(chain, k, epoch + 1),
            gradient: train.gradient,
            time: Some(time),
            stage: stage.map(|(name, number)| Stage {
                number,
                name: name.into(),
            }),
        };
        let improved = match (
            trainer.selection(),
            eval.and_then(|e| e.validation_perplexity),
        ) {
            (Selection::BestValidation, Some(v)) if best.as_ref().is_none_or(|b| v < b.2) => {
                best = Some((eval_model, epoch + 1, v));
                true
            }
            (Selection::BestValidation, _) => false,
            (Selection::LastEpoch, _) => {
                last = Some(eval_model);
                false
            }
        };
        let closing = Instant::now();
        history.push(record.clone());
        chain.run_dir.write_metrics(history)?;
        // A new stage starts from the stage's model (FitNets drops its regressor) with an
        // optimizer of its own; the save below is already the new stage's.
        if stage.is_some() && epoch + 1 < epochs && experiment.stage_of(k, epoch + 1) != stage {
            model = trainer.next_stage(k, model);
            optimizer = trainer.new_optimizer();
        }
        // The epoch's record first, then what resuming after it needs: a kill in between
        // repeats the epoch, never skips it.
        if epoch + 1 < epochs {
            let point = ResumePoint {
                epoch: epoch + 1,
                best: best.as_ref().map(|(_, e, v)| (*e, *v)),
                within: None,
            };
            let new_best = best.as_ref().filter(|_| improved).map(|(m, _, _)| m);
            resume::save(chain.run_dir, k, &point, &model, &optimizer, new_best)?;
            last_save = Instant::now();
        }
        closing_writes = closing.elapsed().as_secs_f64();
        emit(Event::Epoch(record));
    }
    let (model, best_epoch) = match (best, last) {
        (Some((model, epoch, _)), _) => (model, Some(epoch)),
        (None, Some(model)) => (model, None),
        (None, None) => bail!(
            "{}: no epoch had a validation perplexity to select by",
            generation_label(k)
        ),
    };
    Ok(Some(Trained {
        model,
        best_epoch,
        train_seconds: generation.seconds(),
    }))
}

/// Trains `epoch` (0-based) of a generation from its first batch, or from the save `start`
/// within it. Between batches it reports progress, follows pause and stop, and saves when the
/// save interval has passed; stopped, it saves where it is and returns `None`. Otherwise it
/// returns the trained model, the epoch's training and its samples per second.
#[allow(clippy::too_many_arguments)]
fn train_epoch<T: Trainer>(
    generation: &Generation<T>,
    epoch: usize,
    lr: f64,
    mut model: T::Model,
    optimizer: &mut ModuleOptimizer,
    best: Option<(usize, f64)>,
    start: Option<WithinEpoch>,
    last_save: &mut Instant,
    emit: &mut dyn FnMut(Event),
) -> Result<Option<(T::Model, EpochTrain, f64)>> {
    let Generation { chain, k, .. } = *generation;
    let trainer = chain.trainer;
    let batches = trainer.epoch_batches(k, epoch);
    let (first, mut sums, mut carry, mut gradient) = match start {
        Some(w) => (
            w.batches,
            w.sums,
            trainer.load_carry(&w.carry, &generation.train_device)?,
            w.gradient.map(|g| {
                let len = g.len();
                Tensor::<1>::from_data(TensorData::new(g, [len]), &generation.train_device)
            }),
        ),
        None => (0, EpochSums::default(), T::Carry::default(), None),
    };
    let samples_before = sums.samples;
    let epoch_started = Instant::now();
    // Of the samples this process trained (none when a save after the last batch resumes).
    let samples_per_sec = |sums: &EpochSums| match sums.samples - samples_before {
        0 => 0.0,
        n => n as f64 / epoch_started.elapsed().as_secs_f64(),
    };
    let mut last_progress = Instant::now();
    let mut time = EpochTime::default();
    let mut paused_seconds = 0.0;
    for (b, batch) in batches.iter().enumerate().skip(first) {
        // Each batch draws from a seed of its own, so a run resumed at any batch draws what
        // an uninterrupted one does.
        let seed = seeds::batch_seed(generation.seed, epoch, b);
        chain.device.seed(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let step_started = Instant::now();
        let (next, step) = trainer.train_batch(
            k,
            epoch,
            batch,
            &generation.train_device,
            model,
            optimizer,
            generation.teacher,
            lr,
            &mut rng,
            &mut carry,
        )?;
        model = next;
        let step_seconds = step_started.elapsed().as_secs_f64();
        time.data += step.data_seconds;
        time.teacher += step.teacher_seconds;
        time.steps += (step_seconds - step.data_seconds - step.teacher_seconds).max(0.0);
        if !step.loss.is_finite() {
            bail!(
                "{}",
                crate::events::non_finite_loss_message(
                    trainer.experiment(),
                    k,
                    epoch + 1,
                    lr,
                    step.loss
                )
            );
        }
        sums.add(step.sums);
        gradient = match (gradient, step.gradient) {
            (Some(total), Some(batch)) => Some(total + batch),
            (total, batch) => total.or(batch),
        };
        let done = b + 1;
        let mut stop = chain.control.stopping();
        if !stop && last_progress.elapsed() > Duration::from_millis(250) {
            last_progress = Instant::now();
            let progress = Progress {
                generation: k,
                epoch: epoch + 1,
                batch: done,
                batches: batches.len(),
                samples_per_sec: samples_per_sec(&sums),
                paused: false,
            };
            let waiting = Instant::now();
            stop = wait_while_paused(chain, &progress, emit);
            paused_seconds += waiting.elapsed().as_secs_f64();
            if !stop {
                emit(Event::Progress(progress));
            }
        }
        // After the last batch the epoch's own save follows at once, unless stopped.
        let due = done < batches.len() && last_save.elapsed() >= chain.control.save_every();
        if stop || due {
            let point = ResumePoint {
                epoch,
                best,
                within: Some(WithinEpoch {
                    batches: done,
                    sums,
                    seconds: generation.seconds(),
                    carry: trainer.save_carry(&carry)?,
                    gradient: gradient.clone().map(read_floats).transpose()?,
                }),
            };
            let saving = Instant::now();
            resume::save(chain.run_dir, k, &point, &model, optimizer, None)?;
            time.writes += saving.elapsed().as_secs_f64();
            *last_save = Instant::now();
        }
        if stop {
            emit(Event::log(format!(
                "saved {} at epoch {}, batch {done} of {}",
                generation_label(k),
                epoch + 1,
                batches.len()
            )));
            return Ok(None);
        }
    }
    let gradient = match gradient {
        Some(total) => GradientSplit::from_sums(&read_floats(total)?),
        None => None,
    };
    Ok(Some((
        model,
        EpochTrain {
            gradient,
            time,
            paused_seconds,
            ..EpochTrain::from_sums(sums)
        },
        samples_per_sec(&sums),
    )))
}

fn read_floats(t: Tensor<1>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("the gradient split does not read as f32: {e:?}"))
}

/// Follows the run directory's control file (and the process's own stop request): while it
/// says pause, reports a paused progress and waits. Returns whether to stop.
fn wait_while_paused<T: Trainer>(
    chain: &Chain<T>,
    progress: &Progress,
    emit: &mut dyn FnMut(Event),
) -> bool {
    let mut announced = false;
    loop {
        match chain.run_dir.requested() {
            Request::Stop => {
                chain.control.request_stop();
            }
            Request::Pause => chain.control.set_paused(true),
            Request::Run => chain.control.set_paused(false),
        }
        if chain.control.stopping() {
            return true;
        }
        if !chain.control.paused() {
            if announced {
                emit(Event::log("resumed"));
            }
            return false;
        }
        if !announced {
            announced = true;
            emit(Event::log("paused"));
            emit(Event::Progress(Progress {
                paused: true,
                ..progress.clone()
            }));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Seconds left in the run, from the pace so far (all epochs cost about the same).
fn eta<T: Trainer>(chain: &Chain<T>, generation: usize, epochs_done: usize) -> f64 {
    let experiment = chain.trainer.experiment();
    let total = experiment.epochs_before(experiment.students() + 1);
    let done = experiment.epochs_before(generation) + epochs_done;
    let elapsed = chain.started.elapsed().as_secs_f64();
    // Resumed epochs took no time in this process: count only epochs run here.
    let run_here = done.saturating_sub(chain.resumed_epochs.get());
    if run_here == 0 {
        0.0
    } else {
        elapsed / run_here as f64 * (total - done) as f64
    }
}

/// Every ensemble of the experiment whose members have all finished.
fn evaluate_ensembles<T: Trainer>(
    trainer: &T,
    run_dir: &RunDir,
    results: &Results,
) -> Result<Vec<EnsembleResult>> {
    let experiment = trainer.experiment();
    let done: Vec<usize> = results.generations.iter().map(|g| g.generation).collect();
    let mut out = Vec::new();
    for e in experiment.ensembles() {
        if !e.members.iter().all(|m| done.contains(m)) {
            continue;
        }
        let members: Vec<Vec<f32>> = e
            .members
            .iter()
            .map(|&m| run_dir.read_outputs(results.task, m, trainer.output_len()))
            .collect::<Result<_>>()?;
        out.push(EnsembleResult {
            metrics: trainer.ensemble_scores(&members, e.average),
            paper: experiment.paper(&e.name),
            name: e.name,
            members: e.members,
            average: e.average,
        });
    }
    Ok(out)
}

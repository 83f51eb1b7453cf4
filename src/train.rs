//! The generation loop, top to bottom: load data, then for each generation k = 0..=count train a
//! freshly initialised network (generation 0 on labels, generation k with its control from
//! generation k-1), save its checkpoint and test logits, and update results and ensembles.
//!
//! This runs on the worker thread, which owns burn; its driver hears from it only through
//! [`Event`]s and reads the run directory.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::{Int, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::arch::{self, Shape};
use crate::data::{self, Augment, Batcher, Dataset, ImageSet, Normalization};
use crate::device::DeviceChoice;
use crate::distill;
use crate::ensemble::{self, Logits};
use crate::events::{
    EnsembleResult, EpochRecord, Event, GenerationResult, Results, RunState, generation_label,
};
use crate::models::Classifier;
use crate::run_dir::{RunDir, TestLabels};
use crate::spec::{Cifar100Labels, Control, DataSource, Schedule, Spec};
use crate::worker::RunControl;

/// The data one run trains and evaluates on, after subsets and the validation split.
#[derive(Clone)]
pub struct RunData {
    pub name: String,
    pub class_names: Vec<String>,
    pub train: ImageSet,
    pub validation: Option<ImageSet>,
    pub test: ImageSet,
    pub shape: Shape,
}

/// Loads the spec's dataset and applies its subsets and validation split.
pub fn load_data(spec: &Spec) -> Result<RunData> {
    let d = &spec.data;
    let path = || d.path.clone().expect("validated: this source has a path");
    let source = match d.source {
        DataSource::Embedded => data::Source::Embedded,
        DataSource::Idx => data::Source::Idx {
            dir: d.path.clone().or_else(data::default_idx_dir).context(
                "data.source = \"idx\" needs `path = \"DIR\"` (/usr/share/datasets/fashion-mnist does not exist here)",
            )?,
        },
        DataSource::Cifar10 => data::Source::Cifar10 { dir: path() },
        DataSource::Cifar100 => data::Source::Cifar100 { dir: path(), coarse: d.labels == Cifar100Labels::Coarse },
    };
    let Dataset {
        name,
        num_classes,
        class_names,
        mut train,
        mut test,
    } = data::load(&source)?;
    if let Some(n) = d.train_samples {
        train = train
            .balanced_subset(n, num_classes)
            .context("data.train_samples")?;
    }
    if let Some(n) = d.test_samples {
        test = test
            .balanced_subset(n, num_classes)
            .context("data.test_samples")?;
    }
    let validation = if d.validation_samples > 0 {
        let (rest, validation) = train
            .split_validation(d.validation_samples, num_classes, spec.seed)
            .context("data.validation_samples")?;
        train = rest;
        Some(validation)
    } else {
        None
    };
    let shape = Shape {
        channels: train.channels,
        height: train.height,
        width: train.width,
        classes: num_classes,
    };
    Ok(RunData {
        name,
        class_names,
        train,
        validation,
        test,
        shape,
    })
}

/// Everything a generation needs that does not change between generations.
struct Shared<'a> {
    spec: &'a Spec,
    data: &'a RunData,
    batcher: Batcher,
    device: Device,
    run_dir: &'a RunDir,
    control: &'a RunControl,
    started: Instant,
    /// Epochs of generations a resumed run found finished (not timed by this process).
    resumed_epochs: usize,
}

/// Runs (or resumes) the spec's chain of generations into `run_dir`.
pub fn run(
    spec: &Spec,
    data: &RunData,
    device_choice: DeviceChoice,
    run_dir: &RunDir,
    control: &RunControl,
    emit: &mut dyn FnMut(Event),
) -> Result<Results> {
    let device = device_choice.open().map_err(anyhow::Error::msg)?;
    run_dir.write_labels(&TestLabels {
        dataset: data.name.clone(),
        class_names: data.class_names.clone(),
        labels: data.test.labels.clone(),
    })?;
    // A resumed run keeps the generations it already finished, in order from the teacher.
    let mut results = run_dir.results()?.unwrap_or_else(|| Results {
        name: spec.name.clone(),
        dataset: data.name.clone(),
        test_samples: data.test.len(),
        device: device_choice.to_string(),
        state: RunState::Running,
        generations: Vec::new(),
        ensembles: Vec::new(),
    });
    let finished = run_dir.finished_generations(
        results.generations.iter().map(|g| g.generation),
        RunDir::logits_path,
    );
    results.generations.truncate(finished);
    results.device = device_choice.to_string();
    results.state = RunState::Running;
    let mut history: Vec<EpochRecord> = run_dir.metrics()?;
    history.retain(|r| r.generation < finished);
    let augment = Augment {
        crop_padding: spec.data.crop_padding,
        horizontal_flip: spec.data.horizontal_flip,
    };
    let ctx = Shared {
        spec,
        data,
        batcher: Batcher {
            normalization: Normalization::from_images(&data.train),
            augment,
        },
        device,
        run_dir,
        control,
        started: Instant::now(),
        resumed_epochs: finished * spec.schedule.epochs,
    };

    emit(Event::Started {
        name: spec.name.clone(),
        dataset: data.name.clone(),
        device: device_choice.to_string(),
        generations: spec.generations.count + 1,
        epochs: spec.schedule.epochs,
        batches_per_epoch: data.train.len().div_ceil(spec.schedule.batch_size),
        resumed: (0..finished).collect(),
    });

    let mut teacher: Option<Classifier> = None;
    for k in 0..=spec.generations.count {
        if k < finished {
            // Only the last finished generation is needed, as the next one's teacher.
            if k + 1 == finished && k < spec.generations.count {
                let model = Classifier::new(spec.model_of(k), data.shape, &ctx.device);
                teacher = Some(load_checkpoint(model, &run_dir.checkpoint_path(k))?.valid());
            }
            continue;
        }
        let trained =
            train_generation(&ctx, k, teacher.as_ref(), &mut history, emit).inspect_err(|_| {
                results.state = RunState::Failed;
                let _ = run_dir.write_results(&results, spec);
            })?;
        let Some((model, train_seconds)) = trained else {
            results.state = RunState::Stopped;
            run_dir.write_results(&results, spec)?;
            emit(Event::Log(format!(
                "stopped during {}; finished generations are saved",
                generation_label(k)
            )));
            emit(Event::Ended(results.clone()));
            return Ok(results);
        };

        // Save the generation: checkpoint, test logits, then the results that point at them.
        let eval_model = model.valid();
        let logits = predict(
            &eval_model,
            &ctx.batcher,
            &data.test,
            spec.schedule.batch_size,
            &ctx.device,
        );
        run_dir.write_logits(k, &logits)?;
        save_checkpoint(model, &run_dir.checkpoint_path(k))?;
        let label = generation_label(k);
        let generation = GenerationResult {
            generation: k,
            model: spec.model_of(k).to_string(),
            control: if k == 0 {
                "labels".into()
            } else {
                spec.generations.control_of(k).name()
            },
            parameters: arch::parameter_count(spec.model_of(k), data.shape),
            train_seconds,
            metrics: ensemble::metrics(&logits.probabilities(), logits.classes, &data.test.labels),
            paper_error: spec.paper.get(&label).copied(),
            label,
        };
        results.generations.push(generation.clone());
        results.ensembles = evaluate_ensembles(spec, run_dir, &results, data)?;
        run_dir.write_results(&results, spec)?;
        emit(Event::GenerationDone {
            generation,
            ensembles: results.ensembles.clone(),
        });
        teacher = Some(eval_model);
    }
    results.state = RunState::Finished;
    run_dir.write_results(&results, spec)?;
    emit(Event::Ended(results.clone()));
    Ok(results)
}

/// Writes a generation's checkpoint (burnpack), replacing an older file.
pub(crate) fn save_checkpoint<M: Module>(model: M, path: &Path) -> Result<()> {
    let _ = std::fs::remove_file(path);
    model
        .save_file(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot save checkpoint: {e:?}", path.display()))
}

/// `model`, built with the checkpoint's architecture, with the checkpoint's parameters.
pub(crate) fn load_checkpoint<M: Module>(model: M, path: &Path) -> Result<M> {
    model
        .try_load_file(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot load checkpoint: {e:?}", path.display()))
}

/// Trains generation `k` for the whole schedule. `None` when the run was stopped.
fn train_generation(
    ctx: &Shared,
    k: usize,
    teacher: Option<&Classifier>,
    history: &mut Vec<EpochRecord>,
    emit: &mut dyn FnMut(Event),
) -> Result<Option<(Classifier, f64)>> {
    let spec = ctx.spec;
    let schedule = &spec.schedule;
    let control = if k == 0 {
        Control::Label
    } else {
        spec.generations.control_of(k)
    };
    if control.needs_teacher() && teacher.is_none() {
        bail!("generation {k} needs generation {} as its teacher", k - 1);
    }

    // A fresh initialisation from this generation's own seed.
    let seed = spec.seed.wrapping_add(k as u64);
    ctx.device.seed(seed);
    let train_device = ctx.device.clone().autodiff();
    let mut model = Classifier::new(spec.model_of(k), ctx.data.shape, &train_device);
    if spec.generations.share_teacher_layers
        && let Some(teacher) = teacher
    {
        model = model.with_shared(teacher, &train_device).with_context(|| {
            format!(
                "{} sharing {}'s first conv and output layer",
                spec.model_of(k),
                spec.model_of(k - 1)
            )
        })?;
    }
    let mut optimizer = sgd(schedule);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    emit(Event::GenerationStarted {
        generation: k,
        model: spec.model_of(k).to_string(),
        control: control.name(),
        parameters: arch::parameter_count(spec.model_of(k), ctx.data.shape),
    });

    let train = &ctx.data.train;
    let batches = train.len().div_ceil(schedule.batch_size);
    let started = Instant::now();
    for epoch in 0..schedule.epochs {
        let lr = schedule.lr_at(epoch);
        let epoch_started = Instant::now();
        let (mut loss_sum, mut wrong, mut seen) = (0f64, 0usize, 0usize);
        let mut last_progress = Instant::now();
        let order = data::epoch_order(train.len(), seed, epoch);
        for (b, indices) in order.chunks(schedule.batch_size).enumerate() {
            if ctx.control.wait_if_paused() {
                return Ok(None);
            }
            // Batch norm cannot normalise a batch of one.
            if indices.len() < 2 {
                continue;
            }
            let (images, labels) =
                images_and_labels(&ctx.batcher, train, indices, Some(&mut rng), &train_device);
            let (next, batch_loss, correct) = train_step(
                model,
                &mut optimizer,
                images,
                labels,
                teacher,
                control,
                lr,
                &mut rng,
            );
            model = next;
            if !batch_loss.is_finite() {
                bail!(
                    "{}: the training loss became {batch_loss} at epoch {}; lower schedule.lr",
                    generation_label(k),
                    epoch + 1
                );
            }
            loss_sum += batch_loss as f64 * indices.len() as f64;
            wrong += indices.len() - correct;
            seen += indices.len();
            if last_progress.elapsed() > Duration::from_millis(250) {
                last_progress = Instant::now();
                emit(Event::Progress {
                    generation: k,
                    epoch: epoch + 1,
                    batch: b + 1,
                    batches,
                    images_per_sec: seen as f64 / epoch_started.elapsed().as_secs_f64(),
                });
            }
        }
        let images_per_sec = seen as f64 / epoch_started.elapsed().as_secs_f64();

        let eval_model = model.valid();
        let test_logits = predict(
            &eval_model,
            &ctx.batcher,
            &ctx.data.test,
            schedule.batch_size,
            &ctx.device,
        );
        let test = ensemble::metrics(
            &test_logits.probabilities(),
            test_logits.classes,
            &ctx.data.test.labels,
        );
        let validation_error = ctx.data.validation.as_ref().map(|v| {
            let logits = predict(
                &eval_model,
                &ctx.batcher,
                v,
                schedule.batch_size,
                &ctx.device,
            );
            ensemble::metrics(&logits.probabilities(), logits.classes, &v.labels).top1_error
        });
        let record = EpochRecord {
            generation: k,
            epoch: epoch + 1,
            epochs: schedule.epochs,
            train_loss: loss_sum / seen.max(1) as f64,
            train_error: 100.0 * wrong as f64 / seen.max(1) as f64,
            test_error: test.top1_error,
            test_nll: test.nll,
            validation_error,
            lr,
            images_per_sec,
            seconds: started.elapsed().as_secs_f64(),
            eta_seconds: eta(ctx, k, epoch + 1),
        };
        history.push(record.clone());
        ctx.run_dir.write_metrics(history)?;
        emit(Event::Epoch(record));
    }
    Ok(Some((model, started.elapsed().as_secs_f64())))
}

/// SGD as the spec describes it; dampening is explicit because burn's default (0.1) is not
/// PyTorch's or the paper's (0).
pub fn sgd(schedule: &Schedule) -> ModuleOptimizer {
    SgdConfig::new()
        .with_momentum((schedule.momentum > 0.0).then_some(MomentumConfig {
            momentum: schedule.momentum,
            dampening: schedule.dampening,
            nesterov: schedule.nesterov,
        }))
        .with_weight_decay(
            (schedule.weight_decay > 0.0)
                .then(|| WeightDecayConfig::new(schedule.weight_decay as f32)),
        )
        .init()
}

/// One SGD step of a student on one batch; returns the updated model, the batch loss and how
/// many predictions were right.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    model: Classifier,
    optimizer: &mut ModuleOptimizer,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    teacher: Option<&Classifier>,
    control: Control,
    lr: f64,
    rng: &mut ChaCha8Rng,
) -> (Classifier, f32, usize) {
    let batch = labels.dims()[0];
    // The teacher runs in eval mode without autodiff; its logits enter the loss as constants.
    let teacher_logits = teacher.map(|t| t.forward(images.clone().without_autodiff()));
    let logits = model.forward(images);
    let predictions = logits.clone().argmax(1).reshape([batch]);
    let loss = distill::loss(control, logits, teacher_logits, labels.clone(), rng);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let model = optimizer.step(lr, model, grads);
    let correct: i64 = predictions.equal(labels).int().sum().into_scalar();
    (model, loss.into_scalar(), correct as usize)
}

/// Seconds left in the run, from the pace so far (epochs of all generations cost about the same).
fn eta(ctx: &Shared, generation: usize, epochs_done: usize) -> f64 {
    let per_gen = ctx.spec.schedule.epochs;
    let total = (ctx.spec.generations.count + 1) * per_gen;
    let done = generation * per_gen + epochs_done;
    let elapsed = ctx.started.elapsed().as_secs_f64();
    // Resumed generations took no time in this process: count only epochs run here.
    let run_here = done.saturating_sub(ctx.resumed_epochs);
    if run_here == 0 {
        0.0
    } else {
        elapsed / run_here as f64 * (total - done) as f64
    }
}

/// A batch as tensors on `device`: normalised images and labels.
pub fn images_and_labels(
    batcher: &Batcher,
    set: &ImageSet,
    indices: &[usize],
    rng: Option<&mut ChaCha8Rng>,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>) {
    let (pixels, labels) = batcher.batch(set, indices, rng);
    let n = indices.len();
    let images = Tensor::from_data(
        TensorData::new(pixels, [n, set.channels, set.height, set.width]),
        device,
    );
    let labels = Tensor::from_data(TensorData::new(labels, [n]), device);
    (images, labels)
}

/// Logits of every image of `set`, in eval mode on the plain (no autodiff) device.
pub fn predict(
    model: &Classifier,
    batcher: &Batcher,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> Logits {
    let all: Vec<usize> = (0..set.len()).collect();
    let mut values = Vec::new();
    let mut classes = 0;
    for indices in all.chunks(batch_size.max(256)) {
        let (images, _) = images_and_labels(batcher, set, indices, None, device);
        let logits = model.forward(images);
        classes = logits.dims()[1];
        values.extend(
            logits
                .into_data()
                .try_into_vec::<f32>()
                .expect("logits are f32"),
        );
    }
    Logits { classes, values }
}

/// Every ensemble of the spec whose members have all finished.
fn evaluate_ensembles(
    spec: &Spec,
    run_dir: &RunDir,
    results: &Results,
    data: &RunData,
) -> Result<Vec<EnsembleResult>> {
    let done: Vec<usize> = results.generations.iter().map(|g| g.generation).collect();
    let mut out = Vec::new();
    for e in spec.ensembles() {
        if !e.members.iter().all(|m| done.contains(m)) {
            continue;
        }
        let members: Vec<Logits> = e
            .members
            .iter()
            .map(|&m| run_dir.read_logits(m, data.shape.classes, data.test.len()))
            .collect::<Result<_>>()?;
        let refs: Vec<&Logits> = members.iter().collect();
        let probs = ensemble::ensemble_probabilities(&refs, e.average);
        out.push(EnsembleResult {
            metrics: ensemble::metrics(&probs, data.shape.classes, &data.test.labels),
            paper_error: spec.paper.get(&e.name).copied(),
            name: e.name,
            members: e.members,
            average: e.average,
        });
    }
    Ok(out)
}

//! Image classification as a chain task: the data (subsets, validation split, augmentation),
//! the classifiers, one SGD epoch with the generation's control, and test logits with top-1 /
//! top-5 error, NLL and ECE. The generation loop itself is `crate::chain`'s.

use anyhow::{Context, Result};
use std::time::Instant;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::{Int, TensorData};
use rand_chacha::ChaCha8Rng;

use crate::agreement::Agreement;
use crate::arch::{self, Shape};
use crate::chain::{BatchTrain, EpochEval, Selection, Trainer};
use crate::data::{self, Augment, Batcher, Dataset, ImageSet, Normalization};
use crate::distill;
use crate::ensemble::{self, Logits};
use crate::experiment::Experiment;
use crate::models::Classifier;
use crate::run_dir::records::{EpochRecord, Scores};
use crate::run_dir::{EpochSums, RunDir, TestLabels};
use crate::spec::{Averaging, Cifar100Labels, Control, DataSource, FirstStage, Schedule, Spec};
use crate::task::first_stage::first_stage_step;

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
    // What the networks cannot take is the data's problem, named by its file.
    data::check_models(&source, shape, &[&spec.teacher, spec.student()])?;
    Ok(RunData {
        name,
        class_names,
        train,
        validation,
        test,
        shape,
    })
}

/// A vision chain: its spec, its data and how batches are made from it.
pub struct VisionTrainer {
    experiment: Experiment,
    data: RunData,
    batcher: Batcher,
}

impl VisionTrainer {
    pub fn new(spec: &Spec, data: RunData) -> VisionTrainer {
        let batcher = Batcher {
            normalization: Normalization::from_images(&data.train),
            augment: Augment {
                crop_padding: spec.data.crop_padding,
                horizontal_flip: spec.data.horizontal_flip,
            },
        };
        VisionTrainer {
            experiment: Experiment::Vision(Box::new(spec.clone())),
            data,
            batcher,
        }
    }

    /// The data as `check` describes it.
    pub fn summary(&self) -> String {
        let d = &self.data;
        format!(
            "{}: {} train, {} validation, {} test, {} classes, {}x{}x{}",
            d.name,
            d.train.len(),
            d.validation.as_ref().map_or(0, |v| v.len()),
            d.test.len(),
            d.shape.classes,
            d.shape.channels,
            d.shape.height,
            d.shape.width
        )
    }

    fn spec(&self) -> &Spec {
        match &self.experiment {
            Experiment::Vision(spec) => spec,
            Experiment::Language(_) => unreachable!("a vision trainer holds a vision spec"),
        }
    }

    fn control_of(&self, k: usize) -> Control {
        if k == 0 {
            Control::Label
        } else {
            self.spec().generations.control_of(k)
        }
    }

    /// Generation `k`'s first stage, for a two-stage control.
    fn first_stage(&self, k: usize) -> Option<FirstStage> {
        self.control_of(k).first_stage()
    }

    fn logits(&self, model: &Classifier, set: &ImageSet, device: &Device) -> Logits {
        predict(
            model,
            &self.batcher,
            set,
            self.spec().schedule.batch_size,
            device,
        )
    }
}

impl VisionTrainer {
    /// Refuses a chain whose models and batch need more than `free` bytes (an estimate).
    pub fn check_memory(&self, free: u64) -> Result<(), String> {
        arch::check_chain_memory(self.spec(), self.data.shape, self.data.train.len(), free)
    }
}

impl Trainer for VisionTrainer {
    type Model = Classifier;
    type Batch = Vec<usize>;
    type Carry = ();

    fn experiment(&self) -> &Experiment {
        &self.experiment
    }
    fn dataset(&self) -> String {
        self.data.name.clone()
    }
    fn test_samples(&self) -> usize {
        self.data.test.len()
    }
    fn evaluated_samples(&self) -> usize {
        self.data.test.len() + self.data.validation.as_ref().map_or(0, |v| v.len())
    }
    fn output_len(&self) -> usize {
        self.data.test.len() * self.data.shape.classes
    }
    fn batches_per_epoch(&self) -> usize {
        self.data
            .train
            .len()
            .div_ceil(self.spec().schedule.batch_size)
    }
    fn selection(&self) -> Selection {
        Selection::LastEpoch
    }

    fn prepare(&self, run_dir: &RunDir) -> Result<Vec<String>> {
        run_dir.write_labels(&TestLabels {
            dataset: self.data.name.clone(),
            class_names: self.data.class_names.clone(),
            labels: self.data.test.labels.clone(),
        })?;
        Ok(Vec::new())
    }

    fn parameters(&self, k: usize) -> usize {
        arch::parameter_count(self.spec().model_of(k), self.data.shape)
    }

    fn new_model(
        &self,
        k: usize,
        epoch: usize,
        device: &Device,
        teacher: Option<&Classifier>,
    ) -> Result<Classifier> {
        let spec = self.spec();
        let mut model = Classifier::new(spec.model_of(k), self.data.shape, device);
        // FitNets' student carries its regressor until its hint stage is over.
        if let (Control::Fitnets { fitnets, .. }, Some((_, 1))) =
            (self.control_of(k), self.experiment.stage_of(k, epoch))
        {
            let [guided, hint] = [
                (spec.model_of(k), fitnets.guided),
                (spec.model_of(k - 1), fitnets.hint),
            ]
            .map(|(model, n)| arch::sections(model, self.data.shape)[n - 1].last);
            model = model.with_regressor(Some(crate::models::hint_regressor(guided, hint, device)));
        }
        match teacher {
            Some(teacher) if spec.generations.share_teacher_layers => {
                model.with_shared(teacher, device).with_context(|| {
                    format!(
                        "{} sharing {}'s first conv and output layer",
                        spec.model_of(k),
                        spec.model_of(k - 1)
                    )
                })
            }
            _ => Ok(model),
        }
    }

    fn next_stage(&self, _k: usize, model: Classifier) -> Classifier {
        model.with_regressor(None)
    }

    fn new_optimizer(&self) -> ModuleOptimizer {
        sgd(&self.spec().schedule)
    }

    fn learning_rate(&self, k: usize, epoch: usize, _earlier: &[EpochRecord]) -> f64 {
        self.spec().lr_of(k, epoch)
    }

    fn epoch_batches(&self, k: usize, epoch: usize) -> Vec<Vec<usize>> {
        let seed = crate::seeds::generation_seed(self.spec().seed, k);
        data::epoch_order(self.data.train.len(), seed, epoch)
            .chunks(self.spec().schedule.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }

    fn train_batch(
        &self,
        k: usize,
        epoch: usize,
        indices: &Vec<usize>,
        device: &Device,
        model: Classifier,
        optimizer: &mut ModuleOptimizer,
        teacher: Option<&Classifier>,
        lr: f64,
        rng: &mut ChaCha8Rng,
        _carry: &mut (),
    ) -> Result<(Classifier, BatchTrain)> {
        // Batch norm cannot normalise a batch of one: the epoch's last such batch is skipped.
        if indices.len() < 2 {
            let skipped = BatchTrain {
                loss: 0.0,
                sums: EpochSums::default(),
                gradient: None,
                data_seconds: 0.0,
                teacher_seconds: 0.0,
            };
            return Ok((model, skipped));
        }
        let data_started = Instant::now();
        let (images, labels) =
            images_and_labels(&self.batcher, &self.data.train, indices, Some(rng), device);
        let data_seconds = data_started.elapsed().as_secs_f64();
        let control = self.control_of(k);
        let step = match (self.experiment.stage_of(k, epoch), teacher) {
            (Some((_, 1)), Some(teacher)) => {
                first_stage_step(model, optimizer, images, labels, teacher, control, lr)
            }
            _ => {
                // Through the schedule's epochs, for FitNets' lambda.
                let done = epoch - self.first_stage(k).map_or(0, |s| s.epochs);
                let progress = done as f64 / (self.spec().schedule.epochs - 1).max(1) as f64;
                let control = StepControl { control, progress };
                train_step(model, optimizer, images, labels, teacher, control, lr, rng)
            }
        };
        let sums = EpochSums {
            loss: step.loss as f64 * indices.len() as f64,
            label_nll: None,
            wrong: indices.len() - step.correct,
            samples: indices.len(),
        };
        let train = BatchTrain {
            loss: step.loss,
            sums,
            gradient: step.gradient,
            data_seconds,
            teacher_seconds: step.teacher_seconds,
        };
        Ok((step.model, train))
    }

    fn save_carry(&self, _carry: &()) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }

    fn load_carry(&self, _saved: &serde_json::Value, _device: &Device) -> Result<()> {
        Ok(())
    }

    fn evaluates(&self, k: usize, epoch: usize) -> bool {
        let every = self.spec().schedule.evaluate_every.max(1);
        (epoch + 1).is_multiple_of(every) || epoch + 1 == self.spec().epochs_of(k)
    }

    fn evaluate_epoch(&self, model: &Classifier, device: &Device) -> Result<EpochEval> {
        let test = self.logits(model, &self.data.test, device);
        let test = ensemble::metrics(&test.probabilities(), test.classes, &self.data.test.labels);
        let validation_error = self.data.validation.as_ref().map(|v| {
            let logits = self.logits(model, v, device);
            ensemble::metrics(&logits.probabilities(), logits.classes, &v.labels).top1_error
        });
        Ok(EpochEval {
            test_error: test.top1_error,
            test_nll: test.nll,
            validation_error,
            ..EpochEval::default()
        })
    }

    fn test_outputs(&self, model: &Classifier, device: &Device) -> Result<(Vec<f32>, Scores)> {
        let logits = self.logits(model, &self.data.test, device);
        let metrics = ensemble::metrics(
            &logits.probabilities(),
            logits.classes,
            &self.data.test.labels,
        );
        Ok((logits.values, metrics.into()))
    }

    fn agreement(&self, teacher: &[f32], student: &[f32]) -> Option<Agreement> {
        let classes = self.data.shape.classes;
        Agreement::of(teacher, student, classes, &self.data.test.labels).ok()
    }

    fn ensemble_scores(&self, members: &[Vec<f32>], average: Averaging) -> Scores {
        let classes = self.data.shape.classes;
        let logits: Vec<Logits> = members
            .iter()
            .map(|values| Logits {
                classes,
                values: values.clone(),
            })
            .collect();
        let refs: Vec<&Logits> = logits.iter().collect();
        let probs = ensemble::ensemble_probabilities(&refs, average);
        ensemble::metrics(&probs, classes, &self.data.test.labels).into()
    }
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

/// What one SGD step did.
pub struct Step {
    pub model: Classifier,
    /// The batch's mean loss.
    pub loss: f32,
    /// How many predictions were right.
    pub correct: usize,
    /// With a teacher: the batch's gradient-split sums at the control's temperature.
    pub gradient: Option<Tensor<1>>,
    /// Seconds of the teacher's forward pass (0 without one).
    pub teacher_seconds: f64,
}

/// A control as one step applies it: `progress` through the schedule's epochs (0 to 1) anneals
/// FitNets' lambda.
#[derive(Debug, Clone, Copy)]
pub struct StepControl {
    pub control: Control,
    pub progress: f64,
}

impl From<Control> for StepControl {
    fn from(control: Control) -> StepControl {
        StepControl {
            control,
            progress: 0.0,
        }
    }
}

/// One SGD step of a student on one batch, with a loss on the logits.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    model: Classifier,
    optimizer: &mut ModuleOptimizer,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    teacher: Option<&Classifier>,
    control: impl Into<StepControl>,
    lr: f64,
    rng: &mut ChaCha8Rng,
) -> Step {
    let StepControl { control, progress } = control.into();
    let batch = labels.dims()[0];
    // The teacher runs in eval mode without autodiff; its logits enter the loss as constants.
    // A student on labels alone (or FSP's after its stage) needs none.
    let teacher_started = Instant::now();
    let teacher_logits = teacher
        .filter(|_| control.reads_teacher_logits())
        .map(|t| t.forward(images.clone().without_autodiff()));
    let teacher_seconds = match teacher_logits {
        Some(_) => teacher_started.elapsed().as_secs_f64(),
        None => 0.0,
    };
    let logits = model.forward(images);
    let predictions = logits.clone().argmax(1).reshape([batch]);
    let gradient = match (&teacher_logits, control.temperature()) {
        (Some(t), Some(temperature)) => Some(distill::gradient_split_sums(
            logits.clone().detach(),
            t.clone(),
            labels.clone(),
            temperature,
        )),
        _ => None,
    };
    let loss = distill::loss(
        control,
        logits,
        teacher_logits,
        labels.clone(),
        rng,
        progress,
    );
    let mut step = sgd_step(model, optimizer, loss, predictions, labels, lr);
    step.gradient = gradient;
    step.teacher_seconds = teacher_seconds;
    step
}

/// The step itself, for every loss: backward, the optimiser's update, and how many of the
/// batch's `predictions` were right.
pub(super) fn sgd_step(
    model: Classifier,
    optimizer: &mut ModuleOptimizer,
    loss: Tensor<1>,
    predictions: Tensor<1, Int>,
    labels: Tensor<1, Int>,
    lr: f64,
) -> Step {
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let model = optimizer.step(lr, model, grads);
    let correct: i64 = predictions.equal(labels).int().sum().into_scalar();
    Step {
        model,
        loss: loss.into_scalar(),
        correct: correct as usize,
        gradient: None,
        teacher_seconds: 0.0,
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

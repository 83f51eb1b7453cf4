//! `banbench bench`: training and evaluation throughput of a preset's models on a device, on
//! real batches of the preset's data. Speed targets are checked here, never in tests.

use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::{Augment, Batcher, Normalization};
use crate::device::DeviceChoice;
use crate::models::Classifier;
use crate::spec::{Control, Spec};
use crate::task::vision::{self, RunData};

/// Images per second of one kind of step.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub what: String,
    pub images_per_sec: f64,
}

/// Warm-up batches before timing: LibTorch spends its first steps starting thread pools.
const WARM_UP: usize = 3;

/// Times `steps` batches (after a few warm-up batches) of: a label-trained step, a distillation
/// step with a teacher, and eval-mode inference.
pub fn run(
    spec: &Spec,
    data: &RunData,
    device: DeviceChoice,
    steps: usize,
) -> Result<Vec<Throughput>> {
    let device = device.open().map_err(anyhow::Error::msg)?;
    let batch = spec.schedule.batch_size.min(data.train.len());
    let batcher = Batcher {
        normalization: Normalization::from_images(&data.train),
        augment: Augment {
            crop_padding: spec.data.crop_padding,
            horizontal_flip: spec.data.horizontal_flip,
        },
    };
    let train_device = device.clone().autodiff();
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let indices: Vec<usize> = (0..batch).collect();
    let teacher = Classifier::new(&spec.teacher, data.shape, &device).valid();
    let mut out = Vec::new();
    for (what, control) in [
        ("train step, labels", Control::Label),
        (
            "train step, BAN (with teacher)",
            spec.generations.control_of(1),
        ),
    ] {
        let mut model = Classifier::new(spec.student(), data.shape, &train_device);
        let mut optimizer = vision::sgd(&spec.schedule);
        let mut started = Instant::now();
        for step in 0..WARM_UP + steps {
            if step == WARM_UP {
                started = Instant::now();
            }
            let (images, labels) = vision::images_and_labels(
                &batcher,
                &data.train,
                &indices,
                Some(&mut rng),
                &train_device,
            );
            let teacher = control.needs_teacher().then_some(&teacher);
            model = vision::train_step(
                model,
                &mut optimizer,
                images,
                labels,
                teacher,
                control,
                spec.schedule.lr,
                &mut rng,
            )
            .model;
        }
        out.push(Throughput {
            what: format!("{what}: {}", spec.student()),
            images_per_sec: (steps * batch) as f64 / started.elapsed().as_secs_f64(),
        });
    }
    let started = Instant::now();
    let logits = vision::predict(
        &teacher,
        &batcher,
        &data.test,
        spec.schedule.batch_size,
        &device,
    );
    out.push(Throughput {
        what: format!("inference (eval mode): {}", spec.teacher),
        images_per_sec: logits.samples() as f64 / started.elapsed().as_secs_f64(),
    });
    Ok(out)
}

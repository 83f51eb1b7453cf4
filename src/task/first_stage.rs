//! One SGD step of a two-stage control's first stage, on feature maps: FitNets' hint stage
//! (the student up to its guided section, through its regressor, towards the teacher's hint)
//! and FSP's (the student's FSP matrices towards the teacher's). Layers past the sections the
//! loss reads get no gradient, so the optimiser leaves them as they are.

use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use burn::tensor::Int;

use super::vision::{Step, sgd_step};
use crate::distill;
use crate::models::{Classifier, Section};
use crate::spec::Control;

/// One step of `control`'s first stage. The teacher's maps come from one forward pass without
/// autodiff, the student's from one forward pass that also gives the logits its training
/// error is counted from.
pub fn first_stage_step(
    model: Classifier,
    optimizer: &mut ModuleOptimizer,
    images: Tensor<4>,
    labels: Tensor<1, Int>,
    teacher: &Classifier,
    control: Control,
    lr: f64,
) -> Step {
    let batch = labels.dims()[0];
    let teacher_started = Instant::now();
    let (_, teacher_sections) = teacher.forward_with_sections(images.clone().without_autodiff());
    let teacher_seconds = teacher_started.elapsed().as_secs_f64();
    let (logits, sections) = model.forward_with_sections(images);
    let loss = match control {
        Control::Fitnets { fitnets, .. } => {
            let regressor = model
                .regressor()
                .expect("a FitNets student has its regressor through its hint stage");
            distill::hint_loss(
                teacher_sections[fitnets.hint - 1].last.clone(),
                regressor.forward(sections[fitnets.guided - 1].last.clone()),
            )
        }
        Control::Fsp { sections: set, .. } => {
            let chosen = set.resolve(teacher_sections.len().min(sections.len()));
            let flow = |of: &[Section]| -> Vec<Tensor<3>> {
                chosen
                    .iter()
                    .map(|&n| distill::fsp_matrix(of[n - 1].first.clone(), of[n - 1].last.clone()))
                    .collect()
            };
            distill::fsp_loss(&flow(&teacher_sections), &flow(&sections))
        }
        other => unreachable!("{} has no first stage", other.name()),
    };
    let predictions = logits.argmax(1).reshape([batch]);
    Step {
        teacher_seconds,
        ..sgd_step(model, optimizer, loss, predictions, labels, lr)
    }
}

//! Students that share their teacher's first conv and output layer, frozen (the BAN paper's
//! Table 5): the shared layers stay the teacher's through training, the rest learns, and
//! mismatching shapes are refused before training with both models and shapes named.

use std::collections::HashMap;
use std::path::Path;

use banbench::arch::Shape;
use banbench::models::Classifier;
use banbench::spec::{Control, ModelSpec, Overrides, ResidualUnit, Schedule, Spec};
use banbench::task::vision::{sgd, train_step};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use burn::tensor::{Int, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const CIFAR100: Shape = Shape {
    channels: 3,
    height: 8,
    width: 8,
    classes: 100,
};

/// Every float parameter's values by id.
fn values(model: &impl Module) -> HashMap<ParamId, Vec<f32>> {
    struct Collect(HashMap<ParamId, Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.insert(
                param.id,
                param
                    .val()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap(),
            );
        }
    }
    let mut collect = Collect(HashMap::new());
    model.visit(&mut collect);
    collect.0
}

fn densenet() -> ModelSpec {
    ModelSpec::DensenetBc {
        depth: 10,
        growth: 2,
        compression: 0.5,
        block_layers: vec![],
        stem: None,
    }
}

/// A bottleneck pre-activation ResNet (Table 5's students) with the shrunk DenseNet's
/// 4-channel stem and 4 features.
fn resnet() -> ModelSpec {
    ModelSpec::PreactResnet {
        depth: 11,
        width: 1,
        unit: ResidualUnit::Bottleneck,
        inner: vec![1, 2, 2],
        stem: Some(4),
        channels: vec![2, 3, 4],
        blocks: vec![],
    }
}

#[test]
fn shared_layers_stay_the_teachers_while_the_rest_learns() {
    let device = Device::flex();
    let train_device = device.clone().autodiff();
    let teacher = Classifier::new(&densenet(), CIFAR100, &device).valid();
    let student = Classifier::new(&resnet(), CIFAR100, &train_device)
        .with_shared(&teacher, &train_device)
        .unwrap();

    let teacher_values = values(&teacher);
    let shared_ids: Vec<ParamId> = {
        let conv = teacher.first_conv().unwrap();
        let output = teacher.output();
        [
            Some(conv.weight.id),
            conv.bias.as_ref().map(|b| b.id),
            Some(output.weight.id),
            output.bias.as_ref().map(|b| b.id),
        ]
        .into_iter()
        .flatten()
        .collect()
    };
    assert_eq!(
        shared_ids.len(),
        3,
        "a biasless conv, a linear layer with bias"
    );
    assert!(
        !student.first_conv().unwrap().weight.is_require_grad()
            && !student.output().weight.is_require_grad()
    );
    let before = values(&student);

    let schedule = Schedule {
        epochs: 1,
        batch_size: 4,
        lr: 0.5,
        momentum: 0.9,
        dampening: 0.0,
        nesterov: true,
        weight_decay: 5e-4,
        milestones: vec![],
        lr_factor: 0.2,
        evaluate_every: 1,
    };
    let mut optimizer = sgd(&schedule);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let images = Tensor::<4>::random(
        [4, 3, 8, 8],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &train_device,
    );
    let labels =
        Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3], [4]), &train_device);
    let control = Control::Ban { temperature: 1.0 };
    let step = train_step(
        student,
        &mut optimizer,
        images,
        labels,
        Some(&teacher),
        control,
        0.5,
        &mut rng,
    );
    let (student, loss) = (step.model, step.loss);
    assert!(loss.is_finite());

    let after = values(&student);
    for id in &shared_ids {
        assert_eq!(after[id], teacher_values[id], "a shared layer changed");
    }
    let changed = after
        .iter()
        .filter(|(id, v)| !shared_ids.contains(id) && before[*id] != **v)
        .count();
    assert!(changed > 0, "no unshared parameter learned");
}

#[test]
fn mismatching_layers_are_refused_naming_both_models_and_shapes() {
    let device = Device::flex();
    let teacher = Classifier::new(&densenet(), CIFAR100, &device).valid();
    let student = Classifier::new(&ModelSpec::preact_resnet(8, 1), CIFAR100, &device);
    let err = student
        .with_shared(&teacher, &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[4, 3, 3, 3] vs [16, 3, 3, 3]") && err.contains("[4, 100] vs [64, 100]"),
        "{err}"
    );

    let spec = |student: &str| {
        let toml = format!(
            "name = \"t\"\n[data]\nsource = \"embedded\"\n\
             [teacher]\narch = \"densenet-bc\"\ndepth = 90\ngrowth = 60\n[student]\n{student}\n\
             [schedule]\nepochs = 1\nbatch_size = 8\nlr = 0.1\n\
             [generations]\ncount = 1\ncontrol = \"ban\"\nshare_teacher_layers = true\n"
        );
        Spec::parse(&toml, Path::new("x.toml"), &Overrides::default())
    };
    let err = spec("arch = \"preact-resnet\"\ndepth = 8\nstem = 120").unwrap_err();
    assert_eq!(err.field, "generations.share_teacher_layers");
    assert_eq!(err.line, Some(19));
    assert_eq!(
        err.message,
        "the student PreAct-ResNet-8-1 stem=120 cannot share the first conv and output layer of its \
         teacher DenseNet-BC-90-60: the teacher has first conv 3x3 to 120 channels, output layer from \
         1500 features, the student first conv 3x3 to 120 channels, output layer from 64 features"
    );
    let err = spec("arch = \"mlp\"").unwrap_err();
    assert!(
        err.message.contains("MLP-256-128") && err.message.contains("no convolution"),
        "{}",
        err.message
    );
    // Table 5's shapes: the teacher's stem and feature width.
    spec(
        "arch = \"preact-resnet\"\nunit = \"bottleneck\"\ndepth = 128\nblocks = [14, 14, 14]\n\
         stem = 120\nchannels = [480, 660, 1500]\ninner = [120, 120, 120]",
    )
    .unwrap();
}

/// A student trained on labels alone runs no teacher forward pass (Table 5's baselines would
/// otherwise run a discarded DenseNet forward on every batch): a teacher that cannot even read
/// the images is never asked to.
#[test]
fn a_label_only_student_runs_no_teacher_forward() {
    let device = Device::flex();
    let train_device = device.clone().autodiff();
    let grey = Shape {
        channels: 1,
        ..CIFAR100
    };
    // The teacher expects 3 channels; the images have 1.
    let teacher = Classifier::new(&densenet(), CIFAR100, &device);
    let student = Classifier::new(&densenet(), grey, &train_device);
    let schedule = Schedule {
        epochs: 1,
        batch_size: 4,
        lr: 0.1,
        momentum: 0.0,
        dampening: 0.0,
        nesterov: false,
        weight_decay: 0.0,
        milestones: vec![],
        lr_factor: 0.2,
        evaluate_every: 1,
    };
    let images = Tensor::<4>::random(
        [4, 1, 8, 8],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &train_device,
    );
    let labels =
        Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3], [4]), &train_device);
    let step = train_step(
        student,
        &mut sgd(&schedule),
        images,
        labels,
        Some(&teacher),
        Control::Label,
        0.1,
        &mut ChaCha8Rng::seed_from_u64(1),
    );
    assert!(step.loss.is_finite());
    assert!(step.gradient.is_none(), "no teacher, no gradient split");
}

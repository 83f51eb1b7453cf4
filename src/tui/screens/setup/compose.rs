//! How the Setup screen composes an experiment: the ladders each field steps along (sources,
//! architectures and their sizes, controls, temperatures, subset sizes) and the edit one step
//! makes to a vision spec.

use crate::spec::{Cifar100Labels, ControlKind, DataSource, FitnetsSpec, FspSpec, ModelSpec, Spec};

use super::Field;

pub(super) const ARCHS: [&str; 5] = ["mlp", "cnn", "preact-resnet", "wide-resnet", "densenet-bc"];
pub(super) const CONTROLS: [ControlKind; 9] = [
    ControlKind::Ban,
    ControlKind::BanL,
    ControlKind::Cwtm,
    ControlKind::Dkpp,
    ControlKind::Kd,
    ControlKind::LogitsL2,
    ControlKind::Fitnets,
    ControlKind::Fsp,
    ControlKind::Label,
];
pub(super) const TEMPERATURES: [f64; 8] = [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0];
pub(super) const TRAIN_SAMPLES: [Option<usize>; 9] = [
    Some(200),
    Some(500),
    Some(1000),
    Some(2000),
    Some(5000),
    Some(10000),
    Some(20000),
    Some(50000),
    None,
];
pub(super) const SOURCES: [DataSource; 4] = [
    DataSource::Embedded,
    DataSource::Idx,
    DataSource::Cifar10,
    DataSource::Cifar100,
];

pub(super) fn arch_of(model: &ModelSpec) -> &'static str {
    match model {
        ModelSpec::Mlp { .. } => "mlp",
        ModelSpec::Cnn { .. } => "cnn",
        ModelSpec::PreactResnet { .. } => "preact-resnet",
        ModelSpec::WideResnet { .. } => "wide-resnet",
        ModelSpec::DensenetBc { .. } => "densenet-bc",
    }
}

/// The sizes offered for an architecture, smallest first (the papers' sizes among them).
pub(super) fn sizes(arch: &str) -> Vec<ModelSpec> {
    match arch {
        "mlp" => [vec![128], vec![256, 128], vec![512, 256], vec![1200, 1200]]
            .into_iter()
            .map(|hidden| ModelSpec::Mlp { hidden })
            .collect(),
        "cnn" => [4, 8, 12, 16, 32, 64]
            .into_iter()
            .map(|width| ModelSpec::Cnn { width })
            .collect(),
        "preact-resnet" => [8, 14, 20, 32, 56, 110]
            .into_iter()
            .map(|depth| ModelSpec::preact_resnet(depth, 1))
            .collect(),
        "wide-resnet" => [(10, 1), (16, 1), (16, 2), (16, 4), (28, 1), (28, 10)]
            .into_iter()
            .map(|(depth, widen)| ModelSpec::WideResnet {
                depth,
                widen,
                dropout: 0.3,
            })
            .collect(),
        _ => [(40, 12), (100, 12), (112, 33), (90, 60), (80, 80)]
            .into_iter()
            .map(|(depth, growth)| ModelSpec::DensenetBc {
                depth,
                growth,
                compression: 0.5,
                block_layers: Vec::new(),
                stem: None,
            })
            .collect(),
    }
}

/// Steps `index` by `delta` within `0..len`, stopping at the ends.
pub(super) fn step(index: usize, delta: i32, len: usize) -> usize {
    (index as i64 + i64::from(delta)).clamp(0, len.saturating_sub(1) as i64) as usize
}

/// The position of `current` in `values` moved by `delta`; a value not in the list moves to
/// the first entry.
pub(super) fn step_in<T: PartialEq>(values: &[T], current: &T, delta: i32) -> usize {
    values
        .iter()
        .position(|v| v == current)
        .map_or(0, |i| step(i, delta, values.len()))
}

pub(super) fn resize(model: &ModelSpec, delta: i32) -> ModelSpec {
    let ladder = sizes(arch_of(model));
    ladder[step_in(&ladder, model, delta)].clone()
}

pub(super) fn source_name(source: DataSource) -> &'static str {
    match source {
        DataSource::Embedded => "embedded Fashion-MNIST subset",
        DataSource::Idx => "idx (Fashion-MNIST files)",
        DataSource::Cifar10 => "cifar10",
        DataSource::Cifar100 => "cifar100",
    }
}

/// Edits one field of the experiment itself (data, models, control).
pub(super) fn edit_experiment(spec: &mut Spec, field: Field, delta: i32) {
    match field {
        Field::Dataset => {
            spec.data.source = SOURCES[step_in(&SOURCES, &spec.data.source, delta)];
            // The embedded subset takes no path; files keep the preset's, if it had one.
            if spec.data.source == DataSource::Embedded {
                spec.data.path = None;
            }
            // Only CIFAR-100 has coarse labels; elsewhere the spec would be refused.
            if spec.data.source != DataSource::Cifar100 {
                spec.data.labels = Cifar100Labels::Fine;
            }
        }
        Field::TrainSamples => {
            spec.data.train_samples =
                TRAIN_SAMPLES[step_in(&TRAIN_SAMPLES, &spec.data.train_samples, delta)]
        }
        Field::Teacher => {
            let arch = ARCHS[step_in(&ARCHS, &arch_of(&spec.teacher), delta)];
            if arch != arch_of(&spec.teacher) {
                spec.teacher = sizes(arch)[0].clone();
            }
        }
        Field::TeacherSize => spec.teacher = resize(&spec.teacher, delta),
        Field::Student => {
            // "Same as teacher" comes first, then the architectures.
            let current = spec.student.as_ref().map_or(0, |m| {
                1 + ARCHS.iter().position(|&a| a == arch_of(m)).unwrap_or(0)
            });
            let next = step(current, delta, ARCHS.len() + 1);
            if next != current {
                spec.student = (next > 0).then(|| sizes(ARCHS[next - 1])[0].clone());
            }
        }
        Field::StudentSize => {
            if let Some(student) = &spec.student {
                spec.student = Some(resize(student, delta));
            }
        }
        Field::Control => {
            spec.generations.control =
                CONTROLS[step_in(&CONTROLS, &spec.generations.control, delta)];
            spec.generations.per_generation.clear();
            set_up_stages(spec);
        }
        Field::Stage => {
            let g = &mut spec.generations;
            if let Some(f) = &mut g.fitnets {
                f.epochs = step(f.epochs, delta, 10_001).max(1);
            }
            if let Some(f) = &mut g.fsp {
                f.epochs = step(f.epochs, delta, 10_001).max(1);
            }
        }
        Field::Section => {
            let shape = crate::data::shape_of(&spec.data);
            let count = [&spec.teacher, spec.student()]
                .map(|m| crate::arch::sections(m, shape).len())
                .into_iter()
                .min()
                .unwrap_or(0);
            let g = &mut spec.generations;
            if let Some(f) = &mut g.fitnets {
                // The same section of both: the usual pairing of equal-depth stages.
                f.hint = step(f.hint, delta, count + 1).max(1);
                f.guided = f.hint;
            }
            if let Some(f) = &mut g.fsp {
                // All sections first, then each one alone.
                let current = match f.sections.as_slice() {
                    [one] => *one,
                    _ => 0,
                };
                f.sections = match step(current, delta, count + 1) {
                    0 => Vec::new(),
                    n => vec![n],
                };
            }
        }
        Field::Temperature => {
            spec.generations.temperature =
                TEMPERATURES[step_in(&TEMPERATURES, &spec.generations.temperature, delta)];
        }
        Field::Preset | Field::Generations | Field::Epochs | Field::Seed | Field::Device => {}
    }
}

/// Gives a two-stage control its table when it is picked (a first stage of a quarter of the
/// schedule's epochs at its lr, the middle sections) and drops the table of one no longer used.
fn set_up_stages(spec: &mut Spec) {
    let epochs = (spec.schedule.epochs / 4).max(1);
    let lr = spec.schedule.lr;
    let g = &mut spec.generations;
    g.fitnets = g.uses(ControlKind::Fitnets).then(|| {
        g.fitnets.unwrap_or(FitnetsSpec {
            epochs,
            lr,
            ..FitnetsSpec::default()
        })
    });
    g.fsp = g.uses(ControlKind::Fsp).then(|| {
        g.fsp.clone().unwrap_or(FspSpec {
            sections: Vec::new(),
            epochs,
            lr,
        })
    });
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::spec::Overrides;

    #[test]
    fn leaving_cifar100_drops_its_coarse_labels() {
        let text = r#"
name = "t"
[data]
source = "cifar100"
labels = "coarse"
path = "data"
[teacher]
arch = "cnn"
[schedule]
epochs = 2
batch_size = 32
lr = 0.1
[generations]
count = 1
control = "ban"
"#;
        let mut spec = Spec::parse(text, Path::new("t.toml"), &Overrides::default()).unwrap();
        // One step back from CIFAR-100 is CIFAR-10.
        edit_experiment(&mut spec, Field::Dataset, -1);
        assert_eq!(spec.data.source, DataSource::Cifar10);
        assert_eq!(spec.data.labels, Cifar100Labels::Fine);
        assert!(Spec::parse(&spec.to_toml(), Path::new("t.toml"), &Overrides::default()).is_ok());
    }
}

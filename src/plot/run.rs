//! The figures of one run directory, from metrics.jsonl: every generation's training curves, and
//! the split of its distillation gradient (paper Section 3.1), epoch by epoch. Each generation's
//! epochs are overlaid (x = its own epoch), so that generations compare at equal training: the
//! learning-rate schedule restarts with each of them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::figure::{EpochFigure, Series, epoch_svg};
use super::layout::generation_colour;
use crate::experiment::Experiment;
use crate::run_dir::RunDir;
use crate::run_dir::records::{EpochRecord, Task, generation_label};

/// Each generation's records by epoch.
type Generations<'a> = BTreeMap<usize, BTreeMap<usize, &'a EpochRecord>>;

/// A quantity recorded every epoch, drawn as one line per generation.
struct Curve {
    file: &'static str,
    title: &'static str,
    y_label: &'static str,
    value: fn(&EpochRecord) -> Option<f64>,
}

/// Writes the run's figures into `figures`; a run with no epoch yet gets none, and says so.
pub fn plot_run(dir: &Path, figures: &Path, say: &mut dyn FnMut(&str)) -> Result<()> {
    let run = RunDir::open(dir)?;
    let experiment = run.experiment()?;
    let records = run.metrics()?;
    if records.is_empty() {
        say(&format!(
            "{}: no epoch has finished yet; nothing to plot",
            dir.display()
        ));
        return Ok(());
    }
    let mut generations = Generations::new();
    // A generation resumed from an earlier save records an epoch again; the last record is the
    // one its training went on from.
    for r in &records {
        generations
            .entry(r.generation)
            .or_default()
            .insert(r.epoch, r);
    }
    for curve in curves(experiment.task()).iter().chain(&GRADIENT) {
        let series = lines(&experiment, &generations, curve.value);
        if !series.is_empty() {
            let figure = EpochFigure {
                title: format!("{}: {}", experiment.name(), curve.title),
                y_label: curve.y_label.into(),
                series,
            };
            super::write(figures, curve.file, &epoch_svg(&figure)?, say)?;
        }
    }
    if let Some(figure) = magnitudes(&experiment, &generations) {
        super::write(
            figures,
            "gradient-magnitudes.svg",
            &epoch_svg(&figure)?,
            say,
        )?;
    }
    Ok(())
}

/// The training curves of a task: its test metric per epoch and the training loss.
fn curves(task: Task) -> [Curve; 3] {
    let loss = |y_label| Curve {
        file: "train-loss.svg",
        title: "training loss (each generation's own objective)",
        y_label,
        value: |r| Some(r.train_loss),
    };
    match task {
        Task::Vision => [
            Curve {
                file: "test-error.svg",
                title: "test error per epoch",
                y_label: "test top-1 error (%)",
                value: |r| r.test_error,
            },
            Curve {
                file: "validation-error.svg",
                title: "validation error per epoch",
                y_label: "validation top-1 error (%)",
                value: |r| r.validation_error,
            },
            loss("train loss (nats per image)"),
        ],
        Task::Language => [
            Curve {
                file: "test-perplexity.svg",
                title: "test perplexity per epoch",
                y_label: "test perplexity (per word)",
                value: |r| r.test_perplexity,
            },
            Curve {
                file: "validation-perplexity.svg",
                title: "validation perplexity per epoch",
                y_label: "validation perplexity (per word)",
                value: |r| r.validation_perplexity,
            },
            loss("train loss (nats per token)"),
        ],
    }
}

/// The gradient split's shares, where generations trained with a teacher recorded it.
const GRADIENT: [Curve; 2] = [
    Curve {
        file: "gradient-dark-share.svg",
        title: "dark knowledge's share of the gradient g = q − p",
        y_label: "dark share ‖g_¬y‖² / ‖g‖² (fraction)",
        value: |r| r.gradient?.dark_share,
    },
    Curve {
        file: "gradient-cosine.svg",
        title: "distillation gradient against the label gradient",
        y_label: "cos(g, label gradient q − onehot(y))",
        value: |r| r.gradient?.cosine_with_label,
    },
];

/// "BAN-1 (BAN)": a generation and what it was trained on.
fn generation_name(experiment: &Experiment, k: usize) -> String {
    format!("{} ({})", generation_label(k), experiment.control_of(k))
}

/// One solid line per generation that has `value` at some epoch.
fn lines(
    experiment: &Experiment,
    generations: &Generations,
    value: fn(&EpochRecord) -> Option<f64>,
) -> Vec<Series> {
    generations
        .iter()
        .filter_map(|(&k, epochs)| {
            let points = points(epochs, value);
            (!points.is_empty()).then(|| Series {
                label: generation_name(experiment, k),
                colour: generation_colour(k),
                dashed: false,
                points,
            })
        })
        .collect()
}

fn points(
    epochs: &BTreeMap<usize, &EpochRecord>,
    value: fn(&EpochRecord) -> Option<f64>,
) -> Vec<(f64, f64)> {
    epochs
        .iter()
        .filter_map(|(&e, r)| Some((e as f64, value(r)?)))
        .collect()
}

/// The two halves' sizes per generation: |g_y| (importance weighting) solid, ‖g_¬y‖ (dark
/// knowledge) dashed, in the generation's colour.
fn magnitudes(experiment: &Experiment, generations: &Generations) -> Option<EpochFigure> {
    let mut series = Vec::new();
    for (&k, epochs) in generations {
        let true_class = points(epochs, |r| Some(r.gradient?.true_class));
        let dark = points(epochs, |r| Some(r.gradient?.dark));
        if true_class.is_empty() {
            continue;
        }
        let name = generation_label(k);
        let halves = [
            ("true class |g_y|", false, true_class),
            ("dark ‖g_¬y‖", true, dark),
        ];
        for (half, dashed, points) in halves {
            series.push(Series {
                label: format!("{name} {half}"),
                colour: generation_colour(k),
                dashed,
                points,
            });
        }
    }
    (!series.is_empty()).then(|| EpochFigure {
        title: format!("{}: the gradient's two halves", experiment.name()),
        y_label: "mean magnitude per sample".into(),
        series,
    })
}

//! A study's results: every row (generation, ensemble) of every chain by seed, its mean and
//! interval, and its paired difference with a reference row (the teacher of the same seed),
//! read from the seeds' ordinary run directories; and McNemar's test per seed on the test set.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::agreement;
use crate::ensemble::{self, Logits};
use crate::run_dir::RunDir;
use crate::run_dir::records::{Metric, Results, Task};
use crate::stats::{self, McNemar, Paired, Summary};

use super::{StudyPlan, seed_dir};

/// What a study measured so far, as results.json of the study directory holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyResults {
    pub name: String,
    pub task: Task,
    /// The metric every value is of.
    pub metric: Metric,
    /// The row every other row is compared with, seed by seed.
    pub reference: String,
    pub seeds: Vec<u64>,
    pub chains: Vec<ChainStudy>,
    /// How many comparisons Holm's correction spans (every row against the reference, over
    /// all chains).
    pub comparisons: usize,
}

/// One chain of the preset (a table's row and chain; "" for a single chain) over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainStudy {
    pub place: String,
    pub rows: Vec<StudyRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRow {
    pub label: String,
    /// Per seed, in the study's order; `None` where that seed has not got this far.
    pub values: Vec<Option<f64>>,
    /// Over the seeds that have a value.
    pub summary: Option<Summary>,
    /// Against the reference row, over the seeds that have both.
    pub versus: Option<Versus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versus {
    /// This row minus the reference.
    pub paired: Paired,
    /// The paired t-test's p, corrected with Holm's procedure across the study's comparisons.
    pub holm_p: Option<f64>,
    /// Per seed: McNemar's exact test of this row's test-set predictions against the
    /// reference's (vision; a language model's saved outputs hold no predictions).
    pub mcnemar: Vec<Option<McNemar>>,
}

/// Below this corrected p a difference is called significant.
pub const ALPHA: f64 = 0.05;

impl Versus {
    pub fn significant(&self) -> bool {
        self.holm_p.is_some_and(|p| p < ALPHA)
    }
}

/// Reads every seed's run directories and computes the study's statistics for `metric` (the
/// task's primary one by default) against `reference`.
pub fn collect(
    out: &Path,
    plan: &StudyPlan,
    reference: &str,
    metric: Option<Metric>,
) -> Result<StudyResults> {
    let metric = metric.unwrap_or(plan.task.primary());
    let mut chains = Vec::new();
    for place in &plan.places {
        // Each seed's results and its run directory, where it has begun.
        let runs: Vec<Option<(RunDir, Results)>> = plan
            .seeds
            .iter()
            .map(|&seed| {
                let dir = seed_dir(out, seed).join(place);
                let run = RunDir::open(&dir).ok()?;
                let results = run.results().ok()??;
                Some((run, results))
            })
            .collect();
        let mut labels: Vec<String> = Vec::new();
        for (_, r) in runs.iter().flatten() {
            let names = r.generations.iter().map(|g| &g.label);
            for label in names.chain(r.ensembles.iter().map(|e| &e.name)) {
                if !labels.contains(label) {
                    labels.push(label.clone());
                }
            }
        }
        let rows = labels
            .iter()
            .map(|label| {
                let values: Vec<Option<f64>> = runs
                    .iter()
                    .map(|run| value(run.as_ref().map(|(_, r)| r), label, metric))
                    .collect();
                let present: Vec<f64> = values.iter().flatten().copied().collect();
                let reference_values: Vec<Option<f64>> = runs
                    .iter()
                    .map(|run| value(run.as_ref().map(|(_, r)| r), reference, metric))
                    .collect();
                let versus = (label != reference)
                    .then(|| versus(label, reference, &values, &reference_values, &runs))
                    .flatten();
                StudyRow {
                    label: label.clone(),
                    summary: (!present.is_empty()).then(|| Summary::of(&present)),
                    values,
                    versus,
                }
            })
            .collect();
        chains.push(ChainStudy {
            place: place.clone(),
            rows,
        });
    }
    // Holm's correction across every comparison of the study that has a t-test.
    let mut tested: Vec<(usize, usize, f64)> = Vec::new();
    for (c, chain) in chains.iter().enumerate() {
        for (r, row) in chain.rows.iter().enumerate() {
            if let Some(p) = row.versus.as_ref().and_then(|v| v.paired.t_p) {
                tested.push((c, r, p));
            }
        }
    }
    let corrected = stats::holm(&tested.iter().map(|t| t.2).collect::<Vec<_>>());
    for ((c, r, _), p) in tested.iter().zip(corrected) {
        if let Some(v) = chains[*c].rows[*r].versus.as_mut() {
            v.holm_p = Some(p);
        }
    }
    Ok(StudyResults {
        name: plan.name.clone(),
        task: plan.task,
        metric,
        reference: reference.to_string(),
        seeds: plan.seeds.clone(),
        comparisons: tested.len(),
        chains,
    })
}

/// `label`'s value of `metric` in one seed's results.
fn value(results: Option<&Results>, label: &str, metric: Metric) -> Option<f64> {
    let r = results?;
    let generation = r.generations.iter().find(|g| g.label == label);
    let scores = match generation {
        Some(g) => &g.metrics,
        None => &r.ensembles.iter().find(|e| e.name == label)?.metrics,
    };
    scores.get(&metric).copied()
}

/// `label` against `reference` over the seeds that have both.
fn versus(
    label: &str,
    reference: &str,
    values: &[Option<f64>],
    reference_values: &[Option<f64>],
    runs: &[Option<(RunDir, Results)>],
) -> Option<Versus> {
    let (a, b): (Vec<f64>, Vec<f64>) = values
        .iter()
        .zip(reference_values)
        .filter_map(|(a, b)| Some(((*a)?, (*b)?)))
        .unzip();
    let paired = Paired::of(&a, &b).ok()?;
    let mcnemar = runs
        .iter()
        .map(|run| {
            let (dir, results) = run.as_ref()?;
            let a = correct(dir, results, label)?;
            let b = correct(dir, results, reference)?;
            stats::mcnemar(&a, &b).ok()
        })
        .collect();
    Some(Versus {
        paired,
        holm_p: None,
        mcnemar,
    })
}

/// Which test samples `label` (a generation or an ensemble) classifies right, from the saved
/// logits; `None` for language models and what cannot be read.
fn correct(dir: &RunDir, results: &Results, label: &str) -> Option<Vec<bool>> {
    if results.task != Task::Vision {
        return None;
    }
    let test = dir.labels().ok()?;
    let (labels, classes) = (test.labels, test.class_names.len());
    let logits = |k: usize| dir.read_logits(k, classes, labels.len()).ok();
    if let Some(g) = results.generations.iter().find(|g| g.label == label) {
        return agreement::correct(&logits(g.generation)?.values, classes, &labels).ok();
    }
    let e = results.ensembles.iter().find(|e| e.name == label)?;
    let members: Vec<Logits> = e
        .members
        .iter()
        .map(|&k| logits(k))
        .collect::<Option<_>>()?;
    let refs: Vec<&Logits> = members.iter().collect();
    let probabilities: Vec<f32> = ensemble::ensemble_probabilities(&refs, e.average)
        .into_iter()
        .map(|p| p as f32)
        .collect();
    agreement::correct(&probabilities, classes, &labels).ok()
}

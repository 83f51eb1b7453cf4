//! A preset as units of work: one chain of generations for one row and seed, and a teacher that
//! other chains adopt as a unit of its own, each with the units it waits for. Units of one
//! preset write into one output directory (a table's ROW/CHAIN run directories, a study's
//! seed-S/ directories), so any process on any machine that sees that directory can run any
//! unit whose dependencies are done, and the results are those of one sequential run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::arch;
use crate::data;
use crate::experiment::{Experiment, Preset};
use crate::run_dir::RunDir;
use crate::run_dir::lock::{self, Liveness};
use crate::run_dir::records::{RunState, generation_label};
use crate::study;
use crate::table;

/// One unit of a preset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unit {
    /// Stable: the run directory's path under the output directory ("ROW/CHAIN",
    /// "seed-2/ROW/CHAIN", "seed-2"; "chain" for a lone chain, which is the output directory
    /// itself), with ":teacher" for a teacher unit.
    pub id: String,
    /// The run directory it trains, relative to the output directory.
    pub dir: PathBuf,
    /// The experiment it trains (the chain's, with the unit's seed).
    #[serde(skip)]
    pub experiment: Experiment,
    /// Trains generation 0 alone (the chain's unit goes on from it).
    pub teacher_only: bool,
    /// The run directory whose teacher this chain adopts, relative to the output directory.
    pub adopts: Option<PathBuf>,
    /// Units that must be done first.
    pub depends: Vec<String>,
    /// Estimated training work: multiply-accumulates over every epoch (vision); `None` where
    /// there is no estimate.
    pub cost: Option<f64>,
}

impl Unit {
    /// Whether the unit's work is in its run directory under `out`: its teacher, or its whole
    /// chain, finished.
    pub fn done(&self, out: &Path) -> bool {
        done_at(out, &self.dir, self.teacher_only)
    }
}

/// The units of `preset` (under its seeds, when it is a study), in an order that respects
/// their dependencies.
pub fn units(preset: &Preset, seeds: Option<&[u64]>) -> Vec<Unit> {
    let seeds: Vec<Option<u64>> = match seeds {
        Some(s) => s.iter().map(|&s| Some(s)).collect(),
        None => vec![None],
    };
    let mut out = Vec::new();
    for seed in seeds {
        let (preset, prefix) = match seed {
            Some(s) => (preset.with_seed(s), study::seed_dir(Path::new(""), s)),
            None => (preset.clone(), PathBuf::new()),
        };
        match &preset {
            // A lone chain's run directory is the output directory itself.
            Preset::Chain(e) => {
                let mut unit = chain_unit(&prefix, e, None, Vec::new());
                if prefix.as_os_str().is_empty() {
                    unit.id = "chain".into();
                }
                out.push(unit);
            }
            Preset::Table(t) => {
                let dir_of = |c: &table::Chain| table::chain_dir(&prefix, c);
                // The chain that trains the teacher chain `i` adopts: its source's source, and
                // so on (a copied teacher is the same teacher).
                let index = |c: &table::Chain| t.chains.iter().position(|d| std::ptr::eq(c, d));
                let root = |i: usize| {
                    let mut at = index(table::teacher_source(&t.chains, i)?)?;
                    while let Some(next) = table::teacher_source(&t.chains, at).and_then(index) {
                        at = next;
                    }
                    Some(at)
                };
                for (i, chain) in t.chains.iter().enumerate() {
                    let dir = dir_of(chain);
                    let adopted = (0..t.chains.len()).any(|j| root(j) == Some(i));
                    let source = root(i).map(|r| dir_of(&t.chains[r]));
                    let mut depends: Vec<String> = source.iter().map(|s| teacher_id(s)).collect();
                    if adopted {
                        let mut teacher = chain_unit(&dir, &chain.experiment, None, Vec::new());
                        teacher.id = teacher_id(&dir);
                        teacher.teacher_only = true;
                        teacher.cost = cost(&chain.experiment, Some(0));
                        depends.push(teacher.id.clone());
                        out.push(teacher);
                    }
                    out.push(chain_unit(&dir, &chain.experiment, source, depends));
                }
            }
        }
    }
    out
}

fn teacher_id(dir: &Path) -> String {
    format!("{}:teacher", dir.display())
}

fn chain_unit(dir: &Path, e: &Experiment, adopts: Option<PathBuf>, depends: Vec<String>) -> Unit {
    Unit {
        id: dir.display().to_string(),
        dir: dir.to_path_buf(),
        experiment: e.clone(),
        teacher_only: false,
        // A chain that adopts or has a teacher unit trains its students only.
        cost: cost(e, (adopts.is_some() || !depends.is_empty()).then_some(1)),
        adopts,
        depends,
    }
}

/// Multiply-accumulates to train generations (0 alone, from 1 on, or all) of a vision chain:
/// about three forward passes per sample (forward, and a backward twice its cost) plus the
/// teacher's forward for every student.
fn cost(e: &Experiment, only: Option<usize>) -> Option<f64> {
    let Experiment::Vision(spec) = e else {
        return None;
    };
    let shape = data::shape_of(&spec.data);
    let samples = spec
        .data
        .train_samples
        .unwrap_or(data::full_train_len(spec.data.source)) as f64;
    let generations: Vec<usize> = match only {
        Some(0) => vec![0],
        Some(_) => (1..=spec.generations.count).collect(),
        None => (0..=spec.generations.count).collect(),
    };
    let mut macs = 0.0;
    for k in generations {
        macs += 3.0 * arch::forward_flops(spec.model_of(k), shape) as f64;
        if k > 0 {
            macs += arch::forward_flops(spec.model_of(k - 1), shape) as f64;
        }
    }
    Some(macs * samples * spec.schedule.epochs as f64)
}

/// "3.2 TMAC": a cost as `plan` prints it.
pub fn format_cost(cost: Option<f64>) -> String {
    let Some(c) = cost else {
        return "–".into();
    };
    let (value, unit) = [(1e15, "PMAC"), (1e12, "TMAC"), (1e9, "GMAC"), (1e6, "MMAC")]
        .into_iter()
        .find(|(scale, _)| c >= *scale)
        .map_or((c, "MAC"), |(scale, unit)| (c / scale, unit));
    format!("{value:.1} {unit}")
}

/// A unit as OUT/units.json records it, so that any follower of a shared directory (`report`)
/// sees every unit and what it waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub id: String,
    pub dir: PathBuf,
    pub teacher_only: bool,
    pub depends: Vec<String>,
}

fn manifest_path(out: &Path) -> PathBuf {
    out.join("units.json")
}

/// Writes OUT/units.json.
pub fn write_manifest(out: &Path, units: &[Unit]) -> Result<()> {
    let records: Vec<UnitRecord> = units
        .iter()
        .map(|u| UnitRecord {
            id: u.id.clone(),
            dir: u.dir.clone(),
            teacher_only: u.teacher_only,
            depends: u.depends.clone(),
        })
        .collect();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = manifest_path(out);
    crate::run_dir::write_atomic(&path, serde_json::to_string_pretty(&records)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// OUT/units.json, if OUT holds units.
pub fn read_manifest(out: &Path) -> Result<Option<Vec<UnitRecord>>> {
    let path = manifest_path(out);
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{}: not a banbench units file", path.display()))
}

/// Whether the run directory `dir` under `out` holds a unit's work: its teacher, or its whole
/// chain, finished.
fn done_at(out: &Path, dir: &Path, teacher_only: bool) -> bool {
    let Ok(run) = RunDir::open(&out.join(dir)) else {
        return false;
    };
    match run.results() {
        Ok(Some(r)) if teacher_only => r.generations.iter().any(|g| g.generation == 0),
        Ok(Some(r)) => r.state == RunState::Finished,
        _ => false,
    }
}

/// What a unit is doing, read from its run directory: done, running (on which host), stale,
/// failed, stopped, waiting for a unit, or ready to start.
pub fn describe(out: &Path, unit: &UnitRecord, all: &[UnitRecord]) -> String {
    if done_at(out, &unit.dir, unit.teacher_only) {
        return "done".into();
    }
    let dir = out.join(&unit.dir);
    match lock::inspect(&dir) {
        Some((owner, Liveness::Alive { .. })) => {
            let at = RunDir::open(&dir)
                .ok()
                .and_then(|r| r.progress())
                .map_or(String::new(), |p| {
                    format!(", {} epoch {}", generation_label(p.generation), p.epoch)
                });
            return format!("running on {} (pid {}){at}", owner.host, owner.pid);
        }
        Some((owner, Liveness::Stale { .. })) => {
            return format!(
                "stale: its owner on {} (pid {}) is gone",
                owner.host, owner.pid
            );
        }
        None => {}
    }
    match RunDir::open(&dir).and_then(|r| r.results()) {
        Ok(Some(r)) if r.state == RunState::Failed => return "failed".into(),
        Ok(Some(r)) if r.state == RunState::Stopped => return "stopped".into(),
        _ => {}
    }
    let waiting: Vec<&str> = unit
        .depends
        .iter()
        .filter(|d| {
            !all.iter()
                .any(|u| &u.id == *d && done_at(out, &u.dir, u.teacher_only))
        })
        .map(String::as_str)
        .collect();
    if waiting.is_empty() {
        "ready".into()
    } else {
        format!("waiting for {}", waiting.join(", "))
    }
}

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
use crate::run_dir::records::RunState;
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
pub fn done_at(out: &Path, dir: &Path, teacher_only: bool) -> bool {
    let Ok(run) = RunDir::open(&out.join(dir)) else {
        return false;
    };
    match run.results() {
        Ok(Some(r)) if teacher_only => r.generations.iter().any(|g| g.generation == 0),
        Ok(Some(r)) => r.state == RunState::Finished,
        _ => false,
    }
}

/// What a unit is doing, from its run directory (its results, lock and progress) and those of
/// the units it waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitState {
    /// Its work is in its run directory: its teacher, or its whole chain, finished.
    Done,
    /// A live process owns its run directory.
    Running {
        host: String,
        pid: u32,
        paused: bool,
    },
    /// Its run directory's owner is gone (killed, its node lost) and nothing has taken over.
    Stale {
        host: String,
        pid: u32,
    },
    Failed,
    /// Stopped in its own generations (a teacher unit that stopped after its teacher is done).
    Stopped,
    /// Units it depends on are not done.
    Waiting {
        on: Vec<String>,
    },
    /// Its dependencies are done and nothing runs it.
    Ready,
}

impl UnitState {
    /// The state in a word.
    pub fn word(&self) -> &'static str {
        match self {
            UnitState::Done => "done",
            UnitState::Running { paused: true, .. } => "paused",
            UnitState::Running { .. } => "running",
            UnitState::Stale { .. } => "stale",
            UnitState::Failed => "failed",
            UnitState::Stopped => "stopped",
            UnitState::Waiting { .. } => "waiting",
            UnitState::Ready => "ready",
        }
    }

    pub fn host(&self) -> Option<&str> {
        match self {
            UnitState::Running { host, .. } | UnitState::Stale { host, .. } => Some(host),
            _ => None,
        }
    }
}

impl std::fmt::Display for UnitState {
    /// As `banbench report` prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnitState::Running { host, pid, paused } => {
                let paused = if *paused { ", paused" } else { "" };
                write!(f, "running on {host} (pid {pid}){paused}")
            }
            UnitState::Stale { host, pid } => {
                write!(f, "stale: its owner on {host} (pid {pid}) is gone")
            }
            UnitState::Waiting { on } => write!(f, "waiting for {}", on.join(", ")),
            other => f.write_str(other.word()),
        }
    }
}

/// A unit's run directory under `out` (a lone chain's is `out` itself).
pub fn unit_dir(out: &Path, record: &UnitRecord) -> PathBuf {
    if record.dir.as_os_str().is_empty() {
        out.to_path_buf()
    } else {
        out.join(&record.dir)
    }
}

/// Where `run --jobs` writes a unit's output, relative to the units' directory.
pub fn log_path(id: &str) -> PathBuf {
    Path::new("logs").join(format!("{}.log", id.replace(['/', ':'], "_")))
}

/// The generations a unit trains: 0 alone for a teacher unit, from 1 for a chain whose teacher
/// is another unit's, all for a chain that trains its own.
pub fn own_generations(record: &UnitRecord, students: usize) -> std::ops::RangeInclusive<usize> {
    let first = usize::from(!record.teacher_only && !record.depends.is_empty());
    let last = if record.teacher_only { 0 } else { students };
    first..=last
}

/// What every unit of `out` is doing, from its run directory (results, lock, progress) and
/// those of the units it waits for: done; waiting for a unit not done (a chain's directory
/// locked by its teacher's unit is its teacher's); running or stale (by its lock); failed;
/// stopped in its own generations; or ready.
pub fn states(out: &Path, records: &[UnitRecord]) -> Vec<UnitState> {
    let done: Vec<bool> = records
        .iter()
        .map(|r| done_at(out, &r.dir, r.teacher_only))
        .collect();
    records
        .iter()
        .zip(&done)
        .map(|(record, &is_done)| {
            if is_done {
                return UnitState::Done;
            }
            let on: Vec<String> = record
                .depends
                .iter()
                .filter(|d| !records.iter().zip(&done).any(|(u, &ok)| &u.id == *d && ok))
                .cloned()
                .collect();
            if !on.is_empty() {
                return UnitState::Waiting { on };
            }
            let dir = unit_dir(out, record);
            let run = RunDir::open(&dir).ok();
            let progress = run.as_ref().and_then(|r| {
                let students = r.experiment().ok()?.students();
                r.progress()
                    .filter(|p| own_generations(record, students).contains(&p.generation))
            });
            match lock::inspect(&dir) {
                Some((owner, Liveness::Alive { .. })) => UnitState::Running {
                    host: owner.host,
                    pid: owner.pid,
                    paused: progress.as_ref().is_some_and(|p| p.paused),
                },
                Some((owner, Liveness::Stale { .. })) => UnitState::Stale {
                    host: owner.host,
                    pid: owner.pid,
                },
                None => match run
                    .and_then(|r| r.results().ok().flatten())
                    .map(|r| r.state)
                {
                    Some(RunState::Failed) => UnitState::Failed,
                    // An adopted teacher's (or a teacher unit's) results say stopped before
                    // the chain's own generations begin.
                    Some(RunState::Stopped) if progress.is_some() => UnitState::Stopped,
                    _ => UnitState::Ready,
                },
            }
        })
        .collect()
}

//! The terminal UI: `banbench` with no arguments, or
//! `banbench tui [PRESET | RUN_DIR | STUDY_DIR | UNITS_DIR]`.
//!
//! State and its changes live in [`app`] and [`run_view`] (plain data, changed only by
//! [`app::Msg`]s), drawing in [`frame`] and each of [`screens`] (a pure function of the state), and everything that
//! touches the outside world (the terminal, signals, the run processes it starts, the run
//! directory it follows) in `runtime`. The UI is a client of run directories: it starts runs as
//! detached `banbench run` processes and follows them through their files, so it needs no burn,
//! no models and no training code (a test checks the imports).

pub mod app;
pub mod frame;
pub mod run_view;
mod runtime;
pub mod screens;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::experiment::{Experiment, Preset};
use crate::run_dir::RunDir;
use crate::run_dir::lock::{self, Liveness};
use crate::run_dir::records::{EpochRecord, RunState};
use crate::spec::Overrides;
use crate::study::{StudyPlan, seed_dir};
use crate::units::{self, UnitRecord};
use app::Msg;
use run_view::{Owner, Snapshot};
use screens::runs::RunEntry;
use screens::setup::{CorpusFacts, PresetEntry};
use screens::study::{SeedProgress, SeedState, StudyEntry};
use screens::units::{UnitPlan, UnitProgress, UnitState, UnitsEntry};

pub use runtime::run;

/// The quick preset, compiled in so that the Setup screen has one even outside the repository.
const BUILT_IN_QUICK: &str = include_str!("../../presets/quick.toml");

/// The presets under `dir` (recursively), vision and language models and tables alike, those
/// directly in `dir` first (the quick preset, which runs on the embedded data, leads), then by
/// whether it is a table, then by path; a preset that does not parse is listed with its error.
pub fn load_presets(dir: &Path) -> Vec<PresetEntry> {
    let mut files = Vec::new();
    collect_toml(dir, &mut files);
    files.sort_by_key(|path| (path.components().count(), path.clone()));
    let mut presets: Vec<PresetEntry> = files.into_iter().map(preset_entry).collect();
    // Single chains before tables at each depth, so that the quick preset leads.
    presets.sort_by_key(|p| (p.path.components().count(), p.table, p.path.clone()));
    if presets.is_empty() {
        let path = PathBuf::from("<built-in>/quick.toml");
        let spec = Experiment::parse(BUILT_IN_QUICK, &path, &Overrides::default())
            .map_err(|e| e.to_string());
        presets.push(PresetEntry {
            path,
            spec,
            corpus: None,
            table: false,
        });
    }
    presets
}

/// Reads a preset; for a language model also its corpus, whose vocabulary and size its
/// parameter count and cost depend on.
pub fn preset_entry(path: PathBuf) -> PresetEntry {
    let preset = Preset::load(&path, None, &Overrides::default());
    entry(path, preset)
}

fn entry(path: PathBuf, preset: Result<Preset>) -> PresetEntry {
    let spec = match preset {
        Ok(Preset::Chain(experiment)) => Ok(experiment),
        Ok(Preset::Table(table)) => {
            let chains = table.chains.len();
            let why = format!(
                "a table of {chains} chain(s): Enter runs it as units, one at a time (`banbench run {} --jobs 1`), and follows them",
                path.display()
            );
            return PresetEntry {
                path,
                spec: Err(why),
                corpus: None,
                table: true,
            };
        }
        Err(e) => Err(format!("{e:#}")),
    };
    let corpus = match &spec {
        Ok(Experiment::Language(spec)) => Some(
            crate::lm::corpus::load_corpus(spec)
                .map(|c| CorpusFacts {
                    vocabulary: c.vocab.len(),
                    characters: crate::arch::language::char_count(&c.vocab),
                    train_tokens: c.train.len(),
                })
                .map_err(|e| format!("{e:#}")),
        ),
        _ => None,
    };
    PresetEntry {
        path,
        spec,
        corpus,
        table: false,
    }
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_toml(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

/// What a run directory holds now.
pub fn read_snapshot(dir: &RunDir) -> Result<Snapshot> {
    Ok(Snapshot {
        experiment: dir.experiment()?,
        epochs: dir.metrics()?,
        results: dir.results()?,
    })
}

/// Opens a run directory for following.
pub fn open(path: &Path) -> Result<Msg> {
    let dir = RunDir::open(path)?;
    Ok(Msg::Opened {
        dir: path.to_path_buf(),
        snapshot: read_snapshot(&dir)?,
    })
}

/// The run directory's writer, from its lock file and heartbeat.
pub fn owner(dir: &RunDir) -> Owner {
    match lock::inspect(&dir.root) {
        None => Owner::None,
        Some((owner, Liveness::Alive { .. })) => Owner::Alive {
            who: owner.to_string(),
        },
        Some((_, stale)) => Owner::Stale {
            why: stale.to_string(),
        },
    }
}

/// A new run directory for an experiment started here: `runs/NAME-YYYYmmdd-HHMMSS` (then -2,
/// -3, ... when taken), holding its spec.toml.
pub fn new_run_dir(experiment: &Experiment) -> Result<RunDir> {
    let root = crate::run_dir::new_default_dir(Path::new("runs"), experiment.name())?;
    RunDir::create(&root, experiment)
}

/// A study directory's plan and how far each seed has got.
pub fn read_study(path: &Path) -> Result<(StudyPlan, Vec<SeedProgress>)> {
    let plan = StudyPlan::read(path)?
        .with_context(|| format!("{}: not a study directory (no study.json)", path.display()))?;
    let seeds = seed_progress(path, &plan);
    Ok((plan, seeds))
}

/// How far each seed of the study in `out` has got, from its run directories' results and
/// locks.
pub fn seed_progress(out: &Path, plan: &StudyPlan) -> Vec<SeedProgress> {
    plan.seeds
        .iter()
        .map(|&seed| SeedProgress {
            seed,
            state: seed_state(&seed_dir(out, seed), &plan.places),
        })
        .collect()
}

/// One seed: training while one of its chains' owners lives, finished when all its chains
/// are, else what its first unfinished chain says.
fn seed_state(dir: &Path, places: &[String]) -> SeedState {
    let mut finished = 0;
    let mut begun = None;
    for place in places {
        let Ok(run) = RunDir::open(&dir.join(place)) else {
            continue;
        };
        let results = run.results().ok().flatten();
        if results
            .as_ref()
            .is_some_and(|r| r.state == RunState::Finished)
        {
            finished += 1;
            continue;
        }
        let state = match owner(&run) {
            Owner::Alive { .. } => {
                let done = results.map_or(0, |r| r.generations.len());
                return SeedState::Training {
                    place: place.clone(),
                    done,
                    generations: run.experiment().map_or(done + 1, |e| e.students() + 1),
                };
            }
            Owner::Stale { why } => why,
            Owner::None => results.map_or("started".into(), |r| r.state.to_string()),
        };
        begun.get_or_insert(state);
    }
    match begun {
        _ if finished == places.len() => SeedState::Finished,
        Some(state) => SeedState::Begun { state },
        // Some chains finished, the next not begun: the study stopped between two chains.
        None if finished > 0 => SeedState::Begun {
            state: "started".into(),
        },
        None => SeedState::Waiting,
    }
}

/// Study directories under `root`, newest name first.
pub fn scan_studies(root: &Path) -> Vec<StudyEntry> {
    let mut studies = find_dirs(root).studies;
    studies.sort();
    studies.reverse();
    studies
        .into_iter()
        .filter_map(|dir| {
            let plan = StudyPlan::read(&dir).ok()??;
            Some(StudyEntry {
                seeds: seed_progress(&dir, &plan),
                name: plan.name,
                dir,
            })
        })
        .collect()
}

/// Directories of units (units.json; a study's among them when it ran as units) under `root`,
/// newest name first.
pub fn scan_unit_dirs(root: &Path) -> Vec<UnitsEntry> {
    let mut dirs = find_dirs(root).units;
    dirs.sort();
    dirs.reverse();
    dirs.into_iter()
        .filter_map(|dir| {
            let records = units::read_manifest(&dir).ok()??;
            Some(UnitsEntry {
                units: unit_progress(&dir, &records),
                dir,
            })
        })
        .collect()
}

/// Run directories under `root` (a table's chains sit two levels down; a study's seeds and a
/// units directory's units are the study's and the directory's, listed with them), newest
/// name first.
pub fn scan_runs(root: &Path) -> Vec<RunEntry> {
    let mut dirs = find_dirs(root).runs;
    dirs.sort();
    dirs.reverse();
    dirs.into_iter()
        .filter_map(|dir| {
            let run = RunDir::open(&dir).ok()?;
            let experiment = run.experiment().ok()?;
            let results = run.results().ok().flatten();
            let running = results
                .as_ref()
                .is_none_or(|r| r.state == RunState::Running);
            Some(RunEntry {
                owner_gone: running && matches!(owner(&run), Owner::Stale { .. }),
                name: experiment.name().to_string(),
                state: results.as_ref().map(|r| r.state),
                finished: results.as_ref().map_or(0, |r| r.generations.len()),
                generations: experiment.students() + 1,
                dir,
            })
        })
        .collect()
}

/// The directories found under runs/, by kind.
#[derive(Default)]
struct Found {
    runs: Vec<PathBuf>,
    studies: Vec<PathBuf>,
    units: Vec<PathBuf>,
}

fn find_dirs(root: &Path) -> Found {
    let mut found = Found::default();
    collect_dirs(root, 3, &mut found);
    found
}

fn collect_dirs(dir: &Path, depth: usize, found: &mut Found) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.join("units.json").is_file() {
            found.units.push(path);
        } else if StudyPlan::path(&path).is_file() {
            found.studies.push(path);
        } else if path.join("spec.toml").is_file() {
            found.runs.push(path);
        } else if depth > 1 && path.is_dir() {
            collect_dirs(&path, depth - 1, found);
        }
    }
}

/// A directory of units: every unit and what it is doing, and its table so far (results.md).
pub fn read_units(out: &Path) -> Result<(Vec<UnitProgress>, Option<String>)> {
    let records = units::read_manifest(out)?.with_context(|| {
        format!(
            "{}: not a directory of units (no units.json)",
            out.display()
        )
    })?;
    Ok((unit_progress(out, &records), read_units_table(out)))
}

/// The table of a directory of units as its finished chains fill it in (a study's statistics
/// for a study), if one has.
pub fn read_units_table(out: &Path) -> Option<String> {
    std::fs::read_to_string(out.join("results.md")).ok()
}

/// What each unit of `out` is doing, from its run directory (results, lock, progress, epoch
/// records) and those of the units it waits for, as `units::describe` says it: done, waiting
/// for a unit not done (a chain's directory locked by its teacher's unit is its teacher's),
/// running, stale, failed, stopped, or ready.
pub fn unit_progress(out: &Path, records: &[UnitRecord]) -> Vec<UnitProgress> {
    records
        .iter()
        .zip(units::states(out, records))
        .map(|(record, state)| one_unit(out, record, state))
        .collect()
}

fn one_unit(out: &Path, record: &UnitRecord, state: UnitState) -> UnitProgress {
    let run = RunDir::open(&units::unit_dir(out, record)).ok();
    let run = run.as_ref();
    let results = run.and_then(|d| d.results().ok().flatten());
    let results = results.as_ref();
    let done = state == UnitState::Done;
    let experiment = run.and_then(|d| d.experiment().ok());
    let plan = experiment.as_ref().map(|e| {
        let own = units::own_generations(record, e.students());
        UnitPlan {
            first: *own.start(),
            last: *own.end(),
            epochs: e.epochs(),
        }
    });
    let own = |k: usize| plan.is_some_and(|p| (p.first..=p.last).contains(&k));
    let progress = run.and_then(RunDir::progress).filter(|p| own(p.generation));
    let finished: Vec<usize> = results
        .map(|r| {
            r.generations
                .iter()
                .map(|g| g.generation)
                .filter(|&k| own(k))
                .collect()
        })
        .unwrap_or_default();
    let progress = progress.filter(|_| {
        !matches!(
            state,
            UnitState::Done | UnitState::Waiting { .. } | UnitState::Ready
        )
    });
    let fraction = match plan {
        _ if done => 1.0,
        Some(plan) => {
            let epochs = plan.epochs.max(1) as f64;
            let current = progress
                .as_ref()
                .filter(|p| !finished.contains(&p.generation))
                .map_or(0.0, |p| {
                    let batch = p.batch as f64 / p.batches.max(1) as f64;
                    (p.epoch.saturating_sub(1) as f64 + batch).min(epochs)
                });
            ((finished.len() as f64 * epochs + current) / (plan.generations() as f64 * epochs))
                .min(1.0)
        }
        None => 0.0,
    };
    let record_eta = match (&state, run, &experiment, plan) {
        (UnitState::Running { .. }, Some(run), Some(e), Some(plan)) => run
            .metrics()
            .ok()
            .and_then(|m| m.last().cloned())
            .map(|r| ((r.generation, r.epoch), unit_eta(&r, e.students(), plan))),
        _ => None,
    };
    let log = units::log_path(&record.id);
    UnitProgress {
        id: record.id.clone(),
        dir: record.dir.clone(),
        teacher_only: record.teacher_only,
        state,
        plan,
        at: progress.map(|p| (p.generation, p.epoch)),
        fraction,
        eta: record_eta.and_then(|(_, eta)| eta),
        eta_of: record_eta.map(|(of, _)| of),
        log: out.join(&log).is_file().then_some(log),
    }
}

/// Seconds left in a unit from its run's latest epoch record, whose ETA is the whole chain's:
/// the part of it that is the unit's (a teacher unit's is its teacher's epochs).
fn unit_eta(record: &EpochRecord, students: usize, plan: UnitPlan) -> Option<f64> {
    // Nothing measured yet in this process (a resumed run's first epochs).
    if record.eta_seconds <= 0.0 {
        return None;
    }
    let per = plan.epochs;
    let done = record.generation * per + record.epoch;
    let total = (students + 1) * per;
    let end = (plan.last + 1) * per;
    if done >= end || done >= total {
        return None;
    }
    Some(record.eta_seconds * (end - done) as f64 / (total - done) as f64)
}

//! The terminal UI: `banbench` with no arguments, or `banbench tui [PRESET | RUN_DIR | STUDY_DIR]`.
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
use crate::run_dir::records::RunState;
use crate::spec::Overrides;
use crate::study::{StudyPlan, seed_dir};
use app::Msg;
use run_view::{Owner, Snapshot};
use screens::runs::RunEntry;
use screens::setup::{CorpusFacts, PresetEntry};
use screens::study::{SeedProgress, SeedState, StudyEntry};

pub use runtime::run;

/// The quick preset, compiled in so that the Setup screen has one even outside the repository.
const BUILT_IN_QUICK: &str = include_str!("../../presets/quick.toml");

/// The single-chain presets under `dir` (recursively), vision and language models alike, those
/// directly in `dir` first (the quick preset, which runs on the embedded data, leads), then by
/// path; a preset that does not parse is listed with its error. Table presets (several chains)
/// run headless (`banbench run`).
pub fn load_presets(dir: &Path) -> Vec<PresetEntry> {
    let mut files = Vec::new();
    collect_toml(dir, &mut files);
    files.sort_by_key(|path| (path.components().count(), path.clone()));
    let mut presets: Vec<PresetEntry> = files
        .into_iter()
        .filter_map(|path| {
            let preset = Preset::load(&path, None, &Overrides::default());
            (!matches!(preset, Ok(Preset::Table(_)))).then(|| entry(path, preset))
        })
        .collect();
    if presets.is_empty() {
        let path = PathBuf::from("<built-in>/quick.toml");
        let spec = Experiment::parse(BUILT_IN_QUICK, &path, &Overrides::default())
            .map_err(|e| e.to_string());
        presets.push(PresetEntry {
            path,
            spec,
            corpus: None,
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
        Ok(Preset::Table(_)) => {
            let why = format!(
                "{}: a paper table preset (several chains): run it with `banbench run {}`",
                path.display(),
                path.display()
            );
            return PresetEntry {
                path,
                spec: Err(why),
                corpus: None,
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
    PresetEntry { path, spec, corpus }
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
    let (_, mut studies) = find_dirs(root);
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

/// Run directories under `root` (a table's chains sit two levels down; a study's seeds are
/// the study's, listed with it), newest name first.
pub fn scan_runs(root: &Path) -> Vec<RunEntry> {
    let (mut dirs, _) = find_dirs(root);
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

/// The run directories and the study directories under `root`.
fn find_dirs(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut runs, mut studies) = (Vec::new(), Vec::new());
    collect_dirs(root, 3, &mut runs, &mut studies);
    (runs, studies)
}

fn collect_dirs(dir: &Path, depth: usize, runs: &mut Vec<PathBuf>, studies: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if StudyPlan::path(&path).is_file() {
            studies.push(path);
        } else if path.join("spec.toml").is_file() {
            runs.push(path);
        } else if depth > 1 && path.is_dir() {
            collect_dirs(&path, depth - 1, runs, studies);
        }
    }
}

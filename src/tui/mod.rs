//! The terminal UI: `banbench` with no arguments, or `banbench tui [PRESET | RUN_DIR]`.
//!
//! State and its changes live in [`app`] (plain data, changed only by [`app::Msg`]s), drawing in
//! [`views`] (a pure function of the state), and everything that touches the outside world (the
//! terminal, signals, the worker thread, the run directory) in `runtime`. Nothing here names a
//! burn type: the worker is reached through `worker`, `events` and the run directory.

pub mod app;
pub mod ensembles;
mod runtime;
pub mod setup;
pub mod views;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::run_dir::RunDir;
use crate::spec::{Overrides, Spec};
use app::{Experiment, LanguageSnapshot, Msg, RunEntry, Snapshot};
use setup::{CorpusFacts, PresetEntry};

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
        .filter(|path| {
            !std::fs::read_to_string(path).is_ok_and(|text| crate::table::is_table_preset(&text))
        })
        .map(preset_entry)
        .collect();
    if presets.is_empty() {
        let path = PathBuf::from("<built-in>/quick.toml");
        let spec = Spec::parse(BUILT_IN_QUICK, &path, &Overrides::default())
            .map(|s| Experiment::Vision(Box::new(s)))
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
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    if crate::table::is_table_preset(&text) {
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
    let language = crate::lm::spec::is_lm_source(&text);
    if !language {
        let spec = Spec::load(&path, &Overrides::default())
            .map(|s| Experiment::Vision(Box::new(s)))
            .map_err(|e| e.to_string());
        return PresetEntry {
            path,
            spec,
            corpus: None,
        };
    }
    let spec = crate::lm::spec::LmSpec::load(&path, &Overrides::default());
    let corpus = spec.as_ref().ok().map(|spec| {
        crate::lm::train::load_corpus(spec)
            .map(|c| CorpusFacts {
                vocabulary: c.vocab.len(),
                characters: crate::arch::language::char_count(&c.vocab),
                train_tokens: c.train.len(),
            })
            .map_err(|e| format!("{e:#}"))
    });
    PresetEntry {
        path,
        spec: spec
            .map(|s| Experiment::Language(Box::new(s)))
            .map_err(|e| e.to_string()),
        corpus,
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
        spec: dir.spec()?,
        epochs: dir.metrics()?,
        results: dir.results()?,
    })
}

/// Whether a run directory holds a language-model run (its spec.toml names a corpus).
pub fn is_language_run(dir: &RunDir) -> bool {
    std::fs::read_to_string(dir.spec_path()).is_ok_and(|t| crate::lm::spec::is_lm_source(&t))
}

/// What a language-model run directory holds now.
pub fn read_language_snapshot(dir: &RunDir) -> Result<LanguageSnapshot> {
    let spec = crate::lm::spec::LmSpec::load(&dir.spec_path(), &Overrides::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(LanguageSnapshot {
        spec,
        epochs: dir.metrics()?,
        results: dir.language_results()?,
    })
}

/// A fresh read of a watched run directory of either task, as the message that carries it.
pub fn poll(dir: &RunDir) -> Result<Msg> {
    Ok(if is_language_run(dir) {
        Msg::PolledLanguage(read_language_snapshot(dir)?)
    } else {
        Msg::Polled(read_snapshot(dir)?)
    })
}

/// Opens a run directory of either task for watching.
pub fn open(path: &Path) -> Result<(RunDir, Msg)> {
    let dir = RunDir::open(path)?;
    let msg = if is_language_run(&dir) {
        Msg::OpenedLanguage {
            dir: path.to_path_buf(),
            snapshot: read_language_snapshot(&dir)?,
        }
    } else {
        Msg::Opened {
            dir: path.to_path_buf(),
            snapshot: read_snapshot(&dir)?,
        }
    };
    Ok((dir, msg))
}

/// Run directories under `root` (a table's chains sit two levels down), newest name first.
pub fn scan_runs(root: &Path) -> Vec<RunEntry> {
    let mut dirs = Vec::new();
    collect_run_dirs(root, 3, &mut dirs);
    dirs.sort();
    dirs.reverse();
    dirs.into_iter()
        .filter_map(|dir| {
            let run = RunDir::open(&dir).ok()?;
            if is_language_run(&run) {
                let snapshot = read_language_snapshot(&run).ok()?;
                let results = snapshot.results.as_ref();
                return Some(RunEntry {
                    name: snapshot.spec.name.clone(),
                    state: results.map(|r| r.state),
                    finished: results.map_or(0, |r| r.generations.len()),
                    generations: snapshot.spec.generations.count + 1,
                    dir,
                });
            }
            let spec = run.spec().ok()?;
            let results = run.results().ok().flatten();
            Some(RunEntry {
                name: spec.name.clone(),
                state: results.as_ref().map(|r| r.state),
                finished: results.as_ref().map_or(0, |r| r.generations.len()),
                generations: spec.generations.count + 1,
                dir,
            })
        })
        .collect()
}

fn collect_run_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.join("spec.toml").is_file() {
            out.push(path);
        } else if depth > 1 && path.is_dir() {
            collect_run_dirs(&path, depth - 1, out);
        }
    }
}

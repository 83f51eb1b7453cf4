//! A study: a chain or table preset trained once per seed. Seed s is an ordinary run (or table)
//! directory OUT/seed-S, resumable, watchable and reportable on its own, training exactly what
//! `banbench run --seed S` trains; OUT/study.json says what the study is, and OUT/results.json
//! and results.md hold the statistics across seeds, rewritten after every seed.

mod render;
pub mod results;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub use render::render;
pub use results::{StudyResults, collect};

use crate::device::DeviceChoice;
use crate::experiment::Preset;
use crate::headless;
use crate::run_dir::records::{RunState, Task};
use crate::run_dir::{RunDir, write_atomic};
use crate::table;
use crate::task::Loaded;

/// What a study directory holds, as study.json records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyPlan {
    pub name: String,
    pub task: Task,
    pub seeds: Vec<u64>,
    /// The run directories of one seed, relative to its directory: "" for a chain, ROW/CHAIN
    /// for a table's.
    pub places: Vec<String>,
}

impl StudyPlan {
    pub fn of(preset: &Preset, seeds: Vec<u64>) -> StudyPlan {
        let (name, places) = match preset {
            Preset::Chain(e) => (e.name().to_string(), vec![String::new()]),
            Preset::Table(t) => {
                let places = t
                    .chains
                    .iter()
                    .map(|c| {
                        let dir = table::chain_dir(Path::new(""), c);
                        dir.to_string_lossy().into_owned()
                    })
                    .collect();
                (t.name(), places)
            }
        };
        StudyPlan {
            name,
            task: preset.experiments()[0].1.task(),
            seeds,
            places,
        }
    }

    pub fn path(out: &Path) -> PathBuf {
        out.join("study.json")
    }

    /// The study of directory `out`, if it is one.
    pub fn read(out: &Path) -> Result<Option<StudyPlan>> {
        let path = StudyPlan::path(out);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{}: not a banbench study file", path.display()))
    }
}

/// Seed `seed`'s directory in study `out`.
pub fn seed_dir(out: &Path, seed: u64) -> PathBuf {
    out.join(format!("seed-{seed}"))
}

/// Trains (or resumes) every seed of `preset` in turn into `out`, writing the study's results
/// after each. Returns whether every seed finished (false when stopped).
pub fn run(
    preset: &Preset,
    seeds: &[u64],
    device: DeviceChoice,
    save_every: Duration,
    out: &Path,
) -> Result<bool> {
    let plan = StudyPlan::of(preset, seeds.to_vec());
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    match StudyPlan::read(out)? {
        Some(old) if old != plan => anyhow::bail!(
            "{} holds a study of other seeds or chains ({} seeds: {:?}); use another --out",
            out.display(),
            old.name,
            old.seeds
        ),
        _ => write_atomic(
            &StudyPlan::path(out),
            serde_json::to_string_pretty(&plan)?.as_bytes(),
        )?,
    }
    for (i, &seed) in seeds.iter().enumerate() {
        headless::print_line(format_args!(
            "\n##### seed {seed} ({}/{}) -> {}",
            i + 1,
            seeds.len(),
            seed_dir(out, seed).display()
        ));
        let finished = run_seed(
            &preset.with_seed(seed),
            device,
            save_every,
            &seed_dir(out, seed),
        )?;
        write_results(out, &plan)?;
        if !finished {
            return Ok(false);
        }
    }
    headless::print_line(format_args!(
        "\n{}\nstudy directory: {}",
        render(&collect(out, &plan, "Teacher", None)?),
        out.display()
    ));
    Ok(true)
}

/// One seed: its chain, or its table.
fn run_seed(
    preset: &Preset,
    device: DeviceChoice,
    save_every: Duration,
    dir: &Path,
) -> Result<bool> {
    match preset {
        Preset::Chain(experiment) => {
            let run_dir = RunDir::create(dir, experiment)?;
            if let Some(r) = run_dir.results()?
                && r.state == RunState::Finished
            {
                headless::print_line(format_args!("already finished in {}", dir.display()));
                return Ok(true);
            }
            let loaded = Loaded::new(experiment)?;
            let results = headless::run(experiment, loaded, device, save_every, &run_dir)?;
            Ok(results.state == RunState::Finished)
        }
        Preset::Table(table_run) => Ok(headless::run_table(table_run, device, save_every, dir)?.1),
    }
}

/// results.json and results.md of the study, from what its seeds have finished.
pub fn write_results(out: &Path, plan: &StudyPlan) -> Result<StudyResults> {
    let study = collect(out, plan, "Teacher", None)?;
    write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(&study)?.as_bytes(),
    )?;
    write_atomic(&out.join("results.md"), render(&study).as_bytes())?;
    Ok(study)
}

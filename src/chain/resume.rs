//! What a resumed run keeps, checked before it is trusted: the epoch records that parse, the
//! finished generations whose checkpoints load and whose saved outputs have the expected size
//! (results.json rebuilt from them when it is unreadable), and the generation in training's
//! last save, at an epoch's end or between two batches (model, momentum buffers,
//! best-validation model, how far the epoch got). Anything that fails a
//! check is trained again, and the reason is logged.

use anyhow::{Context, Result};
use burn::optim::ModuleOptimizer;
use burn::prelude::*;

use super::{
    Selection, Trainer, evaluate_ensembles, generation_result, load_checkpoint, save_checkpoint,
};
use crate::device::DeviceChoice;
use crate::run_dir::records::{EpochRecord, Results, RunState, generation_label};
use crate::run_dir::{ResumePoint, RunDir, WithinEpoch};

/// metrics.jsonl's records; lines that do not parse are dropped, with a note.
pub(super) fn read_history(run_dir: &RunDir, notes: &mut Vec<String>) -> Result<Vec<EpochRecord>> {
    let (records, bad) = run_dir.read_metrics()?;
    if !bad.is_empty() {
        let lines: Vec<String> = bad.iter().map(|l| l.to_string()).collect();
        notes.push(format!(
            "metrics.jsonl: line(s) {} do not parse and are dropped; the other records are kept",
            lines.join(", ")
        ));
        run_dir.write_metrics(&records)?;
    }
    Ok(records)
}

/// results.json, or a fresh one; when it cannot be read, rebuilt from the finished
/// generations' checkpoints (each evaluated again) and the epoch records.
pub(super) fn results<T: Trainer>(
    trainer: &T,
    run_dir: &RunDir,
    device: &Device,
    device_choice: DeviceChoice,
    history: &[EpochRecord],
    notes: &mut Vec<String>,
) -> Result<Results> {
    let experiment = trainer.experiment();
    let fresh = Results {
        task: experiment.task(),
        name: experiment.name().to_string(),
        dataset: trainer.dataset(),
        test_samples: trainer.test_samples(),
        vocabulary: trainer.vocabulary(),
        device: device_choice.to_string(),
        state: RunState::Running,
        generations: Vec::new(),
        ensembles: Vec::new(),
    };
    let mut results = match run_dir.results() {
        Ok(Some(results)) => return Ok(results),
        // Saved generations without results: a crash between the two writes.
        Ok(None) if !run_dir.checkpoint_path(0).exists() => return Ok(fresh),
        Ok(None) => {
            notes.push("results.json is missing; rebuilding it from the checkpoints".into());
            fresh
        }
        Err(e) => {
            notes.push(format!(
                "{e:#}; rebuilding results.json from the checkpoints and the epoch records"
            ));
            fresh
        }
    };
    for k in 0..=experiment.students() {
        let path = run_dir.checkpoint_path(k);
        if !path.exists() {
            break;
        }
        let model = match trainer
            .new_model(k, trainer.experiment().epochs_of(k), device, None)
            .and_then(|m| load_checkpoint(m, &path))
        {
            Ok(model) => model.valid(),
            Err(e) => {
                notes.push(format!("{e:#}; {} is trained again", generation_label(k)));
                break;
            }
        };
        let (outputs, metrics) = trainer.test_outputs(&model, device)?;
        run_dir.write_outputs(results.task, k, &outputs)?;
        let records: Vec<&EpochRecord> = history.iter().filter(|r| r.generation == k).collect();
        let train_seconds = records.last().map_or(0.0, |r| r.seconds);
        let best_epoch = (trainer.selection() == Selection::BestValidation)
            .then(|| {
                records
                    .iter()
                    .filter_map(|r| Some((r.epoch, r.validation_perplexity?)))
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(epoch, _)| epoch)
            })
            .flatten();
        results.generations.push(generation_result(
            trainer,
            k,
            metrics,
            best_epoch,
            train_seconds,
        ));
        notes.push(format!(
            "{}: rebuilt from its checkpoint",
            generation_label(k)
        ));
    }
    results.ensembles = evaluate_ensembles(trainer, run_dir, &results)?;
    run_dir.write_results(&results, experiment.description())?;
    Ok(results)
}

/// How many of the listed generations, in order from the teacher, a resumed run keeps: those
/// whose checkpoint loads and whose saved outputs have the expected size.
pub(super) fn verify_finished<T: Trainer>(
    trainer: &T,
    run_dir: &RunDir,
    device: &Device,
    results: &Results,
    notes: &mut Vec<String>,
) -> usize {
    for (k, g) in results.generations.iter().enumerate() {
        if g.generation != k {
            return k;
        }
        let checked = run_dir
            .read_outputs(results.task, k, trainer.output_len())
            .and_then(|_| trainer.new_model(k, trainer.experiment().epochs_of(k), device, None))
            .and_then(|m| load_checkpoint(m, &run_dir.checkpoint_path(k)));
        if let Err(e) = checked {
            notes.push(format!(
                "{e:#}; {} and the generations after it are trained again",
                g.label
            ));
            return k;
        }
    }
    results.generations.len()
}

/// A generation's training as its last save left it.
pub(super) struct Resumed<M> {
    /// Epochs done.
    pub epochs: usize,
    /// How far the next epoch got, for a save within it.
    pub within: Option<WithinEpoch>,
    pub model: M,
    pub optimizer: ModuleOptimizer,
    /// The best-validation model so far, its epoch and validation perplexity.
    pub best: Option<(M, usize, f64)>,
}

/// Generation `k`'s last save, if it has one that loads and the epoch records up to it are
/// there; otherwise its in-generation saves are removed (with a note) and it starts over.
pub(super) fn load_epoch<T: Trainer>(
    trainer: &T,
    run_dir: &RunDir,
    k: usize,
    device: &Device,
    teacher: Option<&T::Model>,
    history: &[EpochRecord],
    notes: &mut Vec<String>,
) -> Option<Resumed<T::Model>> {
    let point = run_dir.resume_point(k)?;
    let recorded = history.iter().filter(|r| r.generation == k).count();
    let loaded = if recorded < point.epoch {
        Err(anyhow::anyhow!(
            "metrics.jsonl holds {recorded} of the {} epochs saved",
            point.epoch
        ))
    } else {
        load(trainer, run_dir, k, device, teacher, point.clone())
    };
    match loaded {
        Ok(resumed) => Some(resumed),
        Err(e) => {
            notes.push(format!(
                "{}: cannot resume after epoch {} ({e:#}); it starts over",
                generation_label(k),
                point.epoch
            ));
            run_dir.remove_epoch_checkpoints(k, None);
            None
        }
    }
}

fn load<T: Trainer>(
    trainer: &T,
    run_dir: &RunDir,
    k: usize,
    device: &Device,
    teacher: Option<&T::Model>,
    point: ResumePoint,
) -> Result<Resumed<T::Model>> {
    let [model_path, optimizer_path] = run_dir.epoch_checkpoint_paths(k, &point);
    let train_device = device.clone().autodiff();
    let model = load_checkpoint(
        trainer.new_model(k, point.epoch, &train_device, teacher)?,
        &model_path,
    )?;
    let optimizer = trainer
        .new_optimizer()
        .load(&optimizer_path)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("{}: cannot load the optimizer", optimizer_path.display()))?;
    if let Some(within) = &point.within {
        // A carry that does not load is found now, not after the model has been rebuilt.
        trainer.load_carry(&within.carry, &train_device)?;
        if within.batches > trainer.epoch_batches(k, point.epoch).len() {
            anyhow::bail!("the save is {} batches into an epoch", within.batches);
        }
    }
    let best = match point.best {
        Some((epoch, validation)) => {
            let path = run_dir.best_checkpoint_path(k, epoch);
            let model = load_checkpoint(trainer.new_model(k, epoch, device, None)?, &path)?;
            Some((model.valid(), epoch, validation))
        }
        None => None,
    };
    Ok(Resumed {
        epochs: point.epoch,
        within: point.within,
        model,
        optimizer,
        best,
    })
}

/// Saves what resuming generation `k` at `point` needs (and `new_best`, the best-validation
/// model of `point.best`, when it has just improved), then the resume point that names them,
/// then removes the saves it replaces.
pub(super) fn save<M: Module>(
    run_dir: &RunDir,
    k: usize,
    point: &ResumePoint,
    model: &M,
    optimizer: &ModuleOptimizer,
    new_best: Option<&M>,
) -> Result<()> {
    let [model_path, optimizer_path] = run_dir.epoch_checkpoint_paths(k, point);
    // burn keeps batch norm's latest running-statistics update pending until a sync, and a
    // record takes the synced value: without this a save within an epoch lost the last
    // batch's update. Syncing changes nothing else (the next update reads the same value).
    let _ = model.valid();
    save_checkpoint(model.clone(), &model_path)?;
    optimizer
        .save(&optimizer_path)
        .map_err(|e| anyhow::anyhow!("{}: cannot save: {e:?}", optimizer_path.display()))?;
    if let (Some(best), Some((epoch, _))) = (new_best, point.best) {
        save_checkpoint(best.clone(), &run_dir.best_checkpoint_path(k, epoch))?;
    }
    run_dir.write_resume(k, point)?;
    run_dir.remove_epoch_checkpoints(k, Some(point));
    Ok(())
}

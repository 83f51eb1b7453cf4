//! `banbench run` of a language-model preset: the worker thread trains, this thread prints one
//! line per epoch (perplexities, tokens/s), a progress line on a terminal, and the results table.

use anyhow::Result;

use super::corpus::Corpus;
use super::spec::LmSpec;
use super::train;
use crate::device::DeviceChoice;
use crate::events::{Event, LanguageResults};
use crate::headless::{event_line, print_events, stop_on_ctrl_c};
use crate::run_dir::{RunDir, language_results_table};
use crate::worker;

/// Trains `spec` into `run_dir` on a worker thread, printing as it goes.
pub fn run(
    spec: &LmSpec,
    corpus: Corpus,
    device: DeviceChoice,
    run_dir: &RunDir,
) -> Result<LanguageResults> {
    let worker = {
        let (spec, run_dir) = (spec.clone(), run_dir.clone());
        worker::spawn(move |control, emit| {
            train::run(&spec, &corpus, device, &run_dir, control, emit)
        })?
    };
    stop_on_ctrl_c(worker.control.clone());
    // The epoch's printed line (perplexities, tokens/s) comes as a Log of its own.
    let line = |event: &Event| match event {
        Event::Epoch(_) => None,
        other => event_line(other),
    };
    print_events(worker.events, "tok/s", line);
    let results = worker
        .handle
        .join()
        .map_err(|_| anyhow::anyhow!("the training worker panicked"))??;
    println!("\n{}", language_results_table(&results, &spec.description));
    println!("run directory: {}", run_dir.root.display());
    Ok(results)
}

//! `banbench run`: drives the worker without a terminal UI (SSH, scripts, CI): one line per
//! epoch, a progress line on a terminal, and the results table at the end.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, Once};

use anyhow::Result;

use crate::device::DeviceChoice;
use crate::events::{Event, Results, generation_label};
use crate::run_dir::{RunDir, results_table};
use crate::spec::Spec;
use crate::train::RunData;
use crate::worker::{self, RunControl};

/// "1h02m", "3m05s", "42s".
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The printed form of one event, or None for events shown only as progress.
pub fn event_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::Started {
            name,
            dataset,
            device,
            generations,
            epochs,
            resumed,
            ..
        } => {
            let mut line = format!(
                "banbench: {name} on {dataset}, device {device}: teacher + {} generation(s), {epochs} epoch(s) each",
                generations - 1
            );
            if !resumed.is_empty() {
                let labels: Vec<String> = resumed.iter().map(|&g| generation_label(g)).collect();
                line.push_str(&format!(" (resuming: {} already done)", labels.join(", ")));
            }
            line
        }
        Event::GenerationStarted {
            generation,
            model,
            control,
            parameters,
        } => format!(
            "== {} : {model}, {parameters} parameters, trained on {control}",
            generation_label(*generation)
        ),
        Event::Epoch(r) => {
            let mut line = format!(
                "{:<8} epoch {:>3}/{:<3} loss {:.4}  train err {:5.2}%  test err {:5.2}%",
                generation_label(r.generation),
                r.epoch,
                r.epochs,
                r.train_loss,
                r.train_error,
                r.test_error
            );
            if let Some(v) = r.validation_error {
                line.push_str(&format!("  val err {v:5.2}%"));
            }
            line.push_str(&format!(
                "  lr {:.4}  {:.0} img/s  ETA {}",
                r.lr,
                r.images_per_sec,
                format_duration(r.eta_seconds)
            ));
            line
        }
        Event::GenerationDone { generation: g, .. } => format!(
            "== {} done in {}: top-1 error {:.2}%, top-5 {:.2}%, NLL {:.4}, ECE {:.2}%",
            g.label,
            format_duration(g.train_seconds),
            g.metrics.top1_error,
            g.metrics.top5_error,
            g.metrics.nll,
            g.metrics.ece
        ),
        Event::Log(text) => text.clone(),
        // A failure reaches the user as the run's error, printed once by the caller.
        Event::Progress { .. } | Event::Ended(_) | Event::Failed(_) => return None,
    })
}

/// Points Ctrl-C (and SIGTERM/SIGHUP) at `control`: the first stops after the current batch,
/// keeping finished generations; the second quits at once. The process has one handler, so
/// successive runs (the chains of a table) each take it over.
pub(crate) fn stop_on_ctrl_c(control: Arc<RunControl>) {
    static CURRENT: Mutex<Option<Arc<RunControl>>> = Mutex::new(None);
    static INSTALL: Once = Once::new();
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(control);
    INSTALL.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if current.is_none_or(|c| c.request_stop()) {
                eprintln!("\nbanbench: stopping now; the unfinished generation is lost");
                std::process::exit(130);
            }
            eprintln!("\nbanbench: stopping after this batch; finished generations are saved (Ctrl-C again to quit at once)");
        });
    });
}

/// Prints a worker's events as they come: `line` gives each event's line (None: not printed),
/// and on a terminal a progress line (throughput in `unit`) is redrawn in place within epochs.
pub(crate) fn print_events(
    events: impl IntoIterator<Item = Event>,
    unit: &str,
    line: fn(&Event) -> Option<String>,
) {
    let progress_line = std::io::stderr().is_terminal();
    let mut stderr = std::io::stderr();
    for event in events {
        if let Event::Progress {
            generation,
            epoch,
            batch,
            batches,
            images_per_sec,
        } = &event
        {
            if progress_line {
                let _ = write!(
                    stderr,
                    "\r{:<8} epoch {epoch:>3} batch {batch}/{batches}  {images_per_sec:.0} {unit} ",
                    generation_label(*generation)
                );
                let _ = stderr.flush();
            }
            continue;
        }
        if progress_line {
            let _ = write!(stderr, "\r\x1b[2K");
        }
        if let Some(text) = line(&event) {
            println!("{text}");
        }
    }
}

/// Runs the spec on a worker thread, printing its events; Ctrl-C stops it after saving what
/// is finished. Returns the final results.
pub fn run(spec: &Spec, data: RunData, device: DeviceChoice, run_dir: &RunDir) -> Result<Results> {
    let worker = {
        let (spec, run_dir) = (spec.clone(), run_dir.clone());
        worker::spawn(move |control, emit| {
            crate::train::run(&spec, &data, device, &run_dir, control, emit)
        })?
    };
    stop_on_ctrl_c(worker.control.clone());
    print_events(worker.events, "img/s", event_line);
    let results = worker
        .handle
        .join()
        .map_err(|_| anyhow::anyhow!("the training worker panicked"))??;
    println!("\n{}", results_table(&results, spec));
    println!("run directory: {}", run_dir.root.display());
    Ok(results)
}

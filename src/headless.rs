//! `banbench run`: drives the worker in the run process (from a terminal, a script, CI, or
//! detached by the TUI): one line per epoch, a progress line on a terminal, and the results
//! table at the end; for a table preset, every chain in turn and the table after each.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::device::DeviceChoice;
use crate::events::{Event, event_line, format_duration};
use crate::experiment::{Experiment, Preset, TableRun};
use crate::run_dir::records::{EpochRecord, Results, RunState, Task, generation_label};
use crate::run_dir::{RunDir, lock, results_table, write_atomic};
use crate::task::Loaded;
use crate::units::Unit;
use crate::worker::{self, RunControl};
use crate::{study, table};

/// Set once stdout cannot be written (its reader has gone: `banbench run ... | head -3`).
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Prints `text` and a newline on stdout, where `println!` would panic on a closed pipe (and
/// take the run with it). After the first failed write nothing more is printed and the run
/// goes on: its events are in the run directory's events.jsonl, its results in results.json.
/// Returns whether the line was written.
pub fn print_line(text: impl Display) -> bool {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return false;
    }
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{text}").and_then(|()| out.flush());
    if written.is_err() {
        STDOUT_GONE.store(true, Ordering::Relaxed);
    }
    written.is_ok()
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
                let _ = writeln!(
                    std::io::stderr(),
                    "\nbanbench: stopping now; what was trained since the last save is lost"
                );
                std::process::exit(130);
            }
            let _ = writeln!(
                std::io::stderr(),
                "\nbanbench: stopping after this batch and saving where it stopped (Ctrl-C again to quit at once)"
            );
        });
    });
}

/// Prints a worker's events as they come, and on a terminal a progress line redrawn in place
/// within epochs.
fn print_events(events: impl IntoIterator<Item = Event>, task: Task) {
    let progress_line = std::io::stderr().is_terminal();
    let mut stderr = std::io::stderr();
    for event in events {
        if let Event::Progress(p) = &event {
            if progress_line {
                let _ = write!(
                    stderr,
                    "\r{:<8} epoch {:>3} batch {}/{}  {:.0} {} ",
                    generation_label(p.generation),
                    p.epoch,
                    p.batch,
                    p.batches,
                    p.samples_per_sec,
                    task.sample_unit()
                );
                let _ = stderr.flush();
            }
            continue;
        }
        if progress_line {
            let _ = write!(stderr, "\r\x1b[2K");
        }
        if let Some(text) = event_line(&event, task) {
            print_line(text);
        }
        // The log of a run says where each epoch's time went (the TUI shows the latest).
        if let Event::Epoch(EpochRecord {
            time: Some(time), ..
        }) = &event
        {
            print_line(format_args!("         time {}", time.describe()));
        }
    }
}

/// Runs one chain on a worker thread, printing its events; Ctrl-C stops it after saving what
/// is finished. Returns the final results.
pub fn run(
    experiment: &Experiment,
    loaded: Loaded,
    device: DeviceChoice,
    control: RunControl,
    run_dir: &RunDir,
) -> Result<Results> {
    let task = experiment.task();
    let _lock = run_dir.lock(control.lock_patience())?;
    let worker = {
        let run_dir = run_dir.clone();
        worker::spawn(control, move |control, emit| {
            loaded.run(device, &run_dir, control, emit)
        })?
    };
    stop_on_ctrl_c(worker.control.clone());
    print_events(worker.events, task);
    let outcome = worker
        .handle
        .join()
        .map_err(|_| anyhow::anyhow!("the training worker panicked"))
        .and_then(|r| r);
    let results = outcome.inspect_err(|e| {
        // Followers in other processes learn of the failure from the run directory.
        let _ = run_dir.append_event(&Event::Failed {
            message: format!("{e:#}"),
        });
    })?;
    print_line(format_args!(
        "\n{}",
        results_table(&results, experiment.description())
    ));
    print_line(format_args!("run directory: {}", run_dir.root.display()));
    Ok(results)
}

/// Runs (or resumes) every chain of a table into `out`, writing the table's results.md after
/// each chain. Returns the rendered table and whether it finished (false when stopped).
pub fn run_table(
    table_run: &TableRun,
    device: DeviceChoice,
    save_every: Duration,
    out: &Path,
) -> Result<(String, bool)> {
    let TableRun {
        preset,
        profile,
        chains,
    } = table_run;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut results = BTreeMap::new();
    for (i, chain) in chains.iter().enumerate() {
        let run_dir = RunDir::create(&table::chain_dir(out, chain), &chain.experiment)?;
        if let Some(source) = table::teacher_source(chains, i) {
            table::adopt_teacher(
                &RunDir::open(&table::chain_dir(out, source))?,
                &run_dir,
                &chain.experiment,
            )?;
        }
        print_line(format_args!(
            "\n=== [{}/{}] {} / {}",
            i + 1,
            chains.len(),
            chain.row,
            chain.name
        ));
        let chain_results = match run_dir.results()? {
            Some(r) if r.state == RunState::Finished => {
                print_line(format_args!(
                    "already finished in {}",
                    run_dir.root.display()
                ));
                r
            }
            _ => run(
                &chain.experiment,
                Loaded::new(&chain.experiment)?,
                device,
                RunControl::new(save_every),
                &run_dir,
            )?,
        };
        let stopped = chain_results.state != RunState::Finished;
        results.insert((chain.row.clone(), chain.name.clone()), chain_results);
        let rendered = table::render(preset, profile, &results);
        write_atomic(&out.join("results.md"), rendered.as_bytes())?;
        if stopped {
            return Ok((rendered, false));
        }
    }
    Ok((table::render(preset, profile, &results), true))
}

/// Trains (or resumes) a study: every seed of `preset` in turn into `out`, writing the study's results
/// after each. Returns whether every seed finished (false when stopped).
pub fn run_study(
    preset: &Preset,
    seeds: &[u64],
    device: DeviceChoice,
    save_every: Duration,
    out: &Path,
) -> Result<bool> {
    let plan = study::StudyPlan::of(preset, seeds.to_vec());
    write_study_plan(out, &plan)?;
    for (i, &seed) in seeds.iter().enumerate() {
        print_line(format_args!(
            "\n##### seed {seed} ({}/{}) -> {}",
            i + 1,
            seeds.len(),
            study::seed_dir(out, seed).display()
        ));
        let finished = run_seed(
            &preset.with_seed(seed),
            device,
            save_every,
            &study::seed_dir(out, seed),
        )?;
        study::write_results(out, &plan)?;
        if !finished {
            return Ok(false);
        }
    }
    print_line(format_args!(
        "\n{}\nstudy directory: {}",
        study::render(&study::collect(out, &plan, "Teacher", None)?),
        out.display()
    ));
    Ok(true)
}

/// Writes OUT/study.json, refusing a directory that holds a study of other seeds or chains.
fn write_study_plan(out: &Path, plan: &study::StudyPlan) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    match study::StudyPlan::read(out)? {
        Some(old) if &old != plan => Err(crate::Refused(format!(
            "{} holds a study of other seeds or chains ({} seeds: {:?}); use another --out",
            out.display(),
            old.name,
            old.seeds
        ))
        .into()),
        Some(_) => Ok(()),
        None => write_atomic(
            &study::StudyPlan::path(out),
            serde_json::to_string_pretty(plan)?.as_bytes(),
        )
        .with_context(|| format!("writing {}", study::StudyPlan::path(out).display())),
    }
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
                print_line(format_args!("already finished in {}", dir.display()));
                return Ok(true);
            }
            let loaded = Loaded::new(experiment)?;
            let results = run(
                experiment,
                loaded,
                device,
                RunControl::new(save_every),
                &run_dir,
            )?;
            Ok(results.state == RunState::Finished)
        }
        Preset::Table(table_run) => Ok(run_table(table_run, device, save_every, dir)?.1),
    }
}

/// Runs exactly one unit of `preset` into the shared output directory `out`, refusing while a
/// unit it depends on is not done; then rewrites the table's (and the study's) results from
/// whatever is finished.
pub fn run_unit(
    preset: &Preset,
    unit: &Unit,
    all: &[Unit],
    device: DeviceChoice,
    save_every: Duration,
    out: &Path,
) -> Result<RunState> {
    for dep in &unit.depends {
        let waiting = all.iter().find(|u| &u.id == dep);
        if !waiting.is_some_and(|u| u.done(out)) {
            return Err(crate::Refused(format!(
                "unit {} waits for unit {dep}, which is not done in {}",
                unit.id,
                out.display()
            ))
            .into());
        }
    }
    crate::units::write_manifest(out, all)?;
    let dir = out.join(&unit.dir);
    let run_dir = RunDir::create(&dir, &unit.experiment)?;
    if let Some(source) = &unit.adopts {
        table::adopt_teacher(
            &RunDir::open(&out.join(source))?,
            &run_dir,
            &unit.experiment,
        )?;
    }
    let state = if unit.done(out) {
        print_line(format_args!(
            "unit {} is already done in {}",
            unit.id,
            dir.display()
        ));
        RunState::Finished
    } else {
        // A unit may be a Slurm task requeued right after its former run was killed on
        // another node, whose lock stays fresh until its heartbeat is `STALE_AFTER` old.
        let patience = lock::STALE_AFTER + 2 * lock::HEARTBEAT_EVERY;
        let mut control = RunControl::new(save_every).waiting_for_lock(patience);
        if unit.teacher_only {
            control = control.until_generation(0);
        }
        let loaded = Loaded::new(&unit.experiment)?;
        run(&unit.experiment, loaded, device, control, &run_dir)?.state
    };
    write_results_so_far(preset, out)?;
    Ok(state)
}

/// The table's results.md in `out` (each seed's, for a study) and the study's results, from the
/// chains finished so far.
pub fn write_results_so_far(preset: &Preset, out: &Path) -> Result<()> {
    let seeds = preset.seeds()?;
    let tables: Vec<PathBuf> = match &seeds {
        Some(seeds) => seeds.iter().map(|&s| study::seed_dir(out, s)).collect(),
        None => vec![out.to_path_buf()],
    };
    if let Preset::Table(t) = preset {
        for dir in &tables {
            let read = || {
                let mut results = BTreeMap::new();
                for chain in &t.chains {
                    let run = RunDir::open(&table::chain_dir(dir, chain));
                    if let Ok(Some(r)) = run.and_then(|r| r.results()) {
                        results.insert((chain.row.clone(), chain.name.clone()), r);
                    }
                }
                results
            };
            // Units finishing at once on other machines write this too: write again until
            // what was read is what is there, so that the last write holds every finished chain.
            let mut results = read();
            while !results.is_empty() {
                let rendered = table::render(&t.preset, &t.profile, &results);
                write_atomic(&dir.join("results.md"), rendered.as_bytes())?;
                let again = read();
                if again == results {
                    break;
                }
                results = again;
            }
        }
    }
    if let Some(seeds) = seeds {
        let plan = study::StudyPlan::of(preset, seeds);
        write_study_plan(out, &plan)?;
        study::write_results(out, &plan)?;
    }
    Ok(())
}

/// The units running as child processes: each with its device and when it started. Dropped
/// with children still in it (an error ended the parent's loop), it stops them all and waits
/// for each to save and exit, so that no unit is left running unwatched.
struct InFlight<'a>(
    Vec<(
        &'a Unit,
        std::process::Child,
        DeviceChoice,
        std::time::Instant,
    )>,
);

impl InFlight<'_> {
    /// Asks every unit in flight to save where it is and stop (SIGTERM, as Ctrl-C would).
    fn stop_all(&self) {
        for (_, child, _, _) in &self.0 {
            // SAFETY: kill(2) on a child's pid; it is ours until we wait for it.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        self.stop_all();
        for (unit, child, _, _) in &mut self.0 {
            print_line(format_args!("waiting for {} to save and stop", unit.id));
            let _ = child.wait();
        }
    }
}

/// How a parent process starts one unit as a child `banbench run ... --unit ID`: the program
/// and the arguments every unit shares (the preset, its profile, seeds and overrides).
pub struct UnitCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// Runs every unit not yet done, each as a child process on one of `slots` (a device per unit
/// in flight: `--devices cuda:0,cuda:1`, or `--jobs N` copies of one), starting each as soon as
/// the units it depends on are done. Each child's output goes to OUT/logs/UNIT.log. Ctrl-C,
/// SIGTERM or SIGHUP stop every unit in flight (each saves where it is) and start no more.
/// Returns Finished, Stopped, or Failed when a unit failed or could not start.
pub fn run_units(
    preset: &Preset,
    units: &[Unit],
    command: &UnitCommand,
    slots: &[DeviceChoice],
    out: &Path,
) -> Result<RunState> {
    crate::units::write_manifest(out, units)?;
    let control = Arc::new(RunControl::default());
    stop_on_ctrl_c(control.clone());
    let mut stopping = false;
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let mut pending: Vec<&Unit> = units.iter().filter(|u| !u.done(out)).collect();
    let mut failed: Vec<String> = Vec::new();
    let mut free: Vec<DeviceChoice> = slots.iter().rev().copied().collect();
    let mut running = InFlight(Vec::new());
    print_line(format_args!(
        "{} unit(s) to run ({} already done), {} at a time",
        pending.len(),
        units.len() - pending.len(),
        slots.len()
    ));
    loop {
        let mut i = 0;
        while i < running.0.len() {
            let Some(status) = running.0[i].1.try_wait()? else {
                i += 1;
                continue;
            };
            let (unit, _, device, started) = running.0.swap_remove(i);
            free.push(device);
            let took = format_duration(started.elapsed().as_secs_f64());
            if status.success() {
                print_line(format_args!("done     {} on {device} in {took}", unit.id));
            } else if stopping {
                print_line(format_args!("stopped  {} on {device}", unit.id));
            } else {
                failed.push(unit.id.clone());
                print_line(format_args!(
                    "failed   {} on {device} ({status}); its log: {}",
                    unit.id,
                    out.join(crate::units::log_path(&unit.id)).display()
                ));
            }
        }
        if control.stopping() && !stopping {
            stopping = true;
            print_line("stopping every unit in flight; each saves where it is");
            running.stop_all();
        }
        // Start what can start: a free device, and every dependency done.
        while let Some(&device) = free.last().filter(|_| !stopping) {
            let Some(at) = pending.iter().position(|u| {
                u.depends
                    .iter()
                    .all(|d| units.iter().any(|v| &v.id == d && v.done(out)))
            }) else {
                break;
            };
            let unit = pending.remove(at);
            let log = out.join(crate::units::log_path(&unit.id));
            // A unit that cannot start fails alone: the others in flight go on, and what
            // waits for it is left pending.
            let child = std::fs::File::create(&log)
                .and_then(|log| Ok((log.try_clone()?, log)))
                .with_context(|| format!("creating {}", log.display()))
                .and_then(|(stdout, stderr)| {
                    std::process::Command::new(&command.program)
                        .args(&command.args)
                        .args(["--unit", &unit.id, "--device", &device.to_string()])
                        .stdin(std::process::Stdio::null())
                        .stdout(stdout)
                        .stderr(stderr)
                        .spawn()
                        .with_context(|| format!("starting {}", command.program.display()))
                });
            let child = match child {
                Ok(child) => child,
                Err(e) => {
                    failed.push(unit.id.clone());
                    print_line(format_args!("failed   {} could not start: {e:#}", unit.id));
                    continue;
                }
            };
            free.pop();
            print_line(format_args!(
                "started  {} on {device} (pid {}; {} in flight)",
                unit.id,
                child.id(),
                running.0.len() + 1
            ));
            running
                .0
                .push((unit, child, device, std::time::Instant::now()));
        }
        if running.0.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    write_results_so_far(preset, out)?;
    if stopping {
        print_line("stopped; the same command resumes every unit where it stopped");
        return Ok(RunState::Stopped);
    }
    if !pending.is_empty() {
        let blocked: Vec<&str> = pending.iter().map(|u| u.id.as_str()).collect();
        print_line(format_args!(
            "not started, waiting for failed units: {}",
            blocked.join(", ")
        ));
    }
    Ok(if failed.is_empty() && pending.is_empty() {
        RunState::Finished
    } else {
        RunState::Failed
    })
}

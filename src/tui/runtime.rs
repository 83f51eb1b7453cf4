//! The event loop: terminal keys, a tick, signals, the worker's events and the watched run
//! directory become [`Msg`]s for [`App::update`]; the [`Effect`]s it returns are carried out
//! here. The worker trains on its own thread; this loop never waits on it except when leaving,
//! when a stop has been asked and finished generations must be saved first.

use std::collections::VecDeque;
use std::io::stdout;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{Event as TermEvent, EventStream};
use crossterm::terminal::{EnterAlternateScreen, enable_raw_mode};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use crate::device::DeviceChoice;
use crate::events::Event;
use crate::run_dir::RunDir;
use crate::worker::{self, RunControl, WORKER_THREAD};
use crate::{lm, train, tui};

use super::app::{App, Effect, Exit, Experiment, Msg, Signal};
use super::setup::DEVICES;
use super::views;

/// What reaches the loop from other threads: messages for the app, and the worker's controls
/// (kept here, not in the app's plain-data state).
enum Incoming {
    App(Box<Msg>),
    Control(Arc<RunControl>),
    /// A run directory to poll: a language run started here sends no records as events.
    Watch(RunDir),
}

fn app_msg(msg: Msg) -> Incoming {
    Incoming::App(Box::new(msg))
}

/// Opens the terminal UI on `target`: a preset file to select, a run directory to open, or
/// nothing (the Setup screen with the presets under ./presets).
pub fn run(target: Option<PathBuf>, device: DeviceChoice) -> Result<()> {
    let mut presets = tui::load_presets(Path::new("presets"));
    let (preset, open) = match target {
        Some(t) if t.is_dir() => {
            RunDir::open(&t)?;
            (None, Some(t))
        }
        Some(t) if t.is_file() => {
            if !presets.iter().any(|p| p.path == t) {
                presets.insert(0, tui::preset_entry(t.clone()));
            }
            (Some(t), None)
        }
        Some(t) => anyhow::bail!("{}: neither a preset file nor a run directory", t.display()),
        None => (None, None),
    };
    // https://no-color.org: any non-empty NO_COLOR turns colour off.
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut app = App::new(presets, device, color);
    if let Some(path) = preset {
        app.setup.select(&path);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(event_loop(app, open))
}

fn restore_terminal() {
    let _ = ratatui::try_restore();
    let _ = crossterm::execute!(stdout(), crossterm::cursor::Show);
}

fn open_terminal() -> Result<DefaultTerminal> {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A worker panic becomes the run's failure (see `launch`); the UI keeps the terminal.
        if std::thread::current().name() == Some(WORKER_THREAD) {
            return;
        }
        restore_terminal();
        default_hook(info);
    }));
    enable_raw_mode()
        .context("the terminal UI needs a terminal (for scripts and CI use `banbench run`)")?;
    crossterm::execute!(stdout(), EnterAlternateScreen)?;
    Ok(Terminal::new(CrosstermBackend::new(stdout()))?)
}

async fn event_loop(mut app: App, open: Option<PathBuf>) -> Result<()> {
    let (tx, mut rx) = unbounded_channel::<Incoming>();
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut terminal = open_terminal()?;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut poll = tokio::time::interval(Duration::from_secs(1));
    let mut last_tick = Instant::now();
    let mut loop_state = Loop {
        control: None,
        watched: None,
        tx: tx.clone(),
    };
    // Once the terminal is gone (SSH dropped) nothing is drawn; the loop only waits for the
    // worker to save and end.
    let mut terminal_lost = false;

    check_devices(tx.clone());
    let mut pending: VecDeque<Msg> = VecDeque::new();
    if let Some(dir) = open {
        pending.extend(loop_state.perform(Effect::Open(dir), &app));
    }
    loop {
        while let Some(msg) = pending.pop_front() {
            for effect in app.update(msg) {
                pending.extend(loop_state.perform(effect, &app));
            }
        }
        if app.exit == Exit::Now {
            break;
        }
        if !terminal_lost && terminal.draw(|frame| views::draw(frame, &app)).is_err() {
            terminal_lost = true;
            pending.push_back(Msg::Signal(Signal::Hangup));
            continue;
        }
        let msg = tokio::select! {
            key = keys.next(), if !terminal_lost => match key {
                Some(Ok(TermEvent::Key(key))) => Msg::Key(key),
                Some(Ok(_)) => continue, // a resize: redraw
                Some(Err(_)) | None => {
                    terminal_lost = true;
                    Msg::Signal(Signal::Hangup)
                }
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let dt = now - last_tick;
                last_tick = now;
                Msg::Tick(dt)
            }
            _ = poll.tick(), if loop_state.watched.is_some() => {
                match loop_state.watched.as_ref().map(tui::poll) {
                    Some(Ok(msg)) => msg,
                    // A file caught between writes is read again at the next poll.
                    _ => continue,
                }
            }
            Some(incoming) = rx.recv() => match incoming {
                Incoming::App(msg) => *msg,
                Incoming::Control(control) => {
                    loop_state.control = Some(control);
                    continue;
                }
                Incoming::Watch(dir) => {
                    loop_state.watched = Some(dir);
                    continue;
                }
            },
            _ = sigterm.recv() => Msg::Signal(Signal::Terminate),
            _ = sigint.recv() => Msg::Signal(Signal::Interrupt),
            _ = sighup.recv() => {
                terminal_lost = true;
                Msg::Signal(Signal::Hangup)
            }
        };
        pending.push_back(msg);
    }
    drop(terminal);
    restore_terminal();
    Ok(())
}

/// The loop's handles to the outside world.
struct Loop {
    control: Option<Arc<RunControl>>,
    watched: Option<RunDir>,
    tx: UnboundedSender<Incoming>,
}

impl Loop {
    /// Carries out one effect; file reads answer at once with a message.
    fn perform(&mut self, effect: Effect, app: &App) -> Option<Msg> {
        let current_dir = || {
            app.run.as_ref().map(|r| RunDir {
                root: r.dir.clone(),
            })
        };
        match effect {
            Effect::Start { experiment, device } => {
                self.watched = None;
                launch(experiment, device, self.tx.clone());
                None
            }
            Effect::Pause(paused) => {
                if let Some(c) = &self.control {
                    c.set_paused(paused);
                }
                None
            }
            Effect::Stop => {
                if let Some(c) = &self.control {
                    c.request_stop();
                }
                None
            }
            Effect::Open(path) => Some(match tui::open(&path) {
                Ok((dir, msg)) => {
                    self.watched = Some(dir);
                    msg
                }
                Err(e) => Msg::OpenFailed(format!("{e:#}")),
            }),
            Effect::ScanRuns => Some(Msg::Runs(tui::scan_runs(Path::new("runs")))),
            Effect::ReadLabels => {
                current_dir().map(|dir| Msg::Labels(dir.labels().map_err(|e| format!("{e:#}"))))
            }
            Effect::ReadLogits {
                generation,
                classes,
                samples,
            } => current_dir().map(|dir| Msg::Logits {
                generation,
                logits: dir
                    .read_logits(generation, classes, samples)
                    .map_err(|e| format!("{e:#}")),
            }),
            Effect::ReadTargets { generation, tokens } => current_dir().map(|dir| Msg::Targets {
                generation,
                probabilities: dir
                    .read_target_probabilities(generation, tokens)
                    .map_err(|e| format!("{e:#}")),
            }),
        }
    }
}

/// Asks each device whether this build and machine can open it (LibTorch can take a moment).
fn check_devices(tx: UnboundedSender<Incoming>) {
    tokio::task::spawn_blocking(move || {
        let devices = DEVICES.iter().map(|&d| (d, d.open().map(|_| ()))).collect();
        let _ = tx.send(app_msg(Msg::Devices(devices)));
    });
}

/// Loads the data, creates the run directory and starts the worker, all off the UI thread,
/// then forwards the worker's events until it ends.
fn launch(experiment: Experiment, device: DeviceChoice, tx: UnboundedSender<Incoming>) {
    let send = move |m: Incoming| {
        let _ = tx.send(m);
    };
    std::thread::spawn(move || {
        let out = PathBuf::from("runs").join(format!(
            "{}-{}",
            experiment.name(),
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ));
        let started = (|| -> Result<_> {
            Ok(match experiment {
                Experiment::Vision(spec) => {
                    let data = train::load_data(&spec)?;
                    let run_dir = RunDir::create(&out, &spec)?;
                    let snapshot = tui::read_snapshot(&run_dir)?;
                    let worker = worker::spawn(move |control, emit| {
                        train::run(&spec, &data, device, &run_dir, control, emit).map(|_| ())
                    })?;
                    let launched = Msg::Launched {
                        dir: out.clone(),
                        snapshot,
                    };
                    (worker, launched, None)
                }
                Experiment::Language(spec) => {
                    let corpus = lm::train::load_corpus(&spec)?;
                    let run_dir = RunDir::create_language(&out, &spec)?;
                    let snapshot = tui::read_language_snapshot(&run_dir)?;
                    let watched = run_dir.clone();
                    let worker = worker::spawn(move |control, emit| {
                        lm::train::run(&spec, &corpus, device, &run_dir, control, emit).map(|_| ())
                    })?;
                    let launched = Msg::LaunchedLanguage {
                        dir: out.clone(),
                        snapshot,
                    };
                    (worker, launched, Some(watched))
                }
            })
        })();
        let (worker, launched, watched) = match started {
            Ok(started) => started,
            Err(e) => return send(app_msg(Msg::LaunchFailed(format!("{e:#}")))),
        };
        send(Incoming::Control(worker.control.clone()));
        send(app_msg(launched));
        if let Some(dir) = watched {
            send(Incoming::Watch(dir));
        }
        for event in worker.events {
            send(app_msg(Msg::Worker(event)));
        }
        if let Err(panic) = worker.handle.join() {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            send(app_msg(Msg::Worker(Event::Failed(format!(
                "the training worker panicked: {why}"
            )))));
        }
        send(app_msg(Msg::WorkerEnded));
    });
}

//! Everything that touches the outside world: the terminal, signals, the run processes it
//! starts (detached, so that they outlive this window) and the run directory it follows. The
//! app's state changes only through the messages this loop feeds it.

use std::collections::VecDeque;
use std::io::stdout;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

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
use crate::experiment::Experiment;
use crate::run_dir::records::Task;
use crate::run_dir::{Request, RunDir};
use crate::study::{self, StudyPlan};
use crate::tui;
use crate::units;

use super::app::{App, Effect, Exit, Msg, Signal};
use super::frame;
use super::screens::setup::DEVICES;

/// Opens the terminal UI on `target`: a preset file to select, a run, study or units
/// directory to open (units with their study when they are a study's), or nothing (the Setup
/// screen with the presets under ./presets).
pub fn run(target: Option<PathBuf>, device: DeviceChoice) -> Result<()> {
    let mut presets = tui::load_presets(Path::new("presets"));
    let (preset, open) = match target {
        Some(t) if t.is_dir() && units::read_manifest(&t)?.is_some() => {
            (None, Some(Effect::OpenUnits(t)))
        }
        Some(t) if t.is_dir() && StudyPlan::read(&t)?.is_some() => {
            (None, Some(Effect::OpenStudy(t)))
        }
        Some(t) if t.is_dir() => {
            RunDir::open(&t).map_err(|_| {
                anyhow::anyhow!(
                    "{}: not a run directory (spec.toml), a study directory (study.json) nor \
                     a directory of units (units.json)",
                    t.display()
                )
            })?;
            (None, Some(Effect::Open(t)))
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
        restore_terminal();
        default_hook(info);
    }));
    enable_raw_mode()
        .context("the terminal UI needs a terminal (for scripts and CI use `banbench run`)")?;
    crossterm::execute!(stdout(), EnterAlternateScreen)?;
    Ok(Terminal::new(CrosstermBackend::new(stdout()))?)
}

async fn event_loop(mut app: App, open: Option<Effect>) -> Result<()> {
    let (tx, mut rx) = unbounded_channel::<Msg>();
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut terminal = open_terminal()?;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    let mut poll_study = tokio::time::interval(Duration::from_millis(500));
    let mut poll_units = tokio::time::interval(Duration::from_millis(500));
    let mut last_tick = Instant::now();
    let mut loop_state = Loop {
        followed: None,
        study: None,
        units: None,
        tx: tx.clone(),
    };

    check_devices(tx.clone());
    let mut pending: VecDeque<Msg> = VecDeque::new();
    if let Some(effect) = open {
        pending.extend(loop_state.perform(effect, &app));
    }
    loop {
        while let Some(msg) = pending.pop_front() {
            for effect in app.update(msg) {
                pending.extend(loop_state.perform(effect, &app));
            }
        }
        // Runs go on without this window: leaving never waits for them.
        if app.exit == Exit::Now {
            break;
        }
        if terminal.draw(|f| frame::draw(f, &app)).is_err() {
            break;
        }
        let msg = tokio::select! {
            key = keys.next() => match key {
                Some(Ok(TermEvent::Key(key))) => Msg::Key(key),
                Some(Ok(_)) => continue, // a resize: redraw
                Some(Err(_)) | None => Msg::Signal(Signal::Hangup),
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let dt = now - last_tick;
                last_tick = now;
                Msg::Tick(dt)
            }
            _ = poll.tick(), if loop_state.followed.is_some() => {
                match loop_state.poll() {
                    Ok(msg) => msg,
                    // A file caught between writes is read again at the next poll.
                    Err(_) => continue,
                }
            }
            _ = poll_study.tick(), if loop_state.study.is_some() => {
                match loop_state.study.as_mut() {
                    Some(study) => study.poll(),
                    None => continue,
                }
            }
            _ = poll_units.tick(), if loop_state.units.is_some() => {
                match loop_state.units.as_ref().map(FollowedUnits::poll) {
                    Some(Ok(msg)) => msg,
                    // units.json caught between writes is read again at the next poll.
                    _ => continue,
                }
            }
            Some(msg) = rx.recv() => msg,
            _ = sigterm.recv() => Msg::Signal(Signal::Terminate),
            _ = sigint.recv() => Msg::Signal(Signal::Interrupt),
            _ = sighup.recv() => Msg::Signal(Signal::Hangup),
        };
        pending.push_back(msg);
    }
    drop(terminal);
    restore_terminal();
    Ok(())
}

/// The run directory this window follows, and how far into its events.jsonl it has read.
struct Followed {
    dir: RunDir,
    offset: u64,
}

/// The study directory this window follows, and each seed's results.json (for every chain) as
/// last seen.
struct FollowedStudy {
    out: PathBuf,
    plan: StudyPlan,
    seen: Vec<Option<(SystemTime, u64)>>,
}

impl FollowedStudy {
    /// When each results.json of the study was last written, and its length: results are
    /// replaced by a rename, so a new one shows in either.
    fn stamps(&self) -> Vec<Option<(SystemTime, u64)>> {
        let plan = &self.plan;
        plan.seeds
            .iter()
            .flat_map(|&seed| {
                plan.places.iter().map(move |place| {
                    let run = RunDir {
                        root: study::seed_dir(&self.out, seed).join(place),
                    };
                    let meta = std::fs::metadata(run.results_path()).ok()?;
                    Some((meta.modified().ok()?, meta.len()))
                })
            })
            .collect()
    }

    /// A fresh read of the study's seeds.
    fn poll(&mut self) -> Msg {
        let stamps = self.stamps();
        let changed = stamps != self.seen;
        self.seen = stamps;
        Msg::StudyPolled {
            seeds: tui::seed_progress(&self.out, &self.plan),
            changed,
        }
    }
}

/// The directory of units this window follows.
struct FollowedUnits {
    out: PathBuf,
}

impl FollowedUnits {
    /// A fresh read of every unit, the table so far, and whether the directory is a study's.
    fn poll(&self) -> Result<Msg> {
        let (units, table) = tui::read_units(&self.out)?;
        Ok(Msg::UnitsPolled {
            dir: self.out.clone(),
            units,
            table,
            study: StudyPlan::path(&self.out).is_file(),
        })
    }
}

/// The loop's handles to the outside world.
struct Loop {
    followed: Option<Followed>,
    study: Option<FollowedStudy>,
    units: Option<FollowedUnits>,
    tx: UnboundedSender<Msg>,
}

impl Loop {
    fn follow(&mut self, dir: &Path) {
        self.followed = Some(Followed {
            dir: RunDir {
                root: dir.to_path_buf(),
            },
            offset: 0,
        });
    }

    /// A fresh read of the followed run directory.
    fn poll(&mut self) -> Result<Msg> {
        let followed = self.followed.as_mut().context("no run is followed")?;
        let snapshot = tui::read_snapshot(&followed.dir)?;
        let (events, offset) = followed.dir.events_since(followed.offset)?;
        followed.offset = offset;
        // The run's device, from its results (written when it starts).
        let device = snapshot.results.as_ref().map(|r| r.device.as_str());
        let gpu = device
            .and_then(crate::gpu::index_of)
            .and_then(crate::gpu::read);
        Ok(Msg::Polled {
            snapshot,
            events,
            progress: followed.dir.progress(),
            owner: tui::owner(&followed.dir),
            gpu,
        })
    }

    /// Carries out one effect; file reads answer at once with messages, the study's
    /// statistics (which read every seed's saved outputs) later, from a thread of their own.
    fn perform(&mut self, effect: Effect, app: &App) -> Vec<Msg> {
        let current_dir = || {
            app.run.as_ref().map(|r| RunDir {
                root: r.dir.clone(),
            })
        };
        let request = |r: Request| {
            current_dir()
                .and_then(|dir| dir.request(r).err())
                .map(|e| Msg::OpenFailed(format!("{e:#}")))
        };
        match effect {
            Effect::Start { experiment, device } => {
                vec![match launch(&experiment, device, &self.tx) {
                    Ok(dir) => match RunDir::open(&dir).and_then(|d| tui::read_snapshot(&d)) {
                        Ok(snapshot) => {
                            self.follow(&dir);
                            Msg::Launched { dir, snapshot }
                        }
                        Err(e) => Msg::LaunchFailed(format!("{e:#}")),
                    },
                    Err(e) => Msg::LaunchFailed(format!("{e:#}")),
                }]
            }
            Effect::StartTable { preset, device } => {
                match launch_table(&preset, device, &self.tx) {
                    Ok(out) => self.perform(Effect::OpenUnits(out), app),
                    Err(e) => vec![Msg::LaunchFailed(format!("{e:#}"))],
                }
            }
            Effect::Pause(paused) => request(if paused { Request::Pause } else { Request::Run })
                .into_iter()
                .collect(),
            Effect::Stop => request(Request::Stop).into_iter().collect(),
            Effect::Open(path) => vec![match tui::open(&path) {
                Ok(msg) => {
                    self.follow(&path);
                    msg
                }
                Err(e) => Msg::OpenFailed(format!("{e:#}")),
            }],
            Effect::OpenStudy(path) => vec![match tui::read_study(&path) {
                Ok((plan, seeds)) => {
                    let mut followed = FollowedStudy {
                        out: path.clone(),
                        plan: plan.clone(),
                        seen: Vec::new(),
                    };
                    // Opening computes the statistics anyway; polls then look for changes.
                    followed.seen = followed.stamps();
                    self.study = Some(followed);
                    Msg::StudyOpened {
                        dir: path,
                        plan,
                        seeds,
                    }
                }
                Err(e) => Msg::OpenFailed(format!("{e:#}")),
            }],
            Effect::OpenUnits(path) => vec![match tui::read_units(&path) {
                Ok((units, table)) => {
                    self.units = Some(FollowedUnits { out: path.clone() });
                    Msg::UnitsOpened {
                        study: StudyPlan::path(&path).is_file(),
                        dir: path,
                        units,
                        table,
                    }
                }
                Err(e) => Msg::OpenFailed(format!("{e:#}")),
            }],
            Effect::CollectStudy {
                request,
                reference,
                metric,
            } => {
                if let Some(followed) = &self.study {
                    let (out, plan, tx) =
                        (followed.out.clone(), followed.plan.clone(), self.tx.clone());
                    tokio::task::spawn_blocking(move || {
                        let results = study::collect(&out, &plan, &reference, Some(metric))
                            .map_err(|e| format!("{e:#}"));
                        let _ = tx.send(Msg::StudyCollected {
                            dir: out,
                            request,
                            results,
                        });
                    });
                }
                Vec::new()
            }
            Effect::ScanRuns => vec![
                Msg::Runs(tui::scan_runs(Path::new("runs"))),
                Msg::Studies(tui::scan_studies(Path::new("runs"))),
                Msg::UnitDirs(tui::scan_unit_dirs(Path::new("runs"))),
            ],
            Effect::ReadLabels => current_dir()
                .map(|dir| Msg::Labels(dir.labels().map_err(|e| format!("{e:#}"))))
                .into_iter()
                .collect(),
            Effect::ReadLogits {
                generation,
                classes,
                samples,
            } => current_dir()
                .map(|dir| Msg::Logits {
                    generation,
                    logits: dir
                        .read_logits(generation, classes, samples)
                        .map_err(|e| format!("{e:#}")),
                })
                .into_iter()
                .collect(),
            Effect::ReadTargets { generation, tokens } => current_dir()
                .map(|dir| Msg::Targets {
                    generation,
                    probabilities: dir
                        .read_outputs(Task::Language, generation, tokens)
                        .map_err(|e| format!("{e:#}")),
                })
                .into_iter()
                .collect(),
        }
    }
}

/// Asks each device whether this build and machine can provide it (LibTorch can take a moment).
fn check_devices(tx: UnboundedSender<Msg>) {
    tokio::task::spawn_blocking(move || {
        let devices = DEVICES.iter().map(|&d| (d, d.available())).collect();
        let _ = tx.send(Msg::Devices(devices));
    });
}

/// Starts `experiment` as a `banbench run DIR` process of its own session (setsid), its output
/// in DIR/run.log, so that it goes on when this window quits or its terminal hangs up. Returns
/// the run directory, created here with the experiment's spec.toml; `tx` hears when the
/// process exits.
fn launch(
    experiment: &Experiment,
    device: DeviceChoice,
    tx: &UnboundedSender<Msg>,
) -> Result<PathBuf> {
    let dir = tui::new_run_dir(experiment)?;
    let root = dir.root.clone();
    let args = [
        "run".into(),
        root.clone().into_os_string(),
        "--device".into(),
        device.to_string().into(),
    ];
    spawn_detached(&args, &root, &dir.log_path(), tx)?;
    Ok(root)
}

/// Starts the table preset at `preset` as `banbench run PRESET --out DIR --jobs 1` (detached,
/// like `launch`, its output in DIR/run.log) into a new directory under runs/, and returns
/// that directory once its units.json is written.
fn launch_table(preset: &Path, device: DeviceChoice, tx: &UnboundedSender<Msg>) -> Result<PathBuf> {
    let name = preset
        .file_stem()
        .map_or("table".into(), |s| s.to_string_lossy().into_owned());
    let out = crate::run_dir::new_default_dir(Path::new("runs"), &name)?;
    let args = [
        "run".into(),
        preset.as_os_str().to_owned(),
        "--out".into(),
        out.clone().into_os_string(),
        "--jobs".into(),
        "1".into(),
        "--device".into(),
        device.to_string().into(),
    ];
    let log = out.join("run.log");
    spawn_detached(&args, &out, &log, tx)?;
    let started = std::time::Instant::now();
    while units::read_manifest(&out)?.is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            anyhow::bail!(
                "{}: no units.json after a minute; its log: {}",
                out.display(),
                text.trim()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(out)
}

/// Spawns `banbench ARGS` in a session of its own (setsid), its output in `log`, so that it
/// goes on when this window quits or its terminal hangs up; `tx` hears when it exits, as the
/// process of `root`.
fn spawn_detached(
    args: &[std::ffi::OsString],
    root: &Path,
    log_path: &Path,
    tx: &UnboundedSender<Msg>,
) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::File::create(log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let exe = std::env::current_exe().context("finding the banbench executable")?;
    let mut command = std::process::Command::new(exe);
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and touches no memory of this process.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().context("starting the run process")?;
    // Reap it when it ends, so a finished run leaves no zombie while this window stays open.
    let (tx, root, log) = (tx.clone(), root.to_path_buf(), log_path.to_path_buf());
    std::thread::spawn(move || {
        let code = child.wait().ok().and_then(|s| s.code());
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        let log_tail = tail.into_iter().rev().collect::<Vec<_>>().join(" / ");
        let _ = tx.send(Msg::ProcessExited {
            dir: root,
            code,
            log_tail,
        });
    });
    Ok(())
}

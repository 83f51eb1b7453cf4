//! The application state and its one way of changing: `App::update(Msg) -> Vec<Effect>`.
//!
//! Everything here is plain data. Keys, worker events, ticks and files the runtime has read
//! arrive as [`Msg`]s; what needs the outside world (starting a worker, pausing it, reading a
//! run directory) leaves as [`Effect`]s for the runtime to carry out. Drawing reads this state
//! and nothing else.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::device::DeviceChoice;
use crate::ensemble::Logits;
use crate::events::{Event, Progress};
use crate::experiment::Experiment;
use crate::gpu::GpuReading;
use crate::run_dir::TestLabels;
use crate::run_dir::records::{Metric, RunState, Task};
use crate::study::{StudyPlan, StudyResults};

use super::run_view::{Owner, RunView, Snapshot};
use super::screens::ensembles::EnsembleLab;
use super::screens::runs::{RunEntry, Runs};
use super::screens::setup::{PresetEntry, Setup, SetupKey};
use super::screens::study::{SeedProgress, StudyEntry, StudyView};
use super::screens::units::{UnitProgress, UnitsEntry, UnitsView};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Setup,
    Run,
    Generations,
    Ensembles,
    Runs,
    /// Only once a study is open: a tab after the others.
    Study,
    /// Only once a directory of units is open: the last tab.
    Units,
}

impl Screen {
    /// The screens every window has.
    pub const ALL: [Screen; 5] = [
        Screen::Setup,
        Screen::Run,
        Screen::Generations,
        Screen::Ensembles,
        Screen::Runs,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Setup => "Setup",
            Screen::Run => "Run",
            Screen::Generations => "Generations",
            Screen::Ensembles => "Ensembles",
            Screen::Runs => "Runs",
            Screen::Study => "Study",
            Screen::Units => "Units",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    ConfirmCancel,
    /// Quitting while a run trains: leave it running (the default) or stop it.
    ConfirmQuit,
}

/// What the process should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Stay,
    Now,
}

/// Signals the runtime forwards; all of them mean "leave": a run goes on without this window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
    Hangup,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    /// Time since the previous tick (drives the ETA countdown).
    Tick(Duration),
    Signal(Signal),
    Devices(Vec<(DeviceChoice, Result<(), String>)>),
    /// A run this window started is under way: its run process is detached, its directory
    /// created.
    Launched {
        dir: PathBuf,
        snapshot: Snapshot,
    },
    LaunchFailed(String),
    /// A run directory opened for following.
    Opened {
        dir: PathBuf,
        snapshot: Snapshot,
    },
    OpenFailed(String),
    /// A fresh read of the followed run directory: its records, the events appended since the
    /// last read, its latest progress and its owner.
    Polled {
        snapshot: Snapshot,
        events: Vec<Event>,
        progress: Option<Progress>,
        owner: Owner,
        /// The run's GPU, read through NVML, when it trains on one.
        gpu: Option<GpuReading>,
    },
    /// The run process this window started has exited, with its exit code (None: a signal)
    /// and the end of its log.
    ProcessExited {
        dir: PathBuf,
        code: Option<i32>,
        log_tail: String,
    },
    Runs(Vec<RunEntry>),
    Studies(Vec<StudyEntry>),
    /// Directories of units found under runs/.
    UnitDirs(Vec<UnitsEntry>),
    /// A directory of units opened for following: every unit and what it is doing, its table
    /// so far (results.md), and whether it is a study's too (study.json).
    UnitsOpened {
        dir: PathBuf,
        units: Vec<UnitProgress>,
        table: Option<String>,
        study: bool,
    },
    /// A fresh read of the followed directory of units.
    UnitsPolled {
        dir: PathBuf,
        units: Vec<UnitProgress>,
        table: Option<String>,
        study: bool,
    },
    /// A study directory opened for following: its study.json and how far each seed has got.
    StudyOpened {
        dir: PathBuf,
        plan: StudyPlan,
        seeds: Vec<SeedProgress>,
    },
    /// A fresh read of the followed study: its seeds, and whether any seed's results.json
    /// changed since the last read.
    StudyPolled {
        seeds: Vec<SeedProgress>,
        changed: bool,
    },
    /// The statistics `Effect::CollectStudy` number `request` asked for.
    StudyCollected {
        dir: PathBuf,
        request: u64,
        results: Result<StudyResults, String>,
    },
    Labels(Result<TestLabels, String>),
    Logits {
        generation: usize,
        logits: Result<Logits, String>,
    },
    /// A language generation's saved probabilities of each test target token.
    Targets {
        generation: usize,
        probabilities: Result<Vec<f32>, String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Start the experiment as a detached run process.
    Start {
        experiment: Experiment,
        device: DeviceChoice,
    },
    /// Run the table preset at `preset` as units, one at a time, in a detached process, and
    /// follow its directory of units.
    StartTable {
        preset: PathBuf,
        device: DeviceChoice,
    },
    /// Ask the followed run to pause (true) or go on (false), through its control file.
    Pause(bool),
    /// Ask the followed run to stop after its current batch.
    Stop,
    Open(PathBuf),
    /// Open a study directory and follow it.
    OpenStudy(PathBuf),
    /// Open a directory of units (units.json) and follow it.
    OpenUnits(PathBuf),
    /// Compute the followed study's statistics of `metric` against the `reference` row
    /// (`study::collect`); `request` numbers the answer.
    CollectStudy {
        request: u64,
        reference: String,
        metric: Metric,
    },
    /// Scan runs/ for run, study and units directories.
    ScanRuns,
    ReadLabels,
    ReadLogits {
        generation: usize,
        classes: usize,
        samples: usize,
    },
    ReadTargets {
        generation: usize,
        tokens: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub screen: Screen,
    pub overlay: Option<Overlay>,
    /// False under NO_COLOR.
    pub color: bool,
    pub setup: Setup,
    pub run: Option<RunView>,
    pub lab: EnsembleLab,
    pub runs: Runs,
    /// The followed study, once one is opened.
    pub study: Option<StudyView>,
    /// The followed directory of units, once one is opened.
    pub units: Option<UnitsView>,
    /// A one-line answer to the last action (why a key did nothing, an error).
    pub status: Option<String>,
    pub exit: Exit,
    /// Set while the worker's first events are on their way (loading data, creating the run).
    pub launching: bool,
}

impl App {
    pub fn new(presets: Vec<PresetEntry>, device: DeviceChoice, color: bool) -> App {
        App {
            screen: Screen::Setup,
            overlay: None,
            color,
            setup: Setup::new(presets, device),
            run: None,
            lab: EnsembleLab::default(),
            runs: Runs::default(),
            study: None,
            units: None,
            status: None,
            exit: Exit::Stay,
            launching: false,
        }
    }

    fn live_running(&self) -> bool {
        self.run.as_ref().is_some_and(RunView::is_live_running)
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut effects = match msg {
            Msg::Key(key) => self.on_key(key),
            Msg::Tick(dt) => {
                if let Some(run) = &mut self.run
                    && run.is_live_running()
                    && !run.paused()
                {
                    run.eta = run.eta.map(|eta| (eta - dt.as_secs_f64()).max(0.0));
                }
                if let Some(units) = &mut self.units {
                    units.tick(dt);
                }
                Vec::new()
            }
            // Ctrl-C, SIGTERM, SIGHUP (a dropped SSH session): leave; a run goes on.
            Msg::Signal(_) => {
                self.exit = Exit::Now;
                Vec::new()
            }
            Msg::Devices(devices) => {
                self.setup.set_devices(devices);
                Vec::new()
            }
            Msg::Launched { dir, snapshot } => {
                self.launching = false;
                let mut run = RunView::new(dir, snapshot);
                // Its process is starting: until its lock says otherwise, it is ours and alive.
                run.set_owner(Owner::Alive {
                    who: "started here".into(),
                });
                self.show_run(run);
                self.screen = Screen::Run;
                Vec::new()
            }
            Msg::LaunchFailed(message) => {
                self.launching = false;
                self.status = Some(format!("could not start: {message}"));
                Vec::new()
            }
            Msg::Opened { dir, snapshot } => {
                self.show_run(RunView::new(dir, snapshot));
                self.screen = Screen::Run;
                Vec::new()
            }
            Msg::OpenFailed(message) => {
                self.status = Some(message);
                Vec::new()
            }
            Msg::Polled {
                snapshot,
                events,
                progress,
                owner,
                gpu,
            } => {
                if let Some(run) = self.run.as_mut() {
                    run.apply(snapshot);
                    run.gpu = gpu.filter(|_| run.is_live_running());
                    for event in events {
                        run.on_event(event);
                    }
                    if run.state == RunState::Running {
                        run.set_progress(progress);
                    }
                    run.set_owner(owner);
                    if !run.is_live_running()
                        && matches!(
                            self.overlay,
                            Some(Overlay::ConfirmCancel | Overlay::ConfirmQuit)
                        )
                    {
                        self.overlay = None;
                    }
                    self.lab.sync(&run.generations);
                    if run.task() == Task::Language {
                        self.lab.set_language_tokens(run.test_samples);
                    }
                }
                Vec::new()
            }
            Msg::ProcessExited {
                dir,
                code,
                log_tail,
            } => {
                if let Some(run) = self.run.as_mut().filter(|r| r.dir == dir) {
                    run.process_exited(code, log_tail);
                }
                Vec::new()
            }
            Msg::Runs(runs) => {
                self.runs.set(runs);
                Vec::new()
            }
            Msg::Studies(studies) => {
                self.runs.set_studies(studies);
                Vec::new()
            }
            Msg::UnitDirs(units) => {
                self.runs.set_units(units);
                Vec::new()
            }
            Msg::UnitsOpened {
                dir,
                units,
                table,
                study,
            } => {
                let mut view = UnitsView::new(dir.clone(), units, table);
                // A table started here is followed from now on.
                self.launching = false;
                self.screen = Screen::Units;
                self.status = None;
                // A study run as units: its statistics on the Study screen too.
                let open_study = study && self.study.as_ref().is_none_or(|s| s.dir != dir);
                view.study_asked = study;
                self.units = Some(view);
                if open_study {
                    vec![Effect::OpenStudy(dir)]
                } else {
                    Vec::new()
                }
            }
            Msg::UnitsPolled {
                dir,
                units,
                table,
                study,
            } => match self.units.as_mut().filter(|u| u.dir == dir) {
                Some(view) => {
                    view.update(units, table);
                    // The study's plan came after the directory was opened.
                    if study && !view.study_asked && self.study.is_none() {
                        view.study_asked = true;
                        vec![Effect::OpenStudy(dir)]
                    } else {
                        Vec::new()
                    }
                }
                None => Vec::new(),
            },
            Msg::StudyOpened { dir, plan, seeds } => {
                // Opened beside the directory of units shown: that screen stays.
                let beside_units = self.screen == Screen::Units
                    && self.units.as_ref().is_some_and(|u| u.dir == dir);
                let mut study = StudyView::new(dir, plan, seeds);
                let collect = study.collect();
                self.study = Some(study);
                if !beside_units {
                    self.screen = Screen::Study;
                    self.status = None;
                }
                vec![collect]
            }
            Msg::StudyPolled { seeds, changed } => match self.study.as_mut() {
                Some(study) => {
                    study.seeds = seeds;
                    // A seed finished a generation: the numbers move.
                    if changed {
                        vec![study.collect()]
                    } else {
                        Vec::new()
                    }
                }
                None => Vec::new(),
            },
            Msg::StudyCollected {
                dir,
                request,
                results,
            } => {
                if let Some(study) = self.study.as_mut().filter(|s| s.dir == dir) {
                    study.set_results(request, results);
                }
                Vec::new()
            }
            Msg::Labels(labels) => {
                self.lab.set_labels(labels);
                Vec::new()
            }
            Msg::Logits { generation, logits } => {
                self.lab.set_logits(generation, logits);
                Vec::new()
            }
            Msg::Targets {
                generation,
                probabilities,
            } => {
                self.lab.set_targets(generation, probabilities);
                Vec::new()
            }
        };
        if self.screen == Screen::Ensembles && self.run.is_some() {
            effects.extend(self.lab.requests());
        }
        effects
    }

    fn show_run(&mut self, run: RunView) {
        self.lab = EnsembleLab::default();
        if run.task() == Task::Language {
            self.lab.language_tokens = Some(run.test_samples.unwrap_or(0));
        }
        self.lab.sync(&run.generations);
        self.run = Some(run);
        self.status = None;
    }

    /// Asks the followed run to stop after its current batch.
    fn stop_run(&mut self) -> Vec<Effect> {
        if let Some(run) = self.run.as_mut() {
            run.stopping = true;
        }
        vec![Effect::Stop]
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.exit = Exit::Now;
            return Vec::new();
        }
        if let Some(overlay) = self.overlay {
            return self.on_overlay_key(overlay, key.code);
        }
        self.status = None;
        match key.code {
            KeyCode::Char('?') => {
                self.overlay = Some(Overlay::Help);
                Vec::new()
            }
            KeyCode::Char('q') => {
                if self.live_running() {
                    self.overlay = Some(Overlay::ConfirmQuit);
                } else {
                    self.exit = Exit::Now;
                }
                Vec::new()
            }
            KeyCode::Char(c @ '1'..='9') if (c as usize - '1' as usize) < self.screens().len() => {
                self.go(self.screens()[c as usize - '1' as usize])
            }
            KeyCode::Tab | KeyCode::BackTab => {
                let screens = self.screens();
                let i = screens.iter().position(|&s| s == self.screen).unwrap_or(0);
                let step = if key.code == KeyCode::Tab {
                    1
                } else {
                    screens.len() - 1
                };
                self.go(screens[(i + step) % screens.len()])
            }
            KeyCode::Char('p') if self.live_running() => {
                let run = self.run.as_mut().expect("a live run");
                if run.stopping {
                    return Vec::new();
                }
                let pause = !run.paused();
                // Shown at once; the run's next progress report confirms it.
                run.asked_pause = Some(pause);
                vec![Effect::Pause(pause)]
            }
            KeyCode::Char('c') if self.live_running() => {
                self.overlay = Some(Overlay::ConfirmCancel);
                Vec::new()
            }
            KeyCode::Char('p' | 'c') if self.screen == Screen::Run => {
                self.status = Some("no run is training in this window".into());
                Vec::new()
            }
            code => match self.screen {
                Screen::Setup => self.on_setup_key(code),
                Screen::Ensembles => {
                    self.lab.on_key(code);
                    Vec::new()
                }
                Screen::Runs => self.runs.on_key(code),
                Screen::Study => {
                    let answer = self.study.as_mut().map(|s| s.on_key(code));
                    self.answer(answer)
                }
                Screen::Units => {
                    let answer = self.units.as_mut().map(|u| u.on_key(code));
                    self.answer(answer)
                }
                Screen::Run | Screen::Generations => Vec::new(),
            },
        }
    }

    /// A screen's answer to a key: its effects, or why it did nothing (in the status line).
    fn answer(&mut self, answer: Option<Result<Vec<Effect>, String>>) -> Vec<Effect> {
        match answer {
            Some(Ok(effects)) => effects,
            Some(Err(why)) => {
                self.status = Some(why);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    fn on_overlay_key(&mut self, overlay: Overlay, code: KeyCode) -> Vec<Effect> {
        match (overlay, code) {
            (Overlay::Help, _) => {
                self.overlay = None;
                Vec::new()
            }
            (Overlay::ConfirmCancel, KeyCode::Char('y' | 'Y')) => {
                self.overlay = None;
                if self.live_running() {
                    self.stop_run()
                } else {
                    Vec::new()
                }
            }
            // Leaving is the default: the run goes on and any window can follow it later.
            (Overlay::ConfirmQuit, KeyCode::Enter | KeyCode::Char('l' | 'L' | 'y' | 'Y')) => {
                self.overlay = None;
                self.exit = Exit::Now;
                Vec::new()
            }
            (Overlay::ConfirmQuit, KeyCode::Char('s' | 'S')) => {
                self.overlay = None;
                self.exit = Exit::Now;
                self.stop_run()
            }
            (_, KeyCode::Char('n' | 'N') | KeyCode::Esc) => {
                self.overlay = None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The screens' tabs, in order: the Study screen's once a study is open, then the Units
    /// screen's once a directory of units is.
    pub fn screens(&self) -> Vec<Screen> {
        let mut screens = Screen::ALL.to_vec();
        if self.study.is_some() {
            screens.push(Screen::Study);
        }
        if self.units.is_some() {
            screens.push(Screen::Units);
        }
        screens
    }

    fn go(&mut self, screen: Screen) -> Vec<Effect> {
        self.screen = screen;
        if screen == Screen::Runs {
            vec![Effect::ScanRuns]
        } else {
            Vec::new()
        }
    }

    fn on_setup_key(&mut self, code: KeyCode) -> Vec<Effect> {
        match self.setup.on_key(code) {
            SetupKey::Start => return self.start(),
            SetupKey::Explain(why) => self.status = Some(why),
            SetupKey::Done => {}
        }
        Vec::new()
    }

    fn start(&mut self) -> Vec<Effect> {
        if self.launching {
            self.status = Some("a run is starting".into());
            return Vec::new();
        }
        if let Some(preset) = self
            .setup
            .presets
            .get(self.setup.preset)
            .filter(|p| p.table)
        {
            self.launching = true;
            self.status = Some(format!("starting {}", preset.name()));
            return vec![Effect::StartTable {
                preset: preset.path.clone(),
                device: self.setup.device,
            }];
        }
        match &self.setup.check.spec {
            Ok(experiment) => {
                self.launching = true;
                self.status = Some(format!("starting {}", experiment.name()));
                vec![Effect::Start {
                    experiment: experiment.clone(),
                    device: self.setup.device,
                }]
            }
            Err(why) => {
                self.status = Some(format!("cannot start: {why}"));
                Vec::new()
            }
        }
    }
}

//! The application state and its one way of changing: `App::update(Msg) -> Vec<Effect>`.
//!
//! Everything here is plain data. Keys, worker events, ticks and files the runtime has read
//! arrive as [`Msg`]s; what needs the outside world (starting a worker, pausing it, reading a
//! run directory) leaves as [`Effect`]s for the runtime to carry out. Drawing reads this state
//! and nothing else.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::arch::language::LmModelSpec;
use crate::device::DeviceChoice;
use crate::ensemble::Logits;
use crate::ensemble::Metrics;
use crate::events::{
    EnsembleResult, EpochRecord, Event, GenerationResult, LanguageEpochRecord, LanguageResults,
    Results, RunState,
};
use crate::headless::event_line;
use crate::lm::spec::LmSpec;
use crate::run_dir::TestLabels;
use crate::spec::Spec;

use super::ensembles::EnsembleLab;
use super::setup::{PresetEntry, Setup};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Setup,
    Run,
    Generations,
    Ensembles,
    Runs,
}

impl Screen {
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
        }
    }

    fn index(self) -> usize {
        Screen::ALL.iter().position(|&s| s == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    Help,
    ConfirmCancel,
    ConfirmQuit,
}

/// What the process should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Stay,
    /// A stop was requested; exit once the worker has saved what is finished and ended.
    WhenWorkerEnds,
    Now,
}

/// Signals the runtime forwards; all of them mean "leave, keeping what is saved".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
    Hangup,
}

/// A run directory's files, read by the runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub spec: Spec,
    pub epochs: Vec<EpochRecord>,
    pub results: Option<Results>,
}

/// A language-model run directory's files, read by the runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageSnapshot {
    pub spec: LmSpec,
    pub epochs: Vec<LanguageEpochRecord>,
    pub results: Option<LanguageResults>,
}

/// The spec of a run or of a preset: an image-classification chain or a language-model chain.
#[derive(Debug, Clone, PartialEq)]
pub enum Experiment {
    Vision(Box<Spec>),
    Language(Box<LmSpec>),
}

impl Experiment {
    pub fn name(&self) -> &str {
        match self {
            Experiment::Vision(s) => &s.name,
            Experiment::Language(s) => &s.name,
        }
    }

    pub fn description(&self) -> &str {
        match self {
            Experiment::Vision(s) => &s.description,
            Experiment::Language(s) => &s.description,
        }
    }

    pub fn seed(&self) -> u64 {
        match self {
            Experiment::Vision(s) => s.seed,
            Experiment::Language(s) => s.seed,
        }
    }

    /// Generations including the teacher.
    pub fn generations(&self) -> usize {
        match self {
            Experiment::Vision(s) => s.generations.count + 1,
            Experiment::Language(s) => s.generations.count + 1,
        }
    }

    /// Sets the generations after the teacher; the ensembles that name a generation no longer
    /// trained go with it.
    pub fn set_students(&mut self, count: usize) {
        let (students, ensembles) = match self {
            Experiment::Vision(s) => (&mut s.generations.count, &mut s.ensembles),
            Experiment::Language(s) => (&mut s.generations.count, &mut s.ensembles),
        };
        *students = count;
        ensembles.retain(|e| e.members.iter().all(|&m| m <= count));
    }

    pub fn epochs(&self) -> usize {
        match self {
            Experiment::Vision(s) => s.schedule.epochs,
            Experiment::Language(s) => s.schedule.epochs,
        }
    }

    fn model_of(&self, k: usize) -> String {
        match self {
            Experiment::Vision(s) => s.model_of(k).to_string(),
            Experiment::Language(s) => match s.model {
                LmModelSpec::Lstm { .. } => "LSTM".into(),
                LmModelSpec::CnnLstm { .. } => "CNN-LSTM".into(),
            },
        }
    }

    fn control_of(&self, k: usize) -> String {
        match self {
            Experiment::Vision(s) => s.generations.control_of(k).name(),
            Experiment::Language(s) => s.generations.control.clone(),
        }
    }
}

/// What a language run adds to the task-neutral view: its records as they are saved.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageRun {
    pub epochs: Vec<LanguageEpochRecord>,
    pub results: Option<LanguageResults>,
}

impl LanguageRun {
    pub fn test_tokens(&self) -> Option<usize> {
        self.results.as_ref().map(|r| r.test_tokens)
    }
}

/// A language generation in the shape the task-neutral screens read: top-1 is the next-token
/// test error, NLL the test nats per token (ln of the test perplexity); top-5 and ECE are
/// undefined for it.
fn language_row(g: &crate::events::LanguageGeneration) -> GenerationResult {
    GenerationResult {
        generation: g.generation,
        label: g.label.clone(),
        model: g.model.clone(),
        control: g.control.clone(),
        parameters: g.parameters,
        train_seconds: g.train_seconds,
        metrics: Metrics {
            top1_error: g.test_error,
            top5_error: f64::NAN,
            nll: g.test_perplexity.ln(),
            ece: f64::NAN,
        },
        paper_error: None,
    }
}

/// One run directory found under runs/.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    pub dir: PathBuf,
    pub name: String,
    /// None while no generation has finished (no results.json yet).
    pub state: Option<RunState>,
    pub finished: usize,
    pub generations: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    /// Time since the previous tick (drives the ETA countdown).
    Tick(Duration),
    Signal(Signal),
    Devices(Vec<(DeviceChoice, Result<(), String>)>),
    /// A run this process started is ready: data loaded, run directory created.
    Launched {
        dir: PathBuf,
        snapshot: Snapshot,
    },
    /// A language-model run this process started is ready (its records are then polled from
    /// the run directory, its progress comes as events).
    LaunchedLanguage {
        dir: PathBuf,
        snapshot: LanguageSnapshot,
    },
    LaunchFailed(String),
    Worker(Event),
    /// The worker thread has ended (its error, if any, also came as `Event::Failed`).
    WorkerEnded,
    /// A run directory opened for watching.
    Opened {
        dir: PathBuf,
        snapshot: Snapshot,
    },
    OpenFailed(String),
    /// A fresh read of the watched run directory.
    Polled(Snapshot),
    /// A language-model run directory opened for watching.
    OpenedLanguage {
        dir: PathBuf,
        snapshot: LanguageSnapshot,
    },
    PolledLanguage(LanguageSnapshot),
    Runs(Vec<RunEntry>),
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
    Start {
        experiment: Experiment,
        device: DeviceChoice,
    },
    Pause(bool),
    Stop,
    Open(PathBuf),
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

/// The generation being trained now.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub generation: usize,
    pub model: String,
    pub control: String,
    pub parameters: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub generation: usize,
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    pub images_per_sec: f64,
}

/// A run trained by this process (absent for a watched run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live {
    pub paused: bool,
    pub stopping: bool,
    pub worker_running: bool,
}

impl Live {
    fn started() -> Live {
        Live {
            paused: false,
            stopping: false,
            worker_running: true,
        }
    }
}

const LOG_LINES: usize = 200;

/// A run as the Run, Generations and Ensembles screens show it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub dir: PathBuf,
    pub experiment: Experiment,
    /// Present for a language-model run (perplexity where a vision run shows error).
    pub language: Option<LanguageRun>,
    pub live: Option<Live>,
    pub state: RunState,
    pub dataset: String,
    pub device: String,
    pub test_samples: Option<usize>,
    pub epochs: Vec<EpochRecord>,
    pub generations: Vec<GenerationResult>,
    pub ensembles: Vec<EnsembleResult>,
    pub current: Option<Current>,
    pub progress: Option<Progress>,
    /// Seconds left in the whole run, counted down between epoch records while not paused.
    pub eta: Option<f64>,
    pub log: Vec<String>,
    pub error: Option<String>,
}

impl RunView {
    /// A view of `dir` before anything has been read from it.
    fn empty(dir: PathBuf, experiment: Experiment, live: Option<Live>) -> RunView {
        RunView {
            dir,
            dataset: String::new(),
            device: String::new(),
            test_samples: None,
            state: RunState::Running,
            epochs: Vec::new(),
            generations: Vec::new(),
            ensembles: Vec::new(),
            current: None,
            progress: None,
            eta: None,
            log: Vec::new(),
            error: None,
            live,
            experiment,
            language: None,
        }
    }

    fn new(dir: PathBuf, snapshot: Snapshot, live: Option<Live>) -> RunView {
        let mut view = RunView::empty(
            dir,
            Experiment::Vision(Box::new(snapshot.spec.clone())),
            live,
        );
        view.apply(snapshot);
        view
    }

    /// Replaces what the run directory holds with a fresh read of it.
    fn apply(&mut self, snapshot: Snapshot) {
        if snapshot.epochs.len() != self.epochs.len() {
            self.eta = snapshot.epochs.last().map(|r| r.eta_seconds);
        }
        self.experiment = Experiment::Vision(Box::new(snapshot.spec));
        self.epochs = snapshot.epochs;
        if let Some(r) = snapshot.results {
            self.set_results(r);
        }
        self.after_read();
    }

    fn new_language(dir: PathBuf, snapshot: LanguageSnapshot, live: Option<Live>) -> RunView {
        let mut view = RunView::empty(
            dir,
            Experiment::Language(Box::new(snapshot.spec.clone())),
            live,
        );
        view.apply_language(snapshot);
        view
    }

    /// A fresh read of a language run directory, shown through the task-neutral fields.
    fn apply_language(&mut self, snapshot: LanguageSnapshot) {
        let epochs: Vec<EpochRecord> = snapshot.epochs.iter().map(|r| r.record.clone()).collect();
        if epochs.len() != self.epochs.len() {
            self.eta = epochs.last().map(|r| r.eta_seconds);
        }
        self.experiment = Experiment::Language(Box::new(snapshot.spec));
        self.epochs = epochs;
        if let Some(r) = &snapshot.results {
            // A live run's failure is heard as an event; the files still say "running".
            if self.live.is_none() || self.state != RunState::Failed {
                let ended = self.state == RunState::Running && r.state != RunState::Running;
                self.state = r.state;
                // The language worker sends no end event: the files say when it ended.
                if ended && self.live.is_some() {
                    self.current = None;
                    self.progress = None;
                    self.eta = None;
                    self.push_log(match r.state {
                        RunState::Finished => "run finished".into(),
                        state => format!(
                            "run {}; finished generations are saved and the run can be resumed",
                            state_word(state)
                        ),
                    });
                }
            }
            self.dataset = r.corpus.clone();
            self.device = r.device.clone();
            self.test_samples = Some(r.test_tokens);
            self.generations = r.generations.iter().map(language_row).collect();
            // Language ensembles have only a perplexity; the Generations screen reads them
            // from `language`.
            self.ensembles = Vec::new();
        }
        self.after_read();
        self.language = Some(LanguageRun {
            epochs: snapshot.epochs,
            results: snapshot.results,
        });
        if self.live.is_some() {
            // A live run's log comes from the worker's events.
            return;
        }
        // A watched language run's log says perplexities where a vision run's says errors.
        let Some(lm) = &self.language else { return };
        let lines: Vec<String> = lm.epochs.iter().map(LanguageEpochRecord::line).collect();
        self.log = lines[lines.len().saturating_sub(LOG_LINES)..].to_vec();
    }

    pub fn is_language(&self) -> bool {
        self.language.is_some()
    }

    fn after_read(&mut self) {
        if self.live.is_none() {
            // A watched run hears no events: its log is what the records say.
            let lines: Vec<String> = self
                .epochs
                .iter()
                .filter_map(|r| event_line(&Event::Epoch(r.clone())))
                .collect();
            self.log = lines[lines.len().saturating_sub(LOG_LINES)..].to_vec();
            // A watched run's current generation is the first one without results.
            let k = self.generations.len();
            self.current =
                (self.state == RunState::Running && k < self.total_generations()).then(|| {
                    Current {
                        generation: k,
                        model: self.experiment.model_of(k),
                        control: self.control_name(k),
                        parameters: 0,
                    }
                });
        }
    }

    fn set_results(&mut self, r: Results) {
        self.state = r.state;
        self.dataset = r.dataset;
        self.device = r.device;
        self.test_samples = Some(r.test_samples);
        self.generations = r.generations;
        self.ensembles = r.ensembles;
    }

    pub fn name(&self) -> &str {
        self.experiment.name()
    }

    pub fn total_generations(&self) -> usize {
        self.experiment.generations()
    }

    pub fn epochs_per_generation(&self) -> usize {
        self.experiment.epochs()
    }

    pub fn control_name(&self, k: usize) -> String {
        if k == 0 {
            "labels".into()
        } else {
            self.experiment.control_of(k)
        }
    }

    pub fn is_live_running(&self) -> bool {
        self.live.is_some_and(|l| l.worker_running)
    }

    pub fn paused(&self) -> bool {
        self.live.is_some_and(|l| l.paused)
    }

    /// Epochs finished by the generation in training.
    pub fn current_epochs_done(&self) -> usize {
        let Some(current) = &self.current else {
            return 0;
        };
        self.epochs
            .iter()
            .filter(|r| r.generation == current.generation)
            .map(|r| r.epoch)
            .max()
            .unwrap_or(0)
    }

    /// Fraction of the current epoch's batches done (live runs only report batches).
    pub fn epoch_fraction(&self) -> f64 {
        match (&self.current, &self.progress) {
            (Some(c), Some(p))
                if p.generation == c.generation && p.epoch > self.current_epochs_done() =>
            {
                p.batch as f64 / p.batches.max(1) as f64
            }
            _ => 0.0,
        }
    }

    pub fn generation_fraction(&self) -> f64 {
        if self.current.is_none() {
            return if self.state == RunState::Finished {
                1.0
            } else {
                0.0
            };
        }
        ((self.current_epochs_done() as f64 + self.epoch_fraction())
            / self.epochs_per_generation().max(1) as f64)
            .min(1.0)
    }

    pub fn run_fraction(&self) -> f64 {
        if self.state == RunState::Finished {
            return 1.0;
        }
        let per = self.epochs_per_generation().max(1) as f64;
        let done = self.generations.len() as f64 * per
            + if self.current.is_some() {
                self.current_epochs_done() as f64 + self.epoch_fraction()
            } else {
                0.0
            };
        (done / (self.total_generations() as f64 * per)).min(1.0)
    }

    /// The learning rate of the epoch in training, else of the last one recorded.
    pub fn learning_rate(&self) -> Option<f64> {
        match &self.current {
            Some(_) => match &self.experiment {
                Experiment::Vision(spec) => Some(spec.schedule.lr_at(self.current_epochs_done())),
                // A plateau schedule: the last recorded rate holds until the next record.
                Experiment::Language(_) => self.epochs.last().map(|r| r.lr),
            },
            None => self.epochs.last().map(|r| r.lr),
        }
    }

    pub fn images_per_sec(&self) -> Option<f64> {
        self.progress
            .map(|p| p.images_per_sec)
            .or_else(|| self.epochs.last().map(|r| r.images_per_sec))
    }

    fn push_log(&mut self, line: String) {
        self.log.push(line);
        if self.log.len() > LOG_LINES {
            self.log.drain(..self.log.len() - LOG_LINES);
        }
    }

    fn on_event(&mut self, event: Event) {
        // A language run logs its epochs with perplexities, as a Log event of their own.
        let epoch_of_language_run = self.is_language() && matches!(event, Event::Epoch(_));
        if let Some(line) = event_line(&event).filter(|_| !epoch_of_language_run) {
            self.push_log(line);
        }
        match event {
            Event::Started {
                dataset, device, ..
            } => {
                self.dataset = dataset;
                self.device = device;
                self.state = RunState::Running;
            }
            Event::GenerationStarted {
                generation,
                model,
                control,
                parameters,
            } => {
                self.current = Some(Current {
                    generation,
                    model,
                    control,
                    parameters,
                });
                self.progress = None;
            }
            Event::Progress {
                generation,
                epoch,
                batch,
                batches,
                images_per_sec,
            } => {
                self.progress = Some(Progress {
                    generation,
                    epoch,
                    batch,
                    batches,
                    images_per_sec,
                });
            }
            Event::Epoch(record) => {
                self.eta = Some(record.eta_seconds);
                self.epochs
                    .retain(|r| (r.generation, r.epoch) != (record.generation, record.epoch));
                self.epochs.push(record);
            }
            Event::GenerationDone {
                generation: result,
                ensembles,
            } => {
                self.generations
                    .retain(|g| g.generation != result.generation);
                self.generations.push(result);
                self.ensembles = ensembles;
                self.current = None;
                self.progress = None;
            }
            Event::Log(_) => {}
            Event::Ended(results) => {
                let state = results.state;
                self.set_results(results);
                self.current = None;
                self.progress = None;
                self.eta = None;
                self.push_log(match state {
                    RunState::Finished => "run finished".into(),
                    _ => format!(
                        "run {}; finished generations are saved and the run can be resumed",
                        state_word(state)
                    ),
                });
            }
            Event::Failed(message) => {
                self.state = RunState::Failed;
                self.push_log(format!("failed: {message}"));
                self.error = Some(message);
                self.current = None;
                self.progress = None;
                self.eta = None;
            }
        }
    }
}

pub fn state_word(state: RunState) -> &'static str {
    match state {
        RunState::Running => "running",
        RunState::Finished => "finished",
        RunState::Stopped => "stopped",
        RunState::Failed => "failed",
    }
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
    pub runs: Vec<RunEntry>,
    pub runs_cursor: usize,
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
            runs: Vec::new(),
            runs_cursor: 0,
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
                    && run.state == RunState::Running
                    && !run.paused()
                {
                    run.eta = run.eta.map(|eta| (eta - dt.as_secs_f64()).max(0.0));
                }
                Vec::new()
            }
            Msg::Signal(_) => self.leave(),
            Msg::Devices(devices) => {
                self.setup.set_devices(devices);
                Vec::new()
            }
            Msg::Launched { dir, snapshot } => {
                self.launching = false;
                self.show_run(RunView::new(dir, snapshot, Some(Live::started())));
                self.screen = Screen::Run;
                Vec::new()
            }
            Msg::LaunchedLanguage { dir, snapshot } => {
                self.launching = false;
                let run = RunView::new_language(dir, snapshot, Some(Live::started()));
                self.show_run(run);
                self.screen = Screen::Run;
                Vec::new()
            }
            Msg::LaunchFailed(message) => {
                self.launching = false;
                self.status = Some(format!("could not start: {message}"));
                Vec::new()
            }
            Msg::Worker(event) => {
                if let Some(run) = &mut self.run {
                    run.on_event(event);
                    self.lab.sync(&run.generations);
                }
                Vec::new()
            }
            Msg::WorkerEnded => {
                if let Some(live) = self.run.as_mut().and_then(|r| r.live.as_mut()) {
                    live.worker_running = false;
                    live.paused = false;
                }
                if self.overlay == Some(Overlay::ConfirmCancel)
                    || self.overlay == Some(Overlay::ConfirmQuit)
                {
                    self.overlay = None;
                }
                if self.exit == Exit::WhenWorkerEnds {
                    self.exit = Exit::Now;
                }
                Vec::new()
            }
            Msg::Opened { dir, snapshot } => {
                self.show_run(RunView::new(dir, snapshot, None));
                self.screen = Screen::Run;
                Vec::new()
            }
            Msg::OpenedLanguage { dir, snapshot } => {
                let run = RunView::new_language(dir, snapshot, None);
                self.show_run(run);
                self.screen = Screen::Run;
                Vec::new()
            }
            // A language run started here is polled too: its worker sends no records.
            Msg::PolledLanguage(snapshot) => {
                if let Some(run) = self.run.as_mut().filter(|r| r.is_language()) {
                    run.apply_language(snapshot);
                    self.lab.set_language_tokens(
                        run.language.as_ref().and_then(LanguageRun::test_tokens),
                    );
                    self.lab.sync(&run.generations);
                }
                Vec::new()
            }
            Msg::Targets {
                generation,
                probabilities,
            } => {
                self.lab.set_targets(generation, probabilities);
                Vec::new()
            }
            Msg::OpenFailed(message) => {
                self.status = Some(message);
                Vec::new()
            }
            Msg::Polled(snapshot) => {
                if let Some(run) = self.run.as_mut().filter(|r| r.live.is_none()) {
                    run.apply(snapshot);
                    self.lab.sync(&run.generations);
                }
                Vec::new()
            }
            Msg::Runs(runs) => {
                self.runs = runs;
                self.runs_cursor = self.runs_cursor.min(self.runs.len().saturating_sub(1));
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
        };
        if self.screen == Screen::Ensembles && self.run.is_some() {
            effects.extend(self.lab.requests());
        }
        effects
    }

    fn show_run(&mut self, run: RunView) {
        self.lab = EnsembleLab::default();
        self.lab.language_tokens = run.language.as_ref().map(|l| l.test_tokens().unwrap_or(0));
        self.lab.sync(&run.generations);
        self.run = Some(run);
        self.status = None;
    }

    /// Ctrl-C, a signal, or a confirmed quit: stop a live run (keeping what is saved) and exit
    /// once its worker has ended; otherwise exit now.
    fn leave(&mut self) -> Vec<Effect> {
        if self.live_running() {
            self.exit = Exit::WhenWorkerEnds;
            self.mark_stopping()
        } else {
            self.exit = Exit::Now;
            Vec::new()
        }
    }

    fn mark_stopping(&mut self) -> Vec<Effect> {
        if let Some(live) = self.run.as_mut().and_then(|r| r.live.as_mut()) {
            live.stopping = true;
            live.paused = false;
        }
        vec![Effect::Stop]
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return self.leave();
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
                    Vec::new()
                } else {
                    self.leave()
                }
            }
            KeyCode::Char(c @ '1'..='5') => self.go(Screen::ALL[c as usize - '1' as usize]),
            KeyCode::Tab => self.go(Screen::ALL[(self.screen.index() + 1) % Screen::ALL.len()]),
            KeyCode::BackTab => self
                .go(Screen::ALL[(self.screen.index() + Screen::ALL.len() - 1) % Screen::ALL.len()]),
            KeyCode::Char('p') if self.live_running() => {
                let live = self
                    .run
                    .as_mut()
                    .and_then(|r| r.live.as_mut())
                    .expect("a live run");
                if live.stopping {
                    return Vec::new();
                }
                live.paused = !live.paused;
                vec![Effect::Pause(live.paused)]
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
                Screen::Runs => self.on_runs_key(code),
                Screen::Run | Screen::Generations => Vec::new(),
            },
        }
    }

    fn on_overlay_key(&mut self, overlay: Overlay, code: KeyCode) -> Vec<Effect> {
        match overlay {
            Overlay::Help => {
                self.overlay = None;
                Vec::new()
            }
            Overlay::ConfirmCancel | Overlay::ConfirmQuit => match code {
                KeyCode::Char('y' | 'Y') => {
                    self.overlay = None;
                    if !self.live_running() {
                        return Vec::new();
                    }
                    if overlay == Overlay::ConfirmQuit {
                        self.exit = Exit::WhenWorkerEnds;
                    }
                    self.mark_stopping()
                }
                KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                    self.overlay = None;
                    Vec::new()
                }
                _ => Vec::new(),
            },
        }
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
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.setup.move_field(-1),
            KeyCode::Down | KeyCode::Char('j') => self.setup.move_field(1),
            KeyCode::Left | KeyCode::Char('h' | '-' | 'l' | '+') | KeyCode::Right
                if !self.setup.editable(self.setup.current_field()) =>
            {
                self.status = Some(
                    "a language model's corpus, model and control come from its preset file; \
                     generations, epochs, seed and device can be changed here"
                        .into(),
                );
            }
            KeyCode::Left | KeyCode::Char('h' | '-') => self.setup.adjust(-1),
            KeyCode::Right | KeyCode::Char('l' | '+') => self.setup.adjust(1),
            KeyCode::Enter => return self.start(),
            _ => {}
        }
        Vec::new()
    }

    fn start(&mut self) -> Vec<Effect> {
        if self.live_running() || self.launching {
            self.status =
                Some("a run is already training; cancel it (c) before starting another".into());
            return Vec::new();
        }
        match &self.setup.check.spec {
            Ok(experiment) => {
                self.launching = true;
                self.status = Some(format!("starting {}: loading data", experiment.name()));
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

    fn on_runs_key(&mut self, code: KeyCode) -> Vec<Effect> {
        match code {
            KeyCode::Up | KeyCode::Char('k') => {
                self.runs_cursor = self.runs_cursor.saturating_sub(1)
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.runs_cursor = (self.runs_cursor + 1).min(self.runs.len().saturating_sub(1))
            }
            KeyCode::Char('r') => return vec![Effect::ScanRuns],
            KeyCode::Enter => {
                if self.live_running() {
                    self.status = Some(
                        "a run is training in this window; cancel it (c) before opening another"
                            .into(),
                    );
                } else if let Some(entry) = self.runs.get(self.runs_cursor) {
                    return vec![Effect::Open(entry.dir.clone())];
                }
            }
            _ => {}
        }
        Vec::new()
    }
}

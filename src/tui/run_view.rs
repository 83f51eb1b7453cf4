//! A run as the Run, Generations and Ensembles screens show it, rebuilt from its run directory
//! alone: the records it holds (a [`Snapshot`]), the events the run process appended to
//! events.jsonl, its latest progress, and whether the process that owns it still lives. A run
//! started in this window and one started elsewhere are followed the same way.

use std::path::PathBuf;

use crate::events::{Event, Progress, event_line};
use crate::experiment::Experiment;
use crate::gpu::GpuReading;
use crate::run_dir::records::{
    EnsembleResult, EpochRecord, EpochTime, GenerationResult, GradientSplit, Results, RunState,
    Task,
};

/// A run directory's records, read by the runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub experiment: Experiment,
    pub epochs: Vec<EpochRecord>,
    pub results: Option<Results>,
}

/// Whether the process that writes a run directory is there, from its lock and heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// No lock: nothing is writing the directory.
    None,
    /// Alive; `who` names it ("pid 4242 on host gpu3").
    Alive { who: String },
    /// The lock's owner is gone (killed, or its node lost): `why` says since when.
    Stale { why: String },
}

/// The generation being trained now.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub generation: usize,
    pub model: String,
    pub control: String,
    pub parameters: usize,
}

const LOG_LINES: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub dir: PathBuf,
    pub experiment: Experiment,
    pub owner: Owner,
    /// Set once this window asked the run to stop, until it ends.
    pub stopping: bool,
    /// A pause (true) or resume this window asked for, until the run's progress confirms it.
    pub asked_pause: Option<bool>,
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
    /// Whether events.jsonl has been heard from (an older run directory has none).
    pub heard_events: bool,
    /// The GPU the run trains on, as last read, while it trains.
    pub gpu: Option<GpuReading>,
}

impl RunView {
    /// A view of `dir` from its records, before any event is read.
    pub fn new(dir: PathBuf, snapshot: Snapshot) -> RunView {
        let mut view = RunView {
            dir,
            experiment: snapshot.experiment.clone(),
            owner: Owner::None,
            stopping: false,
            asked_pause: None,
            state: RunState::Running,
            dataset: String::new(),
            device: String::new(),
            test_samples: None,
            epochs: Vec::new(),
            generations: Vec::new(),
            ensembles: Vec::new(),
            current: None,
            progress: None,
            eta: None,
            log: Vec::new(),
            error: None,
            heard_events: false,
            gpu: None,
        };
        view.apply(snapshot);
        view
    }

    pub fn task(&self) -> Task {
        self.experiment.task()
    }

    /// Replaces what the run directory holds with a fresh read of it.
    pub fn apply(&mut self, snapshot: Snapshot) {
        if snapshot.epochs.len() != self.epochs.len() {
            self.eta = snapshot.epochs.last().map(|r| r.eta_seconds);
        }
        self.experiment = snapshot.experiment;
        self.epochs = snapshot.epochs;
        if let Some(r) = snapshot.results
            && self.state != RunState::Failed
        {
            self.set_results(r);
        }
        if !self.heard_events {
            // Without events the log is what the records say, and the current generation
            // the first one without results.
            let task = self.task();
            let lines: Vec<String> = self
                .epochs
                .iter()
                .filter_map(|r| event_line(&Event::Epoch(r.clone()), task))
                .collect();
            self.log = lines[lines.len().saturating_sub(LOG_LINES)..].to_vec();
            let k = self.generations.len();
            self.current =
                (self.state == RunState::Running && k < self.total_generations()).then(|| {
                    Current {
                        generation: k,
                        model: self.experiment.model_of(k),
                        control: self.experiment.control_of(k),
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
        self.experiment.students() + 1
    }

    /// Epochs of the generation in training (or of the last one): a two-stage control's
    /// generations have more.
    pub fn epochs_per_generation(&self) -> usize {
        let k = self
            .current
            .as_ref()
            .map_or(self.generations.len().saturating_sub(1), |c| c.generation);
        self.experiment.epochs_of(k)
    }

    /// The most epochs any generation of the run has, for the curves' axis.
    pub fn most_epochs(&self) -> usize {
        (0..self.total_generations())
            .map(|k| self.experiment.epochs_of(k))
            .max()
            .unwrap_or(0)
    }

    /// The stage the generation in training is in, for a two-stage control ("hint", "KD").
    pub fn current_stage(&self) -> Option<&'static str> {
        let c = self.current.as_ref()?;
        self.experiment
            .stage_of(c.generation, self.current_epochs_done())
            .map(|(name, _)| name)
    }

    /// Whether the run is training now: it says so and its owner lives.
    pub fn is_live_running(&self) -> bool {
        self.state == RunState::Running && matches!(self.owner, Owner::Alive { .. })
    }

    pub fn paused(&self) -> bool {
        let reported = self.progress.as_ref().is_some_and(|p| p.paused);
        self.is_live_running() && self.asked_pause.unwrap_or(reported)
    }

    /// The run's latest progress report, when it belongs to the generation in training (a new
    /// generation's first report may not be written yet).
    pub fn set_progress(&mut self, progress: Option<Progress>) {
        let current = self.current.as_ref().map(|c| c.generation);
        let Some(progress) = progress.filter(|p| Some(p.generation) == current) else {
            return;
        };
        if self.asked_pause == Some(progress.paused) {
            self.asked_pause = None;
        }
        self.progress = Some(progress);
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

    /// Fraction of the current epoch's batches done.
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
        let e = &self.experiment;
        let done = e.epochs_before(self.generations.len()) as f64
            + if self.current.is_some() {
                self.current_epochs_done() as f64 + self.epoch_fraction()
            } else {
                0.0
            };
        (done / e.epochs_before(self.total_generations()).max(1) as f64).min(1.0)
    }

    /// The learning rate of the epoch in training, else of the last one recorded.
    pub fn learning_rate(&self) -> Option<f64> {
        match (&self.current, &self.experiment) {
            (Some(c), Experiment::Vision(spec)) => {
                Some(spec.lr_of(c.generation, self.current_epochs_done()))
            }
            // A plateau schedule: the last recorded rate holds until the next record.
            _ => self.epochs.last().map(|r| r.lr),
        }
    }

    /// The distillation gradient's split at generation `k`'s latest epoch that recorded one.
    pub fn gradient(&self, k: usize) -> Option<GradientSplit> {
        self.epochs
            .iter()
            .rev()
            .filter(|r| r.generation == k)
            .find_map(|r| r.gradient)
    }

    /// Where the latest epoch's time went.
    pub fn epoch_time(&self) -> Option<EpochTime> {
        self.epochs.iter().rev().find_map(|r| r.time)
    }

    pub fn samples_per_sec(&self) -> Option<f64> {
        self.progress
            .as_ref()
            .map(|p| p.samples_per_sec)
            .or_else(|| self.epochs.last().map(|r| r.samples_per_sec))
    }

    pub fn push_log(&mut self, line: String) {
        self.log.push(line);
        if self.log.len() > LOG_LINES {
            self.log.drain(..self.log.len() - LOG_LINES);
        }
    }

    /// One event the run process appended to events.jsonl.
    pub fn on_event(&mut self, event: Event) {
        if !self.heard_events {
            // The events tell the whole story from the start: the log is theirs from now on.
            self.heard_events = true;
            self.log.clear();
            self.current = None;
        }
        if let Some(line) = event_line(&event, self.task()) {
            for line in line.lines() {
                self.push_log(line.to_string());
            }
        }
        match event {
            Event::Started {
                dataset, device, ..
            } => {
                self.dataset = dataset;
                self.device = device;
                self.state = RunState::Running;
                self.error = None;
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
            Event::Progress(progress) => self.progress = Some(progress),
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
            Event::Log { .. } => {}
            Event::Ended(results) => {
                let state = results.state;
                self.set_results(results);
                self.end();
                self.push_log(match state {
                    RunState::Finished => "run finished".into(),
                    _ => format!(
                        "run {state}; finished generations are saved and the run can be resumed"
                    ),
                });
            }
            Event::Failed { message } => {
                self.state = RunState::Failed;
                self.push_log(format!("failed: {message}"));
                self.error = Some(message);
                self.end();
            }
        }
    }

    fn end(&mut self) {
        self.current = None;
        self.progress = None;
        self.eta = None;
        self.stopping = false;
        self.asked_pause = None;
    }

    /// What the lock says of the run's writer; a run that says it runs while its owner is gone
    /// was killed, and shows as stale, with nothing in training.
    pub fn set_owner(&mut self, owner: Owner) {
        // A run started here has no lock until its process has loaded its data.
        let starting = matches!(self.owner, Owner::Alive { .. }) && !self.heard_events;
        if owner == Owner::None && starting {
            return;
        }
        self.owner = owner;
        if self.state == RunState::Running && !self.is_live_running() && self.heard_events {
            self.current = None;
            self.progress = None;
            self.eta = None;
            self.asked_pause = None;
        }
    }

    /// The run process this window started has exited; if it said nothing of why (it failed
    /// before its first event, on bad data say), its log does.
    pub fn process_exited(&mut self, code: Option<i32>, log_tail: String) {
        if self.state == RunState::Running && code != Some(0) && code != Some(130) {
            let why = format!(
                "the run process exited with {} before it ended the run: {log_tail}",
                code.map_or("a signal".to_string(), |c| format!("code {c}"))
            );
            self.push_log(why.clone());
            self.error = Some(why);
            self.state = RunState::Failed;
            self.owner = Owner::None;
            self.end();
        }
    }

    /// The run's state in a word or two: running, paused, stopping, stale, finished, ...
    pub fn state_text(&self) -> String {
        match (&self.owner, self.state) {
            (Owner::Stale { why }, RunState::Running) => why.clone(),
            (Owner::None, RunState::Running) if self.heard_events => {
                "stale: nothing is writing it".into()
            }
            (Owner::Alive { .. }, RunState::Running) if self.stopping => "stopping".into(),
            (Owner::Alive { .. }, RunState::Running) if self.paused() => "paused".into(),
            (_, state) => state.to_string(),
        }
    }
}

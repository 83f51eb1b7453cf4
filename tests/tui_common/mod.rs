//! Hand-built runs for the TUI tests: a tiny spec, epoch records, generation results and logits,
//! fed to the app as the runtime would: a run this window launched, then what each read of its
//! run directory finds (records, events appended since the last read, progress, owner).

#![allow(dead_code)] // each test crate uses its own part of these helpers

use std::path::{Path, PathBuf};

use banbench::device::DeviceChoice;
use banbench::ensemble::{Logits, Metrics};
use banbench::events::{Event, Progress};
use banbench::experiment::Experiment;
use banbench::run_dir::TestLabels;
use banbench::run_dir::records::{
    EnsembleResult, EpochRecord, EpochTime, GenerationResult, Results, RunState, Scores, Task,
    generation_label,
};
use banbench::spec::{Averaging, Overrides, Spec};
use banbench::tui::app::{App, Effect, Msg};
use banbench::tui::frame;
use banbench::tui::run_view::{Owner, Snapshot};
use banbench::tui::screens::setup::PresetEntry;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

pub const TINY: &str = r#"
name = "tiny"
description = "Teacher and two born-again generations on 200 embedded images."
seed = 3

[data]
source = "embedded"
train_samples = 200
test_samples = 100

[teacher]
arch = "cnn"
width = 4

[schedule]
epochs = 3
batch_size = 50
lr = 0.05
milestones = [2]

[generations]
count = 2
control = "ban"

[paper]
Teacher = 9.5
BAN-1 = 9.1
"#;

pub const RUN_DIR: &str = "runs/tiny-20260101-120000";

pub fn tiny_spec() -> Spec {
    Spec::parse(TINY, Path::new("presets/tiny.toml"), &Overrides::default())
        .expect("the tiny spec is valid")
}

pub fn tiny() -> Experiment {
    Experiment::Vision(Box::new(tiny_spec()))
}

/// The app on the Setup screen with the tiny preset, no colour, every device checked.
pub fn app() -> App {
    let presets = vec![PresetEntry {
        path: PathBuf::from("presets/tiny.toml"),
        spec: Ok(tiny()),
        corpus: None,
        table: false,
    }];
    let mut app = App::new(presets, DeviceChoice::Flex, false);
    app.update(Msg::Devices(vec![
        (DeviceChoice::Flex, Ok(())),
        (
            DeviceChoice::TchCpu,
            Err("this banbench was built without LibTorch".into()),
        ),
        (
            DeviceChoice::Cuda(0),
            Err("this banbench was built without LibTorch".into()),
        ),
    ]));
    app
}

pub fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ctrl_c() -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL))
}

/// What the lock of a run process that lives says.
pub fn alive() -> Owner {
    Owner::Alive {
        who: "pid 4242 on host gpu3, since 2026-01-01 12:00:00".into(),
    }
}

pub fn record(generation: usize, epoch: usize, loss: f64, test_error: f64) -> EpochRecord {
    EpochRecord {
        generation,
        epoch,
        epochs: 3,
        train_loss: loss,
        train_error: test_error - 2.0,
        test_error: Some(test_error),
        test_nll: Some(loss * 0.9),
        validation_error: None,
        validation_perplexity: None,
        test_perplexity: None,
        train_perplexity: None,
        lr: if epoch <= 2 { 0.05 } else { 0.01 },
        samples_per_sec: 1500.0,
        seconds: 2.0 * epoch as f64,
        eta_seconds: 60.0 - 6.0 * (3 * generation + epoch) as f64,
        gradient: None,
        // A student's epoch also runs its teacher's forward passes.
        time: Some(EpochTime {
            steps: 1.5,
            teacher: if generation > 0 { 0.3 } else { 0.0 },
            data: 0.06,
            evaluation: 0.1,
            writes: 0.02,
            other: 0.02,
        }),
        stage: None,
    }
}

pub fn result(generation: usize, top1: f64) -> GenerationResult {
    let label = generation_label(generation);
    GenerationResult {
        generation,
        paper: tiny().paper(&label),
        agreement: None,
        label,
        model: "CNN-4".into(),
        control: if generation == 0 {
            "labels".into()
        } else {
            "BAN".into()
        },
        parameters: 2446,
        train_seconds: 6.0 + generation as f64,
        best_epoch: None,
        metrics: Metrics {
            top1_error: top1,
            top5_error: top1 / 4.0,
            nll: top1 / 30.0,
            ece: 1.5 + generation as f64,
        }
        .into(),
    }
}

pub fn results(state: RunState, generations: Vec<GenerationResult>) -> Results {
    let ensembles = if generations.len() == 3 {
        vec![EnsembleResult {
            name: "Ens*2".into(),
            members: vec![1, 2],
            average: Averaging::Probabilities,
            metrics: Metrics {
                top1_error: 8.0,
                top5_error: 2.0,
                nll: 0.25,
                ece: 1.1,
            }
            .into(),
            paper: Scores::new(),
        }]
    } else {
        Vec::new()
    };
    Results {
        task: Task::Vision,
        name: "tiny".into(),
        dataset: "fashion-mnist-subset".into(),
        test_samples: 100,
        vocabulary: None,
        device: "flex".into(),
        state,
        generations,
        ensembles,
    }
}

/// A run directory as its run process writes it, and what the runtime's next read of it finds:
/// every event but progress is appended to events.jsonl, progress overwrites progress.json,
/// epochs go to metrics.jsonl and finished generations (then the end) to results.json.
#[derive(Debug, Clone)]
pub struct FakeRun {
    pub dir: PathBuf,
    /// metrics.jsonl and results.json.
    pub snapshot: Snapshot,
    /// progress.json.
    pub progress: Option<Progress>,
    /// The lock and heartbeat.
    pub owner: Owner,
    /// What results.json starts from once the run writes it.
    base: Results,
    /// Appended since the last read.
    unread: Vec<Event>,
}

impl FakeRun {
    /// A run directory holding only its spec, its process just started (no lock yet).
    pub fn new(dir: &str, experiment: Experiment, base: Results) -> FakeRun {
        FakeRun {
            dir: PathBuf::from(dir),
            snapshot: Snapshot {
                experiment,
                epochs: Vec::new(),
                results: None,
            },
            progress: None,
            owner: Owner::None,
            base,
            unread: Vec::new(),
        }
    }

    /// Starts the run from `app` as the runtime does after `Effect::Start`; its process then
    /// takes the lock.
    pub fn launch(app: &mut App, dir: &str, experiment: Experiment, base: Results) -> FakeRun {
        let mut run = FakeRun::new(dir, experiment, base);
        app.update(Msg::Launched {
            dir: run.dir.clone(),
            snapshot: run.snapshot.clone(),
        });
        run.owner = alive();
        run
    }

    /// Opens the run directory from `app` as the runtime does after `Effect::Open`.
    pub fn open(&self, app: &mut App) -> Vec<Effect> {
        app.update(Msg::Opened {
            dir: self.dir.clone(),
            snapshot: self.snapshot.clone(),
        })
    }

    fn results_mut(&mut self) -> &mut Results {
        self.snapshot
            .results
            .get_or_insert_with(|| self.base.clone())
    }

    /// The run process emits `event`: it lands in the run directory's files.
    pub fn emit(&mut self, event: Event) {
        match &event {
            Event::Progress(p) => {
                self.progress = Some(p.clone());
                return;
            }
            Event::Epoch(r) => {
                let epochs = &mut self.snapshot.epochs;
                epochs.retain(|e| (e.generation, e.epoch) != (r.generation, r.epoch));
                epochs.push(r.clone());
            }
            Event::GenerationDone {
                generation,
                ensembles,
            } => {
                let results = self.results_mut();
                results.state = RunState::Running;
                results.generations.push(generation.clone());
                results.ensembles = ensembles.clone();
            }
            Event::Ended(results) => self.snapshot.results = Some(results.clone()),
            Event::Failed { .. } => self.results_mut().state = RunState::Failed,
            _ => {}
        }
        self.unread.push(event);
    }

    /// The runtime's read of the run directory: everything appended since the last one.
    pub fn poll(&mut self, app: &mut App) -> Vec<Effect> {
        app.update(Msg::Polled {
            snapshot: self.snapshot.clone(),
            events: std::mem::take(&mut self.unread),
            progress: self.progress.clone(),
            owner: self.owner.clone(),
            gpu: None,
        })
    }

    /// Emits `event` and lets the app read it at once.
    pub fn send(&mut self, app: &mut App, event: Event) -> Vec<Effect> {
        self.emit(event);
        self.poll(app)
    }

    /// The run process exits (it released its lock) and the app reads the directory again.
    pub fn exit(&mut self, app: &mut App) -> Vec<Effect> {
        self.owner = Owner::None;
        self.poll(app)
    }
}

const TOP1: [f64; 3] = [10.0, 9.0, 9.0];

pub fn started(batches_per_epoch: usize) -> Event {
    Event::Started {
        task: Task::Vision,
        name: "tiny".into(),
        dataset: "fashion-mnist-subset".into(),
        device: "flex".into(),
        generations: 3,
        epochs: 3,
        batches_per_epoch,
        resumed: Vec::new(),
    }
}

pub fn generation_started(k: usize) -> Event {
    Event::GenerationStarted {
        generation: k,
        model: "CNN-4".into(),
        control: if k == 0 {
            "labels".into()
        } else {
            "BAN".into()
        },
        parameters: 2446,
    }
}

pub fn progress(generation: usize, epoch: usize, batch: usize) -> Event {
    Event::Progress(Progress {
        generation,
        epoch,
        batch,
        batches: 4,
        samples_per_sec: 1400.0,
        paused: false,
    })
}

/// The record of epoch `e` of generation `k` in [`live`]'s run.
pub fn live_record(k: usize, e: usize) -> EpochRecord {
    record(
        k,
        e,
        2.3 - 0.4 * e as f64 - 0.1 * k as f64,
        40.0 - 10.0 * e as f64 - k as f64,
    )
}

/// Generation `k`'s result in [`live`]'s run, and the ensembles it completes.
pub fn live_generation_done(k: usize) -> Event {
    let done: Vec<GenerationResult> = (0..=k).map(|g| result(g, TOP1[g])).collect();
    Event::GenerationDone {
        generation: result(k, TOP1[k]),
        ensembles: results(RunState::Running, done).ensembles,
    }
}

/// The events of the tiny run up to `epochs_done` epochs in total (3 per generation), the
/// current one `batch` of 4 batches into its next epoch; the whole run with its end when
/// `epochs_done` is 9.
pub fn live_events(epochs_done: usize, batch: usize) -> Vec<Event> {
    let mut events = vec![started(4)];
    for k in 0..TOP1.len() {
        if 3 * k > epochs_done {
            break;
        }
        events.push(generation_started(k));
        for e in 1..=3 {
            if 3 * k + e > epochs_done {
                events.push(progress(k, e, batch));
                return events;
            }
            events.push(Event::Epoch(live_record(k, e)));
        }
        events.push(live_generation_done(k));
    }
    let finished = TOP1
        .iter()
        .enumerate()
        .map(|(k, &top1)| result(k, top1))
        .collect();
    events.push(Event::Ended(results(RunState::Finished, finished)));
    events
}

/// A run launched from this app, its directory read after every event it writes, trained up to
/// `epochs_done` epochs in total (3 per generation), the current one `batch` of 4 batches into
/// its next epoch. At 9 epochs the run has finished and its process has exited.
pub fn live(app: &mut App, epochs_done: usize, batch: usize) -> FakeRun {
    let mut run = FakeRun::launch(app, RUN_DIR, tiny(), results(RunState::Running, Vec::new()));
    let events = live_events(epochs_done, batch);
    let ended = matches!(events.last(), Some(Event::Ended(_)));
    for event in events {
        run.send(app, event);
    }
    if ended {
        run.exit(app);
    }
    run
}

/// Test labels and logits for the three generations (4 samples, 2 classes): the teacher gets
/// samples 0-1 right, BAN-1 samples 1-2, BAN-2 samples 2-3.
pub fn labels() -> TestLabels {
    TestLabels {
        dataset: "tiny".into(),
        class_names: vec!["a".into(), "b".into()],
        labels: vec![0, 1, 0, 1],
    }
}

pub fn logits(generation: usize) -> Logits {
    let rows: [[f32; 8]; 3] = [
        [2.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.5, 0.0],
        [0.0, 0.5, 0.0, 2.0, 3.0, 0.0, 0.5, 0.0],
        [0.5, 0.0, 0.0, 0.2, 1.0, 0.0, 0.0, 2.5],
    ];
    Logits {
        classes: 2,
        values: rows[generation].to_vec(),
    }
}

/// Answers the app's file requests as the runtime would, from [`labels`] and [`logits`].
pub fn serve_files(app: &mut App, effects: Vec<Effect>) {
    let mut pending = effects;
    while let Some(effect) = pending.pop() {
        let msg = match effect {
            Effect::ReadLabels => Msg::Labels(Ok(labels())),
            Effect::ReadLogits { generation, .. } => Msg::Logits {
                generation,
                logits: Ok(logits(generation)),
            },
            _ => continue,
        };
        pending.extend(app.update(msg));
    }
}

pub fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| frame::draw(frame, app)).unwrap();
    terminal.backend().to_string()
}

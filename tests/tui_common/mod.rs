//! Hand-built runs for the TUI tests: a tiny spec, epoch records, generation results and logits,
//! fed to the app as the worker and the runtime would.

#![allow(dead_code)] // each test crate uses its own part of these helpers

use std::path::{Path, PathBuf};

use banbench::device::DeviceChoice;
use banbench::ensemble::{Logits, Metrics};
use banbench::events::{
    EnsembleResult, EpochRecord, Event, GenerationResult, Results, RunState, generation_label,
};
use banbench::run_dir::TestLabels;
use banbench::spec::{Averaging, Overrides, Spec};
use banbench::tui::app::{App, Experiment, Msg, Snapshot};
use banbench::tui::setup::PresetEntry;
use banbench::tui::views;
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

pub fn tiny_spec() -> Spec {
    Spec::parse(TINY, Path::new("presets/tiny.toml"), &Overrides::default())
        .expect("the tiny spec is valid")
}

/// The app on the Setup screen with the tiny preset, no colour, every device checked.
pub fn app() -> App {
    let presets = vec![PresetEntry {
        path: PathBuf::from("presets/tiny.toml"),
        spec: Ok(Experiment::Vision(Box::new(tiny_spec()))),
        corpus: None,
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

pub fn record(generation: usize, epoch: usize, loss: f64, test_error: f64) -> EpochRecord {
    EpochRecord {
        generation,
        epoch,
        epochs: 3,
        train_loss: loss,
        train_error: test_error - 2.0,
        test_error,
        test_nll: loss * 0.9,
        validation_error: None,
        lr: if epoch <= 2 { 0.05 } else { 0.01 },
        images_per_sec: 1500.0,
        seconds: 2.0 * epoch as f64,
        eta_seconds: 60.0 - 6.0 * (3 * generation + epoch) as f64,
    }
}

pub fn result(generation: usize, top1: f64) -> GenerationResult {
    let label = generation_label(generation);
    GenerationResult {
        generation,
        paper_error: tiny_spec().paper.get(&label).copied(),
        label,
        model: "CNN-4".into(),
        control: if generation == 0 {
            "labels".into()
        } else {
            "BAN".into()
        },
        parameters: 2446,
        train_seconds: 6.0 + generation as f64,
        metrics: Metrics {
            top1_error: top1,
            top5_error: top1 / 4.0,
            nll: top1 / 30.0,
            ece: 1.5 + generation as f64,
        },
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
            },
            paper_error: None,
        }]
    } else {
        Vec::new()
    };
    Results {
        name: "tiny".into(),
        dataset: "fashion-mnist-subset".into(),
        test_samples: 100,
        device: "flex".into(),
        state,
        generations,
        ensembles,
    }
}

const TOP1: [f64; 3] = [10.0, 9.0, 9.0];

/// A run launched from this app, trained up to `epochs_done` epochs in total (3 per generation),
/// the current one `batch` of 4 batches into its next epoch.
pub fn live(app: &mut App, epochs_done: usize, batch: usize) {
    let spec = tiny_spec();
    app.update(Msg::Launched {
        dir: PathBuf::from("runs/tiny-20260101-120000"),
        snapshot: Snapshot {
            spec,
            epochs: Vec::new(),
            results: None,
        },
    });
    app.update(Msg::Worker(Event::Started {
        name: "tiny".into(),
        dataset: "fashion-mnist-subset".into(),
        device: "flex".into(),
        generations: 3,
        epochs: 3,
        batches_per_epoch: 4,
        resumed: Vec::new(),
    }));
    for (k, &top1) in TOP1.iter().enumerate() {
        if 3 * k > epochs_done {
            break;
        }
        app.update(Msg::Worker(Event::GenerationStarted {
            generation: k,
            model: "CNN-4".into(),
            control: if k == 0 {
                "labels".into()
            } else {
                "BAN".into()
            },
            parameters: 2446,
        }));
        for e in 1..=3 {
            if 3 * k + e > epochs_done {
                app.update(Msg::Worker(Event::Progress {
                    generation: k,
                    epoch: e,
                    batch,
                    batches: 4,
                    images_per_sec: 1400.0,
                }));
                return;
            }
            let r = record(
                k,
                e,
                2.3 - 0.4 * e as f64 - 0.1 * k as f64,
                40.0 - 10.0 * e as f64 - k as f64,
            );
            app.update(Msg::Worker(Event::Epoch(r)));
        }
        app.update(Msg::Worker(Event::GenerationDone {
            generation: result(k, top1),
            ensembles: Vec::new(),
        }));
    }
    let finished = TOP1
        .iter()
        .enumerate()
        .map(|(k, &top1)| result(k, top1))
        .collect();
    app.update(Msg::Worker(Event::Ended(results(
        RunState::Finished,
        finished,
    ))));
    app.update(Msg::WorkerEnded);
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
pub fn serve_files(app: &mut App, effects: Vec<banbench::tui::app::Effect>) {
    use banbench::tui::app::Effect;
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
    terminal.draw(|frame| views::draw(frame, app)).unwrap();
    terminal.backend().to_string()
}

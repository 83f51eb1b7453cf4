//! A language-model run directory in the TUI: the same screens as a vision run, with
//! perplexity where vision shows error, and an ensemble lab over the saved probabilities of
//! each test target token.

mod tui_common;

use std::path::{Path, PathBuf};

use banbench::events::{
    EpochRecord, LanguageEnsemble, LanguageEpochRecord, LanguageGeneration, LanguageResults,
    RunState, Task, generation_label,
};
use banbench::lm::spec::LmSpec;
use banbench::run_dir::RunDir;
use banbench::spec::Overrides;
use banbench::tui::app::{App, Effect, LanguageSnapshot, Msg};
use banbench::tui::ensembles::Outcome;
use crossterm::event::KeyCode;
use insta::assert_snapshot;
use tui_common::*;

const TINY_LM: &str = r#"
name = "tiny-lm"
seed = 3
[corpus]
path = "data/ptb"
[model]
arch = "lstm"
layers = 1
hidden = 12
dropout = 0.1
[schedule]
epochs = 3
batch_size = 8
bptt = 10
lr = 1.0
plateau_factor = 0.25
clip = 5.0
[generations]
count = 2
control = "ban+l"
[[ensemble]]
name = "Teacher+BAN-1"
members = [0, 1]
[paper]
Teacher = { valid = 75.11, test = 71.87 }
"#;

fn lm_spec() -> LmSpec {
    LmSpec::parse(
        TINY_LM,
        Path::new("presets/tiny-lm.toml"),
        &Overrides::default(),
    )
    .expect("the tiny language spec is valid")
}

fn lm_record(generation: usize, epoch: usize) -> LanguageEpochRecord {
    let ppl = 300.0 / epoch as f64 - 10.0 * generation as f64;
    LanguageEpochRecord {
        record: EpochRecord {
            generation,
            epoch,
            epochs: 3,
            train_loss: 6.0 - 0.5 * epoch as f64 - 0.1 * generation as f64,
            train_error: 80.0,
            test_error: 75.0 - epoch as f64,
            test_nll: ppl.ln(),
            validation_error: Some(76.0 - epoch as f64),
            lr: 1.0,
            images_per_sec: 5000.0,
            seconds: 4.0 * epoch as f64,
            eta_seconds: 40.0 - 4.0 * (3 * generation + epoch) as f64,
        },
        validation_perplexity: ppl + 5.0,
        test_perplexity: ppl,
        train_perplexity: ppl - 20.0,
        tokens_per_sec: 5000.0,
    }
}

fn lm_generation(generation: usize, test: f64) -> LanguageGeneration {
    LanguageGeneration {
        generation,
        label: generation_label(generation),
        model: "LSTM".into(),
        control: if generation == 0 {
            "labels".into()
        } else {
            "BAN+L".into()
        },
        parameters: 12_345,
        train_seconds: 12.0 + generation as f64,
        best_epoch: 3,
        validation_perplexity: test + 5.0,
        test_perplexity: test,
        test_error: 70.0 - generation as f64,
        paper_validation_perplexity: (generation == 0).then_some(75.11),
        paper_test_perplexity: (generation == 0).then_some(71.87),
    }
}

fn lm_results(state: RunState, generations: Vec<LanguageGeneration>) -> LanguageResults {
    let ensembles = if generations.len() >= 2 {
        vec![LanguageEnsemble {
            name: "Teacher+BAN-1".into(),
            members: vec![0, 1],
            test_perplexity: 95.5,
        }]
    } else {
        Vec::new()
    };
    LanguageResults {
        task: Task::Language,
        name: "tiny-lm".into(),
        corpus: "data/ptb".into(),
        vocabulary: 10_000,
        test_tokens: 4,
        device: "flex".into(),
        state,
        generations,
        ensembles,
    }
}

/// A language run watched from another session: the teacher and BAN-1 finished, BAN-2 one
/// epoch in.
fn watched() -> App {
    let mut app = app();
    let snapshot = LanguageSnapshot {
        spec: lm_spec(),
        epochs: (0..2)
            .flat_map(|k| (1..=3).map(move |e| lm_record(k, e)))
            .chain([lm_record(2, 1)])
            .collect(),
        results: Some(lm_results(
            RunState::Running,
            vec![lm_generation(0, 100.0), lm_generation(1, 97.25)],
        )),
    };
    app.update(Msg::OpenedLanguage {
        dir: PathBuf::from("runs/tiny-lm-20260101-120000"),
        snapshot,
    });
    app
}

#[test]
fn language_run_watched_from_another_session() {
    assert_snapshot!(render(&watched(), 80, 24));
}

#[test]
fn language_generations() {
    let mut app = watched();
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn language_generations_wide() {
    let mut app = watched();
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(render(&app, 120, 24));
}

/// Answers the app's requests for target probabilities from the run directory, as the
/// runtime does.
fn serve_targets(app: &mut App, dir: &RunDir, effects: Vec<Effect>) {
    let mut pending = effects;
    while let Some(effect) = pending.pop() {
        if let Effect::ReadTargets { generation, tokens } = effect {
            let probabilities = dir
                .read_target_probabilities(generation, tokens)
                .map_err(|e| format!("{e:#}"));
            pending.extend(app.update(Msg::Targets {
                generation,
                probabilities,
            }));
        }
    }
}

fn perplexity(outcome: &Outcome) -> f64 {
    match outcome {
        Outcome::Ready(e) => e.metrics.nll.exp(),
        other => panic!("no perplexity: {other:?}"),
    }
}

#[test]
fn toggling_a_member_recomputes_the_ensemble_perplexity_from_target_probabilities() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tiny-lm");
    let spec = lm_spec();
    let dir = RunDir::create_with(&root, &spec.to_toml(), |_| true).unwrap();
    let results = lm_results(
        RunState::Finished,
        vec![lm_generation(0, 4.0), lm_generation(1, 4.0)],
    );
    dir.write_language_results(&results, "").unwrap();
    // Four test tokens; the teacher and BAN-1 are confident on different halves.
    dir.write_target_probabilities(0, &[0.5, 0.5, 0.125, 0.125])
        .unwrap();
    dir.write_target_probabilities(1, &[0.125, 0.125, 0.5, 0.5])
        .unwrap();

    let mut app = app();
    let (_, msg) = banbench::tui::open(&root).unwrap();
    assert!(matches!(msg, Msg::OpenedLanguage { .. }), "{msg:?}");
    app.update(msg);
    let effects = app.update(key(KeyCode::Char('4')));
    assert!(
        effects
            .iter()
            .all(|e| matches!(e, Effect::ReadTargets { tokens: 4, .. })),
        "{effects:?}"
    );
    serve_targets(&mut app, &dir, effects);
    assert_eq!(app.lab.outcome, Outcome::NoMembers);

    app.update(key(KeyCode::Char(' '))); // the teacher
    let teacher = perplexity(&app.lab.outcome);
    // exp(mean -ln p) over 0.5, 0.5, 0.125, 0.125: sqrt(2 * 8) = 4.
    assert!((teacher - 4.0).abs() < 1e-9, "{teacher}");

    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' '))); // + BAN-1: every token gets 0.3125
    let pair = perplexity(&app.lab.outcome);
    assert!((pair - 1.0 / 0.3125).abs() < 1e-6, "{pair}");
    assert!(pair < teacher);

    // Logit averaging is not offered for a language run.
    app.update(key(KeyCode::Char('a')));
    assert!((perplexity(&app.lab.outcome) - pair).abs() < 1e-12);

    // Pin the pair, then compare BAN-1 alone against it, as on a vision run.
    app.update(key(KeyCode::Char('m')));
    assert_eq!(app.lab.pinned.as_ref().unwrap().members, vec![0, 1]);
    app.update(key(KeyCode::Up));
    app.update(key(KeyCode::Char(' '))); // BAN-1 alone
    assert!((perplexity(&app.lab.outcome) - 4.0).abs() < 1e-9);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("Pinned") && screen.contains("+0.80"),
        "{screen}"
    );

    assert_snapshot!(screen);

    // The Runs screen lists the language run too.
    let runs = banbench::tui::scan_runs(tmp.path());
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].name, "tiny-lm");
    assert_eq!((runs[0].finished, runs[0].generations), (2, 3));
}

#[test]
fn a_language_run_draws_at_every_size_without_panicking() {
    let mut app = watched();
    app.setup = language_setup(Ok(FACTS));
    for screen in ['1', '2', '3', '4'] {
        app.update(key(KeyCode::Char(screen)));
        for (w, h) in [(1, 1), (20, 5), (60, 18), (80, 24), (200, 60)] {
            render(&app, w, h);
        }
    }
}

const FACTS: banbench::tui::setup::CorpusFacts = banbench::tui::setup::CorpusFacts {
    vocabulary: 50,
    characters: 20,
    train_tokens: 1_000,
};

/// The Setup screen with the tiny language preset and what its corpus read gave.
fn language_setup(
    corpus: Result<banbench::tui::setup::CorpusFacts, String>,
) -> banbench::tui::setup::Setup {
    use banbench::tui::app::Experiment;
    banbench::tui::setup::Setup::new(
        vec![banbench::tui::setup::PresetEntry {
            path: PathBuf::from("presets/lm/tiny-lm.toml"),
            spec: Ok(Experiment::Language(Box::new(lm_spec()))),
            corpus: Some(corpus),
        }],
        banbench::device::DeviceChoice::Flex,
    )
}

/// A language preset on the Setup screen: its corpus and model as the preset says, parameters
/// from the corpus read when the preset was listed, and Enter starts it with the edited epochs.
#[test]
fn a_language_preset_starts_from_setup() {
    use banbench::tui::app::Experiment;
    use banbench::tui::setup::Field;

    let mut app = app();
    app.setup = language_setup(Ok(FACTS));
    let params = banbench::arch::language::parameter_count(&lm_spec().model, 50, 20);
    assert!(
        app.setup
            .note(Field::TeacherSize)
            .contains(&banbench::tui::setup::thousands(params)),
        "{}",
        app.setup.note(Field::TeacherSize)
    );
    assert_eq!(app.setup.value(Field::Dataset), "corpus data/ptb");
    // 1,000 tokens x 3 epochs x 3 generations.
    assert_eq!(app.setup.check.cost.unwrap().samples, 9_000);
    assert_snapshot!(render(&app, 100, 30));

    // The architecture is the preset's: left/right on it changes nothing.
    app.setup.field = Field::ALL
        .iter()
        .position(|&f| f == Field::Teacher)
        .unwrap();
    app.update(key(KeyCode::Right));
    assert_eq!(app.setup.value(Field::Teacher), "lstm");
    assert!(app.status.as_ref().unwrap().contains("preset file"));
    app.setup.field = Field::ALL.iter().position(|&f| f == Field::Epochs).unwrap();
    app.update(key(KeyCode::Right));
    let effects = app.update(key(KeyCode::Enter));
    let [
        Effect::Start {
            experiment: Experiment::Language(spec),
            ..
        },
    ] = effects.as_slice()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(spec.schedule.epochs, 4);

    // Without its corpus the preset cannot start, and Setup says which file is missing.
    let mut app = tui_common::app();
    app.setup = language_setup(Err("data/ptb/ptb.train.txt: not found".into()));
    assert_eq!(app.update(key(KeyCode::Enter)), vec![]);
    assert!(
        app.status.as_ref().unwrap().contains("ptb.train.txt"),
        "{:?}",
        app.status
    );
}

/// A language run started from Setup: progress and log lines come as the worker's events,
/// perplexity records from polling the run directory; the Run screen shows validation and
/// test perplexity curves.
#[test]
fn a_language_run_started_here_follows_events_and_its_run_directory() {
    use banbench::events::Event;

    let mut app = app();
    let empty = LanguageSnapshot {
        spec: lm_spec(),
        epochs: Vec::new(),
        results: None,
    };
    app.update(Msg::LaunchedLanguage {
        dir: PathBuf::from("runs/tiny-lm-20260101-120000"),
        snapshot: empty,
    });
    let run = app.run.as_ref().unwrap();
    assert!(run.is_language() && run.is_live_running());
    app.update(Msg::Worker(Event::GenerationStarted {
        generation: 0,
        model: "lstm-1x12-tied".into(),
        control: "labels".into(),
        parameters: 1_234,
    }));
    let record = lm_record(0, 1);
    app.update(Msg::Worker(Event::Log(record.line())));
    app.update(Msg::Worker(Event::Epoch(record.record.clone())));
    app.update(Msg::Worker(Event::Progress {
        generation: 0,
        epoch: 2,
        batch: 5,
        batches: 10,
        images_per_sec: 4321.0,
    }));
    app.update(Msg::PolledLanguage(LanguageSnapshot {
        spec: lm_spec(),
        epochs: vec![record],
        results: None,
    }));
    let run = app.run.as_ref().unwrap();
    // The epoch is logged once, with perplexities (not as a vision error line).
    assert_eq!(run.log.iter().filter(|l| l.contains("epoch")).count(), 1);
    assert!(
        run.log.iter().any(|l| l.contains("val ppl")),
        "{:?}",
        run.log
    );
    assert_eq!(run.current.as_ref().unwrap().parameters, 1_234);
    let screen = render(&app, 100, 30);
    assert!(
        screen.contains("Validation perplexity") && screen.contains("Test perplexity"),
        "{screen}"
    );
    assert_snapshot!(screen);

    // A failure heard as an event is not undone by the next read of the files.
    app.update(Msg::Worker(Event::Failed("out of memory".into())));
    app.update(Msg::PolledLanguage(LanguageSnapshot {
        spec: lm_spec(),
        epochs: Vec::new(),
        results: Some(lm_results(RunState::Running, vec![lm_generation(0, 99.0)])),
    }));
    assert_eq!(app.run.as_ref().unwrap().state, RunState::Failed);

    // The language worker sends no end event: once the files say the run ended, nothing is
    // shown as training any more.
    let mut app = app_with_live_language_run();
    app.update(key(KeyCode::Char('c')));
    app.update(key(KeyCode::Char('y')));
    app.update(Msg::WorkerEnded);
    app.update(Msg::PolledLanguage(LanguageSnapshot {
        spec: lm_spec(),
        epochs: vec![lm_record(0, 1)],
        results: Some(lm_results(RunState::Stopped, vec![lm_generation(0, 99.0)])),
    }));
    let run = app.run.as_ref().unwrap();
    assert_eq!(run.state, RunState::Stopped);
    assert!(run.current.is_none() && run.progress.is_none() && run.eta.is_none());
    assert!(run.log.last().unwrap().contains("stopped"), "{:?}", run.log);

    // A watched run that failed and was resumed elsewhere shows it running again.
    let mut app = tui_common::app();
    app.update(Msg::OpenedLanguage {
        dir: PathBuf::from("runs/tiny-lm"),
        snapshot: LanguageSnapshot {
            spec: lm_spec(),
            epochs: Vec::new(),
            results: Some(lm_results(RunState::Failed, vec![lm_generation(0, 99.0)])),
        },
    });
    app.update(Msg::PolledLanguage(LanguageSnapshot {
        spec: lm_spec(),
        epochs: Vec::new(),
        results: Some(lm_results(RunState::Running, vec![lm_generation(0, 99.0)])),
    }));
    assert_eq!(app.run.as_ref().unwrap().state, RunState::Running);
}

/// A language run launched from Setup, its teacher half-way through an epoch.
fn app_with_live_language_run() -> App {
    use banbench::events::Event;
    let mut app = app();
    app.update(Msg::LaunchedLanguage {
        dir: PathBuf::from("runs/tiny-lm-20260101-120000"),
        snapshot: LanguageSnapshot {
            spec: lm_spec(),
            epochs: Vec::new(),
            results: None,
        },
    });
    app.update(Msg::Worker(Event::GenerationStarted {
        generation: 0,
        model: "lstm-1x12-tied".into(),
        control: "labels".into(),
        parameters: 1_234,
    }));
    app.update(Msg::Worker(Event::Progress {
        generation: 0,
        epoch: 2,
        batch: 5,
        batches: 10,
        images_per_sec: 4321.0,
    }));
    app
}

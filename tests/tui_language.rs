//! A language-model run directory in the TUI: the same screens as a vision run, with
//! perplexity where vision shows error, and an ensemble lab over the saved probabilities of
//! each test target token.

mod tui_common;

use std::path::{Path, PathBuf};

use banbench::events::{Event, Progress};
use banbench::experiment::Experiment;
use banbench::lm::spec::LmSpec;
use banbench::run_dir::RunDir;
use banbench::run_dir::records::{
    EnsembleResult, EpochRecord, GenerationResult, Metric, Results, RunState, Scores, Task,
    generation_label,
};
use banbench::spec::{Averaging, Overrides};
use banbench::tui::app::{App, Effect, Msg};
use banbench::tui::run_view::{Owner, Snapshot};
use banbench::tui::screens::ensembles::Outcome;
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

fn lm() -> Experiment {
    Experiment::Language(Box::new(lm_spec()))
}

fn lm_record(generation: usize, epoch: usize) -> EpochRecord {
    let ppl = 300.0 / epoch as f64 - 10.0 * generation as f64;
    EpochRecord {
        generation,
        epoch,
        epochs: 3,
        train_loss: 6.0 - 0.5 * epoch as f64 - 0.1 * generation as f64,
        train_error: 80.0,
        test_error: Some(75.0 - epoch as f64),
        test_nll: Some(ppl.ln()),
        validation_error: Some(76.0 - epoch as f64),
        validation_perplexity: Some(ppl + 5.0),
        test_perplexity: Some(ppl),
        train_perplexity: Some(ppl - 20.0),
        lr: 1.0,
        samples_per_sec: 5000.0,
        seconds: 4.0 * epoch as f64,
        eta_seconds: 40.0 - 4.0 * (3 * generation + epoch) as f64,
        gradient: None,
        time: None,
        stage: None,
    }
}

fn lm_generation(generation: usize, test: f64) -> GenerationResult {
    let label = generation_label(generation);
    GenerationResult {
        generation,
        paper: lm().paper(&label),
        agreement: None,
        label,
        model: "LSTM".into(),
        control: if generation == 0 {
            "labels".into()
        } else {
            "BAN+L".into()
        },
        parameters: 12_345,
        train_seconds: 12.0 + generation as f64,
        best_epoch: Some(3),
        metrics: Scores::from([
            (Metric::ValidationPerplexity, test + 5.0),
            (Metric::TestPerplexity, test),
            (Metric::TestError, 70.0 - generation as f64),
        ]),
    }
}

fn lm_results(state: RunState, generations: Vec<GenerationResult>) -> Results {
    let ensembles = if generations.len() >= 2 {
        vec![EnsembleResult {
            name: "Teacher+BAN-1".into(),
            members: vec![0, 1],
            average: Averaging::Probabilities,
            metrics: Scores::from([(Metric::TestPerplexity, 95.5)]),
            paper: Scores::new(),
        }]
    } else {
        Vec::new()
    };
    Results {
        task: Task::Language,
        name: "tiny-lm".into(),
        dataset: "data/ptb".into(),
        test_samples: 4,
        vocabulary: Some(10_000),
        device: "flex".into(),
        state,
        generations,
        ensembles,
    }
}

/// A language run watched from another session: the teacher and BAN-1 finished, BAN-2 one
/// epoch in; its process lives and its directory holds no events.jsonl.
fn watched() -> App {
    let mut app = app();
    let snapshot = Snapshot {
        experiment: lm(),
        epochs: (0..2)
            .flat_map(|k| (1..=3).map(move |e| lm_record(k, e)))
            .chain([lm_record(2, 1)])
            .collect(),
        results: Some(lm_results(
            RunState::Running,
            vec![lm_generation(0, 100.0), lm_generation(1, 97.25)],
        )),
    };
    app.update(Msg::Opened {
        dir: PathBuf::from("runs/tiny-lm-20260101-120000"),
        snapshot: snapshot.clone(),
    });
    app.update(Msg::Polled {
        snapshot,
        events: Vec::new(),
        progress: None,
        owner: alive(),
        gpu: None,
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
                .read_outputs(Task::Language, generation, tokens)
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
        Outcome::Ready(e) => {
            // Only the test perplexity is defined for a language ensemble.
            assert_eq!(
                e.metrics.keys().copied().collect::<Vec<_>>(),
                vec![Metric::TestPerplexity]
            );
            e.metrics[&Metric::TestPerplexity]
        }
        other => panic!("no perplexity: {other:?}"),
    }
}

#[test]
fn toggling_a_member_recomputes_the_ensemble_perplexity_from_target_probabilities() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tiny-lm");
    let dir = RunDir::create(&root, &lm()).unwrap();
    let results = lm_results(
        RunState::Finished,
        vec![lm_generation(0, 4.0), lm_generation(1, 4.0)],
    );
    dir.write_results(&results, "").unwrap();
    // Four test tokens; the teacher and BAN-1 are confident on different halves.
    dir.write_outputs(Task::Language, 0, &[0.5, 0.5, 0.125, 0.125])
        .unwrap();
    dir.write_outputs(Task::Language, 1, &[0.125, 0.125, 0.5, 0.5])
        .unwrap();

    let mut app = app();
    let msg = banbench::tui::open(&root).unwrap();
    let Msg::Opened { snapshot, .. } = &msg else {
        panic!("{msg:?}")
    };
    assert_eq!(snapshot.experiment, lm());
    assert_eq!(snapshot.results.as_ref(), Some(&results));
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

const FACTS: banbench::tui::screens::setup::CorpusFacts =
    banbench::tui::screens::setup::CorpusFacts {
        vocabulary: 50,
        characters: 20,
        train_tokens: 1_000,
    };

/// The Setup screen with the tiny language preset and what its corpus read gave.
fn language_setup(
    corpus: Result<banbench::tui::screens::setup::CorpusFacts, String>,
) -> banbench::tui::screens::setup::Setup {
    banbench::tui::screens::setup::Setup::new(
        vec![banbench::tui::screens::setup::PresetEntry {
            path: PathBuf::from("presets/lm/tiny-lm.toml"),
            spec: Ok(lm()),
            corpus: Some(corpus),
            table: false,
        }],
        banbench::device::DeviceChoice::Flex,
    )
}

/// A language preset on the Setup screen: its corpus and model as the preset says, parameters
/// from the corpus read when the preset was listed, and Enter starts it with the edited epochs.
#[test]
fn a_language_preset_starts_from_setup() {
    use banbench::tui::screens::setup::Field;

    let mut app = app();
    app.setup = language_setup(Ok(FACTS));
    let params = banbench::arch::language::parameter_count(&lm_spec().model, 50, 20);
    assert!(
        app.setup
            .note(Field::TeacherSize)
            .contains(&banbench::tui::screens::setup::thousands(params)),
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

/// A language run started from Setup sends the same events as a vision run; each read of its
/// run directory brings its records, the events appended since, its progress and its owner.
/// The Run screen shows validation and test perplexity curves.
#[test]
fn a_language_run_started_here_follows_events_and_its_run_directory() {
    let mut app = app();
    let mut run = launch_language(&mut app);
    let view = app.run.as_ref().unwrap();
    assert!(view.task() == Task::Language && view.is_live_running());
    let record = lm_record(0, 1);
    run.emit(Event::Epoch(record.clone()));
    run.emit(lm_progress(2, 5));
    run.poll(&mut app);
    // A read that brings nothing new logs nothing twice.
    run.poll(&mut app);
    let view = app.run.as_ref().unwrap();
    // The epoch is logged once, with perplexities (not as a vision error line).
    let epochs: Vec<&String> = view.log.iter().filter(|l| l.contains("loss")).collect();
    assert_eq!(epochs.len(), 1, "{:?}", view.log);
    assert!(
        epochs[0].contains("val ppl") && !epochs[0].contains("test err"),
        "{:?}",
        view.log
    );
    assert_eq!(view.current.as_ref().unwrap().parameters, 1_234);
    assert_eq!(view.samples_per_sec(), Some(4321.0));
    assert_eq!(view.device, "flex");
    let screen = render(&app, 100, 30);
    assert!(
        screen.contains("Validation perplexity")
            && screen.contains("Test perplexity")
            && screen.contains("tok/s"),
        "{screen}"
    );
    assert_snapshot!(screen);

    // A failure heard as an event is not undone by the next read of the files.
    run.emit(Event::Failed {
        message: "out of memory".into(),
    });
    run.exit(&mut app);
    assert_eq!(app.run.as_ref().unwrap().state, RunState::Failed);
    let mut later = run.snapshot.clone();
    later.results = Some(lm_results(RunState::Running, vec![lm_generation(0, 99.0)]));
    app.update(Msg::Polled {
        snapshot: later,
        events: Vec::new(),
        progress: run.progress.clone(),
        owner: Owner::None,
        gpu: None,
    });
    let view = app.run.as_ref().unwrap();
    assert_eq!(view.state, RunState::Failed);
    assert_eq!(view.state_text(), "failed");
    assert_eq!(view.error.as_deref(), Some("out of memory"));
    assert!(view.log.last().unwrap().contains("out of memory"));
    assert!(!view.is_live_running());

    // A run stopped from here ends with its Ended event, as a vision run: nothing is shown as
    // training any more.
    let mut app = tui_common::app();
    let mut run = launch_language(&mut app);
    app.update(key(KeyCode::Char('c')));
    assert_eq!(app.update(key(KeyCode::Char('y'))), vec![Effect::Stop]);
    assert_eq!(app.run.as_ref().unwrap().state_text(), "stopping");
    run.emit(Event::Epoch(lm_record(0, 1)));
    run.emit(Event::GenerationDone {
        generation: lm_generation(0, 99.0),
        ensembles: Vec::new(),
    });
    run.emit(Event::log("stopped during BAN-1; what it trained is saved"));
    run.emit(Event::Ended(lm_results(
        RunState::Stopped,
        vec![lm_generation(0, 99.0)],
    )));
    run.exit(&mut app);
    let view = app.run.as_ref().unwrap();
    assert_eq!(view.state, RunState::Stopped);
    assert_eq!(view.state_text(), "stopped");
    assert!(view.current.is_none() && view.progress.is_none() && view.eta.is_none());
    assert!(
        view.log.last().unwrap().contains("stopped"),
        "{:?}",
        view.log
    );
    assert_eq!(view.generations.len(), 1);
    assert_eq!(view.test_samples, Some(4));

    // A watched run that failed and was resumed elsewhere shows it running again.
    let mut app = tui_common::app();
    let mut run = FakeRun::new(
        "runs/tiny-lm",
        lm(),
        lm_results(RunState::Running, Vec::new()),
    );
    run.snapshot.results = Some(lm_results(RunState::Failed, vec![lm_generation(0, 99.0)]));
    run.open(&mut app);
    assert_eq!(app.run.as_ref().unwrap().state, RunState::Failed);
    // events.jsonl from its start: the first attempt's events, its failure, then the resumed
    // attempt's.
    for event in [
        lm_started(),
        Event::GenerationDone {
            generation: lm_generation(0, 99.0),
            ensembles: Vec::new(),
        },
        Event::Failed {
            message: "out of memory".into(),
        },
    ] {
        run.emit(event);
    }
    run.owner = alive();
    run.snapshot.results = Some(lm_results(RunState::Running, vec![lm_generation(0, 99.0)]));
    run.emit(lm_started_resuming(vec![0]));
    run.poll(&mut app);
    let view = app.run.as_ref().unwrap();
    assert_eq!(view.state, RunState::Running);
    assert!(view.is_live_running() && view.error.is_none());
    assert!(
        view.log
            .last()
            .unwrap()
            .contains("resuming: Teacher already done"),
        "{:?}",
        view.log
    );
}

/// A language run's Ensembles lab follows the run: once a generation is done and results.json
/// says how many test tokens there are, its target probabilities are asked for.
#[test]
fn a_language_generation_finished_while_the_lab_is_open_is_read_at_once() {
    let mut app = app();
    let mut run = launch_language(&mut app);
    // Nothing to read before a generation is done.
    assert_eq!(app.update(key(KeyCode::Char('4'))), vec![]);
    run.emit(Event::Epoch(lm_record(0, 1)));
    run.emit(Event::GenerationDone {
        generation: lm_generation(0, 99.0),
        ensembles: Vec::new(),
    });
    run.emit(Event::GenerationStarted {
        generation: 1,
        model: "lstm-1x12-tied".into(),
        control: "BAN+L".into(),
        parameters: 1_234,
    });
    assert_eq!(
        run.poll(&mut app),
        vec![Effect::ReadTargets {
            generation: 0,
            tokens: 4
        }]
    );
    assert_eq!(app.lab.generations.len(), 1);
    assert_eq!(
        app.run
            .as_ref()
            .unwrap()
            .current
            .as_ref()
            .unwrap()
            .generation,
        1
    );
    app.update(Msg::Targets {
        generation: 0,
        probabilities: Ok(vec![0.5, 0.5, 0.125, 0.125]),
    });
    app.update(key(KeyCode::Char(' ')));
    assert!((perplexity(&app.lab.outcome) - 4.0).abs() < 1e-9);
    // Asked once.
    assert_eq!(run.poll(&mut app), vec![]);
}

fn lm_started() -> Event {
    lm_started_resuming(Vec::new())
}

fn lm_started_resuming(resumed: Vec<usize>) -> Event {
    Event::Started {
        task: Task::Language,
        name: "tiny-lm".into(),
        dataset: "data/ptb".into(),
        device: "flex".into(),
        generations: 3,
        epochs: 3,
        batches_per_epoch: 10,
        resumed,
    }
}

fn lm_progress(epoch: usize, batch: usize) -> Event {
    Event::Progress(Progress {
        generation: 0,
        epoch,
        batch,
        batches: 10,
        samples_per_sec: 4321.0,
        paused: false,
    })
}

/// A language run launched from Setup, its teacher half-way through its first epoch, as the
/// first read of its run directory finds it.
fn launch_language(app: &mut App) -> FakeRun {
    let mut run = FakeRun::launch(
        app,
        "runs/tiny-lm-20260101-120000",
        lm(),
        lm_results(RunState::Running, Vec::new()),
    );
    run.emit(lm_started());
    run.emit(Event::GenerationStarted {
        generation: 0,
        model: "lstm-1x12-tied".into(),
        control: "labels".into(),
        parameters: 1_234,
    });
    run.emit(lm_progress(1, 5));
    run.poll(app);
    run
}

//! Snapshots of every screen over ratatui's TestBackend at 80x24 (and a few other sizes), with
//! a run in several states; and no panic at any size down to 1x1.

mod tui_common;

use std::path::PathBuf;

use banbench::events::Event;
use banbench::run_dir::records::RunState;
use banbench::tui::app::{App, Msg};
use banbench::tui::run_view::Snapshot;
use banbench::tui::screens::runs::RunEntry;
use crossterm::event::KeyCode;
use insta::assert_snapshot;
use tui_common::*;

fn at(app: &App) -> String {
    render(app, 80, 24)
}

#[test]
fn setup_with_a_preset() {
    assert_snapshot!(at(&app()));
}

#[test]
fn setup_explains_an_invalid_combination_in_place() {
    let mut app = app();
    // CIFAR-10 needs a path the preset does not give.
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Right));
    app.update(key(KeyCode::Right));
    assert_snapshot!(at(&app));
}

#[test]
fn setup_cross_architecture_with_hinton_kd() {
    let mut app = app();
    for code in [KeyCode::Down; 5] {
        app.update(key(code));
    }
    app.update(key(KeyCode::Right)); // student: mlp
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Right)); // a wider MLP
    app.update(key(KeyCode::Down));
    for _ in 0..4 {
        app.update(key(KeyCode::Right)); // BAN -> BAN+L -> CWTM -> DKPP -> KD
    }
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Right)); // temperature 1.5
    assert_snapshot!(at(&app));
}

#[test]
fn setup_unavailable_device() {
    let mut app = app();
    for _ in 0..14 {
        app.update(key(KeyCode::Down));
    }
    app.update(key(KeyCode::Right));
    assert_snapshot!(at(&app));
}

#[test]
fn run_training_the_first_student() {
    let mut app = app();
    live(&mut app, 4, 2);
    assert_snapshot!(at(&app));
}

/// On a GPU the Run screen adds its utilisation and memory under the time split.
#[test]
fn run_on_a_gpu_shows_its_utilisation_and_memory() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.run.as_mut().unwrap().gpu = Some(banbench::gpu::GpuReading {
        index: 0,
        busy_percent: 87,
        used_bytes: 21_400_000_000,
        total_bytes: 143_800_000_000,
    });
    assert_snapshot!(at(&app));
}

#[test]
fn run_paused_with_the_eta_counted_down() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(Msg::Tick(std::time::Duration::from_secs(10)));
    app.update(key(KeyCode::Char('p')));
    app.update(Msg::Tick(std::time::Duration::from_secs(10)));
    assert_snapshot!(at(&app));
}

#[test]
fn run_asks_before_cancelling() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('c')));
    assert_snapshot!(at(&app));
}

#[test]
fn run_asks_before_quitting() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('q')));
    assert_snapshot!(at(&app));
}

#[test]
fn run_finished() {
    let mut app = app();
    live(&mut app, 9, 0);
    assert_snapshot!(at(&app));
}

#[test]
fn run_failed() {
    let mut app = app();
    let mut run = live(&mut app, 1, 1);
    run.emit(Event::Failed {
        message: "data.train_samples: 200 is more than the 100 images of class 3".into(),
    });
    run.exit(&mut app);
    assert_snapshot!(at(&app));
}

#[test]
fn run_watched_from_another_session() {
    let mut app = app();
    let snapshot = Snapshot {
        experiment: tiny(),
        epochs: (1..=3)
            .map(|e| record(0, e, 2.0 - 0.3 * e as f64, 30.0 - 5.0 * e as f64))
            .chain([record(1, 1, 1.5, 22.0)])
            .collect(),
        results: Some(results(RunState::Running, vec![result(0, 10.0)])),
    };
    app.update(Msg::Opened {
        dir: PathBuf::from("runs/tiny-20260101-120000"),
        snapshot: snapshot.clone(),
    });
    // Its process lives (elsewhere) and its directory holds no events.jsonl: the view is the
    // records', and the run can be paused and stopped from here.
    app.update(Msg::Polled {
        snapshot,
        events: Vec::new(),
        progress: None,
        owner: alive(),
        gpu: None,
    });
    assert!(app.run.as_ref().unwrap().is_live_running());
    assert_snapshot!(at(&app));
}

#[test]
fn generations_while_training() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(at(&app));
}

#[test]
fn generations_finished_wide() {
    let mut app = app();
    live(&mut app, 9, 0);
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(render(&app, 120, 24));
}

#[test]
fn generations_without_a_run() {
    let mut app = app();
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(at(&app));
}

#[test]
fn ensembles_with_a_pinned_comparison() {
    let mut app = app();
    live(&mut app, 9, 0);
    let effects = app.update(key(KeyCode::Char('4')));
    serve_files(&mut app, effects);
    app.update(key(KeyCode::Char(' '))); // Teacher
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' '))); // + BAN-1
    app.update(key(KeyCode::Char('m')));
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' '))); // + BAN-2
    app.update(key(KeyCode::Char('a'))); // logit averaging
    assert_snapshot!(at(&app));
}

#[test]
fn ensembles_empty() {
    let mut app = app();
    live(&mut app, 9, 0);
    let effects = app.update(key(KeyCode::Char('4')));
    serve_files(&mut app, effects);
    assert_snapshot!(at(&app));
}

#[test]
fn runs_list() {
    let mut app = app();
    app.update(key(KeyCode::Char('5')));
    app.update(Msg::Runs(vec![
        RunEntry {
            dir: PathBuf::from("runs/tiny-20260102-090000"),
            name: "tiny".into(),
            state: None,
            finished: 0,
            generations: 3,
            owner_gone: false,
        },
        RunEntry {
            dir: PathBuf::from("runs/quick-20260101-120000"),
            name: "quick".into(),
            state: Some(RunState::Finished),
            finished: 3,
            generations: 3,
            owner_gone: false,
        },
        // Its process was killed while it trained.
        RunEntry {
            dir: PathBuf::from("runs/quick-20251231-230000"),
            name: "quick".into(),
            state: Some(RunState::Running),
            finished: 1,
            generations: 3,
            owner_gone: true,
        },
    ]));
    app.update(key(KeyCode::Down));
    assert_snapshot!(at(&app));
}

#[test]
fn help_overlay() {
    let mut app = app();
    app.update(key(KeyCode::Char('?')));
    assert_snapshot!(at(&app));
}

#[test]
fn too_small_asks_for_a_larger_terminal() {
    assert_snapshot!(render(&app(), 50, 10));
}

#[test]
fn no_size_panics() {
    let mut apps = Vec::new();
    for screen in ['1', '2', '3', '4', '5'] {
        let mut app = app();
        live(&mut app, 9, 0);
        let effects = app.update(key(KeyCode::Char(screen)));
        serve_files(&mut app, effects);
        app.update(key(KeyCode::Char(' ')));
        app.update(key(KeyCode::Char('m')));
        apps.push(app.clone());
        app.update(key(KeyCode::Char('?')));
        apps.push(app);
    }
    let mut confirming = app();
    live(&mut confirming, 4, 1);
    confirming.update(key(KeyCode::Char('q')));
    apps.push(confirming);
    for app in &apps {
        for width in 1..=130 {
            for height in 1..=40 {
                render(app, width, height);
            }
        }
    }
}

#[test]
fn run_in_the_first_epoch() {
    let mut app = app();
    live(&mut app, 0, 3);
    assert_snapshot!(at(&app));
}

#[test]
fn run_whose_owner_is_gone() {
    let mut app = app();
    let mut run = live(&mut app, 4, 2);
    run.owner = banbench::tui::run_view::Owner::Stale {
        why: "stale: owner gone 3m ago".into(),
    };
    run.poll(&mut app);
    assert_snapshot!(at(&app));
}

use banbench::experiment::Experiment;
use banbench::run_dir::records::EnsembleResult;
use banbench::tui::app::Effect;
use banbench::tui::run_view::Owner;

/// A run like [`live`]'s of `experiment`, launched here, that writes `events`.
fn live_with(app: &mut App, experiment: Experiment, events: Vec<Event>) -> FakeRun {
    let mut run = FakeRun::launch(
        app,
        RUN_DIR,
        experiment,
        results(RunState::Running, Vec::new()),
    );
    let ended = matches!(events.last(), Some(Event::Ended(_)));
    for event in events {
        run.send(app, event);
    }
    if ended {
        run.exit(app);
    }
    run
}

#[test]
fn header_cuts_a_long_run_name_and_state_short_of_the_tabs() {
    let mut app = app();
    let mut spec = tiny_spec();
    spec.name = "cifar100-densenet-teacher-with-five-born-again-generations".into();
    let mut run = live_with(
        &mut app,
        Experiment::Vision(Box::new(spec)),
        live_events(4, 2),
    );
    run.owner = Owner::Stale {
        why: "stale: owner gone 3m ago".into(),
    };
    run.poll(&mut app);
    app.update(Msg::OpenFailed(
        "runs/cifar100-densenet-teacher-with-five-born-again-generations-20260101-120000/control: \
         Permission denied (os error 13)"
            .into(),
    ));
    assert_snapshot!(at(&app));
}

#[test]
fn ensembles_show_a_failed_read_below_the_table() {
    let mut app = app();
    live(&mut app, 9, 0);
    let mut pending = app.update(key(KeyCode::Char('4')));
    while let Some(effect) = pending.pop() {
        let msg = match effect {
            Effect::ReadLabels => Msg::Labels(Ok(labels())),
            Effect::ReadLogits { generation: 1, .. } => Msg::Logits {
                generation: 1,
                logits: Err(format!(
                    "{RUN_DIR}/logits/gen-1.f32: expected 32 bytes (8 values of f32), found 12"
                )),
            },
            Effect::ReadLogits { generation, .. } => Msg::Logits {
                generation,
                logits: Ok(logits(generation)),
            },
            _ => continue,
        };
        pending.extend(app.update(msg));
    }
    app.update(key(KeyCode::Char(' '))); // Teacher
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' '))); // + BAN-1, whose logits are damaged
    assert_snapshot!(at(&app));
}

#[test]
fn generations_show_long_ensemble_names_whole() {
    let mut app = app();
    // Ens*2 renamed as presets name theirs, and one name too long even for the widened column.
    let long = |ensembles: Vec<EnsembleResult>| -> Vec<EnsembleResult> {
        ensembles
            .into_iter()
            .flat_map(|e| {
                let mut all = e.clone();
                all.name = "Teacher+BAN-1+BAN-2".into();
                all.members = vec![0, 1, 2];
                let mut logits = e;
                logits.name = "BAN-1+BAN-2 by logit averaging".into();
                logits.average = banbench::spec::Averaging::Logits;
                [all, logits]
            })
            .collect()
    };
    let events = live_events(9, 0)
        .into_iter()
        .map(|event| match event {
            Event::GenerationDone {
                generation,
                ensembles,
            } => Event::GenerationDone {
                generation,
                ensembles: long(ensembles),
            },
            Event::Ended(mut r) => {
                r.ensembles = long(r.ensembles);
                Event::Ended(r)
            }
            other => other,
        })
        .collect();
    live_with(&mut app, tiny(), events);
    app.update(key(KeyCode::Char('3')));
    assert_snapshot!(at(&app));
}

use banbench::run_dir::records::{Metric, Task};
use banbench::stats::{self, Paired, Summary};
use banbench::study::StudyPlan;
use banbench::study::results::{ChainStudy, StudyResults, StudyRow, Versus};
use banbench::tui::screens::study::{SeedProgress, SeedState, StudyEntry};

const STUDY_DIR: &str = "runs/tiny-study-20260101-120000";

/// Seed 2 trains BAN-2: it has no BAN-2 nor ensemble yet.
fn study_seeds() -> Vec<SeedProgress> {
    let training = SeedState::Training {
        place: String::new(),
        done: 2,
        generations: 3,
    };
    [
        (1, SeedState::Finished),
        (2, training),
        (3, SeedState::Finished),
    ]
    .into_iter()
    .map(|(seed, state)| SeedProgress { seed, state })
    .collect()
}

/// A study of three seeds against the teacher, as `study::collect` computes it: BAN-1 is better
/// than the teacher on every seed by about the same (significant after Holm), BAN-2 and the
/// ensemble lack seed 2.
fn study_results() -> StudyResults {
    let teacher = [Some(10.5), Some(11.0), Some(10.8)];
    let rows = [
        ("Teacher", teacher),
        ("BAN-1", [Some(9.6), Some(10.2), Some(9.8)]),
        ("BAN-2", [Some(9.8), None, Some(10.7)]),
        ("Ens*2", [Some(9.4), None, Some(9.7)]),
    ];
    let mut rows: Vec<StudyRow> = rows
        .into_iter()
        .map(|(label, values)| {
            let present: Vec<f64> = values.iter().flatten().copied().collect();
            let (a, b): (Vec<f64>, Vec<f64>) = values
                .iter()
                .zip(teacher)
                .filter_map(|(a, b)| Some(((*a)?, b?)))
                .unzip();
            StudyRow {
                label: label.into(),
                values: values.to_vec(),
                summary: Some(Summary::of(&present)),
                versus: (label != "Teacher").then(|| Versus {
                    paired: Paired::of(&a, &b).unwrap(),
                    holm_p: None,
                    // Seeds without the row have no predictions to test.
                    mcnemar: values.iter().map(|v| v.map(|_| mcnemar(30, 12))).collect(),
                }),
            }
        })
        .collect();
    let p: Vec<f64> = rows[1..]
        .iter()
        .map(|r| r.versus.as_ref().unwrap().paired.t_p.unwrap())
        .collect();
    for (row, holm) in rows[1..].iter_mut().zip(stats::holm(&p)) {
        row.versus.as_mut().unwrap().holm_p = Some(holm);
    }
    assert!(rows[1].versus.as_ref().unwrap().significant());
    assert!(!rows[2].versus.as_ref().unwrap().significant());
    StudyResults {
        name: "tiny-study".into(),
        task: Task::Vision,
        metric: Metric::Top1Error,
        reference: "Teacher".into(),
        seeds: vec![1, 2, 3],
        chains: vec![ChainStudy {
            place: String::new(),
            rows,
        }],
        comparisons: 3,
    }
}

/// McNemar's test of a row right on `a_only` test samples where the teacher is wrong, and
/// wrong on `b_only` where it is right.
fn mcnemar(a_only: usize, b_only: usize) -> stats::McNemar {
    let a: Vec<bool> = (0..a_only + b_only).map(|i| i < a_only).collect();
    let b: Vec<bool> = a.iter().map(|right| !right).collect();
    stats::mcnemar(&a, &b).unwrap()
}

/// The app on the Study screen of [`study_results`], as the runtime feeds it.
fn study_app() -> App {
    let mut app = app();
    let plan = StudyPlan {
        name: "tiny-study".into(),
        task: Task::Vision,
        seeds: vec![1, 2, 3],
        places: vec![String::new()],
    };
    let effects = app.update(Msg::StudyOpened {
        dir: PathBuf::from(STUDY_DIR),
        plan,
        seeds: study_seeds(),
    });
    assert_eq!(
        effects,
        vec![Effect::CollectStudy {
            request: 1,
            reference: "Teacher".into(),
            metric: Metric::Top1Error,
        }]
    );
    app.update(Msg::StudyCollected {
        dir: PathBuf::from(STUDY_DIR),
        request: 1,
        results: Ok(study_results()),
    });
    app
}

#[test]
fn study_with_a_significant_row_and_a_missing_seed() {
    let screen = at(&study_app());
    assert!(
        screen.contains("p (t)") && screen.contains("Holm"),
        "{screen}"
    );
    assert_snapshot!(screen);
}

/// `n` shows McNemar's p against the reference in the seeds' columns.
#[test]
fn study_mcnemar_by_seed() {
    let mut app = study_app();
    assert_eq!(app.update(key(KeyCode::Char('n'))), vec![]);
    let screen = render(&app, 120, 24);
    assert!(
        screen.contains("McNemar p by seed · Δ against Teacher"),
        "{screen}"
    );
    assert!(screen.contains("0.008"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn study_wide_puts_the_strip_plot_beside_the_table() {
    assert_snapshot!(render(&study_app(), 120, 24));
}

/// A new reference is asked for at once; until its numbers come the old ones stay, marked.
#[test]
fn study_computing_another_reference() {
    let mut app = study_app();
    let effects = app.update(key(KeyCode::Char('r')));
    assert_eq!(
        effects,
        vec![Effect::CollectStudy {
            request: 2,
            reference: "BAN-1".into(),
            metric: Metric::Top1Error,
        }]
    );
    assert_snapshot!(render(&app, 120, 24));
}

#[test]
fn runs_list_shows_studies_first() {
    let mut app = app();
    app.update(key(KeyCode::Char('5')));
    app.update(Msg::Runs(vec![RunEntry {
        dir: PathBuf::from("runs/quick-20260101-120000"),
        name: "quick".into(),
        state: Some(RunState::Finished),
        finished: 3,
        generations: 3,
        owner_gone: false,
    }]));
    app.update(Msg::Studies(vec![StudyEntry {
        dir: PathBuf::from(STUDY_DIR),
        name: "tiny-study".into(),
        seeds: study_seeds(),
    }]));
    assert_snapshot!(at(&app));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Effect::OpenStudy(PathBuf::from(STUDY_DIR))]
    );
}

#[test]
fn no_size_panics_on_the_study_screen() {
    let mut apps = vec![study_app()];
    let mut waiting = app();
    waiting.update(Msg::StudyOpened {
        dir: PathBuf::from(STUDY_DIR),
        plan: StudyPlan {
            name: "tiny-study".into(),
            task: Task::Vision,
            seeds: vec![1, 2, 3],
            places: vec![String::new()],
        },
        seeds: study_seeds(),
    });
    apps.push(waiting);
    let mut help = study_app();
    help.update(key(KeyCode::Char('?')));
    apps.push(help);
    for app in &apps {
        for width in 1..=130 {
            for height in 1..=40 {
                render(app, width, height);
            }
        }
    }
}

/// A table's study shows one chain at a time, named with its place; Up/Down choose it.
#[test]
fn a_table_study_shows_one_chain_at_a_time() {
    let mut app = study_app();
    let mut results = study_results();
    let mut second = results.chains[0].clone();
    second.rows.truncate(2);
    results.chains[0].place = "cifar10/densenet".into();
    second.place = "cifar10/resnet".into();
    results.chains.push(second);
    let study = app.study.as_mut().unwrap();
    study.plan.places = vec!["cifar10/densenet".into(), "cifar10/resnet".into()];
    app.update(Msg::StudyCollected {
        dir: PathBuf::from(STUDY_DIR),
        request: 1,
        results: Ok(results.clone()),
    });
    // Request 1 was answered already: the same answer again changes nothing.
    assert!(at(&app).contains(" Top-1 error % by seed · Δ against Teacher "));
    app.update(key(KeyCode::Char('m')));
    app.update(key(KeyCode::Char('M')));
    app.update(Msg::StudyCollected {
        dir: PathBuf::from(STUDY_DIR),
        request: 3,
        results: Ok(results),
    });
    let first = at(&app);
    assert!(
        first.contains(" cifar10/densenet (1/2) · Top-1 error %"),
        "{first}"
    );
    assert!(first.contains("Up/Down chain"), "{first}");
    app.update(key(KeyCode::Down));
    let second = at(&app);
    assert!(second.contains(" cifar10/resnet (2/2) · "), "{second}");
    assert!(!second.contains("│BAN-2"), "{second}");
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Effect::Open(PathBuf::from(format!(
            "{STUDY_DIR}/seed-2/cifar10/resnet"
        )))]
    );
}

#[test]
fn the_distillation_gradient_shows_on_the_run_and_generations_screens() {
    let split = banbench::run_dir::records::GradientSplit {
        samples: 400,
        batches: 8,
        true_class: 0.02,
        dark: 0.05,
        dark_share: Some(0.82),
        argmax_class: 0.02,
        argmax_dark: 0.05,
        argmax_dark_share: Some(0.8),
        zero_gradient: 0.0,
        teacher_wrong: 0.12,
        cosine_with_label: Some(0.36),
        ess_fraction: Some(0.95),
    };
    // BAN-1 done and BAN-2 in its second epoch, each student epoch with its gradient split.
    let events: Vec<Event> = live_events(7, 2)
        .into_iter()
        .map(|event| match event {
            Event::Epoch(mut r) if r.generation > 0 => {
                r.gradient = Some(split);
                Event::Epoch(r)
            }
            other => other,
        })
        .collect();
    let mut app = app();
    live_with(&mut app, tiny(), events);
    app.update(key(KeyCode::Char('2')));
    let run = render(&app, 160, 24);
    assert!(run.contains("dark 82%, cos(label) 0.36"), "{run}");
    app.update(key(KeyCode::Char('3')));
    let generations = render(&app, 160, 24);
    assert!(
        generations.contains(
            "Distillation gradient, last epoch: BAN-1 dark 82%, cos(label) 0.36, teacher wrong 12%."
        ),
        "{generations}"
    );
}

use banbench::tui::screens::units::{UnitPlan, UnitProgress, UnitState, UnitsEntry};

const UNITS_DIR: &str = "runs/tiny-table-units-20260101-120000";

/// The tiny table's units halfway: CNN-4's teacher done and its BAN chain training on gpu3,
/// its CWTM chain failed in its first epoch, CNN-6's teacher training on gpu4 and its two
/// chains waiting for it (the BAN chain's directory is its teacher's, the CWTM one's not made).
fn units_halfway() -> Vec<UnitProgress> {
    let plan = |first, last| {
        Some(UnitPlan {
            first,
            last,
            epochs: 3,
        })
    };
    let unit = |id: &str, state: UnitState, plan: Option<UnitPlan>| UnitProgress {
        id: id.into(),
        dir: PathBuf::from(id.trim_end_matches(":teacher")),
        teacher_only: id.ends_with(":teacher"),
        state,
        plan,
        at: None,
        fraction: 0.0,
        eta: None,
        eta_of: None,
        log: None,
    };
    let running = |host: &str, pid| UnitState::Running {
        host: host.into(),
        pid,
        paused: false,
    };
    let waiting = || UnitState::Waiting {
        on: vec!["CNN-6/main:teacher".into()],
    };
    let mut units = vec![
        unit("CNN-4/main:teacher", UnitState::Done, plan(0, 0)),
        unit("CNN-4/main", running("gpu3", 4242), plan(1, 1)),
        unit("CNN-4/cwtm", UnitState::Failed, plan(1, 1)),
        unit("CNN-6/main:teacher", running("gpu4", 977), plan(0, 0)),
        unit("CNN-6/main", waiting(), plan(1, 1)),
        unit("CNN-6/cwtm", waiting(), None),
    ];
    units[0].fraction = 1.0;
    units[1].at = Some((1, 2));
    units[1].fraction = 0.45;
    units[1].eta = Some(12.0);
    units[1].eta_of = Some((1, 1));
    units[2].at = Some((1, 1));
    units[2].fraction = 0.1;
    units[2].log = Some(PathBuf::from("logs/CNN-4_cwtm.log"));
    units[3].at = Some((0, 3));
    units[3].fraction = 0.8;
    units[3].eta = Some(65.0);
    units[3].eta_of = Some((0, 2));
    units
}

/// results.md once CNN-4's teacher and BAN chain have written theirs.
const UNITS_TABLE: &str = "# A tiny table: two teachers, BAN and CWTM students of each

Profile `full`. Tiny. Each cell: measured (paper, measured - paper); errors in %, perplexities per token.

| Network | Teacher | BAN | CWTM |
|---|---|---|---|
| CNN-4 | 60.50 | 68.50 | - |
| CNN-6 | - | - | - |
";

/// The app on the Units screen of [`units_halfway`], as the runtime feeds it.
fn units_app() -> App {
    let mut app = app();
    let effects = app.update(Msg::UnitsOpened {
        dir: PathBuf::from(UNITS_DIR),
        units: units_halfway(),
        table: Some(UNITS_TABLE.into()),
        study: false,
    });
    assert_eq!(effects, vec![]);
    app
}

#[test]
fn units_running_on_two_hosts_with_one_failed_and_two_waiting() {
    let mut app = units_app();
    app.update(key(KeyCode::Down));
    let screen = at(&app);
    assert!(screen.contains("6 Units"), "{screen}");
    assert_snapshot!(screen);
}

#[test]
fn units_wide() {
    let mut app = units_app();
    for _ in 0..2 {
        app.update(key(KeyCode::Down));
    }
    assert_snapshot!(render(&app, 120, 24));
}

#[test]
fn units_before_any_chain_finished() {
    let mut app = app();
    let mut units = units_halfway();
    units[0].state = UnitState::Running {
        host: "gpu3".into(),
        pid: 4241,
        paused: true,
    };
    units[0].at = Some((0, 2));
    units[0].fraction = 0.5;
    app.update(Msg::UnitsOpened {
        dir: PathBuf::from(UNITS_DIR),
        units,
        table: None,
        study: false,
    });
    let screen = at(&app);
    assert!(
        screen.contains("No chain has finished yet") && screen.contains("paused"),
        "{screen}"
    );
}

/// The runtime's next read replaces the units; the ETA of an epoch record already seen keeps
/// counting down, and Enter follows the unit under the cursor on the Run screen.
#[test]
fn units_are_followed_and_enter_opens_a_unit() {
    let mut app = units_app();
    app.update(Msg::Tick(std::time::Duration::from_secs(2)));
    let mut units = units_halfway();
    units[1].fraction = 0.5;
    app.update(Msg::UnitsPolled {
        dir: PathBuf::from(UNITS_DIR),
        units,
        table: Some(UNITS_TABLE.into()),
        study: false,
    });
    let view = app.units.as_ref().unwrap();
    assert_eq!(
        (view.units[1].fraction, view.units[1].eta),
        (0.5, Some(10.0))
    );
    app.update(key(KeyCode::Down));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Effect::Open(PathBuf::from(format!(
            "{UNITS_DIR}/CNN-4/main"
        )))]
    );
    for _ in 0..4 {
        app.update(key(KeyCode::Down));
    }
    assert!(app.update(key(KeyCode::Enter)).is_empty());
    assert_eq!(
        app.status.as_deref(),
        Some("CNN-6/cwtm has not begun: waiting for CNN-6/main:teacher")
    );
}

/// A study run as units has both tabs: opening its units asks for its study, which opens
/// beside them without leaving the Units screen.
#[test]
fn a_study_run_as_units_opens_both_tabs() {
    let mut app = app();
    let effects = app.update(Msg::UnitsOpened {
        dir: PathBuf::from(UNITS_DIR),
        units: units_halfway(),
        table: None,
        study: true,
    });
    assert_eq!(effects, vec![Effect::OpenStudy(PathBuf::from(UNITS_DIR))]);
    app.update(Msg::StudyOpened {
        dir: PathBuf::from(UNITS_DIR),
        plan: StudyPlan {
            name: "tiny-table".into(),
            task: Task::Vision,
            seeds: vec![1, 2],
            places: vec!["CNN-4/main".into(), "CNN-4/cwtm".into()],
        },
        seeds: study_seeds(),
    });
    assert_eq!(app.screen, banbench::tui::app::Screen::Units);
    let screen = at(&app);
    assert!(
        screen.contains("6 Study") && screen.contains("7 Units"),
        "{screen}"
    );
    app.update(key(KeyCode::Char('6')));
    assert_eq!(app.screen, banbench::tui::app::Screen::Study);
    // Polls do not ask again.
    let effects = app.update(Msg::UnitsPolled {
        dir: PathBuf::from(UNITS_DIR),
        units: units_halfway(),
        table: None,
        study: true,
    });
    assert_eq!(effects, vec![]);
}

#[test]
fn runs_list_shows_units_directories() {
    let mut app = app();
    app.update(key(KeyCode::Char('5')));
    app.update(Msg::Studies(vec![StudyEntry {
        dir: PathBuf::from(STUDY_DIR),
        name: "tiny-study".into(),
        seeds: study_seeds(),
    }]));
    app.update(Msg::UnitDirs(vec![UnitsEntry {
        dir: PathBuf::from(UNITS_DIR),
        units: units_halfway(),
    }]));
    app.update(Msg::Runs(vec![RunEntry {
        dir: PathBuf::from("runs/quick-20260101-120000"),
        name: "quick".into(),
        state: Some(RunState::Finished),
        finished: 3,
        generations: 3,
        owner_gone: false,
    }]));
    app.update(key(KeyCode::Down));
    assert_snapshot!(at(&app));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Effect::OpenUnits(PathBuf::from(UNITS_DIR))]
    );
    app.update(key(KeyCode::Down));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Effect::Open(PathBuf::from("runs/quick-20260101-120000"))]
    );
}

#[test]
fn no_size_panics_on_the_units_screen() {
    let mut apps = vec![units_app()];
    let mut long = units_app();
    let view = long.units.as_mut().unwrap();
    let many: Vec<UnitProgress> = (0..40)
        .flat_map(|seed| {
            units_halfway().into_iter().map(move |mut u| {
                u.id = format!("seed-{seed}/a-rather-long-row-name/{}", u.id);
                u
            })
        })
        .collect();
    view.units = many;
    view.table = Some(UNITS_TABLE.repeat(5));
    view.cursor = 200;
    view.scroll = 30;
    apps.push(long);
    let mut help = units_app();
    help.update(key(KeyCode::Char('?')));
    apps.push(help);
    for app in &apps {
        for width in 1..=130 {
            for height in 1..=40 {
                render(app, width, height);
            }
        }
    }
}

//! Key handling as a state machine: each key's effect and the state it leaves.

mod tui_common;

use std::path::PathBuf;

use banbench::device::DeviceChoice;
use banbench::events::{Event, Progress};
use banbench::experiment::Experiment;
use banbench::run_dir::records::{Metric, RunState};
use banbench::spec::{Averaging, DataSource};
use banbench::tui::app::{App, Effect, Exit, Msg, Overlay, Screen, Signal};
use banbench::tui::run_view::Owner;
use banbench::tui::screens::ensembles::Outcome;
use crossterm::event::KeyCode;
use tui_common::*;

#[test]
fn quit_without_a_run_is_immediate() {
    let mut app = app();
    assert_eq!(app.update(key(KeyCode::Char('q'))), vec![]);
    assert_eq!(app.exit, Exit::Now);
}

#[test]
fn quit_with_a_finished_run_is_immediate() {
    let mut app = app();
    live(&mut app, 9, 0);
    assert_eq!(app.update(key(KeyCode::Char('q'))), vec![]);
    assert_eq!((app.overlay, app.exit), (None, Exit::Now));
}

#[test]
fn quit_while_training_asks_and_leaves_the_run_going_by_default() {
    for leave in [KeyCode::Enter, KeyCode::Char('l'), KeyCode::Char('y')] {
        let mut app = app();
        live(&mut app, 4, 2);
        assert_eq!(app.update(key(KeyCode::Char('q'))), vec![]);
        assert_eq!(app.overlay, Some(Overlay::ConfirmQuit));
        assert_eq!(app.update(key(KeyCode::Char('n'))), vec![]);
        assert_eq!((app.overlay, app.exit), (None, Exit::Stay));
        app.update(key(KeyCode::Char('q')));
        assert_eq!(app.update(key(KeyCode::Esc)), vec![]);
        assert_eq!((app.overlay, app.exit), (None, Exit::Stay));

        app.update(key(KeyCode::Char('q')));
        // Leaving sends the run nothing: it goes on without this window.
        assert_eq!(app.update(key(leave)), vec![], "{leave:?}");
        assert_eq!((app.overlay, app.exit), (None, Exit::Now), "{leave:?}");
        let run = app.run.as_ref().unwrap();
        assert!(!run.stopping && run.is_live_running(), "{leave:?}");
    }
}

#[test]
fn quit_while_training_can_stop_the_run_on_the_way_out() {
    let mut app = app();
    live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('q')));
    assert_eq!(app.update(key(KeyCode::Char('s'))), vec![Effect::Stop]);
    assert_eq!((app.overlay, app.exit), (None, Exit::Now));
    let run = app.run.as_ref().unwrap();
    assert!(run.stopping);
    assert_eq!(run.state_text(), "stopping");
}

#[test]
fn cancel_asks_and_keeps_the_window_open() {
    let mut app = app();
    let mut run = live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('c')));
    assert_eq!(app.overlay, Some(Overlay::ConfirmCancel));
    assert_eq!(app.update(key(KeyCode::Esc)), vec![]);
    assert_eq!(app.overlay, None);
    app.update(key(KeyCode::Char('c')));
    assert_eq!(app.update(key(KeyCode::Char('y'))), vec![Effect::Stop]);
    assert_eq!(app.exit, Exit::Stay);
    assert_eq!(app.run.as_ref().unwrap().state_text(), "stopping");
    // Once stopping, pause means nothing.
    assert_eq!(app.update(key(KeyCode::Char('p'))), vec![]);
    // Still stopping after the next read of the run directory...
    run.poll(&mut app);
    assert_eq!(app.run.as_ref().unwrap().state_text(), "stopping");

    // ... until the run says it stopped, keeping the teacher.
    run.emit(Event::log("stopped during BAN-1; what it trained is saved"));
    run.emit(Event::Ended(results(
        RunState::Stopped,
        vec![result(0, 10.0)],
    )));
    run.poll(&mut app);
    run.exit(&mut app);
    let view = app.run.as_ref().unwrap();
    assert_eq!(view.state, RunState::Stopped);
    assert_eq!(view.state_text(), "stopped");
    assert!(!view.stopping && !view.is_live_running());
    assert!(view.current.is_none() && view.progress.is_none() && view.eta.is_none());
    assert_eq!(view.generations.len(), 1);
    assert!(
        view.log.last().unwrap().contains("stopped"),
        "{:?}",
        view.log
    );
    assert_eq!(app.exit, Exit::Stay);
}

#[test]
fn pause_toggles_and_freezes_the_eta() {
    let mut app = app();
    let mut run = live(&mut app, 4, 2);
    let eta = app.run.as_ref().unwrap().eta.unwrap();
    assert_eq!(
        app.update(key(KeyCode::Char('p'))),
        vec![Effect::Pause(true)]
    );
    assert_eq!(app.run.as_ref().unwrap().state_text(), "paused");
    app.update(Msg::Tick(std::time::Duration::from_secs(5)));
    assert_eq!(app.run.as_ref().unwrap().eta, Some(eta));
    // The run confirms through its progress: still paused, the ETA still frozen.
    run.send(
        &mut app,
        Event::Progress(Progress {
            paused: true,
            ..run.progress.clone().unwrap()
        }),
    );
    app.update(Msg::Tick(std::time::Duration::from_secs(5)));
    let view = app.run.as_ref().unwrap();
    assert!(view.paused());
    assert_eq!(view.state_text(), "paused");
    assert_eq!(view.eta, Some(eta));
    assert_eq!(
        app.update(key(KeyCode::Char('p'))),
        vec![Effect::Pause(false)]
    );
    assert_eq!(app.run.as_ref().unwrap().state_text(), "running");
    app.update(Msg::Tick(std::time::Duration::from_secs(5)));
    assert_eq!(app.run.as_ref().unwrap().eta, Some(eta - 5.0));
}

#[test]
fn pause_and_cancel_need_a_run_in_training() {
    let mut app = app();
    live(&mut app, 9, 0); // finished
    app.update(key(KeyCode::Char('2')));
    assert_eq!(app.update(key(KeyCode::Char('p'))), vec![]);
    assert!(app.status.is_some());
    assert_eq!(app.update(key(KeyCode::Char('c'))), vec![]);
    assert_eq!(app.overlay, None);
    assert!(app.status.is_some());
}

#[test]
fn a_run_whose_owner_is_gone_shows_stale_and_takes_no_controls() {
    let mut app = app();
    let mut run = live(&mut app, 4, 2);
    app.update(key(KeyCode::Char('2')));
    // Asked to quit just as its process was killed: the question goes away with the run.
    app.update(key(KeyCode::Char('q')));
    assert_eq!(app.overlay, Some(Overlay::ConfirmQuit));
    run.owner = Owner::Stale {
        why: "stale: owner gone 42s ago".into(),
    };
    run.poll(&mut app);
    assert_eq!(app.overlay, None);
    let view = app.run.as_ref().unwrap();
    assert_eq!(view.state, RunState::Running); // what its files say
    assert!(!view.is_live_running());
    assert_eq!(view.state_text(), "stale: owner gone 42s ago");
    let screen = render(&app, 100, 24);
    assert!(
        screen
            .lines()
            .next()
            .unwrap()
            .contains("stale: owner gone 42s ago"),
        "{screen}"
    );
    // Narrower, the state is cut short and the tabs stay whole.
    let narrow = render(&app, 80, 24);
    let header = narrow.lines().next().unwrap();
    assert!(
        header.contains("5 Runs") && header.contains("stale"),
        "{header}"
    );
    assert!(header.contains('…'), "{header}");
    assert!(!screen.contains("p pause"), "{screen}");
    assert_eq!(app.update(key(KeyCode::Char('p'))), vec![]);
    assert_eq!(app.update(key(KeyCode::Char('c'))), vec![]);
    assert_eq!(app.overlay, None);
    assert!(app.status.is_some());
    // Nothing to leave running: q quits at once.
    assert_eq!(app.update(key(KeyCode::Char('q'))), vec![]);
    assert_eq!(app.exit, Exit::Now);

    // A run that heard events and whose lock is gone without an end is stale too.
    let mut app = tui_common::app();
    let mut run = live(&mut app, 4, 2);
    run.owner = Owner::None;
    run.poll(&mut app);
    let view = app.run.as_ref().unwrap();
    assert!(!view.is_live_running());
    assert!(
        view.state_text().starts_with("stale"),
        "{}",
        view.state_text()
    );
}

#[test]
fn ctrl_c_and_signals_leave_a_training_run_going() {
    for msg in [
        ctrl_c(),
        Msg::Signal(Signal::Hangup),
        Msg::Signal(Signal::Terminate),
        Msg::Signal(Signal::Interrupt),
    ] {
        let mut app = app();
        live(&mut app, 4, 2);
        app.update(key(KeyCode::Char('?'))); // even over an overlay
        assert_eq!(app.update(msg.clone()), vec![], "{msg:?}");
        assert_eq!(app.exit, Exit::Now, "{msg:?}");
        let run = app.run.as_ref().unwrap();
        assert!(!run.stopping && run.is_live_running(), "{msg:?}");

        // And while asking whether to quit.
        let mut app = tui_common::app();
        live(&mut app, 4, 2);
        app.update(key(KeyCode::Char('q')));
        assert_eq!(app.update(msg.clone()), vec![], "{msg:?}");
        assert_eq!(app.exit, Exit::Now, "{msg:?}");
        assert!(!app.run.as_ref().unwrap().stopping, "{msg:?}");

        let mut idle = tui_common::app();
        assert_eq!(idle.update(msg), vec![]);
        assert_eq!(idle.exit, Exit::Now);
    }
}

#[test]
fn screens_switch_by_number_and_tab_and_runs_rescans() {
    let mut app = app();
    app.update(key(KeyCode::Char('3')));
    assert_eq!(app.screen, Screen::Generations);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.screen, Screen::Ensembles);
    assert_eq!(app.update(key(KeyCode::Tab)), vec![Effect::ScanRuns]);
    assert_eq!(app.screen, Screen::Runs);
    app.update(key(KeyCode::Tab));
    assert_eq!(app.screen, Screen::Setup);
    app.update(key(KeyCode::BackTab));
    assert_eq!(app.screen, Screen::Runs);
}

#[test]
fn help_opens_and_any_key_closes_it_without_acting() {
    let mut app = app();
    app.update(key(KeyCode::Char('?')));
    assert_eq!(app.overlay, Some(Overlay::Help));
    assert_eq!(app.update(key(KeyCode::Char('q'))), vec![]);
    assert_eq!((app.overlay, app.exit), (None, Exit::Stay));
}

#[test]
fn enter_starts_the_composed_experiment_with_its_overrides() {
    let mut app = app();
    for _ in 0..12 {
        app.update(key(KeyCode::Down));
    }
    assert_eq!(
        app.setup.current_field(),
        banbench::tui::screens::setup::Field::Epochs
    );
    app.update(key(KeyCode::Right)); // 4 epochs: the milestone at 2 of 3 moves to 3 of 4
    let effects = app.update(key(KeyCode::Enter));
    let [
        Effect::Start {
            experiment: Experiment::Vision(spec),
            device,
        },
    ] = effects.as_slice()
    else {
        panic!("{effects:?}")
    };
    assert_eq!(*device, DeviceChoice::Flex);
    assert_eq!(spec.schedule.epochs, 4);
    assert_eq!(spec.schedule.milestones, vec![3]);
    assert!(app.launching);
    // A second Enter while launching does not start another run.
    assert_eq!(app.update(key(KeyCode::Enter)), vec![]);
    app.update(Msg::LaunchFailed("no space left on device".into()));
    assert!(!app.launching);
    assert!(app.status.as_ref().unwrap().contains("no space left"));
}

/// The Setup screen's edited vision spec.
fn draft(app: &banbench::tui::app::App) -> &banbench::spec::Spec {
    match app.setup.draft.as_ref() {
        Some(Experiment::Vision(spec)) => spec,
        other => panic!("no vision draft: {other:?}"),
    }
}

#[test]
fn an_invalid_combination_is_explained_before_enter_and_enter_refuses_it() {
    let mut app = app();
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Right));
    app.update(key(KeyCode::Right));
    assert_eq!(draft(&app).data.source, DataSource::Cifar10);
    let why = app.setup.check.spec.clone().unwrap_err();
    assert!(why.contains("data.source") && why.contains("path"), "{why}");
    assert_eq!(app.update(key(KeyCode::Enter)), vec![]);
    assert!(!app.launching);
    // Back to the embedded subset: valid again.
    app.update(key(KeyCode::Left));
    app.update(key(KeyCode::Left));
    assert!(app.setup.check.spec.is_ok());
}

#[test]
fn an_unavailable_device_blocks_the_start() {
    let mut app = app();
    for _ in 0..14 {
        app.update(key(KeyCode::Down));
    }
    app.update(key(KeyCode::Right));
    assert_eq!(app.setup.device, DeviceChoice::TchCpu);
    assert!(
        app.setup
            .check
            .spec
            .as_ref()
            .unwrap_err()
            .contains("LibTorch")
    );
    assert_eq!(app.update(key(KeyCode::Enter)), vec![]);
}

/// Picking FitNets or FSP in Setup gives it a first stage to edit (its epochs) and its
/// sections, and the composed spec is valid; another control drops them again.
#[test]
fn setup_offers_the_two_stage_controls_with_their_stage_and_sections() {
    use banbench::spec::ControlKind;
    use banbench::tui::screens::setup::Field;
    let mut app = app();
    for _ in 0..7 {
        app.update(key(KeyCode::Down));
    }
    assert_eq!(app.setup.current_field(), Field::Control);
    while draft(&app).generations.control != ControlKind::Fitnets {
        app.update(key(KeyCode::Right));
    }
    assert!(app.setup.check.spec.is_ok(), "{:?}", app.setup.check.spec);
    let stage = draft(&app)
        .generations
        .fitnets
        .expect("FitNets gets its stage");
    assert!(
        app.setup
            .value(Field::Stage)
            .starts_with(&format!("{} epochs of hint at lr", stage.epochs))
    );
    assert_eq!(app.setup.value(Field::Section), "hint 2 -> guided 2");
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Right));
    assert_eq!(
        draft(&app).generations.fitnets.unwrap().epochs,
        stage.epochs + 1
    );
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Right));
    assert_eq!(app.setup.value(Field::Section), "hint 3 -> guided 3");
    assert!(app.setup.check.spec.is_ok(), "{:?}", app.setup.check.spec);
    for _ in 0..3 {
        app.update(key(KeyCode::Up));
    }
    app.update(key(KeyCode::Right)); // FSP
    assert_eq!(draft(&app).generations.control, ControlKind::Fsp);
    assert!(draft(&app).generations.fitnets.is_none());
    assert_eq!(app.setup.value(Field::Section), "flow of sections all");
    assert!(app.setup.check.spec.is_ok(), "{:?}", app.setup.check.spec);
}

/// A table preset is listed in Setup; Enter runs it as units (`banbench run PRESET --jobs 1`)
/// on the device picked, instead of refusing it for having no single chain to edit.
#[test]
fn enter_on_a_table_preset_starts_it_as_units() {
    let table = banbench::tui::preset_entry(PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/presets/controls-quick.toml"
    )));
    assert!(table.table);
    assert!(
        table
            .spec
            .as_ref()
            .unwrap_err()
            .contains("a table of 8 chain(s)")
    );
    let mut app = App::new(vec![table.clone()], DeviceChoice::Flex, false);
    app.update(Msg::Devices(vec![(DeviceChoice::Flex, Ok(()))]));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Effect::StartTable {
            preset: table.path,
            device: DeviceChoice::Flex,
        }]
    );
    assert!(app.launching);
}

#[test]
fn parameter_counts_follow_the_architecture() {
    let mut app = app();
    let teacher = app.setup.check.teacher_parameters.unwrap();
    assert_eq!(app.setup.check.student_parameters, Some(teacher)); // born-again: the same network
    for _ in 0..4 {
        app.update(key(KeyCode::Down));
    }
    app.update(key(KeyCode::Right)); // CNN-4 -> CNN-8
    assert!(app.setup.check.teacher_parameters.unwrap() > teacher);
    // Editing the experiment drops the paper's numbers, which belong to the preset's.
    assert!(draft(&app).paper.is_empty());
}

#[test]
fn fewer_generations_drop_the_ensembles_they_leave_behind() {
    let mut app = app();
    let Some(Experiment::Vision(spec)) = app.setup.draft.as_mut() else {
        panic!("the tiny preset is a vision spec")
    };
    spec.ensembles = tiny_spec().ensembles();
    for _ in 0..11 {
        app.update(key(KeyCode::Down));
    }
    app.update(key(KeyCode::Left)); // 2 -> 1 generation
    assert_eq!(draft(&app).generations.count, 1);
    assert!(draft(&app).ensembles.is_empty());
    assert!(app.setup.check.spec.is_ok());
}

#[test]
fn the_ensemble_updates_at_once_from_cached_logits() {
    let mut app = app();
    live(&mut app, 9, 0);
    let effects = app.update(key(KeyCode::Char('4')));
    assert_eq!(effects, vec![Effect::ReadLabels]);
    let labels_answer = app.update(Msg::Labels(Ok(labels())));
    assert_eq!(
        labels_answer.len(),
        3,
        "one read per finished generation: {labels_answer:?}"
    );
    serve_files(&mut app, labels_answer);
    // Every file is read once: nothing more is asked for.
    assert_eq!(app.update(key(KeyCode::Char(' '))), vec![]);

    let Outcome::Ready(teacher) = app.lab.outcome.clone() else {
        panic!("{:?}", app.lab.outcome)
    };
    assert_eq!(teacher.metrics[&Metric::Top1Error], 50.0);
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' ')));
    let Outcome::Ready(pair) = app.lab.outcome.clone() else {
        panic!()
    };
    assert_eq!(pair.members, vec![0, 1]);
    assert_eq!(pair.metrics[&Metric::Top1Error], 25.0);

    app.update(key(KeyCode::Char('m')));
    assert_eq!(app.lab.pinned.as_ref(), Some(&pair));
    app.update(key(KeyCode::Char('a')));
    let Outcome::Ready(by_logits) = app.lab.outcome.clone() else {
        panic!()
    };
    assert_eq!(by_logits.average, Averaging::Logits);
    assert_ne!(by_logits.metrics[&Metric::Nll], pair.metrics[&Metric::Nll]);
    app.update(key(KeyCode::Char(' '))); // remove BAN-1
    assert_eq!(app.update(key(KeyCode::Char(' '))), vec![]);
    app.update(key(KeyCode::Char('u')));
    assert_eq!(app.lab.pinned, None);
}

#[test]
fn an_unreadable_logits_file_is_reported_not_retried() {
    let mut app = app();
    live(&mut app, 9, 0);
    app.update(key(KeyCode::Char('4')));
    app.update(Msg::Labels(Ok(labels())));
    app.update(Msg::Logits {
        generation: 0,
        logits: Err("gen-0.f32: truncated".into()),
    });
    app.update(key(KeyCode::Char(' ')));
    assert_eq!(
        app.lab.outcome,
        Outcome::Failed("gen-0.f32: truncated".into())
    );
    assert_eq!(app.update(key(KeyCode::Down)), vec![]);
}

/// Runs outlive the window: opening another run directory while one trains leaves it going
/// (no stop is sent) and follows the other one instead.
#[test]
fn opening_another_run_while_one_trains_leaves_it_going() {
    let mut app = app();
    live(&mut app, 4, 2);
    assert_eq!(app.update(key(KeyCode::Char('5'))), vec![Effect::ScanRuns]);
    app.update(Msg::Runs(vec![banbench::tui::screens::runs::RunEntry {
        dir: "runs/other".into(),
        name: "other".into(),
        state: None,
        finished: 0,
        generations: 3,
        owner_gone: false,
    }]));
    assert_eq!(
        app.update(key(KeyCode::Enter)),
        vec![Effect::Open(PathBuf::from("runs/other"))]
    );
    let other = FakeRun::new("runs/other", tiny(), results(RunState::Running, Vec::new()));
    assert_eq!(other.open(&mut app), vec![]);
    assert_eq!(app.screen, Screen::Run);
    let view = app.run.as_ref().unwrap();
    assert_eq!(view.dir, PathBuf::from("runs/other"));
    assert!(view.generations.is_empty() && view.log.is_empty());
    assert_eq!(app.lab.generations, vec![]);
}

/// A run started in another session is followed as one started here: its events from the start
/// of events.jsonl rebuild the log, and while its owner lives it can be paused and stopped.
#[test]
fn a_run_opened_from_another_session_is_followed_like_one_started_here() {
    let mut app = app();
    let mut run = FakeRun::new(RUN_DIR, tiny(), results(RunState::Running, Vec::new()));
    run.owner = alive();
    for event in live_events(4, 2) {
        run.emit(event);
    }
    // Opening reads the records alone: the log is the epochs metrics.jsonl holds.
    run.open(&mut app);
    let view = app.run.as_ref().unwrap();
    assert_eq!(view.log.len(), 4, "{:?}", view.log);
    assert!(
        view.log.iter().all(|l| l.contains("epoch")),
        "{:?}",
        view.log
    );
    assert_eq!(view.generations.len(), 1);
    assert_eq!(view.current.as_ref().unwrap().generation, 1);
    // The first read brings every event so far, which replace that log.
    run.poll(&mut app);
    let mut here = tui_common::app();
    live(&mut here, 4, 2);
    let (view, launched) = (app.run.as_ref().unwrap(), here.run.as_ref().unwrap());
    assert_eq!(view.log, launched.log);
    assert_eq!(view.log.iter().filter(|l| l.contains("loss")).count(), 4);
    assert_eq!(view.state_text(), "running");
    assert_eq!(view.current, launched.current);
    assert_eq!(view.progress, launched.progress);
    assert_eq!(view.eta, launched.eta);
    assert_eq!(render(&app, 80, 24), render(&here, 80, 24));
    assert_eq!(
        app.update(key(KeyCode::Char('p'))),
        vec![Effect::Pause(true)]
    );
    app.update(key(KeyCode::Char('c')));
    assert_eq!(app.update(key(KeyCode::Char('y'))), vec![Effect::Stop]);
}

/// What each read of the run directory brings reaches the Run view, its log and the Ensembles
/// lab, which asks at once for the logits of a generation that just finished.
#[test]
fn polled_events_update_the_run_view_its_log_and_the_ensembles_lab() {
    let mut app = app();
    let mut run = live(&mut app, 5, 1); // BAN-1 two epochs in
    assert_eq!(
        app.update(key(KeyCode::Char('4'))),
        vec![Effect::ReadLabels]
    );
    let reads = app.update(Msg::Labels(Ok(labels())));
    assert_eq!(
        reads,
        vec![Effect::ReadLogits {
            generation: 0,
            classes: 2,
            samples: 4
        }]
    );
    serve_files(&mut app, reads);
    assert_eq!(app.lab.generations.len(), 1);

    // One read brings BAN-1's last epoch and its end.
    run.emit(Event::Epoch(live_record(1, 3)));
    run.emit(live_generation_done(1));
    run.emit(generation_started(2));
    run.emit(progress(2, 1, 1));
    let reads = run.poll(&mut app);
    assert_eq!(
        reads,
        vec![Effect::ReadLogits {
            generation: 1,
            classes: 2,
            samples: 4
        }]
    );
    let view = app.run.as_ref().unwrap();
    assert_eq!(view.generations.len(), 2);
    assert_eq!(view.current.as_ref().unwrap().generation, 2);
    assert_eq!(view.progress.as_ref().unwrap().generation, 2);
    assert_eq!(view.eta, Some(live_record(1, 3).eta_seconds));
    let log = &view.log[view.log.len() - 3..];
    assert!(log[0].starts_with("BAN-1    epoch   3/3"), "{log:?}");
    assert!(log[1].starts_with("== BAN-1 done"), "{log:?}");
    assert!(log[2].starts_with("== BAN-2 :"), "{log:?}");
    assert_eq!(app.lab.generations.len(), 2);
    serve_files(&mut app, reads);
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Char(' '))); // BAN-1
    let Outcome::Ready(ban1) = app.lab.outcome.clone() else {
        panic!("{:?}", app.lab.outcome)
    };
    assert_eq!(ban1.members, vec![1]);
    assert_eq!(ban1.metrics[&Metric::Top1Error], 50.0);

    // A read that brings nothing new changes nothing and asks for nothing.
    let before = app.clone();
    assert_eq!(run.poll(&mut app), vec![]);
    assert_eq!(app, before);
}

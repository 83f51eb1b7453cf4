//! End to end: the Units screen of the real binary in a tmux session. A tiny table (two rows,
//! each a teacher unit, its BAN chain and a CWTM chain adopting the same teacher) runs as units
//! two at a time (`banbench run t.toml --jobs 2 --out shared`) while `banbench tui shared`
//! follows it: two units show running at once, then every unit done and the table's rows, and
//! Enter follows a unit on the Run screen. Then what the directory says of units that failed,
//! wait, or whose owner is gone, read as the screen reads it. Needs tmux.

mod tmux;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use banbench::run_dir::RunDir;
use banbench::run_dir::lock::Owner;
use banbench::run_dir::records::RunState;
use banbench::tui::screens::units::{UnitProgress, UnitState};
use tmux::Tmux;

mod fixtures;

const EXE: &str = env!("CARGO_BIN_EXE_banbench");

const IDS: [&str; 6] = [
    "CNN-4/main:teacher",
    "CNN-4/main",
    "CNN-4/cwtm",
    "CNN-6/main:teacher",
    "CNN-6/main",
    "CNN-6/cwtm",
];

/// The `banbench run` of the units this test started; a failing test stops it.
struct Runner(Child);

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The screen's row of unit `id`.
fn unit_row<'a>(screen: &'a str, id: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        l.trim_start_matches(['│', ' '])
            .starts_with(&format!("{id} "))
    })
}

/// The table's row of `row` (below the units): its name, then a measured value.
fn table_row<'a>(screen: &'a str, row: &str) -> Option<&'a str> {
    screen.lines().find(|l| {
        let cells: Vec<&str> = l.trim_matches(['│', ' ']).split_whitespace().collect();
        cells.first() == Some(&row) && cells.get(1).is_some_and(|c| c.parse::<f64>().is_ok())
    })
}

fn quit(tmux: &Tmux) {
    tmux.keys(&["q"]);
    let start = Instant::now();
    while tmux.alive() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running after q:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn by_id<'a>(units: &'a [UnitProgress], id: &str) -> &'a UnitProgress {
    units
        .iter()
        .find(|u| u.id == id)
        .unwrap_or_else(|| panic!("no unit {id} in {units:#?}"))
}

#[test]
fn units_run_side_by_side_are_followed_until_the_table_is_done() {
    let dir = tempfile::tempdir().unwrap();
    // Three epochs on 1,000 images: long enough to see two units in flight.
    let table = fixtures::TINY_TABLE
        .replace("train_samples = 400", "train_samples = 1000")
        .replace("epochs = 1,", "epochs = 3,");
    std::fs::write(dir.path().join("t.toml"), table).unwrap();
    let child = Command::new(EXE)
        .args(["run", "t.toml", "--jobs", "2", "--out", "shared"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut runner = Runner(child);
    let shared = dir.path().join("shared");
    let start = Instant::now();
    while !shared.join("units.json").is_file() {
        assert!(start.elapsed() < Duration::from_secs(60), "no units.json");
        std::thread::sleep(Duration::from_millis(20));
    }

    let tmux = Tmux::start(dir.path(), &format!("{EXE} tui shared"));
    tmux.wait_for("Units of shared", Duration::from_secs(20));
    // Two units in flight at once, each with its generation and epoch.
    let start = Instant::now();
    loop {
        let screen = tmux.screen();
        let running: Vec<&str> = IDS
            .iter()
            .filter_map(|id| unit_row(&screen, id))
            .filter(|row| row.contains(" running "))
            .collect();
        if running.len() >= 2 {
            assert!(screen.contains("· 2 running ("), "{screen}");
            for row in running {
                assert!(
                    (row.contains("Teacher ") || row.contains("BAN-1 ")) && row.contains('%'),
                    "{screen}"
                );
            }
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "never two units running at once:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // At the end every unit is done and the table has its rows.
    let start = Instant::now();
    let screen = loop {
        let screen = tmux.screen();
        if screen.contains("6/6 units done") && table_row(&screen, "CNN-6").is_some() {
            break screen;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the units did not finish on screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for id in IDS {
        let row = unit_row(&screen, id).unwrap_or_else(|| panic!("no {id} row:\n{screen}"));
        assert!(row.contains(" done ") && row.contains("100%"), "{screen}");
    }
    let cnn4 = table_row(&screen, "CNN-4").unwrap_or_else(|| panic!("no CNN-4 row:\n{screen}"));
    // The row's name and its three measured cells.
    let cells = cnn4.trim_matches(['│', ' ']).split_whitespace().count();
    assert_eq!(cells, 4, "{screen}");
    assert!(runner.0.wait().unwrap().success(), "the units failed");

    // Enter follows the unit under the cursor (the first) on the Run screen.
    tmux.keys(&["Enter"]);
    let run = tmux.wait_for("Train loss", Duration::from_secs(20));
    assert!(run.contains("tiny-table-CNN-4-main"), "{run}");
    quit(&tmux);

    // What the screen reads of units that failed, wait, or whose owner is gone.
    let (units, table) = banbench::tui::read_units(&shared).unwrap();
    assert!(table.unwrap().contains("| CNN-4 |"));
    assert_eq!(units.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), IDS);
    for u in &units {
        assert_eq!((&u.state, u.fraction), (&UnitState::Done, 1.0), "{u:#?}");
        assert_eq!(u.plan.map(|p| (p.generations(), p.epochs)), Some((1, 3)));
    }
    let cwtm = RunDir::open(&shared.join("CNN-6/cwtm")).unwrap();
    let mut results = cwtm.results().unwrap().unwrap();
    results.state = RunState::Failed;
    results.generations.retain(|g| g.generation == 0);
    cwtm.write_results(&results, "").unwrap();
    // CNN-4's teacher and BAN chain share a directory: without its results neither is done.
    std::fs::remove_file(shared.join("CNN-4/main/results.json")).unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let owner = Owner {
        host: Owner::this_process().host,
        pid,
        started: "2026-01-01T12:00:00+00:00".into(),
    };
    let lock = serde_json::to_vec(&owner).unwrap();
    std::fs::write(shared.join("CNN-4/main/lock"), lock).unwrap();
    let (units, _) = banbench::tui::read_units(&shared).unwrap();
    assert_eq!(
        by_id(&units, "CNN-4/main:teacher").state,
        UnitState::Stale {
            host: owner.host.clone(),
            pid
        }
    );
    assert_eq!(
        by_id(&units, "CNN-4/main").state,
        UnitState::Waiting {
            on: vec!["CNN-4/main:teacher".into()]
        }
    );
    // Its own results are finished: done, whatever its teacher's directory says now.
    assert_eq!(by_id(&units, "CNN-4/cwtm").state, UnitState::Done);
    let failed = by_id(&units, "CNN-6/cwtm");
    assert_eq!(failed.state, UnitState::Failed);
    assert_eq!(
        failed.log.as_deref(),
        Some(Path::new("logs/CNN-6_cwtm.log"))
    );
    // Its last progress report was of its student's last epoch.
    assert_eq!(failed.at, Some((1, 3)));
    assert!((2.0 / 3.0..=1.0).contains(&failed.fraction), "{failed:#?}");
    assert!(
        failed
            .describe()
            .starts_with("failed, BAN-1 epoch 3 of 3 (its log: logs/")
    );
}

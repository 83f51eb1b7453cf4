//! The Units screen: a directory of units (`crate::units`: a table's or study's chains and the
//! teachers they adopt, run side by side by `run --jobs` / `--devices`, one at a time with
//! `--unit`, or as Slurm job arrays) followed while they run. Every unit with its state, host,
//! generation and epoch, how far it has got and its ETA, and below them the table as the
//! finished chains fill it in (the directory's results.md). Here its state and keys; the
//! drawing is in `view`; the runtime reads the directory (`tui::read_units`) every half second.

pub mod view;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossterm::event::KeyCode;

use crate::run_dir::records::generation_label;
use crate::tui::app::Effect;
pub use crate::units::UnitState;

/// The generations a unit trains and each one's epochs, from its run directory's spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitPlan {
    /// The unit's first and last generation: 0 and 0 for a teacher unit, from 1 for a chain
    /// whose teacher is another unit's, from 0 for a chain that trains its own.
    pub first: usize,
    pub last: usize,
    pub epochs: usize,
}

impl UnitPlan {
    pub fn generations(&self) -> usize {
        self.last + 1 - self.first
    }
}

/// One unit as the screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitProgress {
    pub id: String,
    /// Its run directory, relative to the units' directory ("" for a lone chain: the directory
    /// itself).
    pub dir: PathBuf,
    pub teacher_only: bool,
    pub state: UnitState,
    /// None until its run directory holds its spec (a unit not begun).
    pub plan: Option<UnitPlan>,
    /// The generation in training and its epoch (1-based), from progress.json, when they are
    /// the unit's own.
    pub at: Option<(usize, usize)>,
    /// Of the unit's epochs, the fraction done.
    pub fraction: f64,
    /// Seconds left in the unit while it runs, counted down between epoch records.
    pub eta: Option<f64>,
    /// The epoch record (generation, epoch) `eta` comes from: a poll that finds the same one
    /// keeps the counted-down value.
    pub eta_of: Option<(usize, usize)>,
    /// Its log, relative to the units' directory (logs/, as `run --jobs` writes them), where
    /// there is one.
    pub log: Option<PathBuf>,
}

impl UnitProgress {
    /// What it is doing in a sentence, as `banbench report` says it.
    pub fn describe(&self) -> String {
        let at = match (self.at, self.plan) {
            (Some((k, epoch)), Some(plan)) => {
                format!(", {} epoch {epoch} of {}", generation_label(k), plan.epochs)
            }
            (Some((k, epoch)), None) => format!(", {} epoch {epoch}", generation_label(k)),
            _ => String::new(),
        };
        let log = self
            .log
            .as_ref()
            .map_or(String::new(), |l| format!(" (its log: {})", l.display()));
        match &self.state {
            UnitState::Done => "done".into(),
            UnitState::Running { host, pid, paused } => format!(
                "{} on {host} (pid {pid}){at}",
                if *paused { "paused" } else { "running" }
            ),
            UnitState::Stale { host, pid } => {
                format!("stale: its owner on {host} (pid {pid}) is gone{at}")
            }
            UnitState::Failed => format!("failed{at}{log}"),
            UnitState::Stopped => format!("stopped{at}"),
            UnitState::Waiting { on } => format!("waiting for {}", on.join(", ")),
            UnitState::Ready => "ready".into(),
        }
    }

    /// Whether its run directory exists (Enter can follow it).
    pub fn begun(&self) -> bool {
        self.plan.is_some()
    }
}

/// The units' state in a word: running while any runs, finished when all are done, else the
/// worst of what the others say.
pub fn units_state(units: &[UnitProgress]) -> String {
    let any = |f: &dyn Fn(&UnitState) -> bool| units.iter().any(|u| f(&u.state));
    if any(&|s| matches!(s, UnitState::Running { .. })) {
        "running"
    } else if units.iter().all(|u| u.state == UnitState::Done) {
        "finished"
    } else if any(&|s| *s == UnitState::Failed) {
        "failed"
    } else if any(&|s| matches!(s, UnitState::Stale { .. })) {
        "stale"
    } else if any(&|s| *s == UnitState::Stopped) {
        "stopped"
    } else {
        // Ready and waiting units, none in flight: queued, or their runner has gone.
        "idle"
    }
    .into()
}

pub fn done(units: &[UnitProgress]) -> usize {
    units.iter().filter(|u| u.state == UnitState::Done).count()
}

/// "2/6 units done · 2 running (gpu3, gpu4) · 1 failed · 1 waiting": every state present, in
/// that order, with the hosts of the units in flight.
pub fn summary_line(units: &[UnitProgress]) -> String {
    let mut parts = vec![format!("{}/{} units done", done(units), units.len())];
    let mut hosts: Vec<&str> = Vec::new();
    for host in units
        .iter()
        .filter(|u| u.state.word() == "running")
        .filter_map(|u| u.state.host())
    {
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    for word in [
        "running", "paused", "stale", "failed", "stopped", "ready", "waiting",
    ] {
        let n = units.iter().filter(|u| u.state.word() == word).count();
        if n == 0 {
            continue;
        }
        if word == "running" {
            parts.push(format!("{n} running ({})", hosts.join(", ")));
        } else {
            parts.push(format!("{n} {word}"));
        }
    }
    parts.join(" · ")
}

/// The name a units directory goes by: its own.
pub fn dir_name(dir: &Path) -> String {
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A directory of units found under runs/.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitsEntry {
    pub dir: PathBuf,
    pub units: Vec<UnitProgress>,
}

/// Lines PgUp / PgDn move the table by.
pub const PAGE: usize = 10;

/// The followed units' directory.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitsView {
    pub dir: PathBuf,
    pub units: Vec<UnitProgress>,
    /// The directory's results.md: the table (or the study's statistics) so far; None while no
    /// chain has finished.
    pub table: Option<String>,
    /// The unit under the cursor.
    pub cursor: usize,
    /// The first line of the table shown.
    pub scroll: usize,
    /// Whether the directory's study (study.json) was asked to be opened.
    pub study_asked: bool,
}

impl UnitsView {
    pub fn new(dir: PathBuf, units: Vec<UnitProgress>, table: Option<String>) -> UnitsView {
        UnitsView {
            dir,
            units,
            table,
            cursor: 0,
            scroll: 0,
            study_asked: false,
        }
    }

    /// A fresh read of the directory. An ETA whose epoch record has not changed keeps its
    /// counted-down value.
    pub fn update(&mut self, mut units: Vec<UnitProgress>, table: Option<String>) {
        for unit in &mut units {
            let before = self.units.iter().find(|u| u.id == unit.id);
            if let Some(before) = before
                && before.eta.is_some()
                && unit.eta.is_some()
                && before.eta_of == unit.eta_of
            {
                unit.eta = before.eta;
            }
        }
        self.units = units;
        self.table = table;
        self.cursor = self.cursor.min(self.units.len().saturating_sub(1));
    }

    /// Time passes: the running units' ETAs count down.
    pub fn tick(&mut self, dt: Duration) {
        for unit in &mut self.units {
            if matches!(unit.state, UnitState::Running { paused: false, .. }) {
                unit.eta = unit.eta.map(|eta| (eta - dt.as_secs_f64()).max(0.0));
            }
        }
    }

    pub fn name(&self) -> String {
        dir_name(&self.dir)
    }

    pub fn state_text(&self) -> String {
        units_state(&self.units)
    }

    /// The run directory of `unit`.
    pub fn run_dir(&self, unit: &UnitProgress) -> PathBuf {
        // A lone chain's run directory is the units' own (joining "" would add a slash).
        if unit.dir.as_os_str().is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(&unit.dir)
        }
    }

    /// A key on the Units screen: its effects, or why it does nothing.
    pub fn on_key(&mut self, code: KeyCode) -> Result<Vec<Effect>, String> {
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.cursor = (self.cursor + 1).min(self.units.len().saturating_sub(1))
            }
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.units.len().saturating_sub(1),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(PAGE),
            KeyCode::PageDown => {
                let lines = self.table.as_deref().map_or(0, |t| t.lines().count());
                self.scroll = (self.scroll + PAGE).min(lines.saturating_sub(1));
            }
            KeyCode::Enter => {
                let Some(unit) = self.units.get(self.cursor) else {
                    return Err("no units".into());
                };
                if !unit.begun() {
                    return Err(format!("{} has not begun: {}", unit.id, unit.describe()));
                }
                return Ok(vec![Effect::Open(self.run_dir(unit))]);
            }
            _ => {}
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, state: UnitState) -> UnitProgress {
        UnitProgress {
            id: id.into(),
            dir: PathBuf::from(id.trim_end_matches(":teacher")),
            teacher_only: id.ends_with(":teacher"),
            plan: (!matches!(state, UnitState::Waiting { .. })).then_some(UnitPlan {
                first: 1,
                last: 1,
                epochs: 3,
            }),
            state,
            at: None,
            fraction: 0.0,
            eta: None,
            eta_of: None,
            log: None,
        }
    }

    fn running(host: &str) -> UnitState {
        UnitState::Running {
            host: host.into(),
            pid: 7,
            paused: false,
        }
    }

    #[test]
    fn the_summary_counts_every_state_and_names_the_hosts() {
        let units = [
            unit("a:teacher", UnitState::Done),
            unit("a", running("gpu3")),
            unit("b", running("gpu4")),
            unit("c", running("gpu3")),
            unit("d", UnitState::Failed),
            unit(
                "e",
                UnitState::Waiting {
                    on: vec!["x".into()],
                },
            ),
        ];
        assert_eq!(
            summary_line(&units),
            "1/6 units done · 3 running (gpu3, gpu4) · 1 failed · 1 waiting"
        );
        assert_eq!(units_state(&units), "running");
        assert_eq!(units_state(&units[..1]), "finished");
        assert_eq!(units_state(&units[4..]), "failed");
        assert_eq!(units_state(&units[5..]), "idle");
    }

    #[test]
    fn enter_follows_a_begun_unit_and_explains_one_not_begun() {
        let mut view = UnitsView::new(
            PathBuf::from("shared"),
            vec![
                unit("CNN-4/main", running("gpu3")),
                unit(
                    "CNN-4/cwtm",
                    UnitState::Waiting {
                        on: vec!["CNN-4/main:teacher".into()],
                    },
                ),
            ],
            None,
        );
        assert_eq!(
            view.on_key(KeyCode::Enter),
            Ok(vec![Effect::Open(PathBuf::from("shared/CNN-4/main"))])
        );
        view.on_key(KeyCode::Down).unwrap();
        view.on_key(KeyCode::Down).unwrap();
        assert_eq!(view.cursor, 1);
        assert_eq!(
            view.on_key(KeyCode::Enter),
            Err("CNN-4/cwtm has not begun: waiting for CNN-4/main:teacher".into())
        );
        // A lone chain's unit is the directory itself.
        view.units = vec![unit("", UnitState::Done)];
        view.update(view.units.clone(), None);
        assert_eq!(view.cursor, 0);
        assert_eq!(
            view.on_key(KeyCode::Enter),
            Ok(vec![Effect::Open(PathBuf::from("shared"))])
        );
    }

    #[test]
    fn an_eta_counts_down_until_a_new_epoch_record_replaces_it() {
        let mut a = unit("a", running("gpu3"));
        a.eta = Some(30.0);
        a.eta_of = Some((1, 1));
        let mut view = UnitsView::new(PathBuf::from("shared"), vec![a.clone()], None);
        view.tick(Duration::from_secs(10));
        assert_eq!(view.units[0].eta, Some(20.0));
        // The same record read again: the countdown goes on.
        view.update(vec![a.clone()], None);
        assert_eq!(view.units[0].eta, Some(20.0));
        a.eta = Some(12.0);
        a.eta_of = Some((1, 2));
        view.update(vec![a.clone()], None);
        assert_eq!(view.units[0].eta, Some(12.0));
        // Paused, it stays.
        view.units[0].state = UnitState::Running {
            host: "gpu3".into(),
            pid: 7,
            paused: true,
        };
        view.tick(Duration::from_secs(5));
        assert_eq!(view.units[0].eta, Some(12.0));
    }

    #[test]
    fn page_keys_scroll_the_table_within_it() {
        let table = (0..25).map(|i| format!("line {i}\n")).collect::<String>();
        let mut view = UnitsView::new(PathBuf::from("shared"), Vec::new(), Some(table));
        for _ in 0..5 {
            view.on_key(KeyCode::PageDown).unwrap();
        }
        assert_eq!(view.scroll, 24);
        view.on_key(KeyCode::PageUp).unwrap();
        assert_eq!(view.scroll, 14);
        assert_eq!(view.on_key(KeyCode::Enter), Err("no units".into()));
    }
}

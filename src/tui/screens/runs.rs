//! The Runs screen: the study directories, directories of units (units.json) and run
//! directories under runs/ (a table's chains two levels down), their state and progress; Enter
//! follows one (a study on the Study screen, units on the Units screen).

use std::path::PathBuf;

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};

use crate::run_dir::records::RunState;
use crate::tui::app::Effect;
use crate::tui::frame::Theme;
use crate::tui::screens::study::{StudyEntry, finished, study_state};
use crate::tui::screens::units::{self, UnitsEntry, units_state};

/// One run directory found under runs/.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    pub dir: PathBuf,
    pub name: String,
    /// None while no generation has finished (no results.json yet).
    pub state: Option<RunState>,
    pub finished: usize,
    pub generations: usize,
    /// It says it runs, but the process that owned it is gone (killed, its node lost).
    pub owner_gone: bool,
}

/// The directories found, studies listed first, then directories of units, and the one under
/// the cursor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runs {
    pub studies: Vec<StudyEntry>,
    pub units: Vec<UnitsEntry>,
    pub entries: Vec<RunEntry>,
    pub cursor: usize,
}

impl Runs {
    /// A fresh scan replaces the run directories; the cursor stays within the list.
    pub fn set(&mut self, entries: Vec<RunEntry>) {
        self.entries = entries;
        self.clamp();
    }

    /// A fresh scan replaces the study directories.
    pub fn set_studies(&mut self, studies: Vec<StudyEntry>) {
        self.studies = studies;
        self.clamp();
    }

    /// A fresh scan replaces the directories of units.
    pub fn set_units(&mut self, units: Vec<UnitsEntry>) {
        self.units = units;
        self.clamp();
    }

    fn len(&self) -> usize {
        self.studies.len() + self.units.len() + self.entries.len()
    }

    fn clamp(&mut self) {
        self.cursor = self.cursor.min(self.len().saturating_sub(1));
    }

    pub fn on_key(&mut self, code: KeyCode) -> Vec<Effect> {
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.cursor = (self.cursor + 1).min(self.len().saturating_sub(1))
            }
            KeyCode::Char('r') => return vec![Effect::ScanRuns],
            KeyCode::Enter => {
                let mut at = self.cursor;
                if let Some(study) = self.studies.get(at) {
                    return vec![Effect::OpenStudy(study.dir.clone())];
                }
                at -= self.studies.len();
                if let Some(entry) = self.units.get(at) {
                    return vec![Effect::OpenUnits(entry.dir.clone())];
                }
                at -= self.units.len();
                if let Some(entry) = self.entries.get(at) {
                    return vec![Effect::Open(entry.dir.clone())];
                }
            }
            _ => {}
        }
        Vec::new()
    }
}

pub fn draw(frame: &mut Frame, area: Rect, runs: &Runs, theme: &Theme) {
    let block = Block::bordered().title(" Study, units and run directories under runs/ ");
    if runs.studies.is_empty() && runs.units.is_empty() && runs.entries.is_empty() {
        frame.render_widget(
            Paragraph::new("No run, study or units directories under runs/ (r rescans). `banbench run` and the Setup screen write them there.")
                .wrap(Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let studies = runs.studies.iter().map(|s| {
        Row::new([
            s.name.clone(),
            study_state(&s.seeds),
            format!("{}/{} seeds", finished(&s.seeds), s.seeds.len()),
            s.dir.display().to_string(),
        ])
    });
    let entries = runs.entries.iter().map(|r| {
        Row::new([
            r.name.clone(),
            match r.state {
                _ if r.owner_gone => "stale".to_string(),
                None => "started".to_string(),
                Some(state) => state.to_string(),
            },
            format!("{}/{} gens", r.finished, r.generations),
            r.dir.display().to_string(),
        ])
    });
    let unit_dirs = runs.units.iter().map(|u| {
        Row::new([
            units::dir_name(&u.dir),
            units_state(&u.units),
            format!("{}/{} units", units::done(&u.units), u.units.len()),
            u.dir.display().to_string(),
        ])
    });
    let rows: Vec<Row> = studies.chain(unit_dirs).chain(entries).collect();
    let widths = [
        Constraint::Length(16),
        Constraint::Length(9),
        Constraint::Length(11),
        Constraint::Fill(1),
    ];
    let mut state = TableState::default().with_selected(Some(runs.cursor));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(Row::new(["Name", "State", "Done", "Directory"]).style(theme.accent()))
            .row_highlight_style(theme.selected())
            .block(block),
        area,
        &mut state,
    );
}

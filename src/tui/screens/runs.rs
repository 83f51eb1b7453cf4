//! The Runs screen: the run directories under runs/ (a table's chains two levels down), their
//! state and progress; Enter follows one.

use std::path::PathBuf;

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};

use crate::run_dir::records::RunState;
use crate::tui::app::Effect;
use crate::tui::frame::Theme;

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

/// The run directories found, and the one under the cursor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runs {
    pub entries: Vec<RunEntry>,
    pub cursor: usize,
}

impl Runs {
    /// A fresh scan replaces the list; the cursor stays within it.
    pub fn set(&mut self, entries: Vec<RunEntry>) {
        self.entries = entries;
        self.cursor = self.cursor.min(self.entries.len().saturating_sub(1));
    }

    pub fn on_key(&mut self, code: KeyCode) -> Vec<Effect> {
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.cursor = (self.cursor + 1).min(self.entries.len().saturating_sub(1))
            }
            KeyCode::Char('r') => return vec![Effect::ScanRuns],
            KeyCode::Enter => {
                if let Some(entry) = self.entries.get(self.cursor) {
                    return vec![Effect::Open(entry.dir.clone())];
                }
            }
            _ => {}
        }
        Vec::new()
    }
}

pub fn draw(frame: &mut Frame, area: Rect, runs: &Runs, theme: &Theme) {
    let block = Block::bordered().title(" Run directories under runs/ ");
    if runs.entries.is_empty() {
        frame.render_widget(
            Paragraph::new("No run directories under runs/ (r rescans). `banbench run` and the Setup screen write them there.")
                .wrap(Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let rows: Vec<Row> = runs
        .entries
        .iter()
        .map(|r| {
            Row::new([
                r.name.clone(),
                match r.state {
                    _ if r.owner_gone => "stale".to_string(),
                    None => "started".to_string(),
                    Some(state) => state.to_string(),
                },
                format!("{}/{}", r.finished, r.generations),
                r.dir.display().to_string(),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(16),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Fill(1),
    ];
    let mut state = TableState::default().with_selected(Some(runs.cursor));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(Row::new(["Name", "State", "Gens", "Directory"]).style(theme.accent()))
            .row_highlight_style(theme.selected())
            .block(block),
        area,
        &mut state,
    );
}

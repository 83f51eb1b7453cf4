//! The Ensembles screen: the ensemble lab's state (which saved generations are members, how
//! they are averaged, the pinned ensemble, and the test outputs read so far, each generation's
//! once, from the run directory), its keys and its drawing. Metrics are recomputed whenever any
//! of these change, so toggling is instant.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use crossterm::event::KeyCode;

use crate::ensemble::{self, Logits};
use crate::run_dir::TestLabels;
use crate::run_dir::records::{GenerationResult, Metric, Scores};
use crate::spec::Averaging;

use crate::run_dir::records::Task;
use crate::tui::app::{App, Effect};
use crate::tui::frame::{Theme, wrap_lines};
use crate::tui::run_view::RunView;
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{
    Bar, BarChart, BarGroup, Block, List, ListItem, ListState, Paragraph, Row, Table, TableState,
    Wrap,
};

/// A file the lab asked the runtime for.
#[derive(Debug, Clone, PartialEq)]
pub enum Slot<T> {
    Requested,
    Ready(T),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    pub members: Vec<usize>,
    pub average: Averaging,
    pub metrics: Scores,
}

/// The current ensemble's metrics, or why there are none yet.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    NoMembers,
    Reading,
    /// For a language run only the test perplexity is defined (from the mean of the members'
    /// probabilities of each target token).
    Ready(Ensemble),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleLab {
    /// Finished generations, in order: the rows the cursor moves over.
    pub generations: Vec<GenerationResult>,
    pub cursor: usize,
    pub members: BTreeSet<usize>,
    pub average: Averaging,
    pub pinned: Option<Ensemble>,
    pub outcome: Outcome,
    labels: Option<Slot<TestLabels>>,
    logits: BTreeMap<usize, Slot<Logits>>,
    /// Some(test tokens) for a language run (0 while results.json is not there yet).
    pub language_tokens: Option<usize>,
    targets: BTreeMap<usize, Slot<Vec<f32>>>,
}

impl Default for EnsembleLab {
    fn default() -> EnsembleLab {
        EnsembleLab {
            generations: Vec::new(),
            cursor: 0,
            members: BTreeSet::new(),
            average: Averaging::Probabilities,
            pinned: None,
            outcome: Outcome::NoMembers,
            labels: None,
            logits: BTreeMap::new(),
            language_tokens: None,
            targets: BTreeMap::new(),
        }
    }
}

impl EnsembleLab {
    /// Follows the run's finished generations (a live or watched run gains some over time).
    pub fn sync(&mut self, generations: &[GenerationResult]) {
        if self.generations.as_slice() != generations {
            self.generations = generations.to_vec();
            self.generations.sort_by_key(|g| g.generation);
            self.cursor = self.cursor.min(self.generations.len().saturating_sub(1));
            let finished: BTreeSet<usize> = self.generations.iter().map(|g| g.generation).collect();
            self.members.retain(|m| finished.contains(m));
            self.recompute();
        }
    }

    pub fn on_key(&mut self, code: KeyCode) {
        match code {
            KeyCode::Up | KeyCode::Char('k') => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.cursor = (self.cursor + 1).min(self.generations.len().saturating_sub(1))
            }
            KeyCode::Char(' ') => {
                if let Some(g) = self.generations.get(self.cursor) {
                    if !self.members.remove(&g.generation) {
                        self.members.insert(g.generation);
                    }
                    self.recompute();
                }
            }
            // Only the probabilities of the target tokens are saved for a language run.
            KeyCode::Char('a') if self.language_tokens.is_some() => {}
            KeyCode::Char('a') => {
                self.average = match self.average {
                    Averaging::Probabilities => Averaging::Logits,
                    Averaging::Logits => Averaging::Probabilities,
                };
                self.recompute();
            }
            KeyCode::Char('m') => {
                if let Outcome::Ready(e) = &self.outcome {
                    self.pinned = Some(e.clone());
                }
            }
            KeyCode::Char('u') => self.pinned = None,
            _ => {}
        }
    }

    /// The files the current members need that have not been asked for yet; marks them asked.
    pub fn requests(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(tokens) = self.language_tokens {
            if tokens == 0 {
                return effects;
            }
            for g in &self.generations {
                if let Entry::Vacant(slot) = self.targets.entry(g.generation) {
                    slot.insert(Slot::Requested);
                    effects.push(Effect::ReadTargets {
                        generation: g.generation,
                        tokens,
                    });
                }
            }
            return effects;
        }
        if self.labels.is_none() {
            self.labels = Some(Slot::Requested);
            effects.push(Effect::ReadLabels);
        }
        // Sizes come from the labels file, so logits wait for it.
        let Some(Slot::Ready(labels)) = &self.labels else {
            return effects;
        };
        let (classes, samples) = (labels.class_names.len(), labels.labels.len());
        // Read every finished generation up front: the reads are small and toggling then never waits.
        for g in &self.generations {
            if let Entry::Vacant(slot) = self.logits.entry(g.generation) {
                slot.insert(Slot::Requested);
                effects.push(Effect::ReadLogits {
                    generation: g.generation,
                    classes,
                    samples,
                });
            }
        }
        effects
    }

    pub fn set_labels(&mut self, labels: Result<TestLabels, String>) {
        self.labels = Some(match labels {
            Ok(l) => Slot::Ready(l),
            Err(e) => Slot::Failed(e),
        });
        self.recompute();
    }

    pub fn set_logits(&mut self, generation: usize, logits: Result<Logits, String>) {
        self.logits.insert(
            generation,
            match logits {
                Ok(l) => Slot::Ready(l),
                Err(e) => Slot::Failed(e),
            },
        );
        self.recompute();
    }

    /// A language run's test token count, once its results.json says it.
    pub fn set_language_tokens(&mut self, tokens: Option<usize>) {
        if self.language_tokens.is_some() && tokens.is_some() && self.language_tokens != tokens {
            self.language_tokens = tokens;
            self.targets.clear();
            self.recompute();
        }
    }

    pub fn set_targets(&mut self, generation: usize, probabilities: Result<Vec<f32>, String>) {
        self.targets.insert(
            generation,
            match probabilities {
                Ok(p) => Slot::Ready(p),
                Err(e) => Slot::Failed(e),
            },
        );
        self.recompute();
    }

    fn recompute(&mut self) {
        self.outcome = self.evaluate();
    }

    fn evaluate(&self) -> Outcome {
        if self.members.is_empty() {
            return Outcome::NoMembers;
        }
        if self.language_tokens.is_some() {
            let mut members = Vec::new();
            for m in &self.members {
                match self.targets.get(m) {
                    None | Some(Slot::Requested) => return Outcome::Reading,
                    Some(Slot::Failed(e)) => return Outcome::Failed(e.clone()),
                    Some(Slot::Ready(p)) => members.push(p.as_slice()),
                }
            }
            return Outcome::Ready(Ensemble {
                members: self.members.iter().copied().collect(),
                average: Averaging::Probabilities,
                metrics: Scores::from([(
                    Metric::TestPerplexity,
                    ensemble::ensemble_perplexity(&members),
                )]),
            });
        }
        let labels = match &self.labels {
            None | Some(Slot::Requested) => return Outcome::Reading,
            Some(Slot::Failed(e)) => return Outcome::Failed(e.clone()),
            Some(Slot::Ready(labels)) => labels,
        };
        let mut members = Vec::new();
        for m in &self.members {
            match self.logits.get(m) {
                None | Some(Slot::Requested) => return Outcome::Reading,
                Some(Slot::Failed(e)) => return Outcome::Failed(e.clone()),
                Some(Slot::Ready(logits)) => members.push(logits),
            }
        }
        let probabilities = ensemble::ensemble_probabilities(&members, self.average);
        Outcome::Ready(Ensemble {
            members: self.members.iter().copied().collect(),
            average: self.average,
            metrics: ensemble::metrics(&probabilities, members[0].classes, &labels.labels).into(),
        })
    }
}

/// "T+B1+B2": short enough for the side-by-side table (its title spells the letters out).
fn members_label(members: &[usize]) -> String {
    let labels: Vec<String> = members
        .iter()
        .map(|&m| if m == 0 { "T".into() } else { format!("B{m}") })
        .collect();
    labels.join("+")
}

/// A metric's row on the Ensembles screen: name and decimals.
fn ensemble_row(metric: Metric) -> (&'static str, usize) {
    match metric {
        Metric::Top1Error => ("Top-1 err %", 2),
        Metric::Top5Error => ("Top-5 err %", 2),
        Metric::Nll => ("NLL", 4),
        Metric::Ece => ("ECE %", 2),
        Metric::ValidationPerplexity => ("Val ppl", 2),
        Metric::TestPerplexity => ("Test ppl", 2),
        Metric::TestError => ("Err %", 2),
    }
}

/// The Ensembles screen compares what an ensemble has for the run's task: a vision run's
/// errors, NLL and ECE, or a language run's test perplexity (only each generation's probability
/// of the target token is saved, so top-1 error, ECE and logit averaging are undefined there).
pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let task = app.run.as_ref().map_or(Task::Vision, RunView::task);
    let language = task == Task::Language;
    let primary = task.primary();
    let shown: Vec<Metric> = match task {
        Task::Vision => task.metrics().to_vec(),
        Task::Language => vec![Metric::TestPerplexity],
    };
    let unit = if language { " ppl" } else { "%" };
    let value = |m: &Scores, metric: Metric| m.get(&metric).copied().unwrap_or(f64::NAN);
    let lab = &app.lab;
    let [top, bars] = Layout::vertical([Constraint::Length(9), Constraint::Fill(1)]).areas(area);
    let [list_area, compare] =
        Layout::horizontal([Constraint::Length(30), Constraint::Fill(1)]).areas(top);

    let items: Vec<ListItem> = lab
        .generations
        .iter()
        .map(|g| {
            let mark = if lab.members.contains(&g.generation) {
                "[x]"
            } else {
                "[ ]"
            };
            ListItem::new(format!(
                "{mark} {:<8} {:>6.2}{unit}",
                g.label,
                value(&g.metrics, primary)
            ))
        })
        .collect();
    let mut state =
        ListState::default().with_selected((!lab.generations.is_empty()).then_some(lab.cursor));
    if lab.generations.is_empty() {
        frame.render_widget(
            Paragraph::new("no generation has finished yet")
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(" Generations ")),
            list_area,
        );
    } else {
        frame.render_stateful_widget(
            List::new(items)
                .block(Block::bordered().title(" Generations "))
                .highlight_style(theme.selected())
                .highlight_symbol("▸"),
            list_area,
            &mut state,
        );
    }

    let current = match &lab.outcome {
        Outcome::Ready(e) => Some(e),
        _ => None,
    };
    let mut header = vec!["", "Current"];
    if lab.pinned.is_some() {
        header.extend(["Pinned", "Δ"]);
    }
    // The members are known before their outputs are read; why there are no metrics yet (or
    // none at all: a file that cannot be read) is told under the table, wrapped, not cut in a cell.
    let members: Vec<usize> = lab.members.iter().copied().collect();
    let text =
        |e: Option<&Ensemble>, f: &dyn Fn(&Ensemble) -> String| e.map_or_else(String::new, f);
    let mut rows = vec![
        Row::new([
            "Members".to_string(),
            if members.is_empty() {
                "none".to_string()
            } else {
                members_label(&members)
            },
            text(lab.pinned.as_ref(), &|e| members_label(&e.members)),
        ]),
        Row::new([
            "Averaging".to_string(),
            lab.average.to_string(),
            text(lab.pinned.as_ref(), &|e| e.average.to_string()),
        ]),
    ];
    for &metric in &shown {
        let (name, decimals) = ensemble_row(metric);
        let get = |m: &Scores| value(m, metric);
        let delta = match (current, &lab.pinned) {
            (Some(c), Some(p)) => format!("{:+.decimals$}", get(&c.metrics) - get(&p.metrics)),
            _ => String::new(),
        };
        rows.push(Row::new([
            name.to_string(),
            text(current, &|e| format!("{:.decimals$}", get(&e.metrics))),
            text(lab.pinned.as_ref(), &|e| {
                format!("{:.decimals$}", get(&e.metrics))
            }),
            delta,
        ]));
    }
    let widths = [
        Constraint::Length(11),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(7),
    ];
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.accent()))
            .block(Block::bordered().title(" Ensemble (T: teacher, Bk: BAN-k) ")),
        compare,
        &mut TableState::default(),
    );

    // The members, the ensemble and the pinned one on one scale (x100 for integer bars).
    let bars_title = match task {
        Task::Vision => " Top-1 error %: members and ensemble ",
        Task::Language => " Test perplexity: members and ensemble ",
    };
    let bar = |label: String, metrics: &Scores, style: Style| {
        let value = value(metrics, primary);
        Bar::default()
            .label(Line::raw(label))
            .value((value * 100.0).round().max(0.0) as u64)
            .text_value(format!("{value:.2}"))
            .style(style)
    };
    let mut data: Vec<Bar> = lab
        .generations
        .iter()
        .filter(|g| lab.members.contains(&g.generation))
        .map(|g| bar(g.label.clone(), &g.metrics, theme.dim()))
        .collect();
    if let Some(e) = current {
        data.push(bar("Ensemble".into(), &e.metrics, theme.accent()));
    }
    if let Some(p) = &lab.pinned {
        data.push(bar("Pinned".into(), &p.metrics, theme.good()));
    }
    let note = match &lab.outcome {
        Outcome::Failed(e) => Some((format!("no ensemble: {e}"), theme.bad())),
        Outcome::Reading if language => Some((
            "reading target-token probabilities...".to_string(),
            theme.dim(),
        )),
        Outcome::Reading => Some(("reading logits...".to_string(), theme.dim())),
        Outcome::NoMembers | Outcome::Ready(_) if data.is_empty() => Some((
            "add generations to the ensemble with Space".to_string(),
            theme.dim(),
        )),
        Outcome::NoMembers | Outcome::Ready(_) => None,
    };
    let block = Block::bordered().title(bars_title);
    let inner = block.inner(bars);
    frame.render_widget(block, bars);
    let note: Vec<Line> = note.map_or_else(Vec::new, |(text, style)| {
        // Half the box at most: the bars keep the rest.
        let max_lines = (inner.height as usize / 2).max(1);
        wrap_lines(&text, inner.width as usize, max_lines)
            .into_iter()
            .map(|l| Line::styled(l, style))
            .collect()
    });
    let [note_area, chart] =
        Layout::vertical([Constraint::Length(note.len() as u16), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(Paragraph::new(note), note_area);
    if !data.is_empty() {
        frame.render_widget(
            BarChart::default()
                .direction(Direction::Horizontal)
                .bar_width(1)
                .bar_gap(0)
                .data(BarGroup::default().bars(&data)),
            chart,
        );
    }
}

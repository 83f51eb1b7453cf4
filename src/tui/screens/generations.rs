//! The Generations screen: every finished generation and ensemble with the task's metrics, the
//! change against the teacher and the paper's numbers, and what is still to train.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table, Wrap};

use crate::events::format_duration;
use crate::experiment::Experiment;
use crate::run_dir::records::{Metric, RunState, Scores, Task, generation_label};
use crate::tui::frame::{Theme, truncate};
use crate::tui::run_view::RunView;

/// "14.2k", "1.31M".
fn compact(n: usize) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

/// A metric's column on the Generations screen: header, width, decimals.
fn column(metric: Metric) -> (&'static str, u16, usize) {
    match metric {
        Metric::Top1Error => ("Top-1", 6, 2),
        Metric::Top5Error => ("Top-5", 6, 2),
        Metric::Nll => ("NLL", 6, 3),
        Metric::Ece => ("ECE", 6, 2),
        Metric::ValidationPerplexity => ("Val ppl", 8, 2),
        Metric::TestPerplexity => ("Test ppl", 8, 2),
        Metric::TestError => ("Err %", 6, 2),
    }
}

/// The column of the paper's value of a metric.
fn paper_column(metric: Metric) -> &'static str {
    match metric {
        Metric::ValidationPerplexity => "P val",
        Metric::TestPerplexity => "P test",
        _ => "Paper",
    }
}

/// The Generations screen, for either task: each generation and ensemble with the task's
/// metrics, the change of its primary metric against the teacher, and the paper's numbers.
pub fn draw(frame: &mut Frame, area: Rect, run: &RunView, theme: &Theme) {
    let task = run.task();
    let mut columns = vec![("Params", 7)];
    columns.extend(task.metrics().iter().map(|&m| {
        let (header, width, _) = column(m);
        (header, width)
    }));
    columns.push(("vs T", 6));
    columns.extend(task.paper_metrics().iter().map(|&m| (paper_column(m), 7)));
    columns.push(("Time", 6));
    let labels = run
        .generations
        .iter()
        .map(|g| g.label.as_str())
        .chain(run.ensembles.iter().map(|e| e.name.as_str()));
    let table = GenerationTable::new(area, run, &columns, labels);
    let teacher = run
        .generations
        .iter()
        .find(|g| g.generation == 0)
        .and_then(|g| g.metrics.get(&task.primary()).copied());
    let cells = |parameters: String,
                 metrics: &Scores,
                 paper: &Scores,
                 vs_teacher: bool,
                 time: String|
     -> Vec<String> {
        let mut cells = vec![parameters];
        for &m in task.metrics() {
            let (_, _, decimals) = column(m);
            cells.push(
                metrics
                    .get(&m)
                    .map_or_else(String::new, |v| format!("{v:.decimals$}")),
            );
        }
        cells.push(match (vs_teacher, teacher, metrics.get(&task.primary())) {
            (true, Some(t), Some(v)) => format!("{:+.2}", v - t),
            _ => String::new(),
        });
        for &m in task.paper_metrics() {
            cells.push(
                paper
                    .get(&m)
                    .map_or_else(String::new, |p| format!("{p:.2}")),
            );
        }
        cells.push(time);
        cells
    };
    let mut rows: Vec<Row> = Vec::new();
    for g in &run.generations {
        rows.push(Row::new(table.cells(
            &g.label,
            [&g.model, &g.control],
            cells(
                compact(g.parameters),
                &g.metrics,
                &g.paper,
                g.generation > 0,
                format_duration(g.train_seconds),
            ),
        )));
    }
    for e in &run.ensembles {
        let members: Vec<String> = e.members.iter().map(|&m| generation_label(m)).collect();
        let average = format!("mean {}", e.average);
        rows.push(
            Row::new(table.cells(
                &e.name,
                [&members.join("+"), &average],
                cells(String::new(), &e.metrics, &e.paper, true, String::new()),
            ))
            .style(theme.dim()),
        );
    }
    let mut notes = Vec::new();
    if !table.wide
        && let Experiment::Vision(spec) = &run.experiment
    {
        let student = if spec.student.is_some() {
            ""
        } else {
            " (born-again)"
        };
        notes.push(Line::raw(format!(
            "Teacher {} on labels; students {}{student} on {}.",
            spec.teacher,
            spec.student(),
            run.experiment.control_of(1)
        )));
    }
    notes.extend(pending_note(run, run.generations.len()));
    let gradients: Vec<String> = run
        .generations
        .iter()
        .filter_map(|g| {
            let split = run.gradient(g.generation)?;
            Some(format!(
                "{} {}, teacher wrong {:.0}%",
                g.label,
                super::run::gradient_fact(&split),
                100.0 * split.teacher_wrong
            ))
        })
        .collect();
    if !gradients.is_empty() {
        notes.push(Line::raw(format!(
            "Distillation gradient, last epoch: {}.",
            gradients.join("; ")
        )));
    }
    let samples = run
        .test_samples
        .map_or_else(|| "the".into(), |n| n.to_string());
    notes.push(Line::styled(
        match task {
            Task::Vision => format!(
                "Errors, ECE: % of {samples} test samples. NLL: nats. vs T: top-1 minus the teacher's. Paper: the paper's top-1."
            ),
            Task::Language => format!(
                "Perplexity of the best-validation checkpoint on {samples} test tokens. vs T: test perplexity minus the teacher's. P: the paper's. Err: next-token top-1."
            ),
        },
        theme.dim(),
    ));
    table.draw(frame, area, &columns, rows, notes, theme);
}

/// The Generations screen's table: the row name, then model and control where the terminal is
/// wide enough, then the task's columns; notes below it.
struct GenerationTable {
    wide: bool,
    title: String,
    /// The row name's column: as wide as the longest name, within its share of the width.
    row_width: u16,
}

/// The narrowest the Model column gets on a wide terminal.
const MODEL_MIN: u16 = 12;
/// The Control column's width on a wide terminal.
const CONTROL_WIDTH: u16 = 18;

impl GenerationTable {
    /// A table in `area` with the task's `columns` after the row names `labels` (and the model
    /// and control where there is room).
    fn new<'a>(
        area: Rect,
        run: &RunView,
        columns: &[(&str, u16)],
        labels: impl Iterator<Item = &'a str>,
    ) -> GenerationTable {
        let wide = area.width >= 110;
        let longest = labels.map(|l| l.chars().count()).max().unwrap_or(0);
        // What the other columns leave inside the borders, one space between columns: the row
        // names take up to that, within a third of the width, and never less than 9.
        let inner = area.width.saturating_sub(2);
        let mut fixed: u16 = columns.iter().map(|c| c.1 + 1).sum();
        if wide {
            fixed += MODEL_MIN + CONTROL_WIDTH + 2;
        }
        let share = inner.saturating_sub(fixed).min(inner / 3).max(9);
        let row_width = (longest as u16).clamp(9, share);
        GenerationTable {
            wide,
            title: format!(" Generations of {} ", run.name()),
            row_width,
        }
    }

    fn cells(&self, label: &str, model_and_control: [&str; 2], rest: Vec<String>) -> Vec<String> {
        let mut cells = vec![truncate(label, self.row_width as usize)];
        if self.wide {
            cells.extend(model_and_control.map(str::to_string));
        }
        cells.extend(rest);
        cells
    }

    fn draw(
        &self,
        frame: &mut Frame,
        area: Rect,
        columns: &[(&str, u16)],
        rows: Vec<Row>,
        notes: Vec<Line>,
        theme: &Theme,
    ) {
        let mut header = vec!["Row"];
        let mut constraints = vec![Constraint::Length(self.row_width)];
        if self.wide {
            header.extend(["Model", "Control"]);
            constraints.extend([Constraint::Fill(1), Constraint::Length(CONTROL_WIDTH)]);
        }
        header.extend(columns.iter().map(|c| c.0));
        constraints.extend(columns.iter().map(|c| Constraint::Length(c.1)));
        let width = area.width.max(1) as usize;
        let height: usize = notes.iter().map(|l| l.width().div_ceil(width).max(1)).sum();
        let [table, notes_area] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(height as u16)]).areas(area);
        frame.render_widget(
            Table::new(rows, constraints)
                .header(Row::new(header).style(theme.accent()))
                .block(Block::bordered().title(self.title.clone())),
            table,
        );
        frame.render_widget(Paragraph::new(notes).wrap(Wrap { trim: true }), notes_area);
    }
}

/// "BAN-2 training (epoch 3/10) · BAN-3 waiting" for the generations after the `finished`.
fn pending_note(run: &RunView, finished: usize) -> Option<Line<'static>> {
    let pending: Vec<String> = (finished..run.total_generations())
        .map(|k| match &run.current {
            Some(c) if c.generation == k => format!(
                "{} training (epoch {}/{})",
                generation_label(k),
                (run.current_epochs_done() + 1).min(run.epochs_per_generation()),
                run.epochs_per_generation()
            ),
            _ if run.state == RunState::Running => format!("{} waiting", generation_label(k)),
            _ => format!("{} not trained", generation_label(k)),
        })
        .collect();
    (!pending.is_empty()).then(|| Line::raw(pending.join(" · ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_counts() {
        assert_eq!(compact(999), "999");
        assert_eq!(compact(14_222), "14.2k");
        assert_eq!(compact(1_310_000), "1.31M");
    }
}

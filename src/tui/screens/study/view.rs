//! The Study screen's drawing: the seeds' progress, then the shown chain's table (each row's
//! value by seed, mean ± sd, 95% interval, and its paired difference against the reference row
//! with the t-test's p and Holm's correction of it) and a strip plot of its seeds on one axis,
//! beside the table where the terminal is wide enough, else below it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use super::{StudyView, seeds_line};
use crate::run_dir::records::Metric;
use crate::stats::McNemar;
use crate::study::results::{ALPHA, ChainStudy, StudyResults, StudyRow};
use crate::tui::frame::{Theme, truncate, wrap_lines};

/// The narrowest strip plot drawn beside the table rather than below it.
const PLOT_BESIDE_MIN: usize = 24;
/// Row names longer than this are cut.
const ROW_MAX: usize = 24;

pub fn draw(frame: &mut Frame, area: Rect, study: &StudyView, theme: &Theme) {
    let width = area.width as usize;
    let mut progress: Vec<Line> = wrap_lines(&seeds_line(&study.seeds), width, 2)
        .into_iter()
        .map(Line::raw)
        .collect();
    // Numbers shown stay until a later computation succeeds; why this one failed goes above.
    if study.results.is_some()
        && let Some(why) = &study.error
    {
        let why = format!("could not update the statistics: {why}");
        progress.extend(
            wrap_lines(&why, width, 2)
                .into_iter()
                .map(|l| Line::styled(l, theme.bad())),
        );
    }
    let [progress_area, rest] = Layout::vertical([
        Constraint::Length(progress.len() as u16),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(progress), progress_area);
    let chain = study
        .results
        .as_ref()
        .and_then(|r| Some((r, r.chains.get(study.chain)?)))
        .filter(|(_, chain)| !chain.rows.is_empty());
    let Some((results, chain)) = chain else {
        let text = match (&study.error, &study.results) {
            (Some(why), _) => format!("could not read the study: {why}"),
            (None, None) => "Reading the seeds' results...".into(),
            (None, Some(_)) => {
                "No seed has finished a generation yet: the rows appear as the seeds finish them."
                    .into()
            }
        };
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(format!(" Study {} ", study.plan.name))),
            rest,
        );
        return;
    };
    let table = ChainTable::new(results, chain, width, study.mcnemar);
    let plot_beside = width.saturating_sub(table.width()) >= PLOT_BESIDE_MIN + 2;
    let notes = notes(results, width, study.mcnemar, theme);
    let [body, notes_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(notes.len() as u16)]).areas(rest);
    // Header and borders around the rows.
    let height = chain.rows.len() as u16 + 3;
    let by_seed = if study.mcnemar {
        "McNemar p by seed".to_string()
    } else {
        format!("{} by seed", what(results.metric))
    };
    let mut title = format!(" {by_seed} · Δ against {} ", results.reference);
    if results.chains.len() > 1 {
        title = format!(
            " {} ({}/{}) ·{title}",
            chain.place,
            study.chain + 1,
            results.chains.len()
        );
    }
    if study.computing() {
        title.push_str("(computing…) ");
    }
    let plot = StripPlot::of(results, chain);
    if plot_beside {
        let [top, _] =
            Layout::vertical([Constraint::Length(height), Constraint::Fill(1)]).areas(body);
        let [table_area, plot_area] = Layout::horizontal([
            Constraint::Length(table.width() as u16),
            Constraint::Fill(1),
        ])
        .areas(top);
        table.draw(frame, table_area, title, theme);
        plot.draw(frame, plot_area, None, theme);
    } else {
        let [table_area, plot_area, _] = Layout::vertical([
            Constraint::Length(height),
            Constraint::Length(height),
            Constraint::Fill(1),
        ])
        .areas(body);
        table.draw(frame, table_area, title, theme);
        plot.draw(frame, plot_area, Some(table.row_width), theme);
    }
    frame.render_widget(Paragraph::new(notes), notes_area);
}

/// The metric as the title names it.
fn what(metric: Metric) -> &'static str {
    match metric {
        Metric::Top1Error => "Top-1 error %",
        Metric::Top5Error => "Top-5 error %",
        Metric::Nll => "NLL (nats)",
        Metric::Ece => "ECE %",
        Metric::ValidationPerplexity => "Validation perplexity",
        Metric::TestPerplexity => "Test perplexity",
        Metric::TestError => "Next-token error %",
    }
}

/// What the columns and the plot's marks mean, in as few lines as the width allows.
fn notes(results: &StudyResults, width: usize, mcnemar: bool, theme: &Theme) -> Vec<Line<'static>> {
    let reference = &results.reference;
    let by_seed = if mcnemar {
        format!(
            "Seeds: McNemar's exact test of the row's test-set predictions against \
             {reference}'s, p uncorrected (n: back to values). "
        )
    } else {
        String::new()
    };
    let text = format!(
        "{by_seed}Over the seeds: mean ± sd, 95% CI (Student's t); – none yet. Δ ref: row − \
         {reference} by seed; p (t): paired t-test; Holm: over {} comparisons; * Holm p < \
         {ALPHA}. • seed (2: two) ┼ mean ├─┤ CI ┊ {reference} mean.",
        results.comparisons
    );
    wrap_lines(&text, width, 4)
        .into_iter()
        .map(|l| Line::styled(l, theme.dim()))
        .collect()
}

fn p_value(p: Option<f64>) -> String {
    match p {
        None => "–".into(),
        Some(p) if p < 0.001 => "<0.001".into(),
        Some(p) => format!("{p:.3}"),
    }
}

fn signed(value: f64, metric: Metric) -> String {
    let text = metric.format(value);
    if value > 0.0 {
        format!("+{text}")
    } else {
        text
    }
}

/// One chain's table: the cells of every row, and each column's width.
struct ChainTable {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Which rows are significant after Holm, and which is the reference.
    marks: Vec<(bool, bool)>,
    widths: Vec<usize>,
    row_width: u16,
}

impl ChainTable {
    /// Per-seed columns where they fit in `width`, else one column of how many seeds have a
    /// value (the strip plot shows them).
    fn new(results: &StudyResults, chain: &ChainStudy, width: usize, mcnemar: bool) -> ChainTable {
        let with_seeds = ChainTable::build(results, chain, true, mcnemar);
        let mut table = if with_seeds.width() <= width {
            with_seeds
        } else {
            ChainTable::build(results, chain, false, mcnemar)
        };
        // Still too wide: the row names give way, down to a few characters.
        let excess = table.width().saturating_sub(width);
        table.widths[0] = table.widths[0].saturating_sub(excess).max(5);
        table.row_width = table.widths[0] as u16;
        for row in &mut table.rows {
            row[0] = truncate(&row[0], table.widths[0]);
        }
        table
    }

    fn build(
        results: &StudyResults,
        chain: &ChainStudy,
        per_seed: bool,
        mcnemar: bool,
    ) -> ChainTable {
        let mut header = vec!["Row".to_string()];
        if per_seed {
            header.extend(results.seeds.iter().map(|s| format!("seed {s}")));
        } else if mcnemar {
            header.push(format!("p<{ALPHA}"));
        } else {
            header.push("n".into());
        }
        header.extend(["mean ± sd", "95% CI", "Δ ref", "p (t)", "Holm", ""].map(String::from));
        let rows: Vec<Vec<String>> = chain
            .rows
            .iter()
            .map(|row| ChainTable::cells(results, row, per_seed, mcnemar))
            .collect();
        let marks = chain
            .rows
            .iter()
            .map(|row| {
                let significant = row.versus.as_ref().is_some_and(|v| v.significant());
                (significant, row.label == results.reference)
            })
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths[0] = widths[0].min(ROW_MAX);
        ChainTable {
            header,
            rows,
            marks,
            row_width: widths[0] as u16,
            widths,
        }
    }

    /// A row's cells. Per seed: the metric's value, or with `mcnemar` the p of McNemar's test
    /// against the reference; folded into one column: how many seeds have a value, or how
    /// many of those tested differ at `ALPHA`.
    fn cells(results: &StudyResults, row: &StudyRow, per_seed: bool, mcnemar: bool) -> Vec<String> {
        let metric = results.metric;
        let mut cells = vec![row.label.clone()];
        let tests: &[Option<McNemar>] = row.versus.as_ref().map_or(&[], |v| &v.mcnemar);
        let test = |i: usize| tests.get(i).copied().flatten();
        let reference = row.label == results.reference;
        match (per_seed, mcnemar) {
            (true, false) => cells.extend(
                row.values
                    .iter()
                    .map(|v| v.map_or("–".into(), |v| metric.format(v))),
            ),
            (true, true) => cells.extend((0..results.seeds.len()).map(|i| match test(i) {
                _ if reference => "ref".into(),
                Some(t) => p_value(Some(t.p)),
                None => "–".into(),
            })),
            (false, false) => {
                let n = row.values.iter().flatten().count();
                cells.push(format!("{n}/{}", row.values.len()));
            }
            (false, true) => {
                let tested: Vec<McNemar> = tests.iter().flatten().copied().collect();
                let differ = tested.iter().filter(|t| t.p < ALPHA).count();
                cells.push(if reference {
                    "ref".into()
                } else {
                    format!("{differ}/{}", tested.len())
                });
            }
        }
        let (mean, ci) = match row.summary {
            None => ("–".into(), "–".into()),
            Some(s) => (
                match s.sd {
                    Some(sd) => format!("{} ± {}", metric.format(s.mean), metric.format(sd)),
                    None => metric.format(s.mean),
                },
                s.ci95.map_or("–".into(), |(lo, hi)| {
                    format!("{}–{}", metric.format(lo), metric.format(hi))
                }),
            ),
        };
        cells.extend([mean, ci]);
        if row.label == results.reference {
            cells.extend(["ref".into(), String::new(), String::new(), String::new()]);
            return cells;
        }
        match &row.versus {
            Some(v) => cells.extend([
                signed(v.paired.mean, metric),
                p_value(v.paired.t_p),
                p_value(v.holm_p),
                if v.significant() { "*" } else { "" }.into(),
            ]),
            // No seed has both this row and the reference yet.
            None => cells.extend(["–".into(), String::new(), String::new(), String::new()]),
        }
        cells
    }

    /// Columns, one space between each, and the borders.
    fn width(&self) -> usize {
        self.widths.iter().sum::<usize>() + self.widths.len() - 1 + 2
    }

    fn draw(&self, frame: &mut Frame, area: Rect, title: String, theme: &Theme) {
        let last = self.widths.len() - 1;
        let rows: Vec<Row> = self
            .rows
            .iter()
            .zip(&self.marks)
            .map(|(cells, &(significant, reference))| {
                let cells = cells.iter().enumerate().map(|(i, c)| {
                    let style = if i == last && significant {
                        theme.accent()
                    } else {
                        Style::new()
                    };
                    Cell::from(Span::styled(c.clone(), style))
                });
                let row = Row::new(cells);
                if reference {
                    row.style(theme.accent())
                } else {
                    row
                }
            })
            .collect();
        let widths = self.widths.iter().map(|&w| Constraint::Length(w as u16));
        frame.render_widget(
            Table::new(rows, widths)
                .header(Row::new(self.header.clone()).style(theme.accent()))
                .block(Block::bordered().title(title)),
            area,
        );
    }
}

/// The seeds of every row of a chain as dots on one horizontal axis, with each row's mean and
/// 95% interval and a line at the reference row's mean.
struct StripPlot<'a> {
    metric: Metric,
    rows: &'a [StudyRow],
    /// The axis: every value and interval end of the chain, a little inside the edges.
    axis: Option<(f64, f64)>,
    reference_mean: Option<f64>,
}

/// What a character of the plot is, for its style.
#[derive(Clone, Copy, PartialEq)]
enum Mark {
    Blank,
    Reference,
    Interval,
    Mean,
    Seed,
}

impl<'a> StripPlot<'a> {
    fn of(results: &StudyResults, chain: &'a ChainStudy) -> StripPlot<'a> {
        let rows = &chain.rows;
        let ends = rows.iter().flat_map(|row| {
            let ci = row.summary.and_then(|s| s.ci95);
            row.values
                .iter()
                .flatten()
                .copied()
                .chain(ci.into_iter().flat_map(|(lo, hi)| [lo, hi]))
        });
        let finite: Vec<f64> = ends.filter(|v| v.is_finite()).collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Equal values still get a visible axis.
        let pad = ((hi - lo) * 0.03).max(hi.abs() * 1e-3).max(1e-6);
        let reference_mean = chain
            .rows
            .iter()
            .find(|r| r.label == results.reference)
            .and_then(|r| r.summary.map(|s| s.mean));
        StripPlot {
            metric: results.metric,
            rows,
            axis: (!finite.is_empty()).then_some((lo - pad, hi + pad)),
            reference_mean,
        }
    }

    /// The column of `value` on an axis `width` characters wide.
    fn column(&self, value: f64, width: usize) -> Option<usize> {
        let (lo, hi) = self.axis?;
        if !value.is_finite() || width == 0 {
            return None;
        }
        let x = (value - lo) / (hi - lo) * (width - 1) as f64;
        Some((x.round().max(0.0) as usize).min(width - 1))
    }

    /// One row's strip, `width` characters.
    fn strip(&self, row: &StudyRow, width: usize) -> Vec<(char, Mark)> {
        let ci = row.summary.and_then(|s| s.ci95);
        let mean = row.summary.map(|s| s.mean);
        let mut line = vec![(' ', Mark::Blank); width];
        if let Some(x) = self.reference_mean.and_then(|m| self.column(m, width)) {
            line[x] = ('┊', Mark::Reference);
        }
        if let Some((lo, hi)) = ci
            && let (Some(a), Some(b)) = (self.column(lo, width), self.column(hi, width))
        {
            for c in &mut line[a..=b] {
                *c = ('─', Mark::Interval);
            }
            line[a] = ('├', Mark::Interval);
            line[b] = ('┤', Mark::Interval);
        }
        if let Some(x) = mean.and_then(|m| self.column(m, width)) {
            line[x] = ('┼', Mark::Mean);
        }
        let mut counts = vec![0usize; width];
        for &v in row.values.iter().flatten() {
            if let Some(x) = self.column(v, width) {
                counts[x] += 1;
            }
        }
        for (c, &n) in line.iter_mut().zip(&counts) {
            match n {
                0 => {}
                1 => *c = ('•', Mark::Seed),
                2..=9 => *c = (char::from(b'0' + n as u8), Mark::Seed),
                _ => *c = ('+', Mark::Seed),
            }
        }
        line
    }

    /// The axis' ends and middle, `width` characters.
    fn axis_line(&self, width: usize) -> String {
        let Some((lo, hi)) = self.axis else {
            return String::new();
        };
        let mut line: Vec<char> = vec![' '; width];
        let mut put = |text: String, at: usize| {
            for (i, ch) in text.chars().enumerate() {
                if let Some(c) = line.get_mut(at + i) {
                    *c = ch;
                }
            }
        };
        let (lo_text, hi_text) = (self.metric.format(lo), self.metric.format(hi));
        let mid_text = self.metric.format((lo + hi) / 2.0);
        let (lo_len, hi_len, mid_len) = (
            lo_text.chars().count(),
            hi_text.chars().count(),
            mid_text.chars().count(),
        );
        if lo_len + hi_len + 1 > width {
            return String::new();
        }
        put(lo_text, 0);
        put(hi_text, width - hi_len);
        let mid = (width - mid_len) / 2;
        if mid > lo_len + 1 && mid + mid_len + 1 < width - hi_len {
            put(mid_text, mid);
        }
        line.into_iter().collect()
    }

    /// In `area`'s borders: the axis, then a strip per row; `labels` gives the row names that
    /// width first (below the table; beside it the table's rows name them).
    fn draw(&self, frame: &mut Frame, area: Rect, labels: Option<u16>, theme: &Theme) {
        let inner = area.width.saturating_sub(2) as usize;
        let label_width = labels.map_or(0, |w| w as usize + 1).min(inner);
        let width = inner - label_width;
        let mut lines = vec![Line::styled(
            format!("{}{}", " ".repeat(label_width), self.axis_line(width)),
            theme.dim(),
        )];
        for row in self.rows {
            let mut spans = Vec::new();
            if label_width > 0 {
                let label = truncate(&row.label, label_width - 1);
                spans.push(Span::raw(format!("{label:<0$} ", label_width - 1)));
            }
            let strip = self.strip(row, width);
            // Consecutive characters of one kind share a span.
            let mut run = String::new();
            let mut kind = Mark::Blank;
            for (ch, mark) in strip {
                if mark != kind && !run.is_empty() {
                    spans.push(Span::styled(std::mem::take(&mut run), style(kind, theme)));
                }
                kind = mark;
                run.push(ch);
            }
            spans.push(Span::styled(run, style(kind, theme)));
            lines.push(Line::from(spans));
        }
        frame.render_widget(
            Paragraph::new(lines).block(Block::bordered().title(" Seeds · mean · 95% CI ")),
            area,
        );
    }
}

fn style(mark: Mark, theme: &Theme) -> Style {
    match mark {
        Mark::Blank | Mark::Seed => Style::new(),
        Mark::Reference | Mark::Interval => theme.dim(),
        Mark::Mean => theme.accent(),
    }
}

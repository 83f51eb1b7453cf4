//! The Units screen's drawing: a line counting the units by state, a row per unit (state, host,
//! generation and epoch, a gauge of its epochs, ETA), what the unit under the cursor is doing in
//! a sentence (Enter follows it), and below it the table as the directory's results.md has it, its markdown tables
//! aligned in columns.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::{UnitProgress, UnitState, UnitsView, summary_line};
use crate::events::format_duration;
use crate::run_dir::records::generation_label;
use crate::tui::frame::{Theme, truncate, wrap_lines};

/// Unit ids longer than this are cut.
const ID_MAX: usize = 28;
/// Lines the table below the units keeps at least, where the body has them.
const TABLE_MIN: u16 = 8;

pub fn draw(frame: &mut Frame, area: Rect, view: &UnitsView, theme: &Theme) {
    let width = area.width as usize;
    let summary: Vec<Line> = wrap_lines(&summary_line(&view.units), width, 2)
        .into_iter()
        .map(Line::raw)
        .collect();
    let detail: Vec<Line> = view
        .units
        .get(view.cursor)
        .map(|unit| {
            wrap_lines(
                &format!("{}: {}", shown_id(unit), unit.describe()),
                width,
                2,
            )
        })
        .unwrap_or_default()
        .into_iter()
        .map(|l| Line::styled(l, theme.dim()))
        .collect();
    let fixed = (summary.len() + detail.len()) as u16;
    let room = area.height.saturating_sub(fixed);
    // Every unit where they fit with the table's lines below; else the cursor scrolls them.
    let wanted = view.units.len() as u16 + 3;
    let units_height = wanted.min(room.saturating_sub(TABLE_MIN).max(5)).min(room);
    let [summary_area, units_area, detail_area, table_area] = Layout::vertical([
        Constraint::Length(summary.len() as u16),
        Constraint::Length(units_height),
        Constraint::Length(detail.len() as u16),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(summary), summary_area);
    draw_units(frame, units_area, view, theme);
    frame.render_widget(Paragraph::new(detail), detail_area);
    draw_table(frame, table_area, view, theme);
}

/// A lone chain's unit has no directory of its own: it is the directory itself.
fn shown_id(unit: &UnitProgress) -> &str {
    if unit.id.is_empty() { "." } else { &unit.id }
}

fn draw_units(frame: &mut Frame, area: Rect, view: &UnitsView, theme: &Theme) {
    let width = area.width as usize;
    let id_width = view
        .units
        .iter()
        .map(|u| shown_id(u).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, ID_MAX);
    let epoch = |u: &UnitProgress| match (u.at, u.plan) {
        (Some((_, e)), Some(plan)) => format!("{e}/{}", plan.epochs),
        (Some((_, e)), None) => e.to_string(),
        _ => String::new(),
    };
    let eta = |u: &UnitProgress| match (&u.state, u.eta) {
        (UnitState::Running { .. }, Some(eta)) => format_duration(eta),
        _ => String::new(),
    };
    let longest = |f: &dyn Fn(&UnitProgress) -> String, header: &str| {
        view.units
            .iter()
            .map(|u| f(u).chars().count())
            .max()
            .unwrap_or(0)
            .max(header.chars().count())
    };
    let epoch_width = longest(&epoch, "Epoch");
    let eta_width = longest(&eta, "ETA");
    let (state_width, gen_width) = (7, 7);
    // The gauge grows with the terminal; the host takes what is left, at least a few columns
    // (the ids give way first, then the gauge).
    let mut bar = 10 + (width.saturating_sub(80) / 3).min(20);
    let fixed = |id: usize, bar: usize| {
        id + state_width + gen_width + epoch_width + bar + 5 + eta_width + 6 + 2
    };
    let mut id_width = id_width;
    while fixed(id_width, bar) + 8 > width && id_width > 8 {
        id_width -= 1;
    }
    while fixed(id_width, bar) + 8 > width && bar > 4 {
        bar -= 1;
    }
    let rows: Vec<Row> = view
        .units
        .iter()
        .map(|u| {
            let state_style = match u.state {
                UnitState::Done => theme.good(),
                UnitState::Running { .. } => theme.accent(),
                UnitState::Failed | UnitState::Stale { .. } => theme.bad(),
                UnitState::Stopped => Style::new(),
                UnitState::Waiting { .. } | UnitState::Ready => theme.dim(),
            };
            let generation = u.at.map_or(String::new(), |(k, _)| generation_label(k));
            // Nothing to show of a unit not begun, or ready with nothing done yet.
            let progress = match (&u.state, u.plan) {
                (UnitState::Done, _) => gauge(1.0, bar),
                (UnitState::Waiting { .. }, _) | (_, None) => String::new(),
                (UnitState::Ready, _) if u.fraction == 0.0 => String::new(),
                (_, Some(_)) => gauge(u.fraction, bar),
            };
            Row::new([
                Cell::from(truncate(shown_id(u), id_width)),
                Cell::from(u.state.word()).style(state_style),
                Cell::from(u.state.host().unwrap_or_default().to_string()),
                Cell::from(generation),
                Cell::from(epoch(u)),
                Cell::from(progress),
                Cell::from(eta(u)),
            ])
        })
        .collect();
    let widths = [
        Constraint::Length(id_width as u16),
        Constraint::Length(state_width as u16),
        Constraint::Fill(1),
        Constraint::Length(gen_width as u16),
        Constraint::Length(epoch_width as u16),
        Constraint::Length(bar as u16 + 5),
        Constraint::Length(eta_width as u16),
    ];
    let header = Row::new(["Unit", "State", "Host", "Gen", "Epoch", "Progress", "ETA"])
        .style(theme.accent());
    let mut state = TableState::default().with_selected(Some(view.cursor));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(header)
            .row_highlight_style(theme.selected())
            .block(Block::bordered().title(format!(" Units of {} ", view.dir.display()))),
        area,
        &mut state,
    );
}

/// "██████░░░░  60%": `fraction` of `width` cells, then the percentage.
fn gauge(fraction: f64, width: usize) -> String {
    let fraction = fraction.clamp(0.0, 1.0);
    let filled = ((fraction * width as f64).round() as usize).min(width);
    format!(
        "{}{} {:>3.0}%",
        "█".repeat(filled),
        "░".repeat(width - filled),
        (fraction * 100.0).floor()
    )
}

fn draw_table(frame: &mut Frame, area: Rect, view: &UnitsView, theme: &Theme) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let inner_height = area.height.saturating_sub(2) as usize;
    let Some(text) = &view.table else {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "No chain has finished yet: the table fills in as chains finish.",
                theme.dim(),
            ))
            .block(Block::bordered().title(" Table so far (results.md) ")),
            area,
        );
        return;
    };
    let lines = markdown_lines(text, inner_width, theme);
    let last_start = lines.len().saturating_sub(inner_height);
    let start = view.scroll.min(last_start);
    let mut title = " Table so far (results.md) ".to_string();
    if lines.len() > inner_height && inner_height > 0 {
        let end = (start + inner_height).min(lines.len());
        title = format!(
            " Table so far (results.md) · lines {}-{end} of {}, PgUp/PgDn ",
            start + 1,
            lines.len()
        );
    }
    let shown: Vec<Line> = lines.into_iter().skip(start).take(inner_height).collect();
    frame.render_widget(
        Paragraph::new(shown).block(Block::bordered().title(title)),
        area,
    );
}

/// The markdown of results.md for a terminal `width` wide: headings without their #, prose
/// wrapped, tables in aligned columns (cut at the edge, never wrapped), runs of blank lines as
/// one.
pub fn markdown_lines(text: &str, width: usize, theme: &Theme) -> Vec<Line<'static>> {
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut table: Vec<Vec<String>> = Vec::new();
    let flush = |table: &mut Vec<Vec<String>>, out: &mut Vec<Line<'static>>| {
        for (i, line) in aligned(table).into_iter().enumerate() {
            let style = if i == 0 { theme.accent() } else { Style::new() };
            out.push(Line::styled(truncate(&line, width), style));
        }
        table.clear();
    };
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with('|') {
            let cells = line
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            table.push(cells);
            continue;
        }
        flush(&mut table, &mut out);
        if line.is_empty() {
            if out.last().is_some_and(|l| l.width() > 0) {
                out.push(Line::raw(""));
            }
        } else if let Some(heading) = line.strip_prefix('#') {
            let heading = heading.trim_start_matches('#').trim();
            for l in wrap_lines(heading, width, 3) {
                out.push(Line::styled(l, theme.accent()));
            }
        } else {
            out.extend(wrap_lines(line, width, 6).into_iter().map(Line::raw));
        }
    }
    flush(&mut table, &mut out);
    while out.last().is_some_and(|l| l.width() == 0) {
        out.pop();
    }
    out
}

/// A markdown table's rows in columns two spaces apart; its separator row (---) as rules.
fn aligned(rows: &[Vec<String>]) -> Vec<String> {
    let rule = |cell: &str| !cell.is_empty() && cell.chars().all(|c| matches!(c, '-' | ':'));
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows.iter().filter(|r| !r.iter().all(|c| rule(c))) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let separator = row.iter().all(|c| rule(c));
            let cells: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, &w)| {
                    if separator {
                        "─".repeat(w)
                    } else {
                        let cell = row.get(i).map_or("", String::as_str);
                        format!("{cell:<w$}")
                    }
                })
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_fills_its_width_with_the_fraction() {
        assert_eq!(gauge(0.0, 4), "░░░░   0%");
        assert_eq!(gauge(0.5, 4), "██░░  50%");
        assert_eq!(gauge(1.0, 4), "████ 100%");
        assert_eq!(gauge(0.999, 4), "████  99%");
    }

    #[test]
    fn markdown_tables_are_aligned_and_prose_wrapped() {
        let theme = Theme::new(false);
        let text = "# A tiny table\n\nProfile `full`. Tiny.\n\n\n| Network | Teacher | BAN |\n|---|---|---|\n| CNN-4 | 60.50 | - |\n";
        let lines: Vec<String> = markdown_lines(text, 20, &theme)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "A tiny table",
                "",
                "Profile `full`.",
                "Tiny.",
                "",
                "Network  Teacher  B…",
                "───────  ───────  ─…",
                "CNN-4    60.50    -",
            ]
        );
    }
}

//! The Setup screen's drawing: the form, and beside it the preset's description, parameter
//! counts, cost and whether it can start.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::{Field, thousands};
use crate::tui::app::App;
use crate::tui::frame::Theme;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let setup = &app.setup;
    let form_height = Field::ALL.len() as u16 + 2;
    let [form, info] =
        Layout::vertical([Constraint::Length(form_height), Constraint::Fill(1)]).areas(area);
    let rows: Vec<Line> = Field::ALL
        .iter()
        .enumerate()
        .map(|(i, &field)| {
            let chosen = i == setup.field;
            let value = if chosen {
                format!("◂ {} ▸", setup.value(field))
            } else {
                format!("  {}  ", setup.value(field))
            };
            let mut spans = vec![
                Span::raw(if chosen { "▸ " } else { "  " }),
                Span::styled(
                    format!("{:<14}", field.label()),
                    if chosen { theme.accent() } else { Style::new() },
                ),
                Span::styled(
                    value,
                    if chosen {
                        theme.selected()
                    } else {
                        Style::new()
                    },
                ),
            ];
            let note = setup.note(field);
            if !note.is_empty() {
                spans.push(Span::styled(format!("  {note}"), theme.dim()));
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(
        Paragraph::new(rows).block(Block::bordered().title(" Experiment ")),
        form,
    );

    let preset = setup.presets.get(setup.preset);
    let mut lines = Vec::new();
    if let Some(Ok(spec)) = preset.map(|p| &p.spec)
        && !spec.description().is_empty()
    {
        lines.push(Line::raw(spec.description().to_string()));
    }
    if let Some(cost) = setup.check.cost {
        let flops = cost
            .flops
            .map_or_else(String::new, |f| format!(", {}", flops(f)));
        lines.push(Line::raw(format!(
            "Cost: {} training {} over all generations{flops}.",
            thousands(cost.samples as usize),
            cost.unit
        )));
    }
    let table = preset.is_some_and(|p| p.table);
    lines.push(match (&setup.check.spec, app.launching) {
        (_, true) => Line::styled("Starting...", theme.accent()),
        (Ok(_), false) => Line::styled("Ready: Enter starts.", theme.good()),
        // A table's chains are its own: the form has nothing of it to edit.
        (Err(why), false) if table => Line::styled(format!("Ready: {why}."), theme.good()),
        (Err(why), false) => Line::styled(format!("Cannot start: {why}"), theme.bad()),
    });
    let title = preset.map_or_else(
        || " No preset ".to_string(),
        |p| format!(" {} ", p.path.display()),
    );
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(title)),
        info,
    );
}

fn flops(f: f64) -> String {
    let (value, unit) = [(1e15, "PFLOP"), (1e12, "TFLOP"), (1e9, "GFLOP")]
        .into_iter()
        .find(|&(scale, _)| f >= scale)
        .map_or((f / 1e6, "MFLOP"), |(scale, unit)| (f / scale, unit));
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flops_in_their_unit() {
        assert_eq!(flops(4.2e11), "420.0 GFLOP");
        assert_eq!(flops(2.5e6), "2.5 MFLOP");
    }
}

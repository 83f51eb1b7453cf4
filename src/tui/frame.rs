//! Drawing: a pure function of [`App`]. The frame around every screen (tabs with the followed
//! run's state, the footer's keys, the help and confirmation overlays) and the theme; each
//! screen draws its body in its own module under `screens`. Every screen fits 80x24; below
//! [`MIN_WIDTH`] x [`MIN_HEIGHT`] a short message asks for a larger terminal instead.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, Paragraph, Tabs, Wrap};

use crate::run_dir::records::Task;

use super::app::{App, Overlay, Screen};
use super::run_view::RunView;
use super::screens::{ensembles, generations, run, runs, setup, study, units};

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 20;

/// Every key, by where it works: the help overlay lists them all.
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "Everywhere",
        "1-7, Tab",
        "switch screen (Study, Units: once one is open)",
    ),
    ("Everywhere", "?", "this help (any key closes it)"),
    (
        "Everywhere",
        "q, Ctrl-C",
        "quit; a run goes on (q asks; s stops it)",
    ),
    (
        "While training",
        "p, c",
        "pause / resume; cancel the run (asks first)",
    ),
    ("Setup", "Up/Down, j/k", "choose a field"),
    ("Setup", "Left/Right, h/l", "change its value"),
    (
        "Setup",
        "Enter",
        "start the experiment (vision or language)",
    ),
    ("Ensembles", "Up/Down, j/k", "move over the generations"),
    (
        "Ensembles",
        "Space",
        "add / remove the generation from the ensemble",
    ),
    ("Ensembles", "a", "switch probability / logit averaging"),
    (
        "Ensembles",
        "m, u",
        "pin the current ensemble to compare; unpin",
    ),
    (
        "Runs",
        "Up/Down, Enter",
        "open a run, study or units directory",
    ),
    ("Runs", "r", "rescan runs/"),
    (
        "Study",
        "r, m (R, M), n",
        "next (prev.) reference, metric; McNemar by seed",
    ),
    (
        "Study",
        "Up/Down, Enter",
        "choose a chain; follow its seed in training",
    ),
    (
        "Units",
        "Up/Down, Enter",
        "choose a unit; follow its run directory",
    ),
    ("Units", "PgUp/PgDn", "scroll the table below the units"),
    ("Language runs", "", "perplexity where vision shows error"),
    (
        "Language runs",
        "a",
        "off: only target probabilities are saved",
    ),
];

/// Styles under colour or NO_COLOR (modifiers only).
pub struct Theme {
    color: bool,
}

impl Theme {
    pub fn new(color: bool) -> Theme {
        Theme { color }
    }
    pub fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }
    pub fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn good(&self) -> Style {
        self.fg(Color::Green)
    }
    /// Colour (or, without colour, marker) of generation `k`'s curves.
    pub fn series(&self, k: usize) -> (Style, Marker, &'static str) {
        const COLORS: [Color; 6] = [
            Color::White,
            Color::Cyan,
            Color::Yellow,
            Color::Magenta,
            Color::Green,
            Color::LightRed,
        ];
        const MARKERS: [(Marker, &str); 4] = [
            (Marker::Braille, ""),
            (Marker::Dot, "• "),
            (Marker::Block, "█ "),
            (Marker::Bar, "▄ "),
        ];
        if self.color {
            (
                Style::new().fg(COLORS[k % COLORS.len()]),
                Marker::Braille,
                "",
            )
        } else {
            let (marker, symbol) = MARKERS[k % MARKERS.len()];
            (Style::new(), marker, symbol)
        }
    }
}

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let theme = Theme::new(app.color);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "Enlarge the terminal to at least {MIN_WIDTH}x{MIN_HEIGHT} (now {}x{}); q quits.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    // A status too long for one line takes a second rather than being cut.
    let status = app
        .status
        .as_deref()
        .map(|s| wrap_lines(s, area.width as usize, 2));
    let footer_height = status.as_ref().map_or(1, Vec::len).max(1) as u16;
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(footer_height),
    ])
    .areas(area);
    draw_header(frame, header, app, &theme);
    match app.screen {
        Screen::Setup => setup::view::draw(frame, body, app, &theme),
        Screen::Run => with_run(frame, body, app, |f, r, run| run::draw(f, r, run, &theme)),
        Screen::Generations => with_run(frame, body, app, |f, r, run| {
            generations::draw(f, r, run, &theme)
        }),
        Screen::Ensembles => with_run(frame, body, app, |f, r, _| {
            ensembles::draw(f, r, app, &theme)
        }),
        Screen::Runs => runs::draw(frame, body, &app.runs, &theme),
        Screen::Study => match &app.study {
            Some(s) => study::view::draw(frame, body, s, &theme),
            None => frame.render_widget(
                Paragraph::new("No study open: open a study directory on the Runs screen (5).")
                    .wrap(Wrap { trim: true })
                    .block(Block::bordered()),
                body,
            ),
        },
        Screen::Units => match &app.units {
            Some(u) => units::view::draw(frame, body, u, &theme),
            None => frame.render_widget(
                Paragraph::new("No units open: open a directory of units on the Runs screen (5).")
                    .wrap(Wrap { trim: true })
                    .block(Block::bordered()),
                body,
            ),
        },
    }
    draw_footer(frame, footer, app, status, &theme);
    match app.overlay {
        Some(Overlay::Help) => draw_help(frame, body, &theme),
        Some(Overlay::ConfirmCancel) => draw_confirm(
            frame,
            body,
            "Cancel the run?",
            "Training stops after this batch. Finished generations stay saved; the one in training is lost.",
            "y: yes    n / Esc: no",
            &theme,
        ),
        Some(Overlay::ConfirmQuit) => draw_confirm(
            frame,
            body,
            "Quit while training?",
            &format!(
                "The run goes on without this window; follow it again with: banbench tui {}",
                app.run
                    .as_ref()
                    .map_or_else(String::new, |r| r.dir.display().to_string())
            ),
            "Enter: leave it running    s: stop it    Esc: stay",
            &theme,
        ),
        None => {}
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let screens = app.screens();
    let titles: Vec<String> = screens
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} {}", i + 1, s.title()))
        .collect();
    let selected = screens.iter().position(|&s| s == app.screen).unwrap_or(0);
    // The run's (on the Study and Units screens the study's and the units') name and state get
    // what the tabs leave, cut short rather than over them.
    let tabs_width: usize = titles.iter().map(|t| t.chars().count() + 3).sum();
    let room = (area.width as usize).saturating_sub(tabs_width);
    let run = match (app.screen, &app.study, &app.units) {
        (Screen::Study, Some(s), _) => run_label(&s.plan.name, &s.state_text(), room),
        (Screen::Units, _, Some(u)) => run_label(&u.name(), &u.state_text(), room),
        _ => app
            .run
            .as_ref()
            .map(|r| run_label(r.name(), &r.state_text(), room))
            .unwrap_or_default(),
    };
    let [tabs, right] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(run.chars().count() as u16),
    ])
    .areas(area);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(theme.selected())
            .padding(" ", " ")
            .divider("│"),
        tabs,
    );
    frame.render_widget(
        Paragraph::new(run)
            .style(theme.accent())
            .alignment(Alignment::Right),
        right,
    );
}

/// `text` in at most `width` columns: whole when it fits, else cut with "…".
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    match width {
        0 => String::new(),
        _ => text.chars().take(width - 1).chain(['…']).collect(),
    }
}

/// "NAME STATE " in at most `room` columns. When that is too long the name gets what the
/// state leaves, but at least a third of them (the state then cut), each cut with "…"; with no
/// room for both, the state alone.
fn run_label(name: &str, state: &str, room: usize) -> String {
    let full = format!("{name} {state} ");
    if full.chars().count() <= room {
        return full;
    }
    let left_by_state = room.saturating_sub(state.chars().count() + 2);
    let name_room = name
        .chars()
        .count()
        .min((room / 3).max(4).max(left_by_state));
    let state_room = room.saturating_sub(name_room + 2);
    if state_room >= 6 {
        return format!(
            "{} {} ",
            truncate(name, name_room),
            truncate(state, state_room)
        );
    }
    match room {
        0 => String::new(),
        _ => format!("{} ", truncate(state, room - 1)),
    }
}

/// `text` wrapped at spaces (a word longer than `width` is split) into at most `max_lines`
/// lines of `width` columns; the last is cut with "…" when more is left.
pub fn wrap_lines(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut word: Vec<char> = word.chars().collect();
        let len = line.chars().count();
        if len > 0 && len + 1 + word.len() <= width {
            line.push(' ');
            line.extend(&word);
            continue;
        }
        if len > 0 {
            lines.push(std::mem::take(&mut line));
        }
        while word.len() > width {
            lines.push(word.drain(..width).collect());
        }
        line = word.into_iter().collect();
    }
    if !line.is_empty() {
        lines.push(line);
    }
    if lines.len() > max_lines {
        let rest = lines.split_off(max_lines - 1).join(" ");
        lines.push(truncate(&rest, width));
    }
    lines
}

/// The status (`status`: its wrapped lines) or the screen's keys.
fn draw_footer(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    status: Option<Vec<String>>,
    theme: &Theme,
) {
    let lines = match status {
        Some(status) => status
            .into_iter()
            .map(|l| Line::styled(l, theme.accent()))
            .collect(),
        None => {
            let hint = match app.screen {
                Screen::Setup => "Up/Down field  Left/Right value  Enter start",
                Screen::Run if app.run.as_ref().is_some_and(RunView::is_live_running) => {
                    "p pause  c cancel"
                }
                Screen::Ensembles
                    if app.run.as_ref().is_some_and(|r| r.task() == Task::Language) =>
                {
                    "Space toggle  m pin  u unpin"
                }
                Screen::Ensembles => "Space toggle  a averaging  m pin  u unpin",
                Screen::Runs => "Enter open  r rescan",
                Screen::Study if app.study.as_ref().is_some_and(|s| s.plan.places.len() > 1) => {
                    "r/R reference  m/M metric  n McNemar  Up/Down chain  Enter follow seed"
                }
                Screen::Study => "r/R reference  m/M metric  n McNemar  Enter follow seed",
                Screen::Units => "Up/Down unit  Enter follow  PgUp/PgDn table",
                Screen::Run | Screen::Generations => "",
            };
            vec![Line::styled(
                format!(
                    "{hint}{}? help  q quit",
                    if hint.is_empty() { "" } else { "  " }
                ),
                theme.dim(),
            )]
        }
    };
    frame.render_widget(Paragraph::new(lines), area);
}

/// Draws a screen that shows a run, or says how to get one.
fn with_run(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    draw: impl FnOnce(&mut Frame, Rect, &RunView),
) {
    match &app.run {
        Some(run) => draw(frame, area, run),
        None => {
            let text = if app.launching {
                "Starting the run process..."
            } else {
                "No run yet. Start one on the Setup screen (1), or open a run directory on the Runs screen (5)."
            };
            frame.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: true })
                    .block(Block::bordered()),
                area,
            );
        }
    }
}

/// A centred rectangle of at most `width` x `height` inside `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_help(frame: &mut Frame, area: Rect, theme: &Theme) {
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|&(place, key, what)| {
            Line::from(vec![
                Span::styled(format!("{place:<15}"), theme.accent()),
                Span::raw(format!("{key:<16}{what}")),
            ])
        })
        .collect();
    let rect = centered(area, 100, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys (any key closes) ")),
        rect,
    );
}

fn draw_confirm(frame: &mut Frame, area: Rect, title: &str, text: &str, keys: &str, theme: &Theme) {
    let rect = centered(area, 60, 8);
    let body = Text::from(vec![
        Line::raw(text.to_string()),
        Line::raw(""),
        Line::styled(keys.to_string(), theme.accent()),
    ]);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(body)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(format!(" {title} "))),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_cuts_with_an_ellipsis_only_when_needed() {
        assert_eq!(truncate("Teacher+BAN-1", 13), "Teacher+BAN-1");
        assert_eq!(truncate("Teacher+BAN-1", 9), "Teacher+…");
        assert_eq!(truncate("abc", 1), "…");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn the_run_label_cuts_the_name_before_the_state() {
        let long = "cifar100-densenet-teacher-with-five-born-again-generations";
        assert_eq!(run_label("tiny", "running", 23), "tiny running ");
        assert_eq!(run_label(long, "running", 23), "cifar100-dens… running ");
        assert_eq!(
            run_label(long, "stale: owner gone 3m ago", 23),
            "cifar1… stale: owner … "
        );
        assert_eq!(
            run_label("tiny", "stale: owner gone 3m ago", 23),
            "tiny stale: owner gon… "
        );
        assert_eq!(run_label(long, "running", 8), "running ");
        assert_eq!(run_label(long, "running", 5), "run… ");
        assert_eq!(run_label(long, "running", 0), "");
        for room in 0..40 {
            let label = run_label(long, "stale: owner gone 3m ago", room);
            assert!(label.chars().count() <= room, "{room}: {label:?}");
        }
    }

    #[test]
    fn wrap_lines_breaks_at_spaces_and_cuts_the_last_line() {
        assert_eq!(wrap_lines("a bc def", 4, 3), ["a bc", "def"]);
        assert_eq!(wrap_lines("abcdefghij", 4, 3), ["abcd", "efgh", "ij"]);
        assert_eq!(
            wrap_lines("one two three four", 7, 2),
            ["one two", "three …"]
        );
        assert_eq!(wrap_lines("fits", 10, 2), ["fits"]);
        assert!(wrap_lines("", 10, 2).is_empty());
    }
}

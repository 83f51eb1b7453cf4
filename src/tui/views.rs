//! Drawing: a pure function of [`App`]. Every screen fits 80x24; below [`MIN_WIDTH`] x
//! [`MIN_HEIGHT`] a short message asks for a larger terminal instead.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Axis, Bar, BarChart, BarGroup, Block, Chart, Clear, Dataset, GraphType, LegendPosition,
    LineGauge, List, ListItem, ListState, Paragraph, Row, Table, TableState, Tabs, Wrap,
};

use crate::events::format_duration;
use crate::experiment::Experiment;
use crate::run_dir::records::{EpochRecord, Metric, RunState, Scores, Task, generation_label};
use crate::spec::Averaging;

use super::app::{App, Overlay, Screen};
use super::ensembles::{Ensemble, Outcome};
use super::run_view::RunView;
use super::setup::{Field, thousands};

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 20;

/// Every key, by where it works: the help overlay lists them all.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("Everywhere", "1-5, Tab", "switch screen"),
    ("Everywhere", "?", "this help (any key closes it)"),
    (
        "Everywhere",
        "q",
        "quit; a training run goes on (asks: s stops it)",
    ),
    (
        "Everywhere",
        "Ctrl-C",
        "quit at once; a training run goes on",
    ),
    ("While training", "p", "pause / resume"),
    (
        "While training",
        "c",
        "cancel the run (asks; finished ones stay saved)",
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
    ("Ensembles", "m", "pin the current ensemble to compare"),
    ("Ensembles", "u", "unpin"),
    ("Runs", "Up/Down, j/k", "choose a run directory"),
    ("Runs", "Enter", "open it (a running one is followed live)"),
    ("Runs", "r", "rescan runs/"),
    ("Language runs", "", "perplexity where vision shows error"),
    (
        "Language runs",
        "a",
        "off: only target probabilities are saved",
    ),
];

/// Styles under colour or NO_COLOR (modifiers only).
struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }
    fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        }
    }
    fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    fn good(&self) -> Style {
        self.fg(Color::Green)
    }
    /// Colour (or, without colour, marker) of generation `k`'s curves.
    fn series(&self, k: usize) -> (Style, Marker, &'static str) {
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
    let theme = Theme { color: app.color };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "Enlarge the terminal to at least {MIN_WIDTH}x{MIN_HEIGHT} (now {}x{}); q quits.",
            area.width, area.height
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app, &theme);
    match app.screen {
        Screen::Setup => draw_setup(frame, body, app, &theme),
        Screen::Run => with_run(frame, body, app, |f, r, run| draw_run(f, r, run, &theme)),
        Screen::Generations => with_run(frame, body, app, |f, r, run| {
            draw_generations(f, r, run, &theme)
        }),
        Screen::Ensembles => with_run(frame, body, app, |f, r, _| {
            draw_ensembles(f, r, app, &theme)
        }),
        Screen::Runs => draw_runs(frame, body, app, &theme),
    }
    draw_footer(frame, footer, app, &theme);
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
    let titles: Vec<String> = Screen::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} {}", i + 1, s.title()))
        .collect();
    let selected = Screen::ALL
        .iter()
        .position(|&s| s == app.screen)
        .unwrap_or(0);
    // The run's name and state get what the tabs leave, cut short rather than over them.
    let tabs_width: usize = titles.iter().map(|t| t.chars().count() + 3).sum();
    let room = (area.width as usize).saturating_sub(tabs_width);
    let mut run = app
        .run
        .as_ref()
        .map(|r| format!("{} {} ", r.name(), r.state_text()))
        .unwrap_or_default();
    if run.chars().count() > room {
        run = run.chars().take(room.saturating_sub(2)).collect::<String>() + "… ";
    }
    let [tabs, right] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(run.chars().count().min(room) as u16),
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

fn draw_footer(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let line = match &app.status {
        Some(status) => Line::styled(status.clone(), theme.accent()),
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
                Screen::Run | Screen::Generations => "",
            };
            Line::styled(
                format!(
                    "{hint}{}? help  q quit",
                    if hint.is_empty() { "" } else { "  " }
                ),
                theme.dim(),
            )
        }
    };
    frame.render_widget(Paragraph::new(line), area);
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

fn draw_setup(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
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
    lines.push(match (&setup.check.spec, app.launching) {
        (_, true) => Line::styled("Starting...", theme.accent()),
        (Ok(_), false) => Line::styled("Ready: Enter starts.", theme.good()),
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

fn draw_run(frame: &mut Frame, area: Rect, run: &RunView, theme: &Theme) {
    let [charts, gauges, log] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(4),
        Constraint::Length(5),
    ])
    .areas(area);
    let points = |f: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(usize, f64, f64)> {
        run.epochs
            .iter()
            .filter_map(|r| Some((r.generation, r.epoch as f64, f(r)?)))
            .collect()
    };
    // A language run adds a validation curve: its generations are selected on it.
    let panes = if run.task() == Task::Language { 3 } else { 2 };
    let areas = Layout::horizontal(vec![Constraint::Ratio(1, panes); panes as usize]).split(charts);
    draw_curves(
        frame,
        areas[0],
        run,
        " Train loss ",
        points(&|r| Some(r.train_loss)),
        theme,
    );
    match run.task() {
        Task::Language => {
            let validation = points(&|r| r.validation_perplexity);
            draw_curves(
                frame,
                areas[1],
                run,
                " Validation perplexity ",
                validation,
                theme,
            );
            let test = points(&|r| r.test_perplexity);
            draw_curves(frame, areas[2], run, " Test perplexity ", test, theme);
        }
        Task::Vision => {
            let error = points(&|r| Some(r.test_error));
            draw_curves(frame, areas[1], run, " Test error % ", error, theme);
        }
    }
    draw_gauges(frame, gauges, run, theme);
    let shown = log.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = run.log[run.log.len().saturating_sub(shown)..]
        .iter()
        .map(|l| Line::raw(l.clone()))
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Log ")),
        log,
    );
}

fn draw_curves(
    frame: &mut Frame,
    area: Rect,
    run: &RunView,
    title: &str,
    points: Vec<(usize, f64, f64)>,
    theme: &Theme,
) {
    let block = Block::bordered().title(title.to_string());
    let mut series: Vec<(usize, Vec<(f64, f64)>)> = Vec::new();
    for (generation, epoch, value) in points {
        let point = (epoch, value);
        match series.iter_mut().find(|(k, _)| *k == generation) {
            Some((_, points)) => points.push(point),
            None => series.push((generation, vec![point])),
        }
    }
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .filter(|y| y.is_finite())
        .collect();
    if values.is_empty() {
        frame.render_widget(
            Paragraph::new("no epoch has finished yet")
                .style(theme.dim())
                .block(block),
            area,
        );
        return;
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // A flat curve still gets a visible range.
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 0.01).max(1e-3);
    let (lo, hi) = ((lo - pad).max(0.0), hi + pad);
    let epochs = run.epochs_per_generation().max(1) as f64;
    let datasets: Vec<Dataset> = series
        .iter()
        .map(|(k, points)| {
            let (style, marker, symbol) = theme.series(*k);
            Dataset::default()
                .name(format!("{symbol}{}", generation_label(*k)))
                .marker(marker)
                .graph_type(GraphType::Line)
                .style(style)
                .data(points)
        })
        .collect();
    let label = |v: f64| format!("{v:.2}");
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([0.0, epochs])
                .labels(["0".to_string(), format!("{epochs} ep")])
                .style(theme.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels([label(lo), label(hi)])
                .style(theme.dim()),
        )
        .legend_position(Some(LegendPosition::TopRight))
        .hidden_legend_constraints((Constraint::Ratio(1, 1), Constraint::Ratio(1, 1)));
    frame.render_widget(chart, area);
}

fn draw_gauges(frame: &mut Frame, area: Rect, run: &RunView, theme: &Theme) {
    let epochs = run.epochs_per_generation();
    let generations = run.total_generations();
    let epoch_text = match (&run.current, &run.progress) {
        (Some(c), Some(p)) if p.generation == c.generation => {
            format!(
                "epoch {}/{epochs}, batch {}/{}",
                p.epoch, p.batch, p.batches
            )
        }
        (Some(_), _) => format!(
            "epoch {}/{epochs}",
            (run.current_epochs_done() + 1).min(epochs)
        ),
        (None, _) => "-".into(),
    };
    let generation_text = match &run.current {
        Some(c) => format!(
            "{} ({}/{generations})",
            generation_label(c.generation),
            c.generation + 1
        ),
        None => format!("{}/{generations} done", run.generations.len()),
    };
    let eta = match run.eta {
        Some(eta) if run.state == RunState::Running => format!(", ETA {}", format_duration(eta)),
        _ => String::new(),
    };
    let run_text = format!("{:.0}%{eta}", 100.0 * run.run_fraction());
    let rows = Layout::vertical([Constraint::Length(1); 4]).split(area);
    for (i, (name, ratio, text)) in [
        ("Epoch", run.epoch_fraction(), epoch_text),
        ("Generation", run.generation_fraction(), generation_text),
        ("Run", run.run_fraction(), run_text),
    ]
    .into_iter()
    .enumerate()
    {
        let [label, gauge, detail] = Layout::horizontal([
            Constraint::Length(11),
            Constraint::Fill(1),
            Constraint::Length(32),
        ])
        .areas(rows[i]);
        frame.render_widget(Paragraph::new(name), label);
        frame.render_widget(
            LineGauge::default()
                .ratio(ratio.clamp(0.0, 1.0))
                .filled_symbol("━")
                .unfilled_symbol("─")
                .filled_style(theme.accent())
                .unfilled_style(theme.dim())
                .label(""),
            gauge,
        );
        frame.render_widget(Paragraph::new(format!(" {text}")), detail);
    }
    let mut facts = Vec::new();
    if let Some(ips) = run.samples_per_sec() {
        facts.push(format!("{ips:.0} {}", run.task().sample_unit()));
    }
    if let Some(lr) = run.learning_rate() {
        facts.push(format!("lr {lr:.4}"));
    }
    if !run.device.is_empty() {
        facts.push(format!("device {}", run.device));
    }
    if let Some(c) = &run.current {
        let params = if c.parameters > 0 {
            format!(", {} params", thousands(c.parameters))
        } else {
            String::new()
        };
        facts.push(format!("{}{params}, {}", c.model, c.control));
    }
    let mut line = vec![Span::raw(facts.join(" · "))];
    if let Some(error) = &run.error {
        line = vec![Span::styled(format!("failed: {error}"), theme.bad())];
    } else if run.paused() {
        line.push(Span::styled("  PAUSED (p resumes)", theme.bad()));
    }
    frame.render_widget(Paragraph::new(Line::from(line)), rows[3]);
}

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
fn draw_generations(frame: &mut Frame, area: Rect, run: &RunView, theme: &Theme) {
    let task = run.task();
    let table = GenerationTable::new(area, run);
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
        let average = format!("mean {}", averaging(e.average));
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
    let mut columns = vec![("Params", 7)];
    columns.extend(task.metrics().iter().map(|&m| {
        let (header, width, _) = column(m);
        (header, width)
    }));
    columns.push(("vs T", 6));
    columns.extend(task.paper_metrics().iter().map(|&m| (paper_column(m), 7)));
    columns.push(("Time", 6));
    table.draw(frame, area, &columns, rows, notes, theme);
}

/// The Generations screen's table: the row name, then model and control where the terminal is
/// wide enough, then the task's columns; notes below it.
struct GenerationTable {
    wide: bool,
    title: String,
}

impl GenerationTable {
    fn new(area: Rect, run: &RunView) -> GenerationTable {
        GenerationTable {
            wide: area.width >= 110,
            title: format!(" Generations of {} ", run.name()),
        }
    }

    fn cells(&self, label: &str, model_and_control: [&str; 2], rest: Vec<String>) -> Vec<String> {
        let mut cells = vec![label.to_string()];
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
        let mut constraints = vec![Constraint::Length(9)];
        if self.wide {
            header.extend(["Model", "Control"]);
            constraints.extend([Constraint::Fill(1), Constraint::Length(18)]);
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

fn averaging(a: Averaging) -> &'static str {
    match a {
        Averaging::Probabilities => "probabilities",
        Averaging::Logits => "logits",
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
fn draw_ensembles(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
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
    let status = match &lab.outcome {
        Outcome::NoMembers => "Space adds the generation under the cursor".to_string(),
        Outcome::Reading if language => "reading target-token probabilities...".to_string(),
        Outcome::Reading => "reading logits...".to_string(),
        Outcome::Failed(e) => e.clone(),
        Outcome::Ready(_) => String::new(),
    };
    let text =
        |e: Option<&Ensemble>, f: &dyn Fn(&Ensemble) -> String| e.map_or_else(String::new, f);
    let mut rows = vec![
        Row::new([
            "Members".to_string(),
            if current.is_some() {
                text(current, &|e| members_label(&e.members))
            } else {
                status
            },
            text(lab.pinned.as_ref(), &|e| members_label(&e.members)),
        ]),
        Row::new([
            "Averaging".to_string(),
            averaging(lab.average).to_string(),
            text(lab.pinned.as_ref(), &|e| averaging(e.average).to_string()),
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
    let block = Block::bordered().title(bars_title);
    if data.is_empty() {
        frame.render_widget(
            Paragraph::new("add generations to the ensemble with Space")
                .style(theme.dim())
                .block(block),
            bars,
        );
    } else {
        frame.render_widget(
            BarChart::default()
                .block(block)
                .direction(Direction::Horizontal)
                .bar_width(1)
                .bar_gap(0)
                .data(BarGroup::default().bars(&data)),
            bars,
        );
    }
}

fn draw_runs(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let block = Block::bordered().title(" Run directories under runs/ ");
    if app.runs.is_empty() {
        frame.render_widget(
            Paragraph::new("No run directories under runs/ (r rescans). `banbench run` and the Setup screen write them there.")
                .wrap(Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let rows: Vec<Row> = app
        .runs
        .iter()
        .map(|r| {
            Row::new([
                r.name.clone(),
                r.state
                    .map_or_else(|| "started".to_string(), |s| s.to_string()),
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
    let mut state = TableState::default().with_selected(Some(app.runs_cursor));
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(Row::new(["Name", "State", "Gens", "Directory"]).style(theme.accent()))
            .row_highlight_style(theme.selected())
            .block(block),
        area,
        &mut state,
    );
}

/// A centred rectangle of at most `width` x `height` inside `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
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
    fn compact_and_flops() {
        assert_eq!(compact(999), "999");
        assert_eq!(compact(14_222), "14.2k");
        assert_eq!(compact(1_310_000), "1.31M");
        assert_eq!(flops(4.2e11), "420.0 GFLOP");
        assert_eq!(flops(2.5e6), "2.5 MFLOP");
    }
}

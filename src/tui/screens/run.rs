//! The Run screen: train-loss and test curves per generation (validation and test perplexity
//! for a language model), gauges for the epoch, the generation and the run with its ETA, and
//! the log. Its keys (p, c) act on the followed run and live in `app`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Chart, Dataset, GraphType, LegendPosition, LineGauge, Paragraph,
};

use crate::events::format_duration;
use crate::gpu::GpuReading;
use crate::run_dir::records::{EpochRecord, GradientSplit, RunState, Task, generation_label};
use crate::tui::frame::Theme;
use crate::tui::run_view::RunView;
use crate::tui::screens::setup::thousands;

pub fn draw(frame: &mut Frame, area: Rect, run: &RunView, theme: &Theme) {
    // The last epoch's time split gets a line under the gauges once there is one, and a run
    // on a GPU its utilisation and memory.
    let gauge_lines = 4 + u16::from(run.epoch_time().is_some()) + u16::from(run.gpu.is_some());
    let [charts, gauges, log] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(gauge_lines),
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
            let error = points(&|r| r.test_error);
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
    let epochs = run.most_epochs().max(1) as f64;
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
    let stage = run
        .current_stage()
        .map_or(String::new(), |name| format!(" {name}"));
    let epoch_text = match (&run.current, &run.progress) {
        (Some(c), Some(p)) if p.generation == c.generation => {
            format!(
                "epoch {}/{epochs}{stage}, batch {}/{}",
                p.epoch, p.batch, p.batches
            )
        }
        (Some(_), _) => format!(
            "epoch {}/{epochs}{stage}",
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
    let rows = Layout::vertical(vec![Constraint::Length(1); area.height as usize]).split(area);
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
    if let Some(g) = run
        .current
        .as_ref()
        .and_then(|c| run.gradient(c.generation))
    {
        facts.push(gradient_fact(&g));
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
    let extra = [
        run.epoch_time()
            .map(|time| format!("last epoch {}", time.describe())),
        run.gpu.as_ref().map(GpuReading::describe),
    ];
    for (text, row) in extra.into_iter().flatten().zip(rows.iter().skip(4)) {
        frame.render_widget(Paragraph::new(Span::styled(text, theme.dim())), *row);
    }
}

/// The distillation gradient in a few words: the share of its squared size off the true class
/// (dark knowledge) and its cosine with the label gradient.
pub fn gradient_fact(g: &GradientSplit) -> String {
    let share = g
        .dark_share
        .map_or("-".into(), |s| format!("{:.0}%", 100.0 * s));
    let cosine = g
        .cosine_with_label
        .map_or("-".into(), |c| format!("{c:.2}"));
    format!("dark {share}, cos(label) {cosine}")
}

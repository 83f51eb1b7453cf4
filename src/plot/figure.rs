//! The two kinds of figure banbench draws, as SVG text: lines over epochs (training curves, the
//! gradient split) and rows of per-seed dots with their mean and interval (a study). Sized and
//! lettered for a paper draft: 800 x 500 px, 14.5 px tick labels, 16 px axis names, a legend.

use std::ops::Range;

use anyhow::Result;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::layout::{along, epoch_ticks, legend_place, padded, seed_colour, spread};

const SIZE: (u32, u32) = (800, 500);
const FONT: &str = "sans-serif";
// Font sizes as plotters takes them; it writes 1/1.24 of each into the SVG (14.5, 16, 19 and
// 13.7 px).
const TICKS: f64 = 18.0;
const AXIS_NAMES: f64 = 20.0;
const CAPTION: f64 = 24.0;
const LEGEND: f64 = 17.0;

/// One line of an [`EpochFigure`].
pub struct Series {
    pub label: String,
    pub colour: RGBColor,
    /// Dashed, for the second quantity of a generation drawn in the same colour.
    pub dashed: bool,
    /// (epoch, value), in epoch order.
    pub points: Vec<(f64, f64)>,
}

/// Lines over the epochs of each generation.
pub struct EpochFigure {
    pub title: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// One row of a [`RowFigure`]: a generation or ensemble over the seeds.
pub struct Row {
    pub label: String,
    /// One per seed that has a value.
    pub dots: Vec<f64>,
    pub mean: f64,
    /// The 95% interval of the mean; none with a single seed.
    pub ci95: Option<(f64, f64)>,
    /// Written above the interval (a p-value).
    pub note: Option<String>,
}

/// Per-seed dots with the mean and its interval, row by row.
pub struct RowFigure {
    pub title: String,
    pub y_label: String,
    pub rows: Vec<Row>,
    /// A dashed line at 0, for differences.
    pub zero_line: bool,
}

/// An axis ticked exactly at `ticks` (whole epochs, a strip plot's rows), where plotters' own
/// would choose round numbers between them. Its values are formatted by the figure.
struct Ticked {
    axis: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(range: Range<f64>, ticks: Vec<f64>) -> Ticked {
        Ticked {
            axis: range.into(),
            ticks,
        }
    }
}

impl Ranged for Ticked {
    // Required of an axis that draws labels; every figure replaces it with a formatter.
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.axis.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.axis.range()
    }
}

/// The frame every figure shares: white, its title above, room for the axes' labels.
fn chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    title: &str,
    x: Ticked,
    y: Range<f64>,
) -> Result<ChartContext<'a, SVGBackend<'b>, Cartesian2d<Ticked, RangedCoordf64>>> {
    root.fill(&WHITE)?;
    Ok(ChartBuilder::on(root)
        .caption(title, (FONT, CAPTION))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(x, y)?)
}

/// The plotting area inside [`SIZE`], less the margins, the title and the axes' label areas
/// (measured in the SVGs written: 677 x 377 px).
const PLOT_AREA: (f64, f64) = (677.0, 377.0);

/// The legend's size as fractions of the plotting area, by plotters' own estimate of text (0.7
/// em per byte, em = size / 1.24²) with its keys, margins and distance from the frame.
fn legend_size(labels: &[&str]) -> (f64, f64) {
    let widest = labels.iter().map(|l| l.len()).max().unwrap_or(0);
    let em = LEGEND / 1.24 / 1.24;
    let width = 0.7 * em * widest as f64 + 62.0;
    let height = 22.0 * labels.len() as f64 + 24.0;
    (width / PLOT_AREA.0, height / PLOT_AREA.1)
}

/// Where the legend of `labels` goes over the points `covered` of an `x` by `y` chart, and the
/// y range raised where no corner is free.
fn place_legend(
    covered: &[(f64, f64)],
    labels: &[&str],
    x: &Range<f64>,
    (y0, y1): (f64, f64),
) -> (SeriesLabelPosition, Range<f64>) {
    let scaled: Vec<(f64, f64)> = covered
        .iter()
        .map(|(px, py)| ((px - x.start) / (x.end - x.start), (py - y0) / (y1 - y0)))
        .collect();
    let place = legend_place(&scaled, legend_size(labels));
    (place.corner, y0..y0 + (y1 - y0) / (1.0 - place.headroom))
}

fn draw_legend<'a, 'b: 'a>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<Ticked, RangedCoordf64>>,
    corner: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, LEGEND))
        .margin(12)
        .draw()?;
    Ok(())
}

/// Markers on the points, when few enough to read apart: with one or two epochs a line alone
/// would hardly show.
const MARKED_POINTS: usize = 40;

pub fn epoch_svg(figure: &EpochFigure) -> Result<String> {
    let points = || figure.series.iter().flat_map(|s| s.points.iter().copied());
    let last = points().map(|(e, _)| e).fold(1.0, f64::max);
    let x = 0.8..last + 0.2;
    let covered: Vec<(f64, f64)> = figure
        .series
        .iter()
        .flat_map(|s| along(&s.points, 8))
        .collect();
    let labels: Vec<&str> = figure.series.iter().map(|s| s.label.as_str()).collect();
    let y = padded(points().map(|(_, v)| v), 0.05);
    let (corner, y) = place_legend(&covered, &labels, &x, y);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let x = Ticked::new(x, epoch_ticks(last as usize));
        let mut chart = chart(&root, &figure.title, x, y)?;
        chart
            .configure_mesh()
            .x_desc("epoch of each generation")
            .y_desc(figure.y_label.as_str())
            .x_label_formatter(&|e| format!("{e:.0}"))
            .label_style((FONT, TICKS))
            .axis_desc_style((FONT, AXIS_NAMES))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.1))
            .draw()?;
        for s in &figure.series {
            let style = s.colour.stroke_width(2);
            if s.dashed {
                chart
                    .draw_series(DashedLineSeries::new(s.points.clone(), 8, 5, style))?
                    .label(s.label.as_str())
                    .legend(move |(x, y)| {
                        DashedPathElement::new(vec![(x, y), (x + 28, y)], 8, 5, style)
                    });
            } else {
                chart
                    .draw_series(LineSeries::new(s.points.clone(), style))?
                    .label(s.label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 28, y)], style));
            }
            if s.points.len() < MARKED_POINTS {
                chart.draw_series(
                    s.points
                        .iter()
                        .map(|&p| Circle::new(p, 3, s.colour.filled())),
                )?;
            }
        }
        draw_legend(&mut chart, corner)?;
        root.present()?;
    }
    Ok(svg)
}

/// How far right of a row's position its mean and interval stand, clear of the dots on its left.
const SUMMARY_OFFSET: f64 = 0.18;
/// The width the dots of a row spread over, left of its position.
const DOT_SPREAD: f64 = 0.2;

pub fn row_svg(figure: &RowFigure) -> Result<String> {
    let rows = &figure.rows;
    let values = rows.iter().flat_map(|r| {
        let ci = r.ci95.map(|(lo, hi)| [lo, hi]).into_iter().flatten();
        r.dots.iter().copied().chain([r.mean]).chain(ci)
    });
    let zero = figure.zero_line.then_some(0.0);
    let (y0, y1) = padded(values.chain(zero), 0.08);
    let dots: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            let n = r.dots.len();
            r.dots
                .iter()
                .enumerate()
                .map(move |(j, &v)| (i as f64 - DOT_SPREAD / 2.0 + spread(j, n, DOT_SPREAD), v))
        })
        .collect();
    // The dots, the intervals and a note's line of text above its interval.
    let note_height = (y1 - y0) * 24.0 / PLOT_AREA.1;
    let mut covered = dots.clone();
    for (i, r) in rows.iter().enumerate() {
        let x = i as f64 + SUMMARY_OFFSET;
        let (bottom, top) = r.ci95.unwrap_or((r.mean, r.mean));
        let top = top + r.note.as_ref().map_or(0.0, |_| note_height);
        covered.extend(along(&[(x, bottom), (x, top)], 8));
    }
    let (dot_label, summary_label) = ("one seed", "mean ± 95% CI");
    let x = -0.5..rows.len() as f64 - 0.5;
    let (corner, y) = place_legend(&covered, &[dot_label, summary_label], &x, (y0, y1));
    let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let x = Ticked::new(x, (0..rows.len()).map(|i| i as f64).collect());
        let mut chart = chart(&root, &figure.title, x, y)?;
        let label_of = |x: &f64| {
            let i = x.round().max(0.0) as usize;
            labels.get(i).map(|l| l.to_string()).unwrap_or_default()
        };
        chart
            .configure_mesh()
            .x_desc("generation or ensemble")
            .y_desc(figure.y_label.as_str())
            .x_label_formatter(&label_of)
            .label_style((FONT, TICKS))
            .axis_desc_style((FONT, AXIS_NAMES))
            .disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.1))
            .draw()?;
        if figure.zero_line {
            let line = BLACK.mix(0.6).stroke_width(1);
            chart.draw_series(DashedLineSeries::new(
                [(-0.5, 0.0), (rows.len() as f64 - 0.5, 0.0)],
                6,
                4,
                line,
            ))?;
        }
        let dot = seed_colour().mix(0.75).filled();
        chart
            .draw_series(dots.iter().map(|&p| Circle::new(p, 5, dot)))?
            .label(dot_label)
            .legend(move |c| Circle::new(c, 5, dot));
        let summary = BLACK.stroke_width(2);
        let bars = rows.iter().enumerate().flat_map(|(i, r)| {
            let x = i as f64 + SUMMARY_OFFSET;
            let mean = PathElement::new(vec![(x - 0.08, r.mean), (x + 0.08, r.mean)], summary);
            let interval = r.ci95.into_iter().flat_map(move |(lo, hi)| {
                let cap = |v| PathElement::new(vec![(x - 0.04, v), (x + 0.04, v)], summary);
                [
                    PathElement::new(vec![(x, lo), (x, hi)], summary),
                    cap(lo),
                    cap(hi),
                ]
            });
            std::iter::once(mean).chain(interval)
        });
        chart
            .draw_series(bars)?
            .label(summary_label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y - 6), (x, y + 6)], summary));
        let style =
            TextStyle::from((FONT, LEGEND).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (i, r) in rows.iter().enumerate() {
            if let Some(note) = &r.note {
                let top = (
                    i as f64 + SUMMARY_OFFSET,
                    r.ci95.map_or(r.mean, |(_, hi)| hi),
                );
                // A few pixels above the cap, whatever the axis's scale.
                let text = EmptyElement::at(top) + Text::new(note.clone(), (0, -6), style.clone());
                chart.draw_series([text])?;
            }
        }
        draw_legend(&mut chart, corner)?;
        root.present()?;
    }
    Ok(svg)
}

//! The arithmetic of a figure's layout, apart from the drawing so that it can be tested: axis
//! ranges, epoch ticks, where the legend goes, how a row's seeds spread, colours and units.

use plotters::prelude::SeriesLabelPosition;
use plotters::style::RGBColor;

use crate::run_dir::records::Metric;

/// `(lo, hi)` spanning the finite `values`, widened by `fraction` of the span on each side so that
/// no point sits on the frame. A single value gets a span of 10% of itself (1 around 0) and no
/// value at all the unit interval, so an axis is never empty.
pub fn padded(values: impl IntoIterator<Item = f64>, fraction: f64) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * fraction
    } else if lo == 0.0 {
        1.0
    } else {
        lo.abs() * 0.1
    };
    (lo - pad, hi + pad)
}

/// Integer epochs to tick on an axis ending at epoch `last`: every epoch up to 10, else the
/// multiples of the smallest 1-2-5 step that leaves at most 10 ticks.
pub fn epoch_ticks(last: usize) -> Vec<f64> {
    let last = last.max(1);
    // 1, 2, 5, 10, 20, ... up to 5e17, which any epoch count stays below.
    let step = (0..18)
        .flat_map(|e| [1, 2, 5].map(|m| m * 10usize.pow(e)))
        .find(|s| last / s <= 10)
        .unwrap_or(last);
    let first = if step == 1 { 1 } else { step };
    (first..=last).step_by(step).map(|e| e as f64).collect()
}

/// Where a figure's legend goes, and what room it needs.
#[derive(Debug, PartialEq)]
pub struct LegendPlace {
    pub corner: SeriesLabelPosition,
    /// The fraction of the y axis to add above the data, so that the legend covers none of it.
    pub headroom: f64,
}

/// The most of a y axis given to the legend: past it, the data would shrink more than a legend
/// over some of it hides.
const MOST_HEADROOM: f64 = 0.45;

/// The first corner (upper right, upper left, lower right, lower left) whose box of `size` (the
/// legend's, as fractions of the plotting area) holds none of `points` (scaled to [0, 1] over
/// the axes, y up); when every corner holds some, the upper right, above the data raised out of
/// its way.
pub fn legend_place(points: &[(f64, f64)], size: (f64, f64)) -> LegendPlace {
    let (w, h) = size;
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let free = |right: bool, upper: bool| {
        !points.iter().any(|(x, y)| {
            let in_x = if right { *x > 1.0 - w } else { *x < w };
            let in_y = if upper { *y > 1.0 - h } else { *y < h };
            in_x && in_y
        })
    };
    match corners
        .into_iter()
        .find(|&(_, right, upper)| free(right, upper))
    {
        Some((corner, _, _)) => LegendPlace {
            corner,
            headroom: 0.0,
        },
        None => LegendPlace {
            corner: SeriesLabelPosition::UpperRight,
            headroom: h.min(MOST_HEADROOM),
        },
    }
}

/// Points along the polyline through `points`, `per_segment` per segment besides the vertices:
/// what a line covers, for [`legend_place`].
pub fn along(points: &[(f64, f64)], per_segment: usize) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = points.first().copied().into_iter().collect();
    for pair in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        for i in 1..=per_segment + 1 {
            let t = i as f64 / (per_segment + 1) as f64;
            out.push((x0 + t * (x1 - x0), y0 + t * (y1 - y0)));
        }
    }
    out
}

/// The horizontal offset of the `i`-th of `n` dots of a row, spread evenly over `width` around
/// the row's position so that equal values stay visible side by side.
pub fn spread(i: usize, n: usize, width: f64) -> f64 {
    if n < 2 {
        return 0.0;
    }
    (i as f64 / (n - 1) as f64 - 0.5) * width
}

/// The Okabe-Ito palette, less its yellow (too pale on white): distinct for colour-blind readers
/// and in greyscale print.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

/// Generation `k`'s colour: the teacher black, its students the palette in turn.
pub fn generation_colour(k: usize) -> RGBColor {
    match k {
        0 => RGBColor(0, 0, 0),
        k => PALETTE[(k - 1) % PALETTE.len()],
    }
}

/// The colour of the seeds' dots in a strip plot.
pub fn seed_colour() -> RGBColor {
    PALETTE[0]
}

/// "Top-1 err (%)": `what` of `metric`, with the metric's unit, as an axis names it.
pub fn metric_axis(what: &str, metric: Metric) -> String {
    let unit = match metric {
        Metric::Top1Error | Metric::Top5Error | Metric::Ece | Metric::TestError => " (%)",
        Metric::Nll => " (nats)",
        Metric::ValidationPerplexity | Metric::TestPerplexity => "",
    };
    format!("{what}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_padded_on_both_sides_and_never_empty() {
        assert_eq!(padded([1.0, 3.0], 0.1), (0.8, 3.2));
        assert_eq!(padded([5.0, f64::NAN, f64::INFINITY], 0.1), (4.5, 5.5));
        assert_eq!(padded([0.0], 0.1), (-1.0, 1.0));
        assert_eq!(padded([-2.0, -2.0], 0.1), (-2.2, -1.8));
        assert_eq!(padded(std::iter::empty(), 0.1), (0.0, 1.0));
    }

    #[test]
    fn epochs_are_ticked_at_integers_ten_at_most() {
        assert_eq!(epoch_ticks(1), vec![1.0]);
        assert_eq!(epoch_ticks(3), vec![1.0, 2.0, 3.0]);
        assert_eq!(epoch_ticks(10).len(), 10);
        assert_eq!(epoch_ticks(15), vec![2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0]);
        let long = epoch_ticks(200);
        assert_eq!((long[0], long.len()), (20.0, 10));
        assert!(epoch_ticks(1234).len() <= 10);
    }

    #[test]
    fn the_legend_goes_where_the_data_is_not() {
        let corner = |points: &[(f64, f64)]| legend_place(points, (0.3, 0.2)).corner;
        let falling = along(&[(0.0, 1.0), (1.0, 0.0)], 20);
        assert_eq!(corner(&falling), SeriesLabelPosition::UpperRight);
        let rising = along(&[(0.0, 0.0), (1.0, 1.0)], 20);
        assert_eq!(corner(&rising), SeriesLabelPosition::UpperLeft);
        let high = [(0.1, 0.9), (0.5, 0.95), (0.9, 0.9)];
        assert_eq!(corner(&high), SeriesLabelPosition::LowerRight);
        assert_eq!(
            legend_place(&[], (0.3, 0.2)),
            LegendPlace {
                corner: SeriesLabelPosition::UpperRight,
                headroom: 0.0
            }
        );
    }

    #[test]
    fn a_legend_with_no_free_corner_gets_room_above_the_data() {
        let everywhere = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)];
        let place = legend_place(&everywhere, (0.3, 0.2));
        assert_eq!(place.corner, SeriesLabelPosition::UpperRight);
        assert_eq!(place.headroom, 0.2);
        assert_eq!(
            legend_place(&everywhere, (0.3, 0.9)).headroom,
            MOST_HEADROOM
        );
    }

    #[test]
    fn points_along_a_line_include_its_vertices() {
        let points = along(&[(0.0, 0.0), (1.0, 2.0), (2.0, 2.0)], 1);
        assert_eq!(
            points,
            vec![(0.0, 0.0), (0.5, 1.0), (1.0, 2.0), (1.5, 2.0), (2.0, 2.0)]
        );
        assert_eq!(along(&[(3.0, 4.0)], 5), vec![(3.0, 4.0)]);
    }

    #[test]
    fn seeds_spread_evenly_around_their_row() {
        assert_eq!(spread(0, 1, 0.3), 0.0);
        assert_eq!((spread(0, 2, 0.3), spread(1, 2, 0.3)), (-0.15, 0.15));
        assert_eq!(spread(1, 3, 0.3), 0.0);
    }

    #[test]
    fn axes_name_the_metric_and_its_unit() {
        assert_eq!(metric_axis("Top-1 err", Metric::Top1Error), "Top-1 err (%)");
        assert_eq!(metric_axis("Δ NLL", Metric::Nll), "Δ NLL (nats)");
        assert_eq!(metric_axis("Test ppl", Metric::TestPerplexity), "Test ppl");
    }
}

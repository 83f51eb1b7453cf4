//! The figures of a study directory: per chain, every row's per-seed values with their mean and
//! 95% interval, and each row's paired difference from the reference (the teacher of the same
//! seed) with its interval against zero; then each seed's run directories' own figures.

use std::path::Path;

use anyhow::Result;

use super::figure::{Row, RowFigure, row_svg};
use super::layout::metric_axis;
use super::run::plot_run;
use crate::study::results::{ChainStudy, StudyResults};
use crate::study::{self, StudyPlan, seed_dir};

pub fn plot_study(
    dir: &Path,
    plan: &StudyPlan,
    figures: &Path,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    let results = study::collect(dir, plan, "Teacher", None)?;
    let mut drawn = false;
    for chain in &results.chains {
        // A table's chains are told apart by their place, ROW/CHAIN.
        let suffix = match chain.place.as_str() {
            "" => String::new(),
            place => format!("-{}", place.replace('/', "-")),
        };
        if let Some(figure) = strip(&results, chain) {
            let file = format!("study-seeds{suffix}.svg");
            super::write(figures, &file, &row_svg(&figure)?, say)?;
            drawn = true;
        }
        if let Some(figure) = versus(&results, chain) {
            let file = format!("study-versus{suffix}.svg");
            super::write(figures, &file, &row_svg(&figure)?, say)?;
        }
    }
    if !drawn {
        say(&format!(
            "{}: no seed has finished a generation yet; no study figure",
            dir.display()
        ));
    }
    for &seed in &plan.seeds {
        for place in &plan.places {
            let run = seed_dir(dir, seed).join(place);
            if run.join("spec.toml").is_file() {
                let out = figures.join(format!("seed-{seed}")).join(place);
                plot_run(&run, &out, say)?;
            }
        }
    }
    Ok(())
}

/// "tiny, row/chain": what a figure's title calls the chain.
fn chain_title(results: &StudyResults, chain: &ChainStudy) -> String {
    match chain.place.as_str() {
        "" => results.name.clone(),
        place => format!("{}, {place}", results.name),
    }
}

/// Every row that some seed has, its seeds' values as dots.
fn strip(results: &StudyResults, chain: &ChainStudy) -> Option<RowFigure> {
    let rows: Vec<Row> = chain
        .rows
        .iter()
        .filter_map(|r| {
            let s = r.summary.as_ref()?;
            Some(Row {
                label: r.label.clone(),
                dots: r.values.iter().flatten().copied().collect(),
                mean: s.mean,
                ci95: s.ci95,
                note: None,
            })
        })
        .collect();
    (!rows.is_empty()).then(|| RowFigure {
        title: format!(
            "{}: {} over {} seeds",
            chain_title(results, chain),
            results.metric.header(),
            results.seeds.len()
        ),
        y_label: metric_axis(results.metric.header(), results.metric),
        rows,
        zero_line: false,
    })
}

/// Every row compared with the reference: its per-seed differences as dots, their mean and
/// interval, and the Holm-corrected p of the paired t-test above it.
fn versus(results: &StudyResults, chain: &ChainStudy) -> Option<RowFigure> {
    let reference = chain.rows.iter().find(|r| r.label == results.reference)?;
    let rows: Vec<Row> = chain
        .rows
        .iter()
        .filter_map(|r| {
            let v = r.versus.as_ref()?;
            let dots = r
                .values
                .iter()
                .zip(&reference.values)
                .filter_map(|(a, b)| Some((*a)? - (*b)?))
                .collect();
            Some(Row {
                label: r.label.clone(),
                dots,
                mean: v.paired.mean,
                ci95: v.paired.ci95,
                note: v.holm_p.map(|p| format!("Holm p {}", p_value(p))),
            })
        })
        .collect();
    (!rows.is_empty()).then(|| RowFigure {
        title: format!(
            "{}: paired difference from {}",
            chain_title(results, chain),
            results.reference
        ),
        y_label: metric_axis(
            &format!("Δ {} vs {}", results.metric.header(), results.reference),
            results.metric,
        ),
        rows,
        zero_line: true,
    })
}

/// "0.031", "< 0.001": a p-value as the study's tables print it.
fn p_value(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

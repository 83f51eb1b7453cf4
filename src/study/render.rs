//! A study's results as results.md and `banbench report` print them: per chain, a table of the
//! rows by seed with their means, intervals and paired differences, a sentence per comparison
//! that says what the numbers allow, and McNemar's test per seed.

use std::fmt::Write;

use crate::run_dir::records::Metric;
use crate::stats::Summary;

use super::results::{ALPHA, StudyResults, StudyRow, Versus};

/// The whole study as markdown.
pub fn render(study: &StudyResults) -> String {
    let metric = study.metric;
    let mut out = String::new();
    let seeds: Vec<String> = study.seeds.iter().map(u64::to_string).collect();
    let _ = writeln!(
        out,
        "# Study `{}`: {} seed(s) ({})\n",
        study.name,
        study.seeds.len(),
        seeds.join(", ")
    );
    let _ = writeln!(
        out,
        "{} per seed; the mean ± sample sd and the 95% interval of the mean (Student's t). Each \
         row against the {reference} of the same seed: the mean difference with its 95% interval, \
         the paired t-test's p, that p corrected with Holm's procedure across the study's {} \
         comparison(s), and the exact Wilcoxon signed-rank test's p. Significant means a \
         corrected p below {ALPHA}.\n",
        metric.header(),
        study.comparisons,
        reference = study.reference,
    );
    for chain in &study.chains {
        if !chain.place.is_empty() {
            let _ = writeln!(out, "## {}\n", chain.place);
        }
        let seed_headers: Vec<String> = study.seeds.iter().map(|s| format!("seed {s}")).collect();
        let _ = writeln!(
            out,
            "| Row | {} | mean ± sd | 95% CI | − {r} | 95% CI | p (t) | p (Holm) | p (Wilcoxon) |",
            seed_headers.join(" | "),
            r = study.reference
        );
        let _ = writeln!(out, "|---|{}", "---|".repeat(study.seeds.len() + 7));
        for row in &chain.rows {
            let _ = writeln!(out, "{}", table_row(row, metric));
        }
        out.push('\n');
        for row in &chain.rows {
            if let Some(v) = &row.versus {
                let _ = writeln!(
                    out,
                    "- {}",
                    sentence(&row.label, &study.reference, v, metric)
                );
            }
        }
        mcnemar_table(&mut out, study, &chain.rows);
        out.push('\n');
    }
    out
}

fn table_row(row: &StudyRow, metric: Metric) -> String {
    let values: Vec<String> = row
        .values
        .iter()
        .map(|v| v.map_or("–".into(), |v| metric.format(v)))
        .collect();
    let (mean, ci) = row
        .summary
        .map_or(("–".into(), "–".into()), |s| summary(s, metric));
    let versus = row.versus.as_ref().map_or(
        ["".into(), "".into(), "".into(), "".into(), "".into()],
        |v| {
            [
                signed(v.paired.mean, metric),
                interval(v.paired.ci95, metric),
                p(v.paired.t_p),
                p(v.holm_p),
                p(Some(v.paired.wilcoxon_p)),
            ]
        },
    );
    format!(
        "| {} | {} | {mean} | {ci} | {} |",
        row.label,
        values.join(" | "),
        versus.join(" | ")
    )
}

fn summary(s: Summary, metric: Metric) -> (String, String) {
    let mean = match s.sd {
        Some(sd) => format!("{} ± {}", metric.format(s.mean), metric.format(sd)),
        None => metric.format(s.mean),
    };
    (mean, interval(s.ci95, metric))
}

fn interval(ci: Option<(f64, f64)>, metric: Metric) -> String {
    ci.map_or("–".into(), |(lo, hi)| {
        format!("[{}, {}]", metric.format(lo), metric.format(hi))
    })
}

fn signed(value: f64, metric: Metric) -> String {
    let text = metric.format(value);
    if value > 0.0 {
        format!("+{text}")
    } else {
        text
    }
}

fn p(p: Option<f64>) -> String {
    match p {
        None => "–".into(),
        Some(p) if p < 0.001 => "< 0.001".into(),
        Some(p) => format!("{p:.3}"),
    }
}

/// What one difference says, in words that claim no more than the test allows.
fn sentence(label: &str, reference: &str, v: &Versus, metric: Metric) -> String {
    let unit = match metric {
        Metric::Nll => " nats",
        Metric::ValidationPerplexity | Metric::TestPerplexity => " perplexity",
        _ => " points",
    };
    let n = v.paired.n;
    let mut text = format!(
        "{label} − {reference}: {}{unit}",
        signed(v.paired.mean, metric)
    );
    if let Some((lo, hi)) = v.paired.ci95 {
        let _ = write!(
            text,
            ", 95% CI [{}, {}]",
            metric.format(lo),
            metric.format(hi)
        );
    }
    match (v.paired.t_p, v.holm_p) {
        (Some(t), Some(holm)) => {
            let verdict = if v.significant() {
                "significant after Holm's correction"
            } else {
                "no significant difference"
            };
            let _ = write!(
                text,
                ", p = {} (paired t, {n} seeds; Holm {}): {verdict}",
                p(Some(t)),
                p(Some(holm))
            );
        }
        _ if n < 2 => text.push_str(" (one seed: no test across seeds)"),
        _ => text.push_str(&format!(
            " (the same difference on all {n} seeds: no t-test; exact sign test p = {})",
            p(Some(v.paired.sign_p))
        )),
    }
    text
}

/// McNemar's test per seed, where the saved outputs allow it.
fn mcnemar_table(out: &mut String, study: &StudyResults, rows: &[StudyRow]) {
    let any = rows
        .iter()
        .filter_map(|r| r.versus.as_ref())
        .any(|v| v.mcnemar.iter().any(Option::is_some));
    if !any {
        return;
    }
    let _ = writeln!(
        out,
        "\nMcNemar's exact test on the test set, per seed: p (test samples only this row / only \
         the {} classifies right).\n",
        study.reference
    );
    let headers: Vec<String> = study.seeds.iter().map(|s| format!("seed {s}")).collect();
    let _ = writeln!(out, "| Row | {} |", headers.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(study.seeds.len()));
    for row in rows {
        let Some(v) = &row.versus else { continue };
        let cells: Vec<String> = v
            .mcnemar
            .iter()
            .map(|m| {
                m.map_or("–".into(), |m| {
                    format!("{} ({}/{})", p(Some(m.p)), m.a_only, m.b_only)
                })
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", row.label, cells.join(" | "));
    }
}

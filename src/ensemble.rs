//! Ensembles of generations (BANE) and the metrics every generation and ensemble is judged by,
//! all computed from saved test-set logits, never by re-running a model.

use serde::{Deserialize, Serialize};

use crate::spec::Averaging;

/// Test-set logits of one generation: `samples x classes`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    pub classes: usize,
    pub values: Vec<f32>,
}

impl Logits {
    pub fn samples(&self) -> usize {
        self.values.len() / self.classes
    }

    /// Row-wise softmax, in f64 for a stable mean over many members.
    pub fn probabilities(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.values.len());
        for row in self.values.chunks(self.classes) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let start = out.len();
            out.extend(row.iter().map(|&z| (z as f64 - max).exp()));
            let sum: f64 = out[start..].iter().sum();
            out[start..].iter_mut().for_each(|p| *p /= sum);
        }
        out
    }
}

/// Test-set quality of one generation or ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Top-1 error, percent.
    pub top1_error: f64,
    /// Top-5 error (top-k with k = min(5, classes)), percent.
    pub top5_error: f64,
    /// Mean negative log-likelihood of the true class, nats.
    pub nll: f64,
    /// Expected calibration error over 15 equal-width confidence bins, percent.
    pub ece: f64,
}

const ECE_BINS: usize = 15;

/// Metrics of row-major class probabilities against the labels.
pub fn metrics(probabilities: &[f64], classes: usize, labels: &[u16]) -> Metrics {
    let n = labels.len();
    assert_eq!(
        probabilities.len(),
        n * classes,
        "one row of probabilities per label"
    );
    let k = classes.min(5);
    let (mut wrong1, mut wrong5, mut nll) = (0usize, 0usize, 0f64);
    let mut bins = [(0usize, 0f64, 0f64); ECE_BINS]; // (count, sum of confidence, correct)
    for (row, &label) in probabilities.chunks(classes).zip(labels) {
        let label = label as usize;
        let p_true = row[label];
        // Rank of the true class: how many classes beat it (ties go against the prediction).
        let above = row
            .iter()
            .enumerate()
            .filter(|&(i, &p)| p > p_true || (p == p_true && i < label))
            .count();
        let (argmax, confidence) =
            row.iter().enumerate().fold(
                (0, f64::MIN),
                |best, (i, &p)| if p > best.1 { (i, p) } else { best },
            );
        let correct = argmax == label;
        wrong1 += usize::from(!correct);
        wrong5 += usize::from(above >= k);
        nll -= p_true.max(f64::MIN_POSITIVE).ln();
        let bin = ((confidence * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        bins[bin].0 += 1;
        bins[bin].1 += confidence;
        bins[bin].2 += f64::from(u8::from(correct));
    }
    let ece: f64 = bins
        .iter()
        .filter(|b| b.0 > 0)
        // (count / n) * |accuracy - mean confidence| of each bin, from the bin's sums.
        .map(|&(_, conf, correct)| (correct - conf).abs() / n as f64)
        .sum();
    let pct = |x: usize| 100.0 * x as f64 / n as f64;
    Metrics {
        top1_error: pct(wrong1),
        top5_error: pct(wrong5),
        nll: nll / n as f64,
        ece: 100.0 * ece,
    }
}

/// The ensemble's class probabilities: the mean of the members' probabilities, or the softmax
/// of their mean logits.
pub fn ensemble_probabilities(members: &[&Logits], average: Averaging) -> Vec<f64> {
    assert!(!members.is_empty(), "an ensemble has members");
    let classes = members[0].classes;
    let len = members[0].values.len();
    let m = members.len() as f64;
    match average {
        Averaging::Probabilities => {
            let mut sum = vec![0f64; len];
            for member in members {
                sum.iter_mut()
                    .zip(member.probabilities())
                    .for_each(|(s, p)| *s += p);
            }
            sum.into_iter().map(|s| s / m).collect()
        }
        Averaging::Logits => {
            let mut mean = vec![0f32; len];
            for member in members {
                mean.iter_mut()
                    .zip(&member.values)
                    .for_each(|(s, &z)| *s += z / m as f32);
            }
            Logits {
                classes,
                values: mean,
            }
            .probabilities()
        }
    }
}

/// Perplexity of a language-model ensemble from each member's probability of every test target
/// token: the ensemble's probability of a target is the members' mean, and its perplexity
/// exp(mean over tokens of -ln p). NaN without tokens.
pub fn ensemble_perplexity<M: AsRef<[f32]>>(members: &[M]) -> f64 {
    let tokens = members.iter().map(|m| m.as_ref().len()).min().unwrap_or(0);
    if tokens == 0 {
        return f64::NAN;
    }
    let n = members.len() as f64;
    let nll: f64 = (0..tokens)
        .map(|t| {
            let p = members.iter().map(|m| m.as_ref()[t] as f64).sum::<f64>() / n;
            -p.max(f64::MIN_POSITIVE).ln()
        })
        .sum();
    (nll / tokens as f64).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensemble_perplexity_averages_probabilities_not_log_probabilities() {
        let ppl = ensemble_perplexity(&[vec![0.5f32, 0.1], vec![0.1f32, 0.5]]);
        // Both tokens get mean probability 0.3.
        assert!((ppl - 1.0 / 0.3).abs() < 1e-5, "{ppl}");
        assert!(ensemble_perplexity::<Vec<f32>>(&[]).is_nan());
    }

    fn logits(rows: &[&[f32]]) -> Logits {
        Logits {
            classes: rows[0].len(),
            values: rows.iter().flat_map(|r| r.iter().copied()).collect(),
        }
    }

    #[test]
    fn errors_and_nll_by_hand() {
        // Three samples, 6 classes: correct, wrong but in the top 5, wrong and last.
        let probs = vec![
            0.5, 0.1, 0.1, 0.1, 0.1, 0.1, //
            0.3, 0.2, 0.2, 0.1, 0.1, 0.1, //
            0.3, 0.2, 0.2, 0.15, 0.1, 0.05,
        ];
        let m = metrics(&probs, 6, &[0, 1, 5]);
        assert!((m.top1_error - 200.0 / 3.0).abs() < 1e-9);
        assert!((m.top5_error - 100.0 / 3.0).abs() < 1e-9);
        let nll = -(0.5f64.ln() + 0.2f64.ln() + 0.05f64.ln()) / 3.0;
        assert!((m.nll - nll).abs() < 1e-9);
    }

    #[test]
    fn ece_by_hand() {
        // Two samples in the 0.9 bin (one right), one in the 0.6 bin (right).
        let probs = vec![0.9, 0.1, 0.9, 0.1, 0.6, 0.4];
        let m = metrics(&probs, 2, &[0, 1, 0]);
        // bin 0.9: |1/2 acc - 0.9| * 2/3; bin 0.6: |1 - 0.6| * 1/3
        let expected = 100.0 * ((0.5f64 - 0.9).abs() * 2.0 / 3.0 + 0.4 / 3.0);
        assert!((m.ece - expected).abs() < 1e-9, "{} vs {expected}", m.ece);
    }

    #[test]
    fn averaging_probabilities_and_logits_differ_as_they_should() {
        let a = logits(&[&[2.0, 0.0]]);
        let b = logits(&[&[-1.0, 0.0]]);
        let probs = ensemble_probabilities(&[&a, &b], Averaging::Probabilities);
        let pa = 1.0 / (1.0 + (-2f64).exp());
        let pb = 1.0 / (1.0 + 1f64.exp());
        assert!((probs[0] - (pa + pb) / 2.0).abs() < 1e-7);
        let by_logits = ensemble_probabilities(&[&a, &b], Averaging::Logits);
        let p = 1.0 / (1.0 + (-0.5f64).exp());
        assert!((by_logits[0] - p).abs() < 1e-7);
        assert!((by_logits[0] + by_logits[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn an_ensemble_can_fix_a_member() {
        let labels = [0u16, 1];
        let a = logits(&[&[3.0, 0.0], &[1.0, 0.0]]); // right, wrong
        let b = logits(&[&[0.0, 0.5], &[0.0, 4.0]]); // wrong, right
        let single = metrics(&a.probabilities(), 2, &labels).top1_error;
        let ens = metrics(
            &ensemble_probabilities(&[&a, &b], Averaging::Probabilities),
            2,
            &labels,
        )
        .top1_error;
        assert_eq!(single, 50.0);
        assert_eq!(ens, 0.0);
    }
}

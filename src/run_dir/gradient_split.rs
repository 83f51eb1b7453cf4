//! The gradient split as metrics.jsonl records it: the epoch's means of the two halves of the
//! distillation gradient, and the layout of the per-batch sums `distill::gradient_split_sums`
//! computes on the device (plain data, so that followers of a run read it without burn).

use serde::{Deserialize, Serialize};

/// The entries of `distill::gradient_split_sums`'s tensor, in order. All are sums over the samples (or
/// batches) seen, so the tensors of an epoch's batches add up to the epoch's sums.
pub mod split_slot {
    /// Samples.
    pub const SAMPLES: usize = 0;
    /// Sum of |g_y|, y the label.
    pub const TRUE_CLASS: usize = 1;
    /// Sum of ||g_{i != y}||_2.
    pub const DARK: usize = 2;
    /// Sum of ||g_{i != y}||^2 / ||g||^2 over the samples with g != 0 (those with g = 0 add 0).
    pub const DARK_SHARE: usize = 3;
    /// Samples with g != 0: the dark shares' count.
    pub const NONZERO_GRADIENT: usize = 4;
    /// Sum of |g_t|, t the teacher's argmax.
    pub const ARGMAX_CLASS: usize = 5;
    /// Sum of ||g_{i != t}||_2.
    pub const ARGMAX_DARK: usize = 6;
    /// Sum of ||g_{i != t}||^2 / ||g||^2 over the samples with g != 0.
    pub const ARGMAX_DARK_SHARE: usize = 7;
    /// Samples whose teacher argmax is not the label.
    pub const TEACHER_WRONG: usize = 8;
    /// Sum of cos(g, q - onehot(y)) over the samples where both are nonzero (the others add 0).
    pub const COSINE_WITH_LABEL: usize = 9;
    /// Samples where g and q - onehot(y) are both nonzero: the cosines' count.
    pub const COSINE_DEFINED: usize = 10;
    /// Batches.
    pub const BATCHES: usize = 11;
    /// Sum over batches of the importance weights' effective sample size as a fraction of the
    /// batch: (sum_s w_s)^2 / (b sum_s w_s^2), w_s = p_{y_s} / sum_u p_{y_u}.
    pub const ESS_FRACTION: usize = 12;
    /// Batches whose weights are defined (some label has teacher probability > 0): the ESS
    /// fractions' count. A batch where every label has probability 0 in f32 adds 0 to both.
    pub const ESS_BATCHES: usize = 13;
    /// The tensor's length.
    pub const LEN: usize = 14;
}

/// An epoch's distillation gradient split into the paper's two halves (Section 3.1), the means of
/// `distill::gradient_split_sums` over its batches. g = q - p at the control's temperature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradientSplit {
    /// Samples the per-sample means are over.
    pub samples: u64,
    /// Batches the ESS fraction is over (all of them, including any whose ESS is undefined).
    pub batches: u64,
    /// Mean |g_y|, y the label: the importance-weighting half.
    pub true_class: f64,
    /// Mean ||g_{i != y}||_2: the dark-knowledge half.
    pub dark: f64,
    /// Mean of ||g_{i != y}||^2 / ||g||^2 over the samples with g != 0; None when g = 0 on all.
    pub dark_share: Option<f64>,
    /// Mean |g_t|, t the teacher's argmax (the paper's "true/argmax dimension" read the other way).
    pub argmax_class: f64,
    /// Mean ||g_{i != t}||_2.
    pub argmax_dark: f64,
    /// Mean of ||g_{i != t}||^2 / ||g||^2 over the samples with g != 0; None when g = 0 on all.
    pub argmax_dark_share: Option<f64>,
    /// Fraction of samples with g = 0 (student and teacher agree exactly in f32), which the shares
    /// and the cosine leave out.
    pub zero_gradient: f64,
    /// Fraction of samples whose teacher argmax is not the label.
    pub teacher_wrong: f64,
    /// Mean cos(g, q - onehot(y)) with the label gradient at the same temperature, over the samples
    /// where both are nonzero; None when there are none.
    pub cosine_with_label: Option<f64>,
    /// Mean over batches of the effective sample size of the weights w_s = p_{y_s} / sum_u p_{y_u}
    /// that the teacher's confidence implies, (sum w)^2 / sum w^2, as a fraction of the batch:
    /// 1 for equal confidence, 1/b when one sample holds all the weight. None when no batch has
    /// defined weights (every label at teacher probability 0).
    pub ess_fraction: Option<f64>,
}

impl GradientSplit {
    /// The means from an epoch's summed `distill::gradient_split_sums` tensors, read to the host; None
    /// with no samples. Panics unless `sums` has [`split_slot::LEN`] entries.
    pub fn from_sums(sums: &[f32]) -> Option<GradientSplit> {
        use split_slot::*;
        assert_eq!(sums.len(), LEN, "gradient split sums have {LEN} entries");
        let at = |slot: usize| f64::from(sums[slot]);
        let samples = at(SAMPLES);
        if samples <= 0.0 {
            return None;
        }
        let mean_over = |slot: usize, count: usize| (at(count) > 0.0).then(|| at(slot) / at(count));
        Some(GradientSplit {
            samples: samples as u64,
            batches: at(BATCHES) as u64,
            true_class: at(TRUE_CLASS) / samples,
            dark: at(DARK) / samples,
            dark_share: mean_over(DARK_SHARE, NONZERO_GRADIENT),
            argmax_class: at(ARGMAX_CLASS) / samples,
            argmax_dark: at(ARGMAX_DARK) / samples,
            argmax_dark_share: mean_over(ARGMAX_DARK_SHARE, NONZERO_GRADIENT),
            zero_gradient: 1.0 - at(NONZERO_GRADIENT) / samples,
            teacher_wrong: at(TEACHER_WRONG) / samples,
            cosine_with_label: mean_over(COSINE_WITH_LABEL, COSINE_DEFINED),
            ess_fraction: mean_over(ESS_FRACTION, ESS_BATCHES),
        })
    }
}

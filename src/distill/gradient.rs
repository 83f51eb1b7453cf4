//! The two halves of the distillation gradient (paper Section 3.1), measured during training.
//!
//! For the cross-entropy between the teacher's distribution p = softmax(teacher / T) and the
//! student's q = softmax(student / T), the gradient with respect to the student's tempered logits
//! is g = q - p per sample (the loss's 1/b and the chain rule's 1/T scale every entry alike and are
//! left out). The paper splits g into the true-class entry g_* = q_* - p_*, the label gradient
//! q_* - 1 re-weighted by the teacher's confidence ("importance weighting"), and the other entries,
//! Hinton's "dark knowledge". [`gradient_split_sums`] measures both halves per batch on the device;
//! [`GradientSplit`] is the epoch's means.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Int};

use super::{teacher_distribution, tempered};
pub use crate::run_dir::gradient_split::{GradientSplit, split_slot};

/// The smallest normal f32: denominators are clamped to it so that a zero vector gives 0 / tiny =
/// 0, never NaN (and such samples are left out of the means through the counts).
const TINY: f32 = f32::MIN_POSITIVE;

/// One batch's [`split_slot`] sums, shape `[split_slot::LEN]`, computed on the logits' device with
/// no host read: add the batches' tensors over an epoch, read the total once at its end and pass
/// it to [`GradientSplit::from_sums`]. `student_logits` must already be detached (the measurement
/// is no part of the loss); `temperature` is the control's, at which p, q and the label gradient
/// q - onehot(y) are all taken. Counts are exact in f32 up to 2^24 samples per epoch.
pub fn gradient_split_sums(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    labels: Tensor<1, Int>,
    temperature: f64,
) -> Tensor<1> {
    let [batch, classes] = student_logits.dims();
    let device = student_logits.device();
    let q = softmax(tempered(student_logits, temperature), 1);
    let p = teacher_distribution(teacher_logits.clone(), temperature);

    let label = labels.reshape([batch, 1]);
    let argmax = teacher_logits.argmax(1);
    let label_mask = class_mask(label.clone(), classes, &device);
    let argmax_mask = class_mask(argmax.clone(), classes, &device);

    // Each full-width pass is a pass over a language model's whole vocabulary per token, so the
    // squares are taken once and the entries at k are gathered rather than masked and summed.
    let (g, g_scale, g_nonzero) = scaled(q.clone() - p.clone());
    let g_sq = g.clone().square();
    let (at_label, at_label_share) = split(
        &g,
        &g_sq,
        g_scale.clone(),
        label.clone(),
        label_mask.clone(),
    );
    let (at_argmax, argmax_share) = split(&g, &g_sq, g_scale, argmax.clone(), argmax_mask);

    let (h, _, h_nonzero) = scaled(q - label_mask.float());
    let g_norm_sq = g_sq.sum_dim(1);
    let h_norm_sq = h.clone().square().sum_dim(1);
    let cosine = (g * h).sum_dim(1) / (g_norm_sq * h_norm_sq).sqrt().clamp_min(TINY);

    let per_sample = Tensor::cat(
        vec![
            Tensor::ones([batch, 1], &device),
            at_label[0].clone(),
            at_label[1].clone(),
            at_label_share,
            g_nonzero.clone(),
            at_argmax[0].clone(),
            at_argmax[1].clone(),
            argmax_share,
            argmax.not_equal(label.clone()).float(),
            cosine,
            g_nonzero * h_nonzero,
        ],
        1,
    )
    .sum_dim(0)
    // The per-sample slots are the first ones, up to BATCHES.
    .reshape([split_slot::BATCHES]);

    // The ESS is invariant to the weights' scale, so the label probabilities are divided by
    // their batch maximum rather than their sum: the squares then cannot underflow.
    let (p_label, _, p_label_nonzero) = scaled(p.gather(1, label).reshape([1, batch]));
    let ess =
        p_label.clone().sum().square() / (p_label.square().sum() * batch as f64).clamp_min(TINY);
    Tensor::cat(
        vec![
            per_sample,
            Tensor::ones([1], &device),
            ess,
            p_label_nonzero.reshape([1]),
        ],
        0,
    )
}

/// The one-hot rows of `index` (`[batch, 1]`) over `classes`; built by comparison with a range
/// because burn's `one_hot` checks its indices with a host read.
fn class_mask(index: Tensor<2, Int>, classes: usize, device: &Device) -> Tensor<2, Bool> {
    let [batch, _] = index.dims();
    Tensor::<1, Int>::arange(0..classes as i64, device)
        .reshape([1, classes])
        .expand([batch, classes])
        .equal(index.expand([batch, classes]))
}

/// Each row divided by its largest absolute entry (so squares cannot underflow in f32: a g of
/// 1e-20 would square to 0), with that scale (`[rows, 1]`) and 1 where the row is nonzero, else 0.
fn scaled(rows: Tensor<2>) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
    let scale = rows.clone().abs().max_dim(1);
    let nonzero = scale.clone().greater_elem(0.0).float();
    (rows / scale.clone().clamp_min(TINY), scale, nonzero)
}

/// Per sample (`[batch, 1]` each): [|g_k|, ||g_{i != k}||_2] and ||g_{i != k}||^2 / ||g||^2, from
/// the scaled g, its squares, its scale, k and k's one-hot mask.
fn split(
    g: &Tensor<2>,
    g_sq: &Tensor<2>,
    scale: Tensor<2>,
    k: Tensor<2, Int>,
    mask: Tensor<2, Bool>,
) -> ([Tensor<2>; 2], Tensor<2>) {
    let on = g.clone().gather(1, k);
    let on_sq = on.clone().square();
    // The squares with k's set to 0, summed: exactly the sum over i != k.
    let off_sq = g_sq.clone().mask_fill(mask, 0.0).sum_dim(1);
    let share = off_sq.clone() / (on_sq + off_sq.clone()).clamp_min(TINY);
    ([on.abs() * scale.clone(), off_sq.sqrt() * scale], share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn device() -> Device {
        Device::flex()
    }

    /// Logits whose softmax at `temperature` is exactly the given distribution: T log p.
    fn logits_of(rows: &[[f32; 3]], temperature: f32) -> Tensor<2> {
        let flat: Vec<f32> = rows
            .iter()
            .flatten()
            .map(|p| temperature * p.ln())
            .collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 3]), &device())
    }

    fn raw_logits(rows: &[[f32; 3]]) -> Tensor<2> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 3]), &device())
    }

    fn labels(l: &[i64]) -> Tensor<1, Int> {
        Tensor::from_data(TensorData::new(l.to_vec(), [l.len()]), &device())
    }

    fn read(sums: Tensor<1>) -> Vec<f32> {
        sums.into_data().try_into_vec().unwrap()
    }

    fn split_of(sums: Tensor<1>) -> GradientSplit {
        GradientSplit::from_sums(&read(sums)).expect("samples")
    }

    fn close(actual: f64, expected: f64, what: &str) {
        assert!(
            (actual - expected).abs() < 1e-5,
            "{what}: {actual} vs {expected}"
        );
    }

    fn close_some(actual: Option<f64>, expected: f64, what: &str) {
        close(
            actual.unwrap_or_else(|| panic!("{what} is None")),
            expected,
            what,
        );
    }

    // Sample A: teacher p = [0.5, 0.3, 0.2], student q = [0.2, 0.5, 0.3], label 0 = teacher argmax.
    // g = q - p = [-0.3, 0.2, 0.1]: |g_0| = 0.3; ||g_{1,2}|| = sqrt(0.04 + 0.01) = sqrt(0.05)
    // = 0.2236068; ||g||^2 = 0.09 + 0.05 = 0.14, share = 0.05 / 0.14 = 0.3571429.
    // Label gradient h = q - e_0 = [-0.8, 0.5, 0.3]: g.h = 0.24 + 0.10 + 0.03 = 0.37,
    // ||h||^2 = 0.64 + 0.25 + 0.09 = 0.98, cos = 0.37 / sqrt(0.14 * 0.98) = 0.9989061.
    const A_TEACHER: [f32; 3] = [0.5, 0.3, 0.2];
    const A_STUDENT: [f32; 3] = [0.2, 0.5, 0.3];
    const A_TRUE: f64 = 0.3;
    const A_DARK: f64 = 0.223_606_8;
    const A_SHARE: f64 = 0.357_142_86;
    const A_COS: f64 = 0.998_906_1;

    // Sample B: teacher p = [0.2, 0.6, 0.2] (argmax 1), student q = [0.5, 0.4, 0.1], label 0.
    // g = [0.3, -0.2, -0.1], ||g||^2 = 0.14. At the label: |g_0| = 0.3, dark = sqrt(0.05)
    // = 0.2236068, share 0.3571429. At the argmax: |g_1| = 0.2, dark = sqrt(0.09 + 0.01)
    // = 0.3162278, share = 0.10 / 0.14 = 0.7142857. h = [-0.5, 0.4, 0.1]: g.h = -0.15 - 0.08
    // - 0.01 = -0.24, ||h||^2 = 0.25 + 0.16 + 0.01 = 0.42, cos = -0.24 / sqrt(0.14 * 0.42)
    // = -0.9897433.
    const B_TEACHER: [f32; 3] = [0.2, 0.6, 0.2];
    const B_STUDENT: [f32; 3] = [0.5, 0.4, 0.1];
    const B_ARGMAX_TRUE: f64 = 0.2;
    const B_ARGMAX_DARK: f64 = 0.316_227_8;
    const B_ARGMAX_SHARE: f64 = 0.714_285_7;
    const B_COS: f64 = -0.989_743_3;

    #[test]
    fn one_hot_teacher_is_the_label_gradient_with_equal_weights() {
        // exp(-30) = 9.4e-14: p is the one-hot label to 1e-13, p_y = 1 exactly in f32.
        let teacher = raw_logits(&[[30.0, 0.0, 0.0], [0.0, 0.0, 30.0]]);
        let student = raw_logits(&[[0.3, -1.2, 2.0], [1.0, 1.0, 0.0]]);
        let s = split_of(gradient_split_sums(student, teacher, labels(&[0, 2]), 1.0));
        close_some(s.cosine_with_label, 1.0, "cosine");
        close_some(s.ess_fraction, 1.0, "ess");
        close(s.teacher_wrong, 0.0, "teacher_wrong");
        assert_eq!((s.samples, s.batches), (2, 1));
    }

    #[test]
    fn student_equal_to_teacher_has_no_gradient() {
        let z = [[2.0, 0.1, -0.5], [-1.0, 0.0, 3.0]];
        let s = split_of(gradient_split_sums(
            raw_logits(&z),
            raw_logits(&z),
            labels(&[0, 1]),
            1.0,
        ));
        assert_eq!((s.true_class, s.dark), (0.0, 0.0));
        assert_eq!((s.argmax_class, s.argmax_dark), (0.0, 0.0));
        // Nothing to split or compare: the shares and the cosine are undefined, not 0.
        assert_eq!(
            (s.dark_share, s.argmax_dark_share, s.cosine_with_label),
            (None, None, None)
        );
        assert_eq!(s.zero_gradient, 1.0);
        close(s.teacher_wrong, 0.5, "teacher_wrong");
    }

    #[test]
    fn three_classes_match_hand_computation() {
        let s = split_of(gradient_split_sums(
            logits_of(&[A_STUDENT], 1.0),
            logits_of(&[A_TEACHER], 1.0),
            labels(&[0]),
            1.0,
        ));
        close(s.true_class, A_TRUE, "true_class");
        close(s.dark, A_DARK, "dark");
        close_some(s.dark_share, A_SHARE, "dark_share");
        close_some(s.cosine_with_label, A_COS, "cosine");
        // The teacher is right: its argmax is the label.
        close(s.argmax_class, A_TRUE, "argmax_class");
        close(s.argmax_dark, A_DARK, "argmax_dark");
        close_some(s.argmax_dark_share, A_SHARE, "argmax_dark_share");
        close_some(s.ess_fraction, 1.0, "one sample");
        assert_eq!(s.zero_gradient, 0.0);
    }

    #[test]
    fn a_wrong_teacher_splits_differently_at_its_argmax() {
        let s = split_of(gradient_split_sums(
            logits_of(&[A_STUDENT, B_STUDENT], 1.0),
            logits_of(&[A_TEACHER, B_TEACHER], 1.0),
            labels(&[0, 0]),
            1.0,
        ));
        close(s.teacher_wrong, 0.5, "teacher_wrong");
        // At the label A and B split alike.
        close(s.true_class, A_TRUE, "true_class");
        close(s.dark, A_DARK, "dark");
        close_some(s.dark_share, A_SHARE, "dark_share");
        // At the teacher's argmax B's split moves.
        close(
            s.argmax_class,
            (A_TRUE + B_ARGMAX_TRUE) / 2.0,
            "argmax_class",
        );
        close(s.argmax_dark, (A_DARK + B_ARGMAX_DARK) / 2.0, "argmax_dark");
        close_some(
            s.argmax_dark_share,
            (A_SHARE + B_ARGMAX_SHARE) / 2.0,
            "argmax_dark_share",
        );
        close_some(s.cosine_with_label, (A_COS + B_COS) / 2.0, "cosine");
        // Label probabilities 0.5 and 0.2: ESS = 0.7^2 / (0.25 + 0.04) = 1.6896552, over b = 2.
        close_some(s.ess_fraction, 0.49 / 0.29 / 2.0, "ess");
    }

    #[test]
    fn batches_sum_to_per_sample_means() {
        // Batch 1: A. Batch 2: B and Z, a student equal to its teacher (g = 0), left out of the
        // shares and the cosine but counted in the parts' means.
        let z = [0.1, 0.7, 0.2];
        let first = gradient_split_sums(
            logits_of(&[A_STUDENT], 1.0),
            logits_of(&[A_TEACHER], 1.0),
            labels(&[0]),
            1.0,
        );
        let second = gradient_split_sums(
            logits_of(&[B_STUDENT, z], 1.0),
            logits_of(&[B_TEACHER, z], 1.0),
            labels(&[0, 2]),
            1.0,
        );
        let s = split_of(first + second);
        assert_eq!((s.samples, s.batches), (3, 2));
        close(s.true_class, 2.0 * A_TRUE / 3.0, "true_class");
        close(s.dark, 2.0 * A_DARK / 3.0, "dark");
        close_some(s.dark_share, A_SHARE, "dark_share");
        close(
            s.argmax_class,
            (A_TRUE + B_ARGMAX_TRUE) / 3.0,
            "argmax_class",
        );
        close(s.argmax_dark, (A_DARK + B_ARGMAX_DARK) / 3.0, "argmax_dark");
        close_some(
            s.argmax_dark_share,
            (A_SHARE + B_ARGMAX_SHARE) / 2.0,
            "argmax_dark_share",
        );
        close_some(s.cosine_with_label, (A_COS + B_COS) / 2.0, "cosine");
        close(s.zero_gradient, 1.0 / 3.0, "zero_gradient");
        // B and Z are both wrong (Z's teacher argmax is 1, its label 2).
        close(s.teacher_wrong, 2.0 / 3.0, "teacher_wrong");
        // Batch 1: 1. Batch 2: label probabilities 0.2 and 0.2, ESS 2 of 2. Mean of batches: 1.
        close_some(s.ess_fraction, 1.0, "ess");
        assert_eq!(GradientSplit::from_sums(&[0.0; split_slot::LEN]), None);
    }

    #[test]
    fn temperature_softens_both_distributions() {
        // Logits 2 log p: at T = 2 they give sample A's p and q, and its hand values.
        let student = || logits_of(&[A_STUDENT], 2.0);
        let teacher = || logits_of(&[A_TEACHER], 2.0);
        let at_2 = split_of(gradient_split_sums(student(), teacher(), labels(&[0]), 2.0));
        close(at_2.true_class, A_TRUE, "true_class at T = 2");
        close(at_2.dark, A_DARK, "dark at T = 2");
        close_some(at_2.dark_share, A_SHARE, "dark_share at T = 2");
        close_some(at_2.cosine_with_label, A_COS, "cosine at T = 2");
        // At T = 1 the distributions are p^2 / sum p^2: p = [0.25, 0.09, 0.04] / 0.38,
        // q = [0.04, 0.25, 0.09] / 0.38, so 0.38 g = [-0.21, 0.16, 0.05]. |g_0| = 0.21 / 0.38
        // = 0.5526316; dark = sqrt(0.0256 + 0.0025) / 0.38 = 0.4411330; ||0.38 g||^2 = 0.0441
        // + 0.0281 = 0.0722, share = 0.0281 / 0.0722 = 0.3891967. 0.38 h = [-0.34, 0.25, 0.09]:
        // dot = 0.0714 + 0.04 + 0.0045 = 0.1159, ||0.38 h||^2 = 0.1156 + 0.0625 + 0.0081
        // = 0.1862, cos = 0.1159 / sqrt(0.0722 * 0.1862) = 0.9995971.
        let at_1 = split_of(gradient_split_sums(student(), teacher(), labels(&[0]), 1.0));
        close(at_1.true_class, 0.21 / 0.38, "true_class at T = 1");
        close(at_1.dark, 0.441_133_0, "dark at T = 1");
        close_some(at_1.dark_share, 0.0281 / 0.0722, "dark_share at T = 1");
        close_some(at_1.cosine_with_label, 0.999_597_1, "cosine at T = 1");
    }
}

//! The BAN controls: one loss function per control, each citing Furlanello et al. (ICML 2018).
//!
//! Every distillation term is computed from the student's log-softmax, never from the log of a
//! softmax: a confident teacher's probabilities underflow to 0 in f32 and 0 x -inf is NaN. The
//! teacher's logits arrive as a constant (computed in eval mode without autodiff).

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, TensorData};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::spec::Control;

mod features;
mod gradient;
pub use features::{fsp_loss, fsp_matrix, hint_loss};
pub use gradient::{GradientSplit, gradient_split_sums, split_slot};

/// The training loss of one batch on the logits. `teacher_logits` must be present when
/// [`reads_teacher_logits`](Control::reads_teacher_logits); `rng` drives DKPP's permutations;
/// `progress` (0 at the schedule's first epoch, 1 at its last) anneals FitNets' lambda. The
/// feature losses of the two-stage controls' first stages are in `features`.
pub fn loss(
    control: Control,
    student_logits: Tensor<2>,
    teacher_logits: Option<Tensor<2>>,
    labels: Tensor<1, Int>,
    rng: &mut ChaCha8Rng,
    progress: f64,
) -> Tensor<1> {
    let teacher = || {
        teacher_logits
            .clone()
            .expect("this control needs a teacher")
    };
    match control {
        Control::Label => label_loss(student_logits, labels),
        Control::Ban { temperature } => ban_loss(student_logits, teacher(), temperature),
        Control::BanL { temperature } => ban_l_loss(student_logits, teacher(), labels, temperature),
        Control::Cwtm => cwtm_loss(student_logits, teacher(), labels),
        Control::Dkpp { temperature } => dkpp_loss(student_logits, teacher(), temperature, rng),
        Control::Kd { temperature, alpha } => {
            kd_loss(student_logits, teacher(), labels, temperature, alpha)
        }
        Control::LogitsL2 => logits_l2_loss(student_logits, teacher()),
        Control::Fitnets {
            temperature,
            fitnets,
        } => fitnets_kd_loss(
            student_logits,
            teacher(),
            labels,
            temperature,
            fitnets.lambda_at(progress),
        ),
        // After its FSP stage, FSP trains on labels alone (Yim et al. 2017, Section 4).
        Control::Fsp { .. } => label_loss(student_logits, labels),
    }
}

/// Per-sample cross-entropy with the labels, -log q_y (shape `[batch]`).
fn label_cross_entropy(student_logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    label_nll(log_softmax(student_logits, 1), labels)
}

/// -log q_y per sample from the student's log-probabilities.
fn label_nll(log_q: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [batch, _] = log_q.dims();
    log_q
        .gather(1, labels.reshape([batch, 1]))
        .reshape([batch])
        .neg()
}

/// Mean cross-entropy between target distributions `p` and the student's softmax at `temperature`:
/// -(1/b) sum_s sum_i p_i log q_i. Its gradient with respect to the (tempered) student logits is
/// (q - p)/b, the identity the paper's Section 3.1 builds on.
fn soft_cross_entropy(target: Tensor<2>, student_logits: Tensor<2>, temperature: f64) -> Tensor<1> {
    soft_nll(
        target,
        log_softmax(tempered(student_logits, temperature), 1),
    )
}

/// -(1/b) sum_s sum_i p_i log q_i from the student's log-probabilities.
fn soft_nll(target: Tensor<2>, log_q: Tensor<2>) -> Tensor<1> {
    (target * log_q).sum_dim(1).neg().mean()
}

fn teacher_distribution(teacher_logits: Tensor<2>, temperature: f64) -> Tensor<2> {
    softmax(tempered(teacher_logits, temperature), 1)
}

/// Logits divided by the temperature. At T = 1 the division is skipped: it is exact there, and
/// otherwise a full pass over the logits (and another in the backward pass), which for a
/// language model's per-token vocabulary is a noticeable share of a step.
fn tempered(logits: Tensor<2>, temperature: f64) -> Tensor<2> {
    if temperature == 1.0 {
        logits
    } else {
        logits / temperature
    }
}

/// Generation 0 and plain retraining: the label cross-entropy (paper Section 3, Eq. 1's
/// minimiser, argmin_theta L(y, f(x, theta))).
pub fn label_loss(student_logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    label_cross_entropy(student_logits, labels).mean()
}

/// BAN: cross-entropy to the teacher's output distribution only, no labels (paper Section 3,
/// L(f(x, argmin L(y, f(x, theta_1))), f(x, theta_2))); the paper finds T = 1 works.
pub fn ban_loss(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    temperature: f64,
) -> Tensor<1> {
    soft_cross_entropy(
        teacher_distribution(teacher_logits, temperature),
        student_logits,
        temperature,
    )
}

/// BAN+L: the BAN term plus the label cross-entropy (paper Table 2, "BAN+L").
pub fn ban_l_loss(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    labels: Tensor<1, Int>,
    temperature: f64,
) -> Tensor<1> {
    let log_q = log_softmax(student_logits.clone(), 1);
    // At T = 1 (the paper's, and always for language models, where a log-softmax over the
    // vocabulary per token is a large share of a step) both terms read the same log-softmax.
    let log_q_t = if temperature == 1.0 {
        log_q.clone()
    } else {
        log_softmax(tempered(student_logits, temperature), 1)
    };
    label_nll(log_q, labels).mean()
        + soft_nll(teacher_distribution(teacher_logits, temperature), log_q_t)
}

/// CWTM weights (paper Section 3.2, Eq. 10): p_max(s) / sum_u p_max(u) over the minibatch, taken
/// from the teacher's maximum even when the teacher is wrong. They sum to one.
pub fn cwtm_weights(teacher_logits: Tensor<2>) -> Tensor<1> {
    let [batch, _] = teacher_logits.dims();
    let p_max = softmax(teacher_logits, 1).max_dim(1).reshape([batch]);
    p_max.clone() / p_max.sum()
}

/// CWTM, Confidence Weighted by Teacher Max (paper Eq. 10): the label cross-entropy with each
/// sample weighted by the teacher's confidence instead of 1/b; no dark knowledge.
pub fn cwtm_loss(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    labels: Tensor<1, Int>,
) -> Tensor<1> {
    let weights = cwtm_weights(teacher_logits);
    (label_cross_entropy(student_logits, labels) * weights).sum()
}

/// DKPP's permutation (paper Section 3.2, Eq. 11) of `[batch, classes]` probabilities: per
/// sample, the non-argmax entries are shuffled among the non-argmax positions; the argmax entry
/// stays. Moments survive, class similarities do not. Each row's shuffle depends only on the
/// class count, so it is drawn on the host from `rng` and applied on the device by one gather:
/// the teacher's probabilities never travel to the host (a synchronisation per batch on a GPU).
pub fn permute_dark_knowledge(probs: Tensor<2>, rng: &mut ChaCha8Rng) -> Tensor<2> {
    let [batch, classes] = probs.dims();
    let device = probs.device();
    // Row by row, the k-th non-argmax slot takes the value of slot shuffle[k]; a last column
    // pads the rows to `classes` and is never read.
    let mut shuffles: Vec<i64> = Vec::with_capacity(batch * classes);
    for _ in 0..batch {
        let mut shuffle: Vec<i64> = (0..classes as i64 - 1).collect();
        shuffle.shuffle(rng);
        shuffles.extend(shuffle);
        shuffles.push(0);
    }
    let shuffle = Tensor::<2, Int>::from_data(TensorData::new(shuffles, [batch, classes]), &device);
    let argmax = probs.clone().argmax(1).expand([batch, classes]);
    let positions = Tensor::<1, Int>::arange(0..classes as i64, &device)
        .reshape([1, classes])
        .expand([batch, classes]);
    // Slot k sits at position k + [k >= argmax]; position j != argmax holds slot j - [j > argmax].
    let source_of_slot = shuffle.clone() + shuffle.greater_equal(argmax.clone()).int();
    let slot = positions.clone() - positions.clone().greater(argmax.clone()).int();
    let source = source_of_slot
        .gather(1, slot)
        .mask_where(positions.equal(argmax.clone()), argmax);
    probs.gather(1, source)
}

/// DKPP, Dark Knowledge with Permuted Predictions (paper Eq. 11): the BAN loss against the
/// teacher's distribution with its non-argmax entries permuted per sample.
pub fn dkpp_loss(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    temperature: f64,
    rng: &mut ChaCha8Rng,
) -> Tensor<1> {
    let target = permute_dark_knowledge(teacher_distribution(teacher_logits, temperature), rng);
    soft_cross_entropy(target, student_logits, temperature)
}

/// Hinton et al. (2015) knowledge distillation, the paper's reference point (Section 2): both
/// models softened at T, the soft term scaled by T^2 so its gradients keep their size, mixed with
/// the labels by alpha. Cross-entropy and KL differ by the teacher's entropy, a constant.
pub fn kd_loss(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    labels: Tensor<1, Int>,
    temperature: f64,
    alpha: f64,
) -> Tensor<1> {
    let soft =
        ban_loss(student_logits.clone(), teacher_logits, temperature) * (temperature * temperature);
    soft * alpha + label_loss(student_logits, labels) * (1.0 - alpha)
}

/// FitNets' second stage (Romero et al., ICLR 2015, Eq. 2): knowledge distillation with the
/// labels at full weight and the soft term weighted by lambda, L = H(y, P_S) + lambda
/// H(P_T^tau, P_S^tau), without Hinton's tau^2 factor.
pub fn fitnets_kd_loss(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    labels: Tensor<1, Int>,
    temperature: f64,
    lambda: f64,
) -> Tensor<1> {
    let soft = ban_loss(student_logits.clone(), teacher_logits, temperature) * lambda;
    label_loss(student_logits, labels) + soft
}

/// Ba & Caruana (NIPS 2014), "Do Deep Nets Really Need to be Deep?", Section 2.2: the student
/// regresses the teacher's logits z, L = 1/(2T) sum_t ||g(x_t) - z_t||^2 over the T samples of
/// the batch; logit ratios a softmax would flatten stay in the target. The gradient with
/// respect to the student's logits is (g - z)/T.
pub fn logits_l2_loss(student_logits: Tensor<2>, teacher_logits: Tensor<2>) -> Tensor<1> {
    let [batch, _] = student_logits.dims();
    (student_logits - teacher_logits)
        .square()
        .sum()
        .div_scalar(2.0 * batch as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn device() -> Device {
        Device::flex()
    }

    fn logits(rows: &[[f32; 3]], device: &Device) -> Tensor<2> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 3]), device)
    }

    fn labels(l: &[i64], device: &Device) -> Tensor<1, Int> {
        Tensor::from_data(TensorData::new(l.to_vec(), [l.len()]), device)
    }

    fn scalar(t: Tensor<1>) -> f32 {
        t.into_data().try_into_vec::<f32>().unwrap()[0]
    }

    fn softmax_row(z: &[f32]) -> Vec<f32> {
        let m = z.iter().cloned().fold(f32::MIN, f32::max);
        let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f32 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn logit_matching_is_half_the_mean_squared_distance_and_its_gradient_the_difference() {
        let d = device().autodiff();
        let student = logits(&[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], &d).require_grad();
        let teacher = logits(&[[1.0, 0.0, 4.0], [2.0, -1.0, 0.0]], &device());
        // Sample 1: (0, 2, -1) -> 5; sample 2: (-2, 1, 0) -> 5; (5 + 5) / (2 * 2) = 2.5.
        let loss = logits_l2_loss(student.clone(), teacher);
        let value: f32 = loss.clone().into_scalar();
        assert!((value - 2.5).abs() < 1e-6, "{value}");
        // d/dg = (g - z) / T with T = 2.
        let grads = loss.backward();
        let g: Vec<f32> = student
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec()
            .unwrap();
        let expected = [0.0, 1.0, -0.5, -1.0, 0.5, 0.0];
        for (a, b) in g.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{g:?}");
        }
        let same = logits(&[[1.0, 2.0, 3.0]], &device());
        assert_eq!(logits_l2_loss(same.clone(), same).into_scalar::<f32>(), 0.0);
    }

    #[test]
    fn label_loss_matches_hand_computation() {
        let d = device();
        let z = [[1.0, 2.0, 3.0], [0.5, 0.0, -0.5]];
        let loss = scalar(label_loss(logits(&z, &d), labels(&[2, 0], &d)));
        let expected = -(softmax_row(&z[0])[2].ln() + softmax_row(&z[1])[0].ln()) / 2.0;
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn ban_loss_matches_hand_computation_and_survives_a_saturated_teacher() {
        let d = device();
        let s = [[1.0, 0.0, -1.0]];
        let t = [[0.0, 2.0, 0.0]];
        let p = softmax_row(&t[0]);
        let q = softmax_row(&s[0]);
        let expected: f32 = -(0..3).map(|i| p[i] * q[i].ln()).sum::<f32>();
        let loss = scalar(ban_loss(logits(&s, &d), logits(&t, &d), 1.0));
        assert!((loss - expected).abs() < 1e-5);
        // A teacher so confident that its other probabilities are exactly 0 in f32.
        let loss = scalar(ban_loss(
            logits(&[[0.0, 0.0, 0.0]], &d),
            logits(&[[500.0, 0.0, 0.0]], &d),
            1.0,
        ));
        assert!(
            loss.is_finite() && (loss - 3f32.ln()).abs() < 1e-5,
            "{loss}"
        );
    }

    #[test]
    fn distillation_gradient_is_q_minus_p() {
        let d = device().autodiff();
        let s = [[0.3, -1.2, 2.0], [1.0, 1.0, 0.0]];
        let t = [[2.0, 0.1, -0.5], [-1.0, 0.0, 3.0]];
        let student = logits(&s, &d).require_grad();
        let teacher = logits(&t, &device());
        let grads = ban_loss(student.clone(), teacher, 1.0).backward();
        let grad: Vec<f32> = student
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec()
            .unwrap();
        for r in 0..2 {
            let (q, p) = (softmax_row(&s[r]), softmax_row(&t[r]));
            for i in 0..3 {
                // Mean over the batch of 2 divides each row's q - p by 2.
                let expected = (q[i] - p[i]) / 2.0;
                assert!(
                    (grad[r * 3 + i] - expected).abs() < 1e-5,
                    "row {r} class {i}"
                );
            }
        }
    }

    #[test]
    fn cwtm_weights_sum_to_one_and_follow_teacher_confidence() {
        let d = device();
        let t = [[4.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let w: Vec<f32> = cwtm_weights(logits(&t, &d))
            .into_data()
            .try_into_vec()
            .unwrap();
        assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let maxes: Vec<f32> = t
            .iter()
            .map(|r| softmax_row(r).into_iter().fold(0.0, f32::max))
            .collect();
        let total: f32 = maxes.iter().sum();
        for (wi, m) in w.iter().zip(&maxes) {
            assert!((wi - m / total).abs() < 1e-6);
        }
        // The loss is the weighted sum of the per-sample label cross-entropies.
        let s = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let y = [0i64, 2, 1];
        let loss = scalar(cwtm_loss(logits(&s, &d), logits(&t, &d), labels(&y, &d)));
        let expected: f32 = (0..3)
            .map(|r| -softmax_row(&s[r])[y[r] as usize].ln() * w[r])
            .sum();
        assert!((loss - expected).abs() < 1e-5);
    }

    /// The host shuffle DKPP used before its permutation moved to the device: the reference
    /// its gather must reproduce exactly, from the same random stream.
    fn permute_on_host(probs: &mut [f32], classes: usize, rng: &mut ChaCha8Rng) {
        for row in probs.chunks_mut(classes) {
            let argmax = row
                .iter()
                .enumerate()
                .fold(0, |best, (i, &p)| if p > row[best] { i } else { best });
            let mut rest: Vec<f32> = (0..classes)
                .filter(|&i| i != argmax)
                .map(|i| row[i])
                .collect();
            rest.shuffle(rng);
            let mut rest = rest.into_iter();
            for (i, p) in row.iter_mut().enumerate() {
                if i != argmax {
                    *p = rest.next().expect("one value per non-argmax position");
                }
            }
        }
    }

    #[test]
    fn dkpp_keeps_argmax_and_multiset_and_changes_order() {
        let d = device();
        let classes = 10;
        let row: Vec<f32> = (0..classes).map(|i| (i as f32 + 1.0) / 55.0).collect();
        let probs: Vec<f32> = row.iter().chain(&row).copied().collect();
        let probs = Tensor::<2>::from_data(TensorData::new(probs, [2, classes]), &d);
        let out: Vec<f32> = permute_dark_knowledge(probs, &mut ChaCha8Rng::seed_from_u64(3))
            .into_data()
            .try_into_vec()
            .unwrap();
        let mut any_moved = false;
        for out in out.chunks(classes) {
            assert_eq!(out[classes - 1], row[classes - 1], "argmax entry stays");
            let mut a = out.to_vec();
            let mut b = row.clone();
            a.sort_by(f32::total_cmp);
            b.sort_by(f32::total_cmp);
            assert_eq!(a, b, "same multiset of probabilities");
            any_moved |= out != row.as_slice();
        }
        assert!(any_moved, "the permutation changes the order");
    }

    #[test]
    #[allow(deprecated)] // burn-tch is deprecated upstream but is the LibTorch path banbench offers.
    fn dkpp_permutes_on_the_device_as_the_host_shuffle_did() {
        #[allow(unused_mut)]
        let mut devices = vec![device()];
        #[cfg(feature = "tch")]
        devices.push(Device::libtorch());
        let (batch, classes) = (33, 7);
        let mut draw = ChaCha8Rng::seed_from_u64(11);
        // Distinct values, with the argmax at every position somewhere, first and last included.
        let mut probs: Vec<f32> = (0..batch * classes)
            .map(|_| rand::Rng::random::<f32>(&mut draw))
            .collect();
        for b in 0..batch {
            probs[b * classes + b % classes] = 2.0;
        }
        let mut expected = probs.clone();
        permute_on_host(&mut expected, classes, &mut ChaCha8Rng::seed_from_u64(5));
        for d in devices {
            let tensor =
                Tensor::<2>::from_data(TensorData::new(probs.clone(), [batch, classes]), &d);
            let out: Vec<f32> = permute_dark_knowledge(tensor, &mut ChaCha8Rng::seed_from_u64(5))
                .into_data()
                .try_into_vec()
                .unwrap();
            assert_eq!(out, expected, "on {d:?}");
        }
    }

    #[test]
    fn kd_scales_soft_term_by_t_squared_and_mixes_labels() {
        let d = device();
        let s = [[0.5, 0.1, -0.3]];
        let t = [[1.0, 3.0, 0.0]];
        let y = [1i64];
        let temp = 4.0;
        let soft = scalar(ban_loss(logits(&s, &d), logits(&t, &d), temp));
        let hard = scalar(label_loss(logits(&s, &d), labels(&y, &d)));
        let kd = scalar(kd_loss(
            logits(&s, &d),
            logits(&t, &d),
            labels(&y, &d),
            temp,
            0.7,
        ));
        assert!((kd - (0.7 * 16.0 * soft + 0.3 * hard)).abs() < 1e-4);
        let banl = scalar(ban_l_loss(
            logits(&s, &d),
            logits(&t, &d),
            labels(&y, &d),
            1.0,
        ));
        let ban1 = scalar(ban_loss(logits(&s, &d), logits(&t, &d), 1.0));
        assert!((banl - (ban1 + hard)).abs() < 1e-5);
        // Away from T = 1 the label term stays at T = 1 and the BAN term is tempered.
        let banl_t = scalar(ban_l_loss(
            logits(&s, &d),
            logits(&t, &d),
            labels(&y, &d),
            temp,
        ));
        assert!((banl_t - (soft + hard)).abs() < 1e-5);
    }
}

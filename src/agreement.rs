//! Agreement between two classifiers on one test set: how faithfully a student reproduces its
//! teacher, measured as Stanton et al. (2021, "Does knowledge distillation really work?")
//! measure fidelity (top-1 agreement and the KL divergence of the predictive distributions),
//! beside the churn between them (samples the student fixes and breaks). All of it from saved
//! test logits (`samples x classes`, row-major, as `logits/gen-K.f32` holds them).

/// Why two sets of logits cannot be compared on a test set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementError {
    #[error("no classes")]
    NoClasses,
    #[error("no test samples")]
    NoSamples,
    #[error("{values} logits are not {samples} samples x {classes} classes")]
    Shape {
        values: usize,
        samples: usize,
        classes: usize,
    },
    #[error("label {label} of sample {sample} is not one of {classes} classes")]
    Label {
        sample: usize,
        label: u16,
        classes: usize,
    },
}

/// Fidelity and churn of a student against its teacher on one test set.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Agreement {
    /// Fraction of samples where teacher and student predict the same class.
    pub top1: f64,
    /// Mean over samples of KL(teacher || student) of their softmaxes, nats: how far the
    /// student's predictive distribution is from the one it was taught.
    pub mean_kl: f64,
    /// Fraction of samples wrong under the teacher and right under the student.
    pub fixed: f64,
    /// Fraction of samples right under the teacher and wrong under the student.
    pub broken: f64,
}

impl Agreement {
    pub fn of(
        teacher: &[f32],
        student: &[f32],
        classes: usize,
        labels: &[u16],
    ) -> Result<Agreement, AgreementError> {
        let teacher_correct = correct(teacher, classes, labels)?;
        let student_correct = correct(student, classes, labels)?;
        let (mut same, mut kl, mut fixed, mut broken) = (0usize, 0f64, 0usize, 0usize);
        for (t, s) in teacher.chunks(classes).zip(student.chunks(classes)) {
            same += usize::from(argmax(t) == argmax(s));
            kl += kl_divergence(t, s);
        }
        for (&t, &s) in teacher_correct.iter().zip(&student_correct) {
            fixed += usize::from(!t && s);
            broken += usize::from(t && !s);
        }
        let n = labels.len() as f64;
        Ok(Agreement {
            top1: same as f64 / n,
            mean_kl: kl / n,
            fixed: fixed as f64 / n,
            broken: broken as f64 / n,
        })
    }
}

/// Per-sample top-1 correctness of one classifier's logits (as `stats::mcnemar` takes it).
pub fn correct(
    logits: &[f32],
    classes: usize,
    labels: &[u16],
) -> Result<Vec<bool>, AgreementError> {
    if classes == 0 {
        return Err(AgreementError::NoClasses);
    }
    if labels.is_empty() {
        return Err(AgreementError::NoSamples);
    }
    if logits.len() != labels.len() * classes {
        return Err(AgreementError::Shape {
            values: logits.len(),
            samples: labels.len(),
            classes,
        });
    }
    logits
        .chunks(classes)
        .zip(labels)
        .enumerate()
        .map(|(sample, (row, &label))| {
            if usize::from(label) >= classes {
                return Err(AgreementError::Label {
                    sample,
                    label,
                    classes,
                });
            }
            Ok(argmax(row) == usize::from(label))
        })
        .collect()
}

/// The predicted class: the first maximal index on ties, as `ensemble::metrics` counts top-1.
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &z) in row.iter().enumerate() {
        if z > row[best] {
            best = i;
        }
    }
    best
}

/// Log-softmax in f64, shifted by the maximum so that no exponential overflows.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let log_sum = row
        .iter()
        .map(|&z| (z as f64 - max).exp())
        .sum::<f64>()
        .ln();
    row.iter().map(|&z| z as f64 - max - log_sum).collect()
}

/// KL(p || q) = Σ p (log p - log q) of two rows' softmaxes, from their log-softmaxes so that a
/// tiny q stays finite in log space instead of underflowing to 0 first.
fn kl_divergence(p_logits: &[f32], q_logits: &[f32]) -> f64 {
    let (log_p, log_q) = (log_softmax(p_logits), log_softmax(q_logits));
    let kl: f64 = log_p
        .iter()
        .zip(&log_q)
        .map(|(&lp, &lq)| lp.exp() * (lp - lq))
        .sum();
    // KL is never negative; a rounding error of nearly equal rows must not make it so.
    kl.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_logits_agree_fully_with_no_divergence() {
        let logits = [2.0, -1.0, 0.5, 0.1, 0.2, 3.0, -4.0, 7.5, 7.0];
        let labels = [0, 1, 2];
        let agreement = Agreement::of(&logits, &logits, 3, &labels).unwrap();
        assert_eq!(
            agreement,
            Agreement {
                top1: 1.0,
                mean_kl: 0.0,
                fixed: 0.0,
                broken: 0.0
            }
        );
    }

    #[test]
    fn two_class_divergence_matches_the_hand_computation() {
        // Teacher logits (0, ln 3): softmax (1/4, 3/4). Student logits (0, 0): (1/2, 1/2).
        // KL = 1/4 ln(1/2) + 3/4 ln(3/2) = 3/4 ln 3 - ln 2.
        let teacher = [0.0, 3f32.ln()];
        let student = [0.0, 0.0];
        let agreement = Agreement::of(&teacher, &student, 2, &[1]).unwrap();
        let expected = 0.75 * 3f64.ln() - 2f64.ln();
        // The teacher's ln 3 is rounded to f32, which moves the KL by about 1e-8.
        assert!(
            (agreement.mean_kl - expected).abs() < 1e-7,
            "{}",
            agreement.mean_kl
        );
        // The student's tie (0, 0) predicts class 0, the teacher class 1.
        assert_eq!(agreement.top1, 0.0);
        assert_eq!((agreement.fixed, agreement.broken), (0.0, 1.0));
    }

    #[test]
    fn divergence_is_stable_for_large_logits_and_averages_over_samples() {
        // Sample 0: teacher (1000, 1001), beyond exp's range, softmax (1, e) / (1 + e), against
        // a uniform student: KL = ln 2 + Σ p ln p = ln 2 - ln(1 + e) + e / (1 + e).
        // Sample 1: uniform teacher against student (0, 1):
        // KL = Σ 1/2 ln(1/2 / q) = -ln 2 + ln(1 + e) - 1/2.
        let teacher = [1000.0, 1001.0, 0.0, 0.0];
        let student = [-1000.0, -1000.0, 0.0, 1.0];
        let agreement = Agreement::of(&teacher, &student, 2, &[0, 1]).unwrap();
        let e = std::f64::consts::E;
        let first = 2f64.ln() - (1.0 + e).ln() + e / (1.0 + e);
        let second = -(2f64.ln()) + (1.0 + e).ln() - 0.5;
        let expected = (first + second) / 2.0;
        assert!(
            (agreement.mean_kl - expected).abs() < 1e-12,
            "{}",
            agreement.mean_kl
        );
    }

    #[test]
    fn churn_counts_fixed_and_broken_samples() {
        // Four samples, three classes; predictions teacher (0, 1, 2, 0), student (0, 2, 2, 1).
        let teacher = [
            5.0, 1.0, 0.0, //
            0.0, 4.0, 1.0, //
            0.0, 1.0, 3.0, //
            2.0, 1.0, 0.0,
        ];
        let student = [
            4.0, 0.0, 1.0, //
            0.0, 1.0, 3.0, //
            1.0, 0.0, 2.0, //
            0.0, 2.0, 1.0,
        ];
        let labels = [0, 2, 1, 1];
        // Sample 0: both right. 1: teacher wrong, student right (fixed). 2: both wrong, and
        // they agree. 3: teacher wrong, student right (fixed).
        let agreement = Agreement::of(&teacher, &student, 3, &labels).unwrap();
        assert_eq!(agreement.top1, 0.5);
        assert_eq!((agreement.fixed, agreement.broken), (0.5, 0.0));
        // Swapping the roles turns every fixed sample into a broken one.
        let reverse = Agreement::of(&student, &teacher, 3, &labels).unwrap();
        assert_eq!(
            (reverse.top1, reverse.fixed, reverse.broken),
            (0.5, 0.0, 0.5)
        );
        assert_eq!(
            correct(&teacher, 3, &labels).unwrap(),
            [true, false, false, false]
        );
        assert_eq!(
            correct(&student, 3, &labels).unwrap(),
            [true, true, false, true]
        );
    }

    #[test]
    fn argmax_ties_go_to_the_first_maximal_class() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[0.0, 0.0]), 0);
        assert_eq!(
            correct(&[1.0, 1.0, 1.0, 1.0], 2, &[0, 1]).unwrap(),
            [true, false]
        );
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert_eq!(correct(&[], 0, &[0]), Err(AgreementError::NoClasses));
        assert_eq!(correct(&[], 2, &[]), Err(AgreementError::NoSamples));
        let error = correct(&[1.0, 2.0, 3.0], 2, &[0, 1]).unwrap_err();
        assert_eq!(error.to_string(), "3 logits are not 2 samples x 2 classes");
        assert_eq!(
            correct(&[1.0, 2.0, 3.0, 4.0], 2, &[0, 2]),
            Err(AgreementError::Label {
                sample: 1,
                label: 2,
                classes: 2
            })
        );
        assert_eq!(
            Agreement::of(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], 2, &[0]),
            Err(AgreementError::Shape {
                values: 4,
                samples: 1,
                classes: 2
            })
        );
    }
}

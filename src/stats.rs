//! The statistics of a study: many seeds of the same chain, one number per seed and generation.
//!
//! A study has few seeds (a handful to a few dozen), so intervals use Student's t rather than
//! the normal, and two generations are compared as paired samples (generation k and k+1 of the
//! same seed share data order and initial teacher), with the t-test beside two tests that assume
//! no normality: an exact Wilcoxon signed-rank test and an exact sign test. Two classifiers on
//! one test set are compared with McNemar's test; many comparisons at once are corrected with
//! Holm's step-down procedure.

use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, StudentsT};
use statrs::function::erf::erfc;

/// Why two samples cannot be compared pair by pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    #[error("paired samples differ in length: {a} against {b}")]
    Lengths { a: usize, b: usize },
    #[error("no pairs to compare")]
    Empty,
    #[error("pair {pair} is not a pair of finite numbers")]
    NotFinite { pair: usize },
}

/// Mean, spread and 95% interval of one quantity over the seeds of a study.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub n: usize,
    /// NaN when `n` is 0: there is nothing to average.
    pub mean: f64,
    /// Sample standard deviation (divisor n - 1, the unbiased variance); None when n < 2.
    pub sd: Option<f64>,
    /// 95% confidence interval of the mean, mean ± t(0.975, n - 1) · sd / √n: with few seeds the
    /// normal's 1.96 would be too narrow. None when n < 2; a point when sd is 0.
    pub ci95: Option<(f64, f64)>,
}

impl Summary {
    pub fn of(values: &[f64]) -> Summary {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Summary {
                n,
                mean,
                sd: None,
                ci95: None,
            };
        }
        // Two passes (mean, then squared deviations) keep the variance accurate when the
        // values are large and close together, as accuracies over seeds are.
        let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        let sd = (squares / (n - 1) as f64).sqrt();
        let half = students_t(n - 1).inverse_cdf(0.975) * sd / (n as f64).sqrt();
        Summary {
            n,
            mean,
            sd: Some(sd),
            ci95: Some((mean - half, mean + half)),
        }
    }
}

/// The paired comparison of two samples over the same seeds, in the same order: the
/// differences a - b, their summary, and three two-sided tests of "no difference".
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Paired {
    pub n: usize,
    /// Mean of a - b.
    pub mean: f64,
    /// Sample standard deviation of a - b (n - 1); None when n < 2.
    pub sd: Option<f64>,
    /// 95% confidence interval of the mean difference (Student's t, n - 1 degrees of freedom);
    /// None when n < 2.
    pub ci95: Option<(f64, f64)>,
    /// Paired t statistic, mean / (sd / √n). None when n < 2 or when every difference is the
    /// same (sd = 0): the t-test has no variance to judge by then, even when the mean is not 0,
    /// so it gives no answer; the Wilcoxon and sign tests below still do.
    pub t: Option<f64>,
    /// Two-sided p-value of the paired t-test (n - 1 degrees of freedom); None exactly when `t`
    /// is.
    pub t_p: Option<f64>,
    /// Two-sided Wilcoxon signed-rank p-value, zero differences dropped (Wilcoxon's own rule,
    /// scipy's `zero_method='wilcox'`) and tied |differences| given their midrank. With m <= 20
    /// nonzero differences it is exact: the statistic's null distribution is counted over all
    /// 2^m sign assignments of the midranks, which is exact with ties too, conditional on the
    /// ranks. Beyond 20 it is the normal approximation with the tie correction of the variance
    /// and no continuity correction (scipy's `method='asymptotic', correction=False`). 1 when
    /// every difference is 0. Ties are exact equality of the f64 differences.
    pub wilcoxon_p: f64,
    /// Two-sided exact sign test: the count of positive differences against Binomial(m, 1/2)
    /// over the m nonzero differences. 1 when every difference is 0.
    pub sign_p: f64,
}

/// Above this many nonzero differences the Wilcoxon p-value is the normal approximation.
const WILCOXON_EXACT_MAX: usize = 20;

/// Up to this many trials the binomial tail is summed in integers (every coefficient of a row
/// fits in a u128, and so does its sum, 2^n); beyond, it is statrs' regularized incomplete beta.
const EXACT_BINOMIAL_MAX: u64 = 64;

impl Paired {
    pub fn of(a: &[f64], b: &[f64]) -> Result<Paired, StatsError> {
        if a.len() != b.len() {
            return Err(StatsError::Lengths {
                a: a.len(),
                b: b.len(),
            });
        }
        if a.is_empty() {
            return Err(StatsError::Empty);
        }
        // A NaN would be neither positive, negative nor zero to the rank tests.
        if let Some(pair) = (0..a.len()).find(|&i| !(a[i].is_finite() && b[i].is_finite())) {
            return Err(StatsError::NotFinite { pair });
        }
        let differences: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
        let Summary { n, mean, sd, ci95 } = Summary::of(&differences);
        let t = sd
            .filter(|&sd| sd > 0.0)
            .map(|sd| mean / (sd / (n as f64).sqrt()));
        // The upper tail directly, not 1 - cdf, so that small p-values keep their digits.
        let t_p = t.map(|t| (2.0 * students_t(n - 1).sf(t.abs())).min(1.0));
        let nonzero: Vec<f64> = differences.into_iter().filter(|&d| d != 0.0).collect();
        let positive = nonzero.iter().filter(|&&d| d > 0.0).count();
        Ok(Paired {
            n,
            mean,
            sd,
            ci95,
            t,
            t_p,
            wilcoxon_p: wilcoxon_p(&nonzero),
            sign_p: binomial_two_sided(positive as u64, nonzero.len() as u64),
        })
    }
}

/// McNemar's test of two classifiers on one test set: only the samples where exactly one of
/// them is right carry information about which is better.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct McNemar {
    /// Samples right under a and wrong under b.
    pub a_only: usize,
    /// Samples right under b and wrong under a.
    pub b_only: usize,
    /// Exact two-sided p-value: `b_only` against Binomial(a_only + b_only, 1/2). The exact test,
    /// not the chi-squared approximation, because the discordant pairs can be few; 1 when there
    /// are none.
    pub p: f64,
}

/// McNemar's exact test on per-sample correctness (same test set, same sample order).
pub fn mcnemar(a_correct: &[bool], b_correct: &[bool]) -> Result<McNemar, StatsError> {
    if a_correct.len() != b_correct.len() {
        return Err(StatsError::Lengths {
            a: a_correct.len(),
            b: b_correct.len(),
        });
    }
    let (mut a_only, mut b_only) = (0, 0);
    for (&a, &b) in a_correct.iter().zip(b_correct) {
        a_only += usize::from(a && !b);
        b_only += usize::from(b && !a);
    }
    Ok(McNemar {
        a_only,
        b_only,
        p: binomial_two_sided(b_only as u64, (a_only + b_only) as u64),
    })
}

/// Holm-Bonferroni adjusted p-values, in the input order: the i-th smallest p is multiplied by
/// (m - i + 1), then a running maximum keeps the adjusted values in the order of the raw ones
/// (a step-down procedure), capped at 1. Rejecting where the adjusted p <= alpha controls the
/// family-wise error at alpha without assuming independence, and is never less powerful than
/// Bonferroni. The p-values must be numbers (a NaN has no place in the order).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max((m - rank) as f64 * p[i]).min(1.0);
        adjusted[i] = running;
    }
    adjusted
}

/// The standard Student's t distribution with `freedom` degrees of freedom.
fn students_t(freedom: usize) -> StudentsT {
    StudentsT::new(0.0, 1.0, freedom as f64).expect("at least one degree of freedom")
}

/// Exact two-sided binomial test of `k` successes in `n` trials at p = 1/2. The null
/// distribution is symmetric, so the p-value is twice the smaller tail, capped at 1 (scipy's
/// `binomtest`, which sums the outcomes no more likely than `k`, reduces to this at p = 1/2).
fn binomial_two_sided(k: u64, n: u64) -> f64 {
    let smaller = k.min(n - k);
    if n <= EXACT_BINOMIAL_MAX {
        // Sum the binomial coefficients in integers, so that small tests (the sign test over a
        // study's seeds) come out exactly, a tail of exactly 1/2 included.
        let (mut coefficient, mut tail) = (1u128, 0u128);
        for i in 0..=smaller {
            tail += coefficient;
            coefficient = coefficient * u128::from(n - i) / u128::from(i + 1);
        }
        return (tail as f64 / 2f64.powi(n as i32 - 1)).min(1.0);
    }
    let tail = Binomial::new(0.5, n)
        .expect("p = 1/2 is a probability")
        .cdf(smaller);
    (2.0 * tail).min(1.0)
}

/// Two-sided Wilcoxon signed-rank p-value of nonzero differences (see `Paired::wilcoxon_p`).
fn wilcoxon_p(nonzero: &[f64]) -> f64 {
    let m = nonzero.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| nonzero[i].abs().total_cmp(&nonzero[j].abs()));
    // Twice the midranks, so that tied ranks (halves) stay integers and sums compare exactly.
    let mut ranks2 = vec![0u64; m];
    let mut tie_sizes = Vec::new();
    let mut start = 0;
    while start < m {
        let magnitude = nonzero[order[start]].abs();
        // total_cmp, so that every value equals itself and each group holds at least one.
        let end = start
            + order[start..].partition_point(|&i| nonzero[i].abs().total_cmp(&magnitude).is_eq());
        // Positions start..end hold ranks start + 1 ..= end; twice their mean is start + 1 + end.
        for &i in &order[start..end] {
            ranks2[i] = (start + 1 + end) as u64;
        }
        tie_sizes.push((end - start) as f64);
        start = end;
    }
    let w_plus2: u64 = (0..m)
        .filter(|&i| nonzero[i] > 0.0)
        .map(|i| ranks2[i])
        .sum();
    if m <= WILCOXON_EXACT_MAX {
        // counts[s]: how many of the 2^m sign assignments give twice W+ = s. Counting by
        // subset sums is the enumeration of all assignments, in O(m · sum of ranks).
        let total2: u64 = ranks2.iter().sum();
        let mut counts = vec![0u64; total2 as usize + 1];
        counts[0] = 1;
        for &r in &ranks2 {
            for s in (r as usize..counts.len()).rev() {
                counts[s] += counts[s - r as usize];
            }
        }
        let at_most: u64 = counts[..=w_plus2 as usize].iter().sum();
        let at_least: u64 = counts[w_plus2 as usize..].iter().sum();
        // W+ is symmetric about its mean under the null, so twice the smaller tail is the
        // probability of a W+ at least as far from the mean as the one observed.
        (2.0 * at_most.min(at_least) as f64 / (1u64 << m) as f64).min(1.0)
    } else {
        let m = m as f64;
        let mean = m * (m + 1.0) / 4.0;
        let ties: f64 = tie_sizes.iter().map(|t| t * t * t - t).sum();
        let sd = ((m * (m + 1.0) * (2.0 * m + 1.0) - ties / 2.0) / 24.0).sqrt();
        let z = (w_plus2 as f64 / 2.0 - mean) / sd;
        // Two normal tails, 2 · (1 - Φ(|z|)) = erfc(|z| / √2), without cancellation.
        erfc(z.abs() / std::f64::consts::SQRT_2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// |actual - expected| <= 1e-9 · |expected| (the closed forms and statrs' special
    /// functions against scipy's).
    fn close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= 1e-9 * expected.abs(),
            "{actual} against {expected}"
        );
    }

    #[test]
    fn summary_interval_matches_scipy_t_interval() {
        let values = [93.12, 92.87, 93.45, 93.01, 92.66];
        let summary = Summary::of(&values);
        assert_eq!(summary.n, 5);
        // numpy.mean(v) -> 93.022; numpy.std(v, ddof=1) -> 0.2945674795356763
        close(summary.mean, 93.022);
        close(summary.sd.unwrap(), 0.2945674795356763);
        // scipy.stats.t.interval(0.95, df=4, loc=numpy.mean(v), scale=scipy.stats.sem(v))
        //   -> (92.65624616561894, 93.38775383438107)
        let (low, high) = summary.ci95.unwrap();
        close(low, 92.65624616561894);
        close(high, 93.38775383438107);
    }

    #[test]
    fn summary_with_two_values_uses_one_degree_of_freedom() {
        // scipy.stats.t.interval(0.95, df=1, loc=1.5, scale=scipy.stats.sem([1.0, 2.0]))
        //   -> (-4.853102368087347, 7.853102368087347)
        let (low, high) = Summary::of(&[1.0, 2.0]).ci95.unwrap();
        close(low, -4.853102368087347);
        close(high, 7.853102368087347);
    }

    #[test]
    fn summary_of_fewer_than_two_values_has_no_spread() {
        let one = Summary::of(&[0.25]);
        assert_eq!((one.n, one.mean, one.sd, one.ci95), (1, 0.25, None, None));
        let none = Summary::of(&[]);
        assert_eq!((none.n, none.sd, none.ci95), (0, None, None));
        assert!(none.mean.is_nan());
    }

    #[test]
    fn summary_of_equal_values_is_a_point_interval() {
        let summary = Summary::of(&[2.5; 4]);
        assert_eq!(summary.sd, Some(0.0));
        assert_eq!(summary.ci95, Some((2.5, 2.5)));
    }

    // Test errors (percent) of two generations over eight seeds.
    const A: [f64; 8] = [6.12, 5.98, 6.35, 6.05, 6.21, 5.89, 6.40, 6.02];
    const B: [f64; 8] = [6.30, 6.11, 6.29, 6.24, 6.38, 6.05, 6.51, 6.20];

    #[test]
    fn paired_t_test_matches_scipy_ttest_rel() {
        let paired = Paired::of(&A, &B).unwrap();
        assert_eq!(paired.n, 8);
        // numpy.mean(d) -> -0.13250000000000006; numpy.std(d, ddof=1) -> 0.08241879119992683
        close(paired.mean, -0.13250000000000006);
        close(paired.sd.unwrap(), 0.08241879119992683);
        // scipy.stats.ttest_rel(A, B) -> statistic=-4.547101317220036, pvalue=0.0026452140027748636
        close(paired.t.unwrap(), -4.547101317220036);
        close(paired.t_p.unwrap(), 0.0026452140027748636);
        // scipy.stats.ttest_rel(A, B).confidence_interval(0.95)
        //   -> (-0.20140383377856963, -0.06359616622143051)
        let (low, high) = paired.ci95.unwrap();
        close(low, -0.20140383377856963);
        close(high, -0.06359616622143051);
    }

    #[test]
    fn paired_wilcoxon_without_ties_matches_scipy_exact() {
        // scipy.stats.wilcoxon(A, B, method='exact') -> pvalue=0.015625
        close(Paired::of(&A, &B).unwrap().wilcoxon_p, 0.015625);
    }

    #[test]
    fn paired_sign_test_matches_scipy_binomtest() {
        // One positive difference out of eight: scipy.stats.binomtest(1, 8, 0.5) -> 0.0703125
        close(Paired::of(&A, &B).unwrap().sign_p, 0.0703125);
    }

    #[test]
    fn paired_wilcoxon_with_twenty_differences_is_still_exact() {
        // numpy.round(numpy.random.default_rng(7).normal(0.3, 1.0, 20), 4), then normal(0, 1, 20)
        let a = [
            0.3012, 0.5987, 0.0259, -0.5906, -0.1547, -0.6916, 0.3601, 1.6402, -0.1922, -0.3205,
            0.7898, 0.6569, 0.4054, -0.6305, 0.2707, 0.9953, -1.0442, -0.1576, -1.6012, -0.9895,
        ];
        let b = [
            -1.8417, -0.2351, -1.2674, 0.2713, 0.1568, -0.1869, -2.5168, -0.5387, -0.0485, 0.1133,
            -1.5301, -0.4778, -0.9785, -0.8088, 1.0609, -0.8075, -0.0325, 0.8844, -0.5836, -0.1117,
        ];
        // scipy.stats.wilcoxon(a, b, method='exact') -> pvalue=0.1893482208251953
        close(Paired::of(&a, &b).unwrap().wilcoxon_p, 0.1893482208251953);
    }

    #[test]
    fn paired_wilcoxon_with_ties_and_zeros_matches_an_enumeration() {
        let a = [10., 12., 9., 14., 11., 13., 10., 15., 12., 11., 9., 14.];
        let b = [9., 13., 7., 12., 11., 10., 12., 11., 11., 11., 8., 12.];
        // Differences 1, -1, 2, 2, 0, 3, -2, 4, 1, 0, 1, 2: two zeros, ties of 4 ones and 4 twos.
        let paired = Paired::of(&a, &b).unwrap();
        // ranks = scipy.stats.rankdata(abs(nz)) over the 10 nonzero differences nz; W+ = 46;
        // over itertools.product([0, 1], repeat=10): 1005 of 1024 sign assignments have
        // W+ <= 46, 36 have W+ >= 46 -> p = 2 * 36 / 1024 = 0.0703125;
        // scipy.stats.wilcoxon(a, b, method=scipy.stats.PermutationMethod()) -> 0.0703125
        // (the untied table, scipy's method='exact', would say 0.064453125 here)
        close(paired.wilcoxon_p, 0.0703125);
        // scipy.stats.binomtest(8, 10, 0.5) -> 0.109375 (8 positive of 10 nonzero)
        close(paired.sign_p, 0.109375);
        // scipy.stats.ttest_rel(a, b) -> statistic=2.2384775342091396, pvalue=0.046825989975192654
        close(paired.t.unwrap(), 2.2384775342091396);
        close(paired.t_p.unwrap(), 0.046825989975192654);
    }

    #[test]
    fn paired_wilcoxon_beyond_twenty_is_the_tie_corrected_normal() {
        let d = [
            3., -1., 2., 2., 5., -3., 1., 4., 0., 2., -2., 6., 1., 3., -1., 2., 4., 5., -4., 3.,
            1., 2., 7., -2., 3., 1.,
        ];
        // 25 nonzero differences with many ties:
        // scipy.stats.wilcoxon(d, method='asymptotic', correction=False) -> 0.007115244095791255
        close(
            Paired::of(&d, &[0.0; 26]).unwrap().wilcoxon_p,
            0.007115244095791255,
        );
        // 21 differences without ties, every third negative:
        let d: Vec<f64> = (1..=21)
            .map(|i| if i % 3 == 0 { -i as f64 } else { i as f64 })
            .collect();
        // scipy.stats.wilcoxon(d, method='asymptotic', correction=False) -> 0.2735753578226747
        // (scipy's method='exact' gives 0.2877340316772461 here)
        close(
            Paired::of(&d, &[0.0; 21]).unwrap().wilcoxon_p,
            0.2735753578226747,
        );
    }

    #[test]
    fn paired_constant_differences_have_no_t_test() {
        let paired = Paired::of(&[1.0, 2.0, 3.0, 4.0, 5.0], &[0.5, 1.5, 2.5, 3.5, 4.5]).unwrap();
        assert_eq!(paired.sd, Some(0.0));
        assert_eq!((paired.t, paired.t_p), (None, None));
        // All five differences positive and tied:
        // itertools.product over 5 signs: only all-positive reaches W+ = 15 -> 2 / 32;
        // scipy.stats.binomtest(5, 5, 0.5) -> 0.0625
        close(paired.wilcoxon_p, 0.0625);
        close(paired.sign_p, 0.0625);

        let same = Paired::of(&[1.0, 2.0], &[1.0, 2.0]).unwrap();
        assert_eq!(
            (same.mean, same.t_p, same.wilcoxon_p, same.sign_p),
            (0.0, None, 1.0, 1.0)
        );
    }

    #[test]
    fn paired_single_seed_has_only_the_difference() {
        let paired = Paired::of(&[0.9], &[0.8]).unwrap();
        assert_eq!(
            (paired.n, paired.sd, paired.ci95, paired.t),
            (1, None, None, None)
        );
        close(paired.mean, 0.9 - 0.8);
        assert_eq!((paired.wilcoxon_p, paired.sign_p), (1.0, 1.0));
    }

    #[test]
    fn paired_rejects_mismatched_and_empty_samples() {
        let error = Paired::of(&[1.0, 2.0, 3.0], &[1.0]).unwrap_err();
        assert_eq!(error, StatsError::Lengths { a: 3, b: 1 });
        assert_eq!(
            error.to_string(),
            "paired samples differ in length: 3 against 1"
        );
        assert_eq!(Paired::of(&[], &[]).unwrap_err(), StatsError::Empty);
        assert_eq!(
            Paired::of(&[1.0, 2.0], &[1.0, f64::NAN]).unwrap_err(),
            StatsError::NotFinite { pair: 1 }
        );
    }

    #[test]
    fn mcnemar_matches_scipy_binomtest_and_statsmodels() {
        // 40 both right, 3 only a right, 12 only b right, 5 both wrong.
        let a: Vec<bool> = [vec![true; 43], vec![false; 17]].concat();
        let b: Vec<bool> = [
            vec![true; 40],
            vec![false; 3],
            vec![true; 12],
            vec![false; 5],
        ]
        .concat();
        let test = mcnemar(&a, &b).unwrap();
        assert_eq!((test.a_only, test.b_only), (3, 12));
        // scipy.stats.binomtest(12, 15, 0.5) -> 0.03515625;
        // statsmodels.stats.contingency_tables.mcnemar([[40, 3], [12, 5]], exact=True) -> 0.03515625
        close(test.p, 0.03515625);
        assert_eq!(mcnemar(&b, &a).unwrap().p, test.p);
    }

    #[test]
    fn mcnemar_without_discordant_pairs_is_one() {
        let correct = [true, false, true];
        let test = mcnemar(&correct, &correct).unwrap();
        assert_eq!((test.a_only, test.b_only, test.p), (0, 0, 1.0));
        assert_eq!(
            mcnemar(&correct, &[true]).unwrap_err(),
            StatsError::Lengths { a: 3, b: 1 }
        );
    }

    #[test]
    fn binomial_test_on_many_trials_matches_scipy() {
        // scipy.stats.binomtest(430, 1000, 0.5) -> 1.0709737664959605e-05
        close(binomial_two_sided(430, 1000), 1.0709737664959605e-05);
        // scipy.stats.binomtest(470, 1000, 0.5) -> 0.06202319509836343
        close(binomial_two_sided(470, 1000), 0.06202319509836343);
        close(binomial_two_sided(530, 1000), 0.06202319509836343);
        // scipy.stats.binomtest(500, 1000, 0.5) -> 1.0
        assert_eq!(binomial_two_sided(500, 1000), 1.0);
        // Either side of the switch from integer sums to statrs:
        // scipy.stats.binomtest(20, 64, 0.5) -> 0.0036899642765400487
        close(binomial_two_sided(20, 64), 0.0036899642765400487);
        // scipy.stats.binomtest(20, 65, 0.5) -> 0.0026263768106840374
        close(binomial_two_sided(20, 65), 0.0026263768106840374);
        // scipy.stats.binomtest(3, 7, 0.5) -> 1.0; binomtest(0, 1, 0.5) -> 1.0
        assert_eq!(binomial_two_sided(3, 7), 1.0);
        assert_eq!(binomial_two_sided(0, 1), 1.0);
        assert_eq!(binomial_two_sided(0, 0), 1.0);
    }

    #[test]
    fn holm_matches_statsmodels_multipletests() {
        // statsmodels.stats.multitest.multipletests(p, method='holm')[1]
        let cases: [(&[f64], &[f64]); 3] = [
            // [0.01, 0.04, 0.03, 0.005, 0.5] -> [0.04, 0.09, 0.09, 0.025, 0.5]
            (
                &[0.01, 0.04, 0.03, 0.005, 0.5],
                &[0.04, 0.09, 0.09, 0.025, 0.5],
            ),
            // [0.02, 0.02, 0.9, 0.3] -> [0.08, 0.08, 0.9, 0.6]
            (&[0.02, 0.02, 0.9, 0.3], &[0.08, 0.08, 0.9, 0.6]),
            // [0.6, 0.7, 0.8] -> [1.0, 1.0, 1.0]
            (&[0.6, 0.7, 0.8], &[1.0, 1.0, 1.0]),
        ];
        for (p, expected) in cases {
            let adjusted = holm(p);
            assert_eq!(adjusted.len(), expected.len());
            for (&actual, &expected) in adjusted.iter().zip(expected) {
                close(actual, expected);
            }
        }
        assert!(holm(&[]).is_empty());
    }
}

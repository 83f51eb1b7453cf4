//! What the kernel tests share: comparing a tensor with a reference computation of it.

use burn::prelude::*;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

/// Fails unless `actual` equals `reference` elementwise within `relative` times the reference's
/// largest magnitude (floating-point sums in another order differ in their low bits).
pub fn assert_close<const D: usize>(
    reference: Tensor<D>,
    actual: Tensor<D>,
    relative: f32,
    what: &str,
) {
    let (reference, actual) = (values(reference), values(actual));
    assert_eq!(reference.len(), actual.len(), "{what}: sizes differ");
    let scale = reference.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    let worst = reference
        .iter()
        .zip(&actual)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= relative * scale,
        "{what}: differs from the reference by {worst} (values up to {scale})"
    );
}

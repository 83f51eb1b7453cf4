use super::{Cost, Shape};

/// Parameters, multiply-accumulates and feature maps, layer by layer as `Mlp::new` builds them.
pub(super) fn cost(hidden: &[usize], shape: Shape) -> Option<Cost> {
    let mut cost = Cost::default();
    let mut inputs = shape
        .channels
        .checked_mul(shape.height)?
        .checked_mul(shape.width)?;
    cost.map(inputs, [1, 1])?;
    for &h in hidden {
        cost.linear(inputs, h)?;
        // The ReLU's output.
        cost.map(h, [1, 1])?;
        inputs = h;
    }
    cost.linear(inputs, shape.classes)?;
    Some(cost)
}

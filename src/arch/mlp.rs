use super::{Cost, Shape};

/// Parameters and multiply-accumulates, layer by layer as `Mlp::new` builds them.
pub(super) fn cost(hidden: &[usize], shape: Shape) -> Cost {
    let mut cost = Cost::default();
    let mut inputs = shape.channels * shape.height * shape.width;
    for &h in hidden {
        cost.linear(inputs, h);
        inputs = h;
    }
    cost.linear(inputs, shape.classes);
    cost
}

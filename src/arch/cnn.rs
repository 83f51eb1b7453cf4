use super::{Cost, Shape};

/// The conv blocks' (from, to) channels: two stages of two blocks, then a widening block.
/// `cost` checks that 4 x `width` can be counted before anything builds these.
pub(crate) fn convs(width: usize, channels: usize) -> [(usize, usize); 5] {
    let w = width;
    [
        (channels, w),
        (w, w),
        (w, 2 * w),
        (2 * w, 2 * w),
        (2 * w, 4 * w),
    ]
}

/// Downsample after each two-block stage.
pub(crate) fn pools_after(block: usize) -> bool {
    block == 1 || block == 3
}

/// Parameters, multiply-accumulates and feature maps, layer by layer as `Cnn::new` builds them.
pub(super) fn cost(width: usize, shape: Shape) -> Option<Cost> {
    let features = width.checked_mul(4)?;
    let mut cost = Cost::default();
    let mut size = [shape.height, shape.width];
    cost.map(shape.channels, size)?;
    for (i, (from, to)) in convs(width, shape.channels).into_iter().enumerate() {
        // `Same` padding keeps the map size; the 2x2 stride-2 max pool rounds down.
        cost.conv(from, to, 3, size)?;
        cost.norm(to, size)?;
        if pools_after(i) {
            size = size.map(|s| s / 2);
            cost.map(to, size)?;
        }
    }
    cost.map(features, [1, 1])?;
    cost.linear(features, shape.classes)?;
    Some(cost)
}

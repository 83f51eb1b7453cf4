//! Wide-ResNet-d-k (Zagoruyko & Komodakis 2016, "Wide Residual Networks"): the BAN paper's
//! Tables 1 and 3. A Wide-ResNet is a pre-activation ResNet with other stage widths, another
//! depth rule and dropout, so it is built by `PreactResnet` from this layout.

use super::preact_resnet::PreactLayout;

/// WRN-d-k: a 16-channel stem, stages of 16k, 32k and 64k channels, depth = 6n + 4 (n blocks
/// per stage; the 4 counts the stem, the head and the projection shortcuts), and dropout
/// between each block's convolutions ("wide-dropout" blocks B(3,3)).
pub(super) fn layout(depth: usize, widen: usize, dropout: f64) -> PreactLayout {
    PreactLayout {
        stem: 16,
        channels: [16 * widen, 32 * widen, 64 * widen],
        blocks: [(depth - 4) / 6; 3],
        inner: None,
        dropout,
    }
}

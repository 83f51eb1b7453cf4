//! The losses of the two-stage controls' first stages, on intermediate feature maps rather than
//! logits: FitNets' hint and FSP's flow. The teacher's maps arrive as constants.

use burn::prelude::*;

/// FitNets' hint loss (Romero et al., ICLR 2015, Eq. 3): L_HT = 1/2 ||u_h(x) - r(v_g(x))||^2
/// per sample, the teacher's hint u_h against the regressed guided map r(v_g), summed over
/// every element of the map and averaged over the batch.
pub fn hint_loss(hint: Tensor<4>, regressed: Tensor<4>) -> Tensor<1> {
    let [batch, ..] = hint.dims();
    (hint - regressed)
        .square()
        .sum()
        .div_scalar(2.0 * batch as f64)
}

/// The FSP matrix of two maps of one size (Yim et al., CVPR 2017, Eq. 1): G_ij = sum over the
/// h x w positions of F1_i F2_j, divided by h w; `[batch, m, n]` from `[batch, m, h, w]` and
/// `[batch, n, h, w]`.
pub fn fsp_matrix(first: Tensor<4>, last: Tensor<4>) -> Tensor<3> {
    let [batch, m, h, w] = first.dims();
    let [_, n, ..] = last.dims();
    let first = first.reshape([batch, m, h * w]);
    let last = last.reshape([batch, n, h * w]);
    first
        .matmul(last.swap_dims(1, 2))
        .div_scalar((h * w) as f64)
}

/// FSP's loss (Yim et al. 2017, Eq. 2) with the lambda_i equal (1): L = 1/N sum_x sum_i
/// ||G_i^T(x) - G_i^S(x)||^2 over the matched sections i, averaged over the N samples.
pub fn fsp_loss(teacher: &[Tensor<3>], student: &[Tensor<3>]) -> Tensor<1> {
    let batch = student[0].dims()[0];
    teacher
        .iter()
        .zip(student)
        .map(|(t, s)| (t.clone() - s.clone()).square().sum())
        .reduce(|a, b| a + b)
        .expect("at least one section")
        .div_scalar(batch as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn maps(values: &[f32], shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Device::flex())
    }

    fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec().unwrap()
    }

    #[test]
    fn an_fsp_matrix_is_the_position_average_of_channel_products() {
        // One sample, 2x2 maps: F1 has channels a = (1, 2, 3, 4) and b = (0, 1, 0, 1); F2 has
        // one channel c = (2, 0, 0, 2). G = [a.c, b.c] / 4 = [(2 + 8) / 4, 2 / 4].
        let first = maps(&[1., 2., 3., 4., 0., 1., 0., 1.], [1, 2, 2, 2]);
        let last = maps(&[2., 0., 0., 2.], [1, 1, 2, 2]);
        let g = fsp_matrix(first, last);
        assert_eq!(g.dims(), [1, 2, 1]);
        assert_eq!(floats(g), vec![2.5, 0.5]);
    }

    #[test]
    fn the_fsp_loss_is_the_squared_distance_of_the_matrices_per_sample() {
        let t = Tensor::<3>::from_data(
            TensorData::new(vec![1f32, 2., 3., 4.], [2, 2, 1]),
            &Device::flex(),
        );
        let s = Tensor::<3>::zeros([2, 2, 1], &Device::flex());
        // (1 + 4 + 9 + 16) / 2 samples, and two sections add.
        let one: f32 = fsp_loss(std::slice::from_ref(&t), std::slice::from_ref(&s)).into_scalar();
        assert_eq!(one, 15.0);
        let two: f32 = fsp_loss(&[t.clone(), t.clone()], &[s.clone(), t]).into_scalar();
        assert_eq!(two, 15.0);
    }

    #[test]
    fn the_hint_loss_is_half_the_squared_distance_per_sample_and_its_gradient_the_difference() {
        let d = Device::flex().autodiff();
        let hint = maps(&[1., 2., 3., 4.], [2, 2, 1, 1]);
        let regressed =
            Tensor::<4>::from_data(TensorData::new(vec![0f32, 2., 1., 0.], [2, 2, 1, 1]), &d)
                .require_grad();
        // (1 + 0) + (4 + 16) = 21, halved and over 2 samples.
        let loss = hint_loss(hint, regressed.clone());
        let value: f32 = loss.clone().into_scalar();
        assert!((value - 5.25).abs() < 1e-6, "{value}");
        let grads = loss.backward();
        // d/dr = (r - u) / batch.
        let g = floats(regressed.grad(&grads).unwrap());
        assert_eq!(g, vec![-0.5, 0.0, -1.0, -2.0]);
    }
}

//! From u8 images to normalised f32 batches, with the standard CIFAR training augmentation
//! (random crop of a padded image, random horizontal flip), and the epoch order.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ImageSet;

/// ChaCha streams of the epoch orders, apart from the default stream 0 so the order stays
/// independent of other generators seeded from the same run seed.
const ORDER_STREAMS: u64 = 1 << 63;

/// Per-channel mean and std (over the train split, pixel values scaled to [0,1]).
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalization {
    /// Statistics of all pixels of `set`. A channel without spread (or an empty set) gets std 1,
    /// so normalising only shifts it instead of dividing by zero.
    pub fn from_images(set: &ImageSet) -> Self {
        let plane = set.height * set.width;
        let (mut sum, mut squares) = (vec![0u64; set.channels], vec![0u64; set.channels]);
        if plane > 0 {
            for (i, channel) in set.images.chunks_exact(plane).enumerate() {
                let c = i % set.channels;
                for &v in channel {
                    sum[c] += u64::from(v);
                    squares[c] += u64::from(v) * u64::from(v);
                }
            }
        }
        let count = (set.len() * plane) as f64;
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for (s, sq) in sum.into_iter().zip(squares) {
            let m = if count > 0.0 {
                s as f64 / count / 255.0
            } else {
                0.0
            };
            let var = if count > 0.0 {
                sq as f64 / count / (255.0 * 255.0) - m * m
            } else {
                0.0
            };
            let sd = var.max(0.0).sqrt();
            mean.push(m as f32);
            std.push(if sd > 1e-6 { sd as f32 } else { 1.0 });
        }
        Normalization { mean, std }
    }
}

/// Training-time augmentation: a random crop of the image padded by `crop_padding` pixels on
/// each side (reflection padding, so no artificial black borders), and a horizontal flip with
/// probability 1/2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    pub crop_padding: usize,
    pub horizontal_flip: bool,
}

impl Augment {
    pub const NONE: Augment = Augment {
        crop_padding: 0,
        horizontal_flip: false,
    };
}

/// Turns images into normalised f32 batches (NCHW, row-major) plus labels as i64.
pub struct Batcher {
    pub normalization: Normalization,
    pub augment: Augment,
}

impl Batcher {
    /// The images and labels at `indices`. `rng` = Some for training (augmentation applied),
    /// None for evaluation (no augmentation). Panics if an index is out of range or the
    /// normalization has fewer channels than the images.
    pub fn batch(
        &self,
        set: &ImageSet,
        indices: &[usize],
        mut rng: Option<&mut ChaCha8Rng>,
    ) -> (Vec<f32>, Vec<i64>) {
        let (h, w) = (set.height, set.width);
        // x / 255 normalised = x * scale + shift.
        let (scale, shift): (Vec<f32>, Vec<f32>) = (0..set.channels)
            .map(|c| {
                let (mean, std) = (self.normalization.mean[c], self.normalization.std[c]);
                (1.0 / (255.0 * std), -mean / std)
            })
            .unzip();
        let mut pixels = Vec::with_capacity(indices.len() * set.image_len());
        for &i in indices {
            let (dy, dx, flip) = match rng.as_deref_mut() {
                Some(rng) => self.draw(rng),
                None => (0, 0, false),
            };
            for (c, plane) in set.image(i).chunks_exact(h * w).enumerate() {
                for y in 0..h {
                    let row = &plane[reflect(y as isize + dy, h) * w..][..w];
                    for x in 0..w {
                        let x = if flip { w - 1 - x } else { x };
                        pixels.push(
                            f32::from(row[reflect(x as isize + dx, w)]) * scale[c] + shift[c],
                        );
                    }
                }
            }
        }
        let labels = indices.iter().map(|&i| i64::from(set.labels[i])).collect();
        (pixels, labels)
    }

    /// One image's crop offset (dy, dx) in -padding..=padding and whether to flip it.
    fn draw(&self, rng: &mut ChaCha8Rng) -> (isize, isize, bool) {
        let p = self.augment.crop_padding as i64;
        let mut offset = || rng.random_range(-p..=p) as isize;
        let (dy, dx) = if p > 0 { (offset(), offset()) } else { (0, 0) };
        (dy, dx, self.augment.horizontal_flip && rng.random_bool(0.5))
    }
}

/// Maps a coordinate of the reflection-padded image (…, 2, 1, | 0, 1, …, n-1, | n-2, …) back
/// into 0..n; it keeps reflecting for a padding wider than the image rather than failing.
fn reflect(i: isize, n: usize) -> usize {
    if n < 2 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Deterministic epoch order: a permutation of 0..n from (seed, epoch).
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(ORDER_STREAMS + epoch as u64);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two 1-channel 3x4 images: pixel values 0..12 and 100..112, labels 3 and 5.
    fn two_images() -> ImageSet {
        ImageSet {
            images: (0..12).chain(100..112).collect(),
            labels: vec![3, 5],
            channels: 1,
            height: 3,
            width: 4,
        }
    }

    /// A batcher that maps pixel v to v (mean 0, std 1/255).
    fn raw(augment: Augment) -> Batcher {
        Batcher {
            normalization: Normalization {
                mean: vec![0.0],
                std: vec![1.0 / 255.0],
            },
            augment,
        }
    }

    #[test]
    fn normalization_of_a_hand_made_set() {
        // Two 2-channel 1x2 images: channel 0 holds 0, 255, 0, 255 and channel 1 holds 51 throughout.
        let set = ImageSet {
            images: vec![0, 255, 51, 51, 255, 0, 51, 51],
            labels: vec![0, 1],
            channels: 2,
            height: 1,
            width: 2,
        };
        let n = Normalization::from_images(&set);
        assert_eq!(n.mean, [0.5, 0.2]);
        // Channel 1 is constant, so its std falls back to 1.
        assert_eq!(n.std, [0.5, 1.0]);
        let (pixels, labels) = Batcher {
            normalization: n,
            augment: Augment::NONE,
        }
        .batch(&set, &[1], None);
        let expected = [1.0, -1.0, 0.0, 0.0];
        assert!(
            pixels
                .iter()
                .zip(expected)
                .all(|(p, e)| (p - e).abs() < 1e-6),
            "{pixels:?}"
        );
        assert_eq!(labels, [1]);
    }

    #[test]
    fn evaluation_batch_is_the_images_in_index_order() {
        let set = two_images();
        // No rng: no augmentation even when configured.
        let (pixels, labels) = raw(Augment {
            crop_padding: 2,
            horizontal_flip: true,
        })
        .batch(&set, &[1, 0], None);
        let expected: Vec<f32> = (100..112).chain(0..12).map(|v| v as f32).collect();
        assert_eq!(pixels, expected);
        assert_eq!(labels, [5, 3]);
    }

    #[test]
    fn crop_with_padding_zero_is_identity() {
        let set = two_images();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (pixels, _) = raw(Augment::NONE).batch(&set, &[0, 1], Some(&mut rng));
        assert_eq!(
            pixels,
            set.images.iter().map(|&v| f32::from(v)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn flip_mirrors_rows() {
        let set = two_images();
        let flip = raw(Augment {
            crop_padding: 0,
            horizontal_flip: true,
        });
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mirrored: Vec<f32> = [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8]
            .map(|v| v as f32)
            .to_vec();
        let (mut flipped, mut kept) = (0, 0);
        for _ in 0..50 {
            let (pixels, _) = flip.batch(&set, &[0], Some(&mut rng));
            if pixels == mirrored {
                flipped += 1;
            } else {
                assert_eq!(pixels, (0..12).map(|v| v as f32).collect::<Vec<_>>());
                kept += 1;
            }
        }
        assert!(flipped > 10 && kept > 10, "{flipped} flipped, {kept} kept");
    }

    #[test]
    fn reflection_padding() {
        // Row 0 1 2 3 padded by 2: 2 1 | 0 1 2 3 | 2 1.
        assert_eq!(
            (-2..6).map(|i| reflect(i, 4)).collect::<Vec<_>>(),
            [2, 1, 0, 1, 2, 3, 2, 1]
        );
        // Padding wider than the image keeps reflecting; one-pixel images stay put.
        assert_eq!(
            (-4..0).map(|i| reflect(i, 2)).collect::<Vec<_>>(),
            [0, 1, 0, 1]
        );
        assert_eq!(reflect(-3, 1), 0);
    }

    #[test]
    fn crops_are_shifted_reflections() {
        // Every crop of the 3x4 image 0..12 with padding 1 is one of the 9 shifts of its
        // reflection-padded version, and all 9 occur.
        let set = two_images();
        let crop = raw(Augment {
            crop_padding: 1,
            horizontal_flip: false,
        });
        let shifted = |dy: isize, dx: isize| -> Vec<f32> {
            (0..3)
                .flat_map(|y| {
                    (0..4).map(move |x| (reflect(y + dy, 3) * 4 + reflect(x + dx, 4)) as f32)
                })
                .collect()
        };
        // Shift (-1, -1) of image 0: rows 1 0 1 and columns 1 0 1 2.
        assert_eq!(
            shifted(-1, -1),
            [5.0, 4.0, 5.0, 6.0, 1.0, 0.0, 1.0, 2.0, 5.0, 4.0, 5.0, 6.0]
        );
        let mut seen = std::collections::HashSet::new();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..200 {
            let (pixels, _) = crop.batch(&set, &[0], Some(&mut rng));
            let shift = (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| shifted(dy, dx) == pixels);
            seen.insert(shift.expect("a crop is a shift of the padded image"));
        }
        assert_eq!(seen.len(), 9);
    }

    #[test]
    fn training_batches_follow_the_seed() {
        let set = two_images();
        let b = raw(Augment {
            crop_padding: 2,
            horizontal_flip: true,
        });
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..5)
                .map(|_| b.batch(&set, &[0, 1, 1], Some(&mut rng)).0)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn epoch_order_is_a_deterministic_permutation() {
        let order = epoch_order(1000, 11, 2);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(order, epoch_order(1000, 11, 2));
        assert_ne!(order, epoch_order(1000, 11, 3));
        assert_ne!(order, epoch_order(1000, 12, 2));
        assert!(epoch_order(0, 1, 0).is_empty());
    }
}

//! Where every random draw of a run comes from: the experiment's seed, through one seed per
//! generation, to one seed per batch. A study's seeds are plain experiment seeds, so seed s of a
//! study trains exactly what `banbench run --seed s` trains.

/// SplitMix64's finaliser: nearby inputs get unrelated outputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Generation `k`'s seed (its initialisation and its epochs' shuffles) in an experiment of
/// `seed`. Mixed rather than `seed + k`, so that a study's seeds s and s + 1 do not give one
/// chain's student the next chain's teacher's initialisation.
pub fn generation_seed(seed: u64, k: usize) -> u64 {
    mix(mix(seed) ^ k as u64)
}

/// The seed of one batch of a generation (its augmentation, DKPP permutations and dropout):
/// a run resumed at any batch draws what an uninterrupted one does.
pub fn batch_seed(generation_seed: u64, epoch: usize, batch: usize) -> u64 {
    mix(mix(generation_seed ^ mix(epoch as u64)) ^ batch as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_seeds_and_generations_do_not_collide() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..50 {
            for k in 0..10 {
                assert!(seen.insert(generation_seed(seed, k)), "seed {seed}, k {k}");
            }
        }
        let g = generation_seed(1, 1);
        let batches: std::collections::HashSet<u64> = (0..20)
            .flat_map(|e| (0..100).map(move |b| batch_seed(g, e, b)))
            .collect();
        assert_eq!(batches.len(), 2000);
    }
}

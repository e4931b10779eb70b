//! Seeded clustered vectors shared by the vector benches (`vector_search`, `rag_load`): 1,000
//! centres of 768 dimensions and points around them. No `rand`: a xorshift.

/// The vectors' dimensions.
pub const DIMS: usize = 768;
/// The clusters' centres.
pub const CENTRES: usize = 1_000;

/// A seeded xorshift64: uniform in [-1, 1).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        ((self.next() + 1.0) * 0.5 * n as f32) as usize % n
    }
}

/// Points around seeded centres: a centre's components in [-1, 1), plus noise of the same
/// size (a member's cosine to its centre is about 0.7, to another member about 0.5).
pub struct Clusters {
    centres: Vec<Vec<f32>>,
    rng: Rng,
}

impl Clusters {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let centres = (0..CENTRES)
            .map(|_| (0..DIMS).map(|_| rng.next()).collect())
            .collect();
        Self {
            centres,
            rng: Rng(seed),
        }
    }

    pub fn point(&mut self) -> Vec<f32> {
        let c = self.rng.below(CENTRES);
        let rng = &mut self.rng;
        self.centres[c].iter().map(|x| x + rng.next()).collect()
    }
}

//! The visitors of one result row once they are too many to count exactly: the registers of
//! the stored sketches (Cloudflare's `cardinality-estimator`, precision 12, 6-bit registers),
//! one byte each, so that adding a stored sketch is a byte-wise maximum over 4,096 registers
//! unpacked from its stored words. The crate's own merge unpacks and repacks every register
//! of both sides and updates an `f32` harmonic sum per change, after a stored sketch is
//! decoded into an estimator of its own: over a month of daily cells, that was over a
//! quarter of a pages breakdown's time.
//!
//! The registers, the hash of an id and the estimate's formula are the crate's (it is the
//! writer: [`crate::encode_sketch`]); the estimate sums the registers once, in `f64`, where
//! the crate keeps an `f32` sum updated per change, so the two can differ in their last
//! digits (by 0.003 % at 3.3 M visitors).

use std::hash::{Hash, Hasher};

/// The crate's precision and register width: `CardinalityEstimator<u64>`'s defaults.
const P: usize = 12;
const W: usize = 6;
const M: usize = 1 << P;

/// How the crate tags its representations in the low bits of its first field.
const REPRESENTATION_MASK: u64 = 3;
const REPRESENTATION_SMALL: u64 = 0;
const REPRESENTATION_ARRAY: u64 = 1;
const REPRESENTATION_HLL: u64 = 3;
/// Words of a serialized HyperLogLog: zero count, harmonic sum, the packed registers, and
/// one spare word.
const HLL_WORDS: usize = M * W / 32 + 3;

/// A stored sketch that is not what the crate writes.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable;

/// A HyperLogLog's registers, one byte each: the visitors of a row summed from sketches.
#[derive(Clone, PartialEq, Eq)]
pub struct Dense {
    registers: Box<[u8; M]>,
}

impl std::fmt::Debug for Dense {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dense({} visitors)", self.estimate())
    }
}

impl Default for Dense {
    fn default() -> Self {
        Dense {
            registers: Box::new([0; M]),
        }
    }
}

impl Dense {
    /// Adds a visitor id, hashed as the crate hashes it.
    pub fn insert(&mut self, id: u64) {
        let mut hasher = wyhash::WyHash::default();
        id.hash(&mut hasher);
        self.insert_encoded(encode_hash(hasher.finish()));
    }

    /// Adds a hash in the crate's sparse encoding (register index above the rank's bits).
    fn insert_encoded(&mut self, h: u32) {
        let rank = (h & ((1 << W) - 1)) as u8;
        let register = &mut self.registers[((h >> W) as usize) & (M - 1)];
        *register = (*register).max(rank);
    }

    /// Adds a sketch as the crate serializes it with postcard: its tagged first field, and
    /// none (two encoded hashes are inside that field) or some of its words (encoded hashes,
    /// or the HyperLogLog's counts and packed registers).
    pub fn merge_serialized(&mut self, bytes: &[u8]) -> Result<(), Unreadable> {
        let (data, words): (u64, Option<Vec<u32>>) =
            postcard::from_bytes(bytes).map_err(|_| Unreadable)?;
        match (data & REPRESENTATION_MASK, words) {
            (REPRESENTATION_SMALL, None) => {
                for h in [(data >> 2) & 0x7fff_ffff, (data >> 33) & 0x7fff_ffff] {
                    if h != 0 {
                        self.insert_encoded(h as u32);
                    }
                }
            }
            (REPRESENTATION_ARRAY, Some(hashes)) => {
                hashes.into_iter().for_each(|h| self.insert_encoded(h));
            }
            (REPRESENTATION_HLL, Some(words)) if words.len() == HLL_WORDS => {
                // Registers are W bits each, packed from the low bits of the words after the
                // two counts, and may straddle two words.
                for (i, register) in self.registers.iter_mut().enumerate() {
                    let bit = i * W;
                    let pair =
                        u64::from(words[2 + bit / 32]) | (u64::from(words[3 + bit / 32]) << 32);
                    let rank = ((pair >> (bit % 32)) & ((1 << W) - 1)) as u8;
                    *register = (*register).max(rank);
                }
            }
            _ => return Err(Unreadable),
        }
        Ok(())
    }

    /// The crate's estimate (HyperLogLog with LogLog-Beta bias correction) of these registers.
    pub fn estimate(&self) -> usize {
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let sum: f64 = self
            .registers
            .iter()
            .map(|r| 1.0 / (1u64 << r) as f64)
            .sum();
        let m = M as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let estimate = alpha * m * (m - zeros as f64) / (sum + beta_horner(zeros as f64));
        (estimate + 0.5) as usize
    }
}

/// The crate's sparse encoding of a 64-bit hash: index bits, then the rank in `W` bits.
fn encode_hash(hash: u64) -> u32 {
    let idx = (hash as u32) & ((1 << (32 - W - 1)) - 1);
    let rank = (!hash >> P).trailing_zeros() + 1;
    (idx << W) | rank
}

/// LogLog-Beta's bias correction for precision 12 (arXiv 1612.02284), by Horner's method, as
/// the crate computes it.
fn beta_horner(z: f64) -> f64 {
    const BETA: [f64; 8] = [
        -3.84979202588598e-01,
        1.83162233114364e-01,
        1.30396688841854e-01,
        7.04838927629266e-02,
        -8.95893971464453e-03,
        1.13010036741605e-02,
        -1.94285569591290e-03,
        2.25435774024964e-04,
    ];
    let zl = (z + 1.0).ln();
    let mut res = 0.0;
    for i in (1..8).rev() {
        res = res * zl + BETA[i];
    }
    res * zl + BETA[0] * z
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardinality_estimator::CardinalityEstimator;

    /// Visitor ids are hashes: spread them over the 64 bits.
    fn ids(range: std::ops::Range<u64>) -> impl Iterator<Item = u64> {
        range.map(|id| id.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn crate_sketch(range: std::ops::Range<u64>) -> CardinalityEstimator<u64> {
        let mut sketch = CardinalityEstimator::<u64>::new();
        ids(range).for_each(|id| sketch.insert(&id));
        sketch
    }

    #[test]
    fn reads_the_crates_sketches_as_it_hashes_ids() {
        // Small (up to two hashes), array and HyperLogLog representations.
        for range in [0..0, 0..1, 0..2, 0..3, 0..100, 0..129, 0..1_025, 0..50_000] {
            let stored = postcard::to_stdvec(&crate_sketch(range.clone())).unwrap();
            let mut read = Dense::default();
            read.merge_serialized(&stored).unwrap();
            let mut inserted = Dense::default();
            ids(range.clone()).for_each(|id| inserted.insert(id));
            assert_eq!(read, inserted, "{range:?}");
        }
    }

    #[test]
    fn estimates_as_the_crate_does() {
        for range in [0..200, 0..1_025, 0..5_000, 0..65_537, 0..400_000] {
            let sketch = crate_sketch(range.clone());
            let mut dense = Dense::default();
            dense
                .merge_serialized(&postcard::to_stdvec(&sketch).unwrap())
                .unwrap();
            // The crate sums the registers in `f32` as they change.
            let (ours, theirs) = (dense.estimate() as f64, sketch.estimate() as f64);
            assert!(
                (ours - theirs).abs() <= 1.0 + theirs * 1e-5,
                "{range:?}: {ours} {theirs}"
            );
        }
    }

    #[test]
    fn merging_is_the_union() {
        let (a, b) = (crate_sketch(0..30_000), crate_sketch(20_000..50_000));
        let mut dense = Dense::default();
        dense
            .merge_serialized(&postcard::to_stdvec(&a).unwrap())
            .unwrap();
        dense
            .merge_serialized(&postcard::to_stdvec(&b).unwrap())
            .unwrap();
        let mut merged = a.clone();
        merged.merge(&b);
        let mut expected = Dense::default();
        expected
            .merge_serialized(&postcard::to_stdvec(&merged).unwrap())
            .unwrap();
        assert_eq!(dense, expected);
    }

    #[test]
    fn unreadable_bytes_change_nothing() {
        let mut dense = Dense::default();
        dense.insert(7);
        let before = dense.clone();
        let stored = postcard::to_stdvec(&crate_sketch(0..5_000)).unwrap();
        for bytes in [&[][..], &[9, 9], &stored[..stored.len() / 2], &[1, 1, 200]] {
            assert_eq!(dense.merge_serialized(bytes), Err(Unreadable));
            assert_eq!(dense, before);
        }
    }
}

//! One cell and its visitor sketch, with the sketch's stored form.

use cardinality_estimator::CardinalityEstimator;

use crate::dense::Dense;

/// Most visitor ids a stored cell keeps exactly (8 bytes each); a cell with more keeps a
/// HyperLogLog++ sketch (about 3 KB) instead.
const STORED_EXACT_LIMIT: usize = 1024;
/// Most visitors a sum of cells (one result row) counts exactly, as Plausible's ClickHouse
/// `uniq` does; beyond it the sum is an estimate.
pub const EXACT_LIMIT: usize = 65_536;

/// Distinct visitors: their ids while few, so the count is exact; a HyperLogLog++ sketch
/// (about 1.6 % off) beyond.
#[derive(Debug, Clone)]
pub enum Sketch {
    /// Visitor ids, possibly repeated until compacted.
    Exact(Vec<u64>),
    Estimated(Box<CardinalityEstimator<u64>>),
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch::Exact(Vec::new())
    }
}

impl Sketch {
    pub fn insert(&mut self, visitor: &u64) {
        match self {
            Sketch::Exact(ids) => {
                ids.push(*visitor);
                if ids.len() > 2 * EXACT_LIMIT {
                    self.compact(EXACT_LIMIT);
                }
            }
            Sketch::Estimated(estimator) => estimator.insert(visitor),
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        match (&mut *self, other) {
            (Sketch::Exact(ids), Sketch::Exact(more)) => {
                ids.extend_from_slice(more);
                if ids.len() > 2 * EXACT_LIMIT {
                    self.compact(EXACT_LIMIT);
                }
            }
            (Sketch::Exact(ids), Sketch::Estimated(estimator)) => {
                let mut estimator = estimator.clone();
                for id in ids.iter() {
                    estimator.insert(id);
                }
                *self = Sketch::Estimated(estimator);
            }
            (Sketch::Estimated(estimator), Sketch::Exact(more)) => {
                for id in more {
                    estimator.insert(id);
                }
            }
            (Sketch::Estimated(estimator), Sketch::Estimated(more)) => estimator.merge(more),
        }
    }

    /// Drops repeated ids, and turns into an estimate beyond `limit` ids.
    fn compact(&mut self, limit: usize) {
        if let Sketch::Exact(ids) = self {
            sort_distinct(ids);
            if ids.len() > limit {
                let mut estimator = CardinalityEstimator::<u64>::new();
                for id in ids.iter() {
                    estimator.insert(id);
                }
                *self = Sketch::Estimated(Box::new(estimator));
            }
        }
    }

    /// The number of distinct visitors: exact up to [`EXACT_LIMIT`].
    pub fn estimate(&self) -> usize {
        match self {
            Sketch::Exact(_) => match self.compacted(EXACT_LIMIT) {
                Sketch::Exact(ids) => ids.len(),
                Sketch::Estimated(estimator) => estimator.estimate(),
            },
            Sketch::Estimated(estimator) => estimator.estimate(),
        }
    }

    /// Turns into the form a stored cell keeps (what [`encode_sketch`] writes): ids sorted
    /// and distinct while at most 1,024, an estimate beyond. A cell kept in memory between
    /// writes stays this small, and encoding it again costs no sort.
    pub fn compact_stored(&mut self) {
        self.compact(STORED_EXACT_LIMIT);
    }

    fn compacted(&self, limit: usize) -> Sketch {
        let mut compacted = self.clone();
        compacted.compact(limit);
        compacted
    }

    /// Whether [`Sketch::estimate`] is the exact count.
    #[cfg(test)]
    fn is_exact(&self) -> bool {
        matches!(self.compacted(EXACT_LIMIT), Sketch::Exact(_))
    }
}

/// Stored forms: a tag byte, then the ids (8 bytes each, little-endian) or the estimator's
/// postcard bytes.
const EXACT_TAG: u8 = 0xE1;
const ESTIMATED_TAG: u8 = 0xE2;

/// One rollup cell: what one hour or day holds for one value of one dimension; also the
/// sum of cells for one result row.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub visitors: Sketch,
    pub pageviews: i64,
    pub events: i64,
    /// Sign-weighted sums over the visit log, by the visit's start hour.
    pub visits: i64,
    pub bounces: i64,
    pub duration_s: i64,
    pub visit_pageviews: i64,
    pub visit_events: i64,
}

impl Cell {
    pub fn merge(&mut self, other: &Cell) {
        self.visitors.merge(&other.visitors);
        self.add_counts(other);
    }

    /// Adds `other`'s page views, events and visit sums, not its visitors.
    pub fn add_counts(&mut self, other: &Cell) {
        self.pageviews += other.pageviews;
        self.events += other.events;
        self.visits += other.visits;
        self.bounces += other.bounces;
        self.duration_s += other.duration_s;
        self.visit_pageviews += other.visit_pageviews;
        self.visit_events += other.visit_events;
    }
}

pub fn encode_sketch(sketch: &Sketch) -> Vec<u8> {
    match sketch {
        // Already in the stored form (see `Sketch::compact_stored`): no copy, no sort.
        Sketch::Exact(ids) if ids.len() <= STORED_EXACT_LIMIT && ids.is_sorted_by(|a, b| a < b) => {
            encode_ids(ids)
        }
        Sketch::Exact(_) => encode_sketch(&sketch.compacted(STORED_EXACT_LIMIT)),
        Sketch::Estimated(estimator) => {
            let mut bytes = vec![ESTIMATED_TAG];
            bytes.extend(postcard::to_stdvec(estimator).expect("a sketch always serializes"));
            bytes
        }
    }
}

fn encode_ids(ids: &[u64]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + ids.len() * 8);
    bytes.push(EXACT_TAG);
    for id in ids {
        bytes.extend_from_slice(&id.to_le_bytes());
    }
    bytes
}

/// The distinct visitors of a sum of stored cells (one result row), read from the cells'
/// stored bytes: every id while the sum can still be exact (up to [`EXACT_LIMIT`]
/// distinct), the registers of a sketch from the first cell or sum that is an estimate on.
#[derive(Debug, Clone)]
pub enum RowVisitors {
    /// Ids, possibly repeated until compacted.
    Exact(Vec<u64>),
    Estimated(Dense),
}

impl Default for RowVisitors {
    fn default() -> Self {
        RowVisitors::Exact(Vec::new())
    }
}

impl RowVisitors {
    /// Adds the visitors of a stored cell (what [`encode_sketch`] wrote). An unreadable one
    /// adds nobody, as [`decode_sketch`] reads it as empty.
    pub fn add_stored(&mut self, bytes: &[u8]) {
        match bytes.split_first() {
            Some((&EXACT_TAG, ids)) => {
                let ids = stored_ids(ids);
                match self {
                    RowVisitors::Exact(all) => {
                        all.extend(ids);
                        if all.len() > 2 * EXACT_LIMIT {
                            self.compact();
                        }
                    }
                    RowVisitors::Estimated(dense) => ids.for_each(|id| dense.insert(id)),
                }
            }
            // An unreadable sketch changes no registers (`merge_serialized` checks first).
            Some((&ESTIMATED_TAG, serialized)) => match self {
                RowVisitors::Exact(ids) => {
                    let mut dense = dense_of(ids);
                    if dense.merge_serialized(serialized).is_ok() {
                        *self = RowVisitors::Estimated(dense);
                    }
                }
                RowVisitors::Estimated(dense) => {
                    let _unreadable_adds_nobody = dense.merge_serialized(serialized);
                }
            },
            _ => {}
        }
    }

    /// Drops repeated ids, and turns into an estimate beyond [`EXACT_LIMIT`] of them.
    fn compact(&mut self) {
        if let RowVisitors::Exact(ids) = self {
            sort_distinct(ids);
            if ids.len() > EXACT_LIMIT {
                *self = RowVisitors::Estimated(dense_of(ids));
            }
        }
    }

    /// The number of distinct visitors: exact up to [`EXACT_LIMIT`].
    pub fn count(&mut self) -> usize {
        self.compact();
        match self {
            RowVisitors::Exact(ids) => ids.len(),
            RowVisitors::Estimated(dense) => dense.estimate(),
        }
    }
}

/// Whether a stored cell (what [`encode_sketch`] wrote) keeps its visitors' ids, so that a
/// sum with it can be exact; the others keep a sketch.
pub fn keeps_ids(stored: &[u8]) -> bool {
    stored.first() == Some(&EXACT_TAG)
}

fn sort_distinct(ids: &mut Vec<u64>) {
    ids.sort_unstable();
    ids.dedup();
}

/// The ids of a stored exact cell (after its tag): 8 bytes each, little-endian.
fn stored_ids(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|id| u64::from_le_bytes(id.try_into().expect("chunks of 8")))
}

fn dense_of(ids: &[u64]) -> Dense {
    let mut dense = Dense::default();
    ids.iter().for_each(|id| dense.insert(*id));
    dense
}

/// An unreadable sketch counts as empty rather than failing the query.
pub fn decode_sketch(bytes: &[u8]) -> Sketch {
    match bytes.split_first() {
        Some((&EXACT_TAG, ids)) => Sketch::Exact(stored_ids(ids).collect()),
        Some((&ESTIMATED_TAG, estimator)) => {
            postcard::from_bytes::<CardinalityEstimator<u64>>(estimator)
                .map(|estimator| Sketch::Estimated(Box::new(estimator)))
                .unwrap_or_default()
        }
        _ => Sketch::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(ids: std::ops::Range<u64>) -> Sketch {
        let mut sketch = Sketch::default();
        for id in ids {
            // Visitor ids are hashes: spread them over the 64 bits.
            sketch.insert(&id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        sketch
    }

    #[test]
    fn sums_of_cells_count_exactly_up_to_the_limit() {
        // Hourly cells of a few hundred visitors each, returning visitors among them, as a
        // week's row: exact however the cells are stored.
        let mut week = Sketch::default();
        for hour in 0..168u64 {
            let cell = decode_sketch(&encode_sketch(&of(hour * 300..hour * 300 + 390)));
            assert!(cell.is_exact());
            week.merge(&cell);
        }
        assert_eq!(week.estimate(), 167 * 300 + 390);
        assert!(week.is_exact());
        // A big cell is stored as an estimate, and so is any sum it is part of.
        let big = decode_sketch(&encode_sketch(&of(0..5_000)));
        assert!(!big.is_exact());
        let estimate = big.estimate() as f64;
        assert!((estimate - 5_000.0).abs() < 5_000.0 * 0.05, "{estimate}");
        let mut both = of(0..10);
        both.merge(&big);
        assert!(!both.is_exact());
        // Beyond the limit a sum is an estimate too.
        let many = of(0..(EXACT_LIMIT as u64 + 10));
        assert!(!many.is_exact());
        let estimate = many.estimate() as f64;
        assert!((estimate - EXACT_LIMIT as f64).abs() < EXACT_LIMIT as f64 * 0.05);
        // Unreadable bytes are an empty sketch.
        assert_eq!(decode_sketch(&[1, 2, 3]).estimate(), 0);
    }

    /// A row's visitors read from stored cells count as the cells' sketches summed do.
    fn both_ways(cells: &[Sketch]) -> (usize, usize) {
        let mut row = RowVisitors::default();
        let mut summed = Sketch::default();
        for cell in cells {
            let stored = encode_sketch(cell);
            row.add_stored(&stored);
            summed.merge(&decode_sketch(&stored));
        }
        (row.count(), summed.estimate())
    }

    #[test]
    fn a_rows_visitors_count_as_the_summed_sketches() {
        // A week of hourly cells with returning visitors: exact.
        let hours: Vec<Sketch> = (0..168u64)
            .map(|hour| of(hour * 300..hour * 300 + 390))
            .collect();
        assert_eq!(both_ways(&hours), (167 * 300 + 390, 167 * 300 + 390));
        // Past the exact limit, or with a cell that is an estimate, before or after exact
        // cells: the same estimate, but for the sum's rounding.
        for cells in [
            vec![of(0..40_000), of(30_000..70_000)],
            vec![of(0..500), of(0..5_000), of(4_000..4_200)],
            vec![of(0..5_000), of(10_000..10_500), of(3_000..20_000)],
        ] {
            let (ours, summed) = both_ways(&cells);
            assert!(ours.abs_diff(summed) <= 1, "{ours} {summed}");
        }
        // Unreadable bytes add nobody, and leave an exact count exact.
        let mut row = RowVisitors::default();
        row.add_stored(&[ESTIMATED_TAG, 1, 2]);
        row.add_stored(&encode_sketch(&of(0..10)));
        row.add_stored(&[ESTIMATED_TAG, 1, 2]);
        assert!(matches!(row, RowVisitors::Exact(_)));
        assert_eq!(row.count(), 10);
    }
}

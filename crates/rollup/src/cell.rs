//! One cell and its visitor sketch, with the sketch's stored form (postcard bytes).

use cardinality_estimator::CardinalityEstimator;

/// Distinct visitors: exact while small, HyperLogLog++ beyond.
pub type Sketch = CardinalityEstimator<u64>;

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
    postcard::to_stdvec(sketch).expect("a sketch always serializes")
}

/// An unreadable sketch counts as empty rather than failing the query.
pub fn decode_sketch(bytes: &[u8]) -> Sketch {
    postcard::from_bytes(bytes).unwrap_or_default()
}

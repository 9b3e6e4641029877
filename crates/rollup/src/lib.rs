//! Rollup cells: per site, UTC hour and UTC day, dimension and value, the additive sums of
//! events and visits and a mergeable sketch of the visitors. One crate for both sides: the
//! store computes the cells of each batch here ([`Rollups::add_event`],
//! [`Rollups::add_visit`]) and rewrites them in the transaction that writes the events;
//! the query crate reads them back with the same types, so writer and reader cannot drift
//! apart.
//!
//! Visitors are their ids while a cell has at most 1,024, else a HyperLogLog++ sketch
//! (Cloudflare's `cardinality-estimator`, precision 12, about 1.6 % standard error). A result
//! row sums cells' ids exactly up to 65,536 distinct visitors, as ClickHouse's `uniq` that
//! Plausible counts visitors with, and their sketches' registers beyond ([`RowVisitors`]); the
//! query crate reads a day's hourly cells instead of its daily one where that keeps a sketch
//! and the row may be under the limit ([`keeps_ids`]).
//! Everything else is exact: page views and events are counts, and visit sums are
//! sign-weighted like the visit log they come from. Only UTC hours and days are stored, so a
//! site's time zone (whole-hour offsets) is applied when reading, and changing it needs no
//! rebuild.
//!
//! Entry and exit pages are dimensions only visits have: their cells hold the visit sums and
//! the visitors of the visit states added under them. A visit that leaves such a cell (its
//! exit page changes as it grows, a late event moves its start or entry page) cannot be taken
//! out of a sketch, so a batch names those cells ([`Rollups::stale_visit_cells`]) and the
//! store counts their visitors again from its visit log.

mod batch;
mod cell;
mod dense;
mod keys;
mod span;

pub use batch::{Rollups, Slice, SliceKey, StaleCells};
pub use cell::{decode_sketch, encode_sketch, keeps_ids, Cell, RowVisitors, Sketch, EXACT_LIMIT};
pub use keys::{ENTRY_PAGE, EXIT_PAGE, HOSTNAME, NAME, PAGE, TOTAL, VISIT_KEYS};
pub use span::{Span, DAY_MS, HOUR_MS};

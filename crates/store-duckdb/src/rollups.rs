//! Keeps the `rollups` table ([`heartbeat_rollup`]) in step with the events, inside
//! the transaction that writes them.
//!
//! A batch's changes are merged into the current state of each cell it touches, and only
//! those cells are rewritten (delete, then append). Current states come from a small cache
//! of recently written hours, else from the table; the cache is dropped whenever a write
//! fails, since the table (rolled back) is the truth.

use std::collections::{HashMap, VecDeque};

use duckdb::types::Value;
use duckdb::{params, Transaction};
use heartbeat_model::SiteId;
use heartbeat_rollup::{
    decode_sketch, encode_sketch, Cell, Rollups, Sketch, Slice, SliceKey, Span, DAY_MS, ENTRY_PAGE,
    EXIT_PAGE,
};

use crate::stream::for_each_row;
use crate::{event_from_row, session_from_row, timestamp, EVENT_COLUMNS, SESSION_COLUMNS};

/// Periods kept in memory: a live site writes into this hour and today, an ordered
/// backfill walks through them. At most this many, and at most about [`CACHED_BYTES`] of
/// cells: on a busy site a day's cells hold thousands of sketches, and 48 such periods were
/// 86 MiB at 100 M events.
const CACHED_SLICES: usize = 48;
const CACHED_BYTES: usize = 16 << 20;

#[derive(Default)]
pub struct RollupCache {
    /// Each period's cells and about the bytes they took when read.
    slices: HashMap<SliceKey, (Slice, usize)>,
    /// Oldest first.
    order: VecDeque<SliceKey>,
    bytes: usize,
}

impl RollupCache {
    pub fn clear(&mut self) {
        self.slices.clear();
        self.order.clear();
        self.bytes = 0;
    }

    /// Drops the periods starting in the UTC day that starts at `day_ms` (their cells were
    /// rewritten behind the cache's back), keeping the others.
    pub fn forget_day(&mut self, day_ms: i64) {
        let stale = |key: &SliceKey| (day_ms..day_ms + DAY_MS).contains(&key.2);
        for key in self.order.iter().filter(|key| stale(key)) {
            if let Some((_, bytes)) = self.slices.remove(key) {
                self.bytes -= bytes;
            }
        }
        self.order.retain(|key| !stale(key));
    }

    /// The period's cells, read from the table when they are not in memory. Reading one
    /// may drop the oldest others (never the one read).
    fn slice(&mut self, tx: &Transaction<'_>, key: &SliceKey) -> duckdb::Result<&mut Slice> {
        if !self.slices.contains_key(key) {
            let (loaded, bytes) = load_slice(tx, key)?;
            self.slices.insert(key.clone(), (loaded, bytes));
            self.order.push_back(key.clone());
            self.bytes += bytes;
            while self.order.len() > 1
                && (self.order.len() > CACHED_SLICES || self.bytes > CACHED_BYTES)
            {
                if let Some(old) = self.order.pop_front() {
                    if let Some((_, bytes)) = self.slices.remove(&old) {
                        self.bytes -= bytes;
                    }
                }
            }
        }
        Ok(&mut self.slices.get_mut(key).expect("inserted above").0)
    }

    /// The cell, when its period is in memory.
    fn cached_cell(&mut self, key: &SliceKey, cell: &(String, String)) -> Option<&mut Cell> {
        self.slices.get_mut(key)?.0.get_mut(cell)
    }
}

const CELL_COLUMNS: &str =
    "dim, value, visitors, pageviews, events, visits, bounces, duration_s, visit_pageviews, \
     visit_events";

/// A period's cells as the table holds them, and about the bytes they take.
fn load_slice(
    tx: &Transaction<'_>,
    (site, span, start): &SliceKey,
) -> duckdb::Result<(Slice, usize)> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {CELL_COLUMNS} FROM {} WHERE site_id = ? AND start_ms = ?",
        span.table()
    ))?;
    let mut bytes = 0;
    let rows = stmt.query_map(params![site.as_str(), start], |row| {
        let sketch: Vec<u8> = row.get(2)?;
        let (dim, value) = (row.get::<_, String>(0)?, row.get::<_, String>(1)?);
        // The stored form is about the size of the decoded one; the rest is the entry.
        bytes += dim.len() + value.len() + sketch.len() + std::mem::size_of::<Cell>() + 64;
        Ok((
            (dim, value),
            Cell {
                visitors: decode_sketch(&sketch),
                pageviews: row.get(3)?,
                events: row.get(4)?,
                visits: row.get(5)?,
                bounces: row.get(6)?,
                duration_s: row.get(7)?,
                visit_pageviews: row.get(8)?,
                visit_events: row.get(9)?,
            },
        ))
    })?;
    let slice = rows.collect::<duckdb::Result<Slice>>()?;
    Ok((slice, bytes))
}

/// Merges `changes` into the stored cells (through `cache`) and rewrites the cells touched.
/// Must run after the batch's visit-log rows are written: the entry- and exit-page cells a
/// visit left are counted again from them.
pub fn apply(
    tx: &Transaction<'_>,
    cache: &mut RollupCache,
    changes: Rollups,
) -> duckdb::Result<()> {
    if changes.slices.is_empty() {
        return Ok(());
    }
    let mut stale = changes.stale_visit_cells();
    // Hours first: a day's cells are the union of its hours' (`day_from_hours`).
    stale.sort_by_key(|(key, _, _)| key.1 == Span::Day);
    let mut written: Vec<(SliceKey, (String, String), Cell)> = Vec::new();
    for (key, delta) in changes.slices {
        let slice = cache.slice(tx, &key)?;
        for (cell_key, change) in delta {
            let cell = slice.entry(cell_key.clone()).or_default();
            cell.merge(&change);
            // The cached cell stays what the store holds, so neither its copy below nor its
            // encoding sorts up to 128 Ki ids again with every batch.
            cell.visitors.compact_stored();
            written.push((key.clone(), cell_key, cell.clone()));
        }
    }
    if !stale.is_empty() {
        let mut at: HashMap<(SliceKey, (String, String)), usize> = written
            .iter()
            .enumerate()
            .map(|(i, (key, cell_key, _))| ((key.clone(), cell_key.clone()), i))
            .collect();
        for (key, dim, values) in stale {
            // The period's cells as stored, read only if the cache dropped them. Never put
            // back into the cache: the table does not hold this batch's changes yet, and a
            // batch over more periods than the cache keeps has dropped some it changed.
            let mut stored: Option<Slice> = None;
            let recounted = match key.1 {
                Span::Hour => recount_visitors(tx, &key, dim, values)?,
                Span::Day => day_from_hours(tx, &key, dim, values, &written)?,
            };
            for (value, visitors) in recounted {
                let cell_key = (dim.to_owned(), value);
                let slot = (key.clone(), cell_key.clone());
                let mut cached = cache.cached_cell(&key, &cell_key);
                if let Some(cell) = cached.as_mut() {
                    cell.visitors = visitors.clone();
                }
                if let Some(&i) = at.get(&slot) {
                    // Changed by this batch: the merged cell is the one to write.
                    written[i].2.visitors = visitors;
                    continue;
                }
                // Not changed by this batch: the stored cell, with its visitors recounted.
                let mut cell = match cached {
                    Some(cell) => cell.clone(),
                    None => {
                        if stored.is_none() {
                            stored = Some(load_slice(tx, &key)?.0);
                        }
                        match stored.as_ref().and_then(|s| s.get(&cell_key)) {
                            Some(cell) => cell.clone(),
                            None => continue,
                        }
                    }
                };
                cell.visitors = visitors;
                at.insert(slot, written.len());
                written.push((key.clone(), cell_key, cell));
            }
        }
    }
    let (hourly, daily): (Vec<_>, Vec<_>) = written.into_iter().partition(|w| w.0 .1 == Span::Hour);
    for (span, cells) in [(Span::Hour, hourly), (Span::Day, daily)] {
        if !cells.is_empty() {
            replace_cells(tx, span, cells)?;
        }
    }
    Ok(())
}

/// The visitors of the visits whose current state (in the visit log, this transaction's rows
/// included) starts in the slice's period, for each of `values` of the visit-only dimension
/// `dim` (every value gets its sketch, an empty one when no visit is there any more).
fn recount_visitors(
    tx: &Transaction<'_>,
    (site, span, start): &SliceKey,
    dim: &str,
    values: Vec<String>,
) -> duckdb::Result<Vec<(String, Sketch)>> {
    let column = match dim {
        ENTRY_PAGE => "entry_page",
        EXIT_PAGE => "exit_page",
        other => unreachable!("no visit-only dimension {other}"),
    };
    let mut ids: HashMap<String, Vec<u64>> = values
        .into_iter()
        .map(|value| (value, Vec::new()))
        .collect();
    let marks = vec!["?"; ids.len()].join(", ");
    // The current states, by an anti-join on the rows taken back: DuckDB holds only those,
    // where a grouping by visit held every visit of the period (228 MB for a day at 100 M
    // events, more than a 256MB store may use), and the rows are streamed.
    let sql = format!(
        "SELECT {column}, visitor_id FROM sessions ANTI JOIN {} WHERE site_id = ? \
         AND start_ts >= ? AND start_ts < ? AND {column} IN ({marks}) AND sign > 0",
        taken_back(&format!(" AND {column} IN ({marks})"))
    );
    let bounds = [timestamp(*start), timestamp(start + span.ms())];
    let values: Vec<Value> = ids.keys().map(|value| Value::Text(value.clone())).collect();
    let site = Value::Text(site.as_str().to_owned());
    let params: Vec<&dyn duckdb::ToSql> = bounds
        .iter()
        .chain(&values)
        .chain(std::iter::once(&site))
        .chain(&bounds)
        .chain(&values)
        .map(|v| v as &dyn duckdb::ToSql)
        .collect();
    for_each_row(tx, &sql, params.as_slice(), |row| {
        let value: String = row.get(0)?;
        if let Some(list) = ids.get_mut(&value) {
            list.push(row.get(1)?);
        }
        Ok(())
    })?;
    Ok(ids
        .into_iter()
        .map(|(value, list)| {
            let mut visitors = Sketch::Exact(list);
            visitors.compact_stored();
            (value, visitors)
        })
        .collect())
}

/// The visitors of a day's cells of the visit-only dimension `dim` for each of `values`:
/// the union of its 24 hours' cells (a visit starts in one hour of its day), each hour as
/// this batch writes it (`written`: changed or recounted) or else as stored. Reading the
/// day's visit log again instead took a third of a late write's time at 100 M events (2.6 M
/// rows a day, docs/benchmarks.md).
fn day_from_hours(
    tx: &Transaction<'_>,
    (site, _, start): &SliceKey,
    dim: &str,
    values: Vec<String>,
    written: &[(SliceKey, (String, String), Cell)],
) -> duckdb::Result<Vec<(String, Sketch)>> {
    let day = *start..start + DAY_MS;
    // Each (hour, value): as stored, then as this batch writes it.
    let mut hours: HashMap<(i64, String), Sketch> = HashMap::new();
    let marks = vec!["?"; values.len()].join(", ");
    let mut params = vec![
        Value::Text(site.as_str().to_owned()),
        Value::Text(dim.to_owned()),
        Value::BigInt(day.start),
        Value::BigInt(day.end),
    ];
    params.extend(values.iter().map(|v| Value::Text(v.clone())));
    // At most 24 rows a value: read whole.
    let mut stmt = tx.prepare(&format!(
        "SELECT start_ms, value, visitors FROM rollups_hourly WHERE site_id = ? AND dim = ? \
         AND start_ms >= ? AND start_ms < ? AND value IN ({marks})"
    ))?;
    let rows = stmt.query_map(duckdb::params_from_iter(params), |row| {
        Ok((
            (row.get::<_, i64>(0)?, row.get::<_, String>(1)?),
            decode_sketch(&row.get::<_, Vec<u8>>(2)?),
        ))
    })?;
    for row in rows {
        let (hour, visitors) = row?;
        hours.insert(hour, visitors);
    }
    for ((cell_site, span, hour), (cell_dim, value), cell) in written {
        if cell_site == site
            && *span == Span::Hour
            && day.contains(hour)
            && cell_dim == dim
            && values.contains(value)
        {
            hours.insert((*hour, value.clone()), cell.visitors.clone());
        }
    }
    let mut days: HashMap<String, Sketch> = values
        .into_iter()
        .map(|value| (value, Sketch::default()))
        .collect();
    for ((_, value), visitors) in &hours {
        if let Some(day) = days.get_mut(value) {
            day.merge(visitors);
        }
    }
    Ok(days
        .into_iter()
        .map(|(value, mut visitors)| {
            visitors.compact_stored();
            (value, visitors)
        })
        .collect())
}

/// Deletes the stored versions of `cells` and appends them.
fn replace_cells(
    tx: &Transaction<'_>,
    span: Span,
    cells: Vec<(SliceKey, (String, String), Cell)>,
) -> duckdb::Result<()> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS rollup_keys \
         (site_id VARCHAR, start_ms BIGINT, dim VARCHAR, value VARCHAR); \
         DELETE FROM rollup_keys;",
    )?;
    {
        let mut keys = tx.appender("rollup_keys")?;
        for ((site, _, start), (dim, value), _) in &cells {
            keys.append_row(params![site.as_str(), start, dim, value])?;
        }
        keys.flush()?;
    }
    let (low, high) = cells.iter().fold((i64::MAX, i64::MIN), |(lo, hi), w| {
        (lo.min(w.0 .2), hi.max(w.0 .2))
    });
    // The time bounds let DuckDB skip row groups of other periods before the join.
    let table = span.table();
    tx.execute(
        &format!(
            "DELETE FROM {table} USING rollup_keys k WHERE {table}.start_ms BETWEEN ? AND ? \
             AND {table}.site_id = k.site_id AND {table}.start_ms = k.start_ms \
             AND {table}.dim = k.dim AND {table}.value = k.value"
        ),
        params![low, high],
    )?;
    append_cells(tx, span, cells)
}

fn append_cells(
    tx: &Transaction<'_>,
    span: Span,
    cells: Vec<(SliceKey, (String, String), Cell)>,
) -> duckdb::Result<()> {
    let mut rows = tx.appender(span.table())?;
    for ((site, _, start), (dim, value), cell) in cells {
        rows.append_row(params![
            site.as_str(),
            start,
            dim,
            value,
            encode_sketch(&cell.visitors),
            cell.pageviews,
            cell.events,
            cell.visits,
            cell.bounces,
            cell.duration_s,
            cell.visit_pageviews,
            cell.visit_events,
        ])?;
    }
    rows.flush()
}

/// Deletes a site's cells of periods starting before `before_ms` (`i64::MAX`: all of them).
/// The caller clears the cache.
pub fn delete(tx: &Transaction<'_>, site: &SiteId, before_ms: i64) -> duckdb::Result<()> {
    for span in [Span::Hour, Span::Day] {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE site_id = ? AND start_ms < ?",
                span.table()
            ),
            params![site.as_str(), before_ms],
        )?;
    }
    Ok(())
}

/// Events a rebuild adds between compactions of its cells' visitors.
const COMPACT_EVERY: usize = 100_000;

/// Recomputes the rollups of `[from_ms, to_ms)`, rounded out to whole UTC days (a daily
/// cell needs its whole day), from the events and visit log, for one site or all: for a
/// store without rollups, after an import or a retention delete. A day at a time, its rows
/// streamed and its cells' visitors compacted as they grow, so memory does not grow with a
/// day's events. The caller clears the cache.
pub fn rebuild(
    tx: &Transaction<'_>,
    site: Option<&SiteId>,
    from_ms: i64,
    to_ms: i64,
) -> duckdb::Result<()> {
    let site = site.map(|s| s.as_str().to_owned());
    for (lower, upper) in days(from_ms, to_ms) {
        delete_cells(tx, lower, upper, site.as_deref(), None)?;
        let mut changes = Rollups::default();
        let (from, to) = (timestamp(lower), timestamp(upper));
        let mut added = 0usize;
        for_each_row(
            tx,
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE ts >= ? AND ts < ? {SITE_SCOPE}"),
            params![from, to, site, site],
            |row| {
                changes.add_event(&event_from_row(row)?);
                added += 1;
                if added.is_multiple_of(COMPACT_EVERY) {
                    changes.compact_visitors();
                }
                Ok(())
            },
        )?;
        add_stored_visits(tx, &mut changes, lower, upper, site.as_deref())?;
        append_changes(tx, changes, |_| true)?;
    }
    Ok(())
}

/// Recomputes the entry- and exit-page cells of every day the visit log holds, from the visit
/// log alone: for a store whose cells of these two dimensions hold no visitors (written before
/// they did). A day at a time; the caller clears the cache.
pub fn rebuild_visit_pages(tx: &Transaction<'_>) -> duckdb::Result<()> {
    let bounds: (Option<i64>, Option<i64>) = tx.query_row(
        "SELECT epoch_ms(min(start_ts)), epoch_ms(max(start_ts)) FROM sessions",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let (Some(from), Some(to)) = bounds else {
        return Ok(());
    };
    let visit_pages = [ENTRY_PAGE, EXIT_PAGE];
    for (lower, upper) in days(from, to + 1) {
        delete_cells(tx, lower, upper, None, Some(&visit_pages))?;
        let mut changes = Rollups::default();
        add_stored_visits(tx, &mut changes, lower, upper, None)?;
        append_changes(tx, changes, |dim| visit_pages.contains(&dim))?;
    }
    Ok(())
}

/// Scopes a statement to one site when its two parameters are a site id, to all when NULL.
const SITE_SCOPE: &str = "AND (?::VARCHAR IS NULL OR site_id = ?::VARCHAR)";

/// The whole UTC days `[from_ms, to_ms)` falls in, as `(start, end)` pairs.
fn days(from_ms: i64, to_ms: i64) -> impl Iterator<Item = (i64, i64)> {
    let first = Span::Day.start_of(from_ms);
    let end = Span::Day.start_of(to_ms - 1) + DAY_MS;
    (first..end)
        .step_by(DAY_MS as usize)
        .map(|day| (day, day + DAY_MS))
}

/// Deletes the cells of periods starting in `[lower, upper)`, of one site or all, of the
/// dimensions `dims` or all.
fn delete_cells(
    tx: &Transaction<'_>,
    lower: i64,
    upper: i64,
    site: Option<&str>,
    dims: Option<&[&str]>,
) -> duckdb::Result<()> {
    let dim_scope = match dims {
        Some(dims) => format!(
            "AND dim IN ({})",
            dims.iter()
                .map(|dim| format!("'{dim}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => String::new(),
    };
    for span in [Span::Hour, Span::Day] {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE start_ms >= ? AND start_ms < ? {SITE_SCOPE} {dim_scope}",
                span.table()
            ),
            params![lower, upper, site, site],
        )?;
    }
    Ok(())
}

/// Adds the visit-log rows of visits starting in `[lower, upper)` to `changes`: every row's
/// sign-weighted sums and, for each visit's current state (its row added and not taken back),
/// its visitor in the cells of the visit-only dimensions. One pass, nothing kept per visit
/// and the visitors compacted as they grow, so a day of a busy site's visits takes no more
/// memory than its cells; the rows taken back (few: a visit's earlier states) are the only
/// ones DuckDB holds to tell the current states.
fn add_stored_visits(
    tx: &Transaction<'_>,
    changes: &mut Rollups,
    lower: i64,
    upper: i64,
    site: Option<&str>,
) -> duckdb::Result<()> {
    let (from, to) = (timestamp(lower), timestamp(upper));
    let mut added = 0usize;
    for_each_row(
        tx,
        &format!(
            "SELECT {SESSION_COLUMNS}, sign, sign > 0 AND b_session IS NULL \
             FROM sessions LEFT JOIN {} WHERE start_ts >= ? AND start_ts < ? {SITE_SCOPE}",
            taken_back("")
        ),
        params![from, to, from, to, site, site],
        |row| {
            let session = session_from_row(row)?;
            changes.add_visit_sums(&session, row.get::<i8>(30)?);
            if row.get::<bool>(31)? {
                changes.add_current_visit(&session);
                added += 1;
                if added.is_multiple_of(COMPACT_EVERY) {
                    changes.compact_visitors();
                }
            }
            Ok(())
        },
    )
}

/// `(...) AS back ON ...`, to join to `sessions`: the rows of the visit log that take others
/// back, starting in `[?, ?)` (two binds, then `extra`'s) and for which `extra` holds too, as
/// `b_site`, `b_session`, `b_version`. A row taken back repeats the state it takes back, its
/// start and values included, so a period's rows are taken back by rows of that period. A
/// join, not `NOT EXISTS`: DuckDB plans that correlated subquery as a join on the distinct
/// keys of every row, which for a day of a 100 M-event store needed more than 192 MB
/// (`could not allocate block` at 256MB); the join holds only the rows taken back and fits
/// in 48 MB.
fn taken_back(extra: &str) -> String {
    format!(
        "(SELECT DISTINCT site_id AS b_site, session_id AS b_session, version AS b_version \
         FROM sessions WHERE sign < 0 AND start_ts >= ? AND start_ts < ?{extra}) AS back \
         ON b_site = sessions.site_id AND b_session = sessions.session_id \
         AND b_version = sessions.version"
    )
}

/// Appends the cells of `changes` whose dimension `keep` keeps.
fn append_changes(
    tx: &Transaction<'_>,
    changes: Rollups,
    keep: impl Fn(&str) -> bool,
) -> duckdb::Result<()> {
    for span in [Span::Hour, Span::Day] {
        let cells = changes
            .slices
            .iter()
            .filter(|(key, _)| key.1 == span)
            .flat_map(|(key, slice)| {
                slice
                    .iter()
                    .filter(|((dim, _), _)| keep(dim))
                    .map(move |(cell_key, cell)| (key.clone(), cell_key.clone(), cell.clone()))
            })
            .collect();
        append_cells(tx, span, cells)?;
    }
    Ok(())
}

/// Schedules every cell to be built again from the stored events and visit log, from the
/// first day either holds to the last: for a store from before rollups, or whose cells may be
/// wrong. The work is done by [`rebuild_next_day`], a day per transaction, so a large store
/// is rebuilt in the memory one day takes and resumes where it stopped after a restart.
/// `cells_usable`: the cells there are may answer queries meanwhile (each day's are
/// replaced at once); otherwise (cells missing) the events answer until it is done.
pub fn schedule_rebuild(tx: &Transaction<'_>, cells_usable: bool) -> duckdb::Result<()> {
    let bounds: (Option<i64>, Option<i64>) = tx.query_row(
        "SELECT least((SELECT epoch_ms(min(ts)) FROM events), \
         (SELECT epoch_ms(min(start_ts)) FROM sessions)), \
         greatest((SELECT epoch_ms(max(ts)) FROM events), \
         (SELECT epoch_ms(max(start_ts)) FROM sessions))",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    tx.execute("DELETE FROM rollup_rebuild", [])?;
    if let (Some(from), Some(to)) = bounds {
        tx.execute(
            "INSERT INTO rollup_rebuild VALUES (?, ?, ?)",
            params![Span::Day.start_of(from), to + 1, cells_usable],
        )?;
    }
    Ok(())
}

/// A rebuild under way ([`schedule_rebuild`]).
pub struct PendingRebuild {
    /// The next UTC day to build.
    pub next_ms: i64,
    pub end_ms: i64,
    /// Whether the cells there are may answer queries meanwhile.
    pub cells_usable: bool,
}

impl PendingRebuild {
    /// The days left to build, at most (days without data are skipped).
    pub fn days_left(&self) -> u64 {
        days_from(self.next_ms, self.end_ms)
    }
}

/// The UTC days from the one starting at `next_ms` to `end_ms`, at least one.
fn days_from(next_ms: i64, end_ms: i64) -> u64 {
    ((end_ms - next_ms).max(1) as u64).div_ceil(DAY_MS as u64)
}

/// The rebuild under way, if any.
pub fn pending_rebuild(conn: &duckdb::Connection) -> duckdb::Result<Option<PendingRebuild>> {
    let mut stmt = conn.prepare("SELECT next_ms, end_ms, cells_usable FROM rollup_rebuild")?;
    let mut rows = stmt.query([])?;
    match rows.next()? {
        Some(row) => Ok(Some(PendingRebuild {
            next_ms: row.get(0)?,
            end_ms: row.get(1)?,
            cells_usable: row.get(2)?,
        })),
        None => Ok(None),
    }
}

/// Builds the cells of the scheduled rebuild's next day again and moves its mark to the next
/// day holding events or visits, in `tx`: a crash leaves the mark on the day it was building.
/// Answers the day built, if any, and the days left to build (at most; days without data
/// are skipped), 0 once done.
pub fn rebuild_next_day(tx: &Transaction<'_>) -> duckdb::Result<(Option<i64>, u64)> {
    let Some(PendingRebuild {
        next_ms: day,
        end_ms: end,
        ..
    }) = pending_rebuild(tx)?
    else {
        return Ok((None, 0));
    };
    let after = day + DAY_MS;
    rebuild(tx, None, day, after)?;
    let next: Option<i64> = tx.query_row(
        "SELECT least((SELECT epoch_ms(min(ts)) FROM events WHERE ts >= ?), \
         (SELECT epoch_ms(min(start_ts)) FROM sessions WHERE start_ts >= ?))",
        params![timestamp(after), timestamp(after)],
        |row| row.get(0),
    )?;
    match next.filter(|&next| next < end) {
        Some(next) => {
            let next = Span::Day.start_of(next);
            tx.execute("UPDATE rollup_rebuild SET next_ms = ?", params![next])?;
            Ok((Some(day), days_from(next, end)))
        }
        None => {
            tx.execute("DELETE FROM rollup_rebuild", [])?;
            Ok((Some(day), 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgetting_a_day_drops_its_periods_and_keeps_the_others() {
        let site = SiteId::from("example.com");
        let day = 1_704_067_200_000;
        let keys = [
            (site.clone(), Span::Hour, day - 3_600_000),
            (site.clone(), Span::Hour, day),
            (site.clone(), Span::Hour, day + 23 * 3_600_000),
            (site.clone(), Span::Day, day),
            (site.clone(), Span::Day, day + DAY_MS),
        ];
        let mut cache = RollupCache::default();
        for key in &keys {
            cache.slices.insert(key.clone(), (Slice::default(), 100));
            cache.order.push_back(key.clone());
            cache.bytes += 100;
        }
        cache.forget_day(day);
        let kept: Vec<_> = cache.order.iter().cloned().collect();
        assert_eq!(kept, vec![keys[0].clone(), keys[4].clone()]);
        assert_eq!(cache.slices.len(), 2);
        assert_eq!(cache.bytes, 200);
    }
}

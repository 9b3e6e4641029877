//! The processor's writes and reads ([`EventWriter`]) and data in, out and deleted
//! ([`EventData`]), as the crate's documentation describes them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use heartbeat_model::{
    Event, ImportedRow, ImportedTable, Revenue, Session, SiteId, SiteImport, VisitAttributes,
};
use heartbeat_store::{
    client_id_fingerprint, Deleted, EventData, EventWriter, Extent, ExtentReads, InsertBatch,
    SessionRow, StoreError, StoredVisit,
};
use serde_json::{Map, Value};

use crate::http::{cell, quote, quoted_list, ChError};
use crate::schema::VISIT_COLUMNS;
use crate::ClickHouseStore;

/// Most values listed in one lookup statement.
const LOOKUP_CHUNK: usize = 1000;

/// Most visitor or visit ids listed in one of the processor's lookups: up to 21 bytes
/// each, so a statement stays well inside ClickHouse's `max_query_size` (256 KiB), and a
/// batch of tens of thousands of visitors takes a few statements, not dozens.
const VISIT_LOOKUP_CHUNK: usize = 5000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `ms` as a `DateTime` value for `JSONEachRow` (whole seconds, rounded down; before 1970
/// is 1970, the least a `DateTime` holds).
fn datetime(ms: i64) -> Value {
    let at = chrono::DateTime::from_timestamp(ms.div_euclid(1000).max(0), 0).unwrap_or_default();
    Value::String(at.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn numbers(ids: impl Iterator<Item = u64>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(",")
}

fn visit_json(row: &mut Map<String, Value>, visit: &VisitAttributes) {
    let values = [
        &visit.referrer,
        &visit.referrer_source,
        &visit.channel,
        &visit.utm_source,
        &visit.utm_medium,
        &visit.utm_campaign,
        &visit.utm_content,
        &visit.utm_term,
        &visit.country,
        &visit.region,
        &visit.city,
        &visit.browser,
        &visit.browser_version,
        &visit.os,
        &visit.os_version,
        &visit.device,
        &visit.screen,
    ];
    for (name, value) in VISIT_COLUMNS.iter().zip(values) {
        row.insert((*name).to_owned(), Value::String(value.clone()));
    }
}

fn visit_from(cells: &[Value]) -> Result<VisitAttributes, ChError> {
    let s = |i: usize| cell::string(&cells[i]);
    Ok(VisitAttributes {
        referrer: s(0)?,
        referrer_source: s(1)?,
        channel: s(2)?,
        utm_source: s(3)?,
        utm_medium: s(4)?,
        utm_campaign: s(5)?,
        utm_content: s(6)?,
        utm_term: s(7)?,
        country: s(8)?,
        region: s(9)?,
        city: s(10)?,
        browser: s(11)?,
        browser_version: s(12)?,
        os: s(13)?,
        os_version: s(14)?,
        device: s(15)?,
        screen: s(16)?,
    })
}

/// A row to insert, as `JSONEachRow` takes it: values by column name.
type JsonRow = Map<String, Value>;

/// Events and their properties as rows of `events` and `event_props`.
fn event_rows(
    events: &[Event],
    received_ms: i64,
    batch_position: u64,
) -> (Vec<JsonRow>, Vec<JsonRow>) {
    let mut rows = Vec::with_capacity(events.len());
    let mut props = Vec::new();
    for e in events {
        let mut row = Map::new();
        row.insert("site_id".into(), e.site_id.as_str().into());
        row.insert("event_id".into(), e.event_id.clone().into());
        row.insert(
            "client_event_id".into(),
            u8::from(e.event_id_from_client).into(),
        );
        row.insert("name".into(), e.name.clone().into());
        row.insert("ts".into(), datetime(e.timestamp_ms));
        row.insert("ts_ms".into(), e.timestamp_ms.into());
        row.insert("visitor_id".into(), e.visitor_id.into());
        row.insert("session_id".into(), e.session_id.into());
        row.insert("user_id".into(), e.user_id.clone().into());
        row.insert(
            "client_session_id".into(),
            e.client_session_id.clone().into(),
        );
        row.insert("hostname".into(), e.hostname.clone().into());
        row.insert("pathname".into(), e.pathname.clone().into());
        visit_json(&mut row, &e.visit);
        let props_json = if e.props.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&e.props).unwrap_or_default()
        };
        row.insert("props_json".into(), props_json.into());
        row.insert(
            "revenue_micros".into(),
            e.revenue.as_ref().map(|r| r.amount_micros).into(),
        );
        row.insert(
            "revenue_currency".into(),
            e.revenue.as_ref().map(|r| r.currency.clone()).into(),
        );
        row.insert("interactive".into(), u8::from(e.interactive).into());
        row.insert("received_at".into(), datetime(received_ms));
        row.insert("scroll_depth".into(), e.scroll_depth.into());
        row.insert("engagement_time_ms".into(), e.engagement_time_ms.into());
        row.insert("batch_position".into(), batch_position.into());
        rows.push(row);
        for (key, value) in &e.props {
            let mut prop = Map::new();
            prop.insert("site_id".into(), e.site_id.as_str().into());
            prop.insert("ts".into(), datetime(e.timestamp_ms));
            prop.insert("ts_ms".into(), e.timestamp_ms.into());
            prop.insert("name".into(), e.name.clone().into());
            prop.insert("visitor_id".into(), e.visitor_id.into());
            prop.insert("session_id".into(), e.session_id.into());
            prop.insert("pathname".into(), e.pathname.clone().into());
            prop.insert("key".into(), key.clone().into());
            prop.insert("value".into(), value.clone().into());
            prop.insert("event_id".into(), e.event_id.clone().into());
            prop.insert("batch_position".into(), batch_position.into());
            props.push(prop);
        }
    }
    (rows, props)
}

fn session_row(row: &SessionRow, batch_position: u64) -> Map<String, Value> {
    let s = &row.session;
    let mut out = Map::new();
    out.insert("site_id".into(), s.site_id.as_str().into());
    out.insert("session_id".into(), s.session_id.into());
    out.insert("visitor_id".into(), s.visitor_id.into());
    out.insert("sign".into(), row.sign.into());
    out.insert("version".into(), s.version.into());
    out.insert("start_ts".into(), datetime(s.start_ms));
    out.insert("end_ts".into(), datetime(s.end_ms));
    out.insert("start_ms".into(), s.start_ms.into());
    out.insert("end_ms".into(), s.end_ms.into());
    out.insert("duration_s".into(), s.duration_s().into());
    out.insert("pageviews".into(), s.pageviews.into());
    out.insert("events".into(), s.events.into());
    out.insert("engagements".into(), s.engagements.into());
    out.insert("bounce".into(), i8::from(s.is_bounce()).into());
    out.insert("entry_page".into(), s.entry_page.clone().into());
    out.insert("exit_page".into(), s.exit_page.clone().into());
    out.insert("hostname".into(), s.hostname.clone().into());
    visit_json(&mut out, &s.visit);
    out.insert("user_id".into(), s.user_id.clone().into());
    out.insert("batch_position".into(), batch_position.into());
    out
}

const EVENT_COLUMNS: &str = "site_id, event_id, client_event_id, name, ts_ms, visitor_id, \
    session_id, user_id, client_session_id, hostname, pathname, referrer, referrer_source, \
    channel, utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, region, city, \
    browser, browser_version, os, os_version, device, screen, props_json, revenue_micros, \
    revenue_currency, interactive, scroll_depth, engagement_time_ms";

fn event_from(cells: &[Value]) -> Result<Event, ChError> {
    let props_json = cell::string(&cells[28])?;
    let micros = cell::opt_i64(&cells[29])?;
    let currency = cell::opt_string(&cells[30])?;
    Ok(Event {
        site_id: SiteId(cell::string(&cells[0])?),
        event_id: cell::string(&cells[1])?,
        event_id_from_client: cell::bool(&cells[2])?,
        name: cell::string(&cells[3])?,
        timestamp_ms: cell::i64(&cells[4])?,
        visitor_id: cell::u64(&cells[5])?,
        previous_visitor_id: None,
        session_id: cell::u64(&cells[6])?,
        user_id: cell::opt_string(&cells[7])?,
        client_session_id: cell::opt_string(&cells[8])?,
        hostname: cell::string(&cells[9])?,
        pathname: cell::string(&cells[10])?,
        visit: visit_from(&cells[11..28])?,
        props: if props_json.is_empty() {
            Default::default()
        } else {
            serde_json::from_str(&props_json).unwrap_or_default()
        },
        revenue: micros
            .zip(currency)
            .map(|(amount_micros, currency)| Revenue {
                amount_micros,
                currency,
            }),
        interactive: cell::bool(&cells[31])?,
        scroll_depth: match &cells[32] {
            Value::Null => None,
            other => u8::try_from(cell::u64(other)?).ok(),
        },
        engagement_time_ms: cell::u32(&cells[33])?,
    })
}

/// The columns of a visit state after `site_id, session_id`, in [`session_from`]'s order.
const SESSION_VALUE_COLUMNS: [&str; 11] = [
    "visitor_id",
    "user_id",
    "version",
    "start_ms",
    "end_ms",
    "pageviews",
    "events",
    "engagements",
    "entry_page",
    "exit_page",
    "hostname",
];

/// `SELECT` columns giving each visit's newest state (the largest version among its
/// `sign = 1` rows: no window functions in 18.16), grouped by `site_id, session_id`, then
/// the sum of its signs (above 0 while the visit has a live state).
fn newest_state_columns() -> String {
    let mut columns = vec!["site_id".to_owned(), "session_id".to_owned()];
    for name in SESSION_VALUE_COLUMNS.iter().chain(VISIT_COLUMNS.iter()) {
        columns.push(format!("argMaxIf({name}, version, sign = 1)"));
    }
    columns.push("sum(sign)".to_owned());
    columns.join(", ")
}

fn session_from(cells: &[Value]) -> Result<(Session, i64), ChError> {
    let session = Session {
        site_id: SiteId(cell::string(&cells[0])?),
        session_id: cell::u64(&cells[1])?,
        visitor_id: cell::u64(&cells[2])?,
        user_id: cell::opt_string(&cells[3])?,
        version: cell::u32(&cells[4])?,
        start_ms: cell::i64(&cells[5])?,
        end_ms: cell::i64(&cells[6])?,
        pageviews: cell::u32(&cells[7])?,
        events: cell::u32(&cells[8])?,
        engagements: cell::u32(&cells[9])?,
        entry_page: cell::string(&cells[10])?,
        exit_page: cell::string(&cells[11])?,
        hostname: cell::string(&cells[12])?,
        visit: visit_from(&cells[13..30])?,
    };
    Ok((session, cell::i64(&cells[30])?))
}

impl ClickHouseStore {
    /// The committed queue position (first shard), `None` before the first insert.
    async fn committed_position(&self) -> Result<Option<u64>, StoreError> {
        let rows = self
            .first_rows(format!(
                "SELECT count(), argMax(position, seq) FROM queue_positions WHERE partition = {}",
                self.writer.partition.index
            ))
            .await?;
        match rows.first() {
            Some(row) if cell::u64(&row[0])? > 0 => Ok(Some(cell::u64(&row[1])?)),
            _ => Ok(None),
        }
    }

    /// Rolls back the rows of an insert that never committed, if the last insert may have
    /// left some (see the crate's documentation). Called under the write lock.
    async fn recover(&self) -> Result<(), StoreError> {
        if !self.writer.needs_recovery.load(Ordering::SeqCst) {
            return Ok(());
        }
        let committed = self.committed_position().await?.unwrap_or(0);
        let condition = self.writer.partition.uncommitted(committed);
        let rows = self
            .first_rows(format!(
                "SELECT (SELECT count() FROM events WHERE {condition}) + \
                 (SELECT count() FROM event_props WHERE {condition}) + \
                 (SELECT count() FROM sessions WHERE {condition}) + \
                 (SELECT count() FROM visit_states WHERE {condition})"
            ))
            .await?;
        let uncommitted = rows
            .first()
            .and_then(|row| row.first())
            .map(cell::u64)
            .transpose()?
            .unwrap_or(0);
        if uncommitted > 0 {
            tracing::warn!(
                uncommitted,
                committed,
                "rolling back the rows of an insert that did not commit"
            );
            let touched = self.visits_written(&condition).await?;
            self.delete_where(
                &["events", "event_props", "sessions", "visit_states"],
                &condition,
            )
            .await?;
            self.restore_visits(touched).await?;
        }
        self.writer.needs_recovery.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// The visits the rows matching `condition` wrote states of.
    async fn visits_written(&self, condition: &str) -> Result<HashSet<(SiteId, u64)>, StoreError> {
        let rows = self
            .first_rows(format!(
                "SELECT DISTINCT site_id, session_id FROM sessions WHERE {condition}"
            ))
            .await?;
        rows.iter()
            .map(|row| Ok((SiteId(cell::string(&row[0])?), cell::u64(&row[1])?)))
            .collect()
    }

    /// After a rollback, the states of `visits` it may have taken with it: a merge can
    /// collapse a committed state with the uncommitted row cancelling it before the rollback
    /// deletes that row's insert, so the visit is left with no live state in `sessions` (or
    /// in `visit_states`, whose merges are its own). Such a visit is built again from its
    /// committed events (`rebuild_visits`), and `visit_states` gets `sessions`' live state
    /// where it lacks it.
    async fn restore_visits(&self, visits: HashSet<(SiteId, u64)>) -> Result<(), StoreError> {
        let listed: Vec<(SiteId, u64)> = visits.into_iter().collect();
        let mut lost = HashSet::new();
        for chunk in listed.chunks(LOOKUP_CHUNK) {
            let keys = chunk
                .iter()
                .map(|(site, id)| format!("({}, {id})", quote(site.as_str())))
                .collect::<Vec<_>>()
                .join(", ");
            // Each visit's live version in `sessions`, and its newest state in `visit_states`.
            let newest = |table: &str, having: &str| {
                format!(
                    "SELECT site_id, session_id, maxIf(version, sign = 1) FROM {table} \
                     WHERE (site_id, session_id) IN ({keys}) GROUP BY site_id, session_id {having}"
                )
            };
            let versions = |rows: Vec<Vec<Value>>| {
                rows.iter()
                    .map(|row| {
                        Ok((
                            (SiteId(cell::string(&row[0])?), cell::u64(&row[1])?),
                            cell::u32(&row[2])?,
                        ))
                    })
                    .collect::<Result<HashMap<(SiteId, u64), u32>, ChError>>()
            };
            let live = versions(
                self.first_rows(newest("sessions", "HAVING sum(sign) > 0"))
                    .await?,
            )?;
            let states = versions(self.first_rows(newest("visit_states", "")).await?)?;
            let mut copy = Vec::new();
            for key in chunk {
                match (live.get(key), states.get(key)) {
                    (None, _) => {
                        lost.insert(key.clone());
                    }
                    (Some(version), newest) if newest != Some(version) => {
                        copy.push(format!("({}, {}, {version})", quote(key.0.as_str()), key.1));
                    }
                    _ => {}
                }
            }
            if !copy.is_empty() {
                let db = self.db();
                self.inner
                    .http
                    .execute(
                        self.first_url(),
                        Some(db),
                        format!(
                            "INSERT INTO {db}.visit_states SELECT * FROM {db}.sessions \
                             WHERE sign = 1 AND (site_id, session_id, version) IN ({})",
                            copy.join(", ")
                        ),
                    )
                    .await?;
            }
        }
        if !lost.is_empty() {
            tracing::warn!(
                visits = lost.len(),
                "building again the visits a rollback left without a state"
            );
            self.rebuild_visits(lost).await?;
        }
        Ok(())
    }

    async fn recover_now(&self) -> Result<(), StoreError> {
        if self.writer.needs_recovery.load(Ordering::SeqCst) {
            let _lock = self.writer.write_lock.lock().await;
            self.recover().await?;
        }
        Ok(())
    }

    async fn write_batch(&self, batch: &InsertBatch) -> Result<(), StoreError> {
        let tag = self.writer.partition.tag(batch.queue_position);
        let (events, props) = event_rows(&batch.events, now_ms(), tag);
        let sessions: Vec<_> = batch
            .sessions
            .iter()
            .map(|row| session_row(row, tag))
            .collect();
        // Visits and properties before the events: a reader that sees a batch's events (how
        // "stored" is counted) sees its visits too.
        self.insert_rows("sessions", &sessions).await?;
        self.insert_rows("event_props", &props).await?;
        self.insert_rows("events", &events).await?;
        // The commit: the position, on the first shard.
        let seq = self.writer.last_seq.load(Ordering::SeqCst) + 1;
        let mut position = Map::new();
        position.insert("partition".into(), self.writer.partition.index.into());
        position.insert("seq".into(), seq.into());
        position.insert("position".into(), batch.queue_position.into());
        position.insert("written_at".into(), datetime(now_ms()));
        self.inner
            .http
            .insert(self.first_url(), self.db(), "queue_positions", &[position])
            .await?;
        self.writer.last_seq.store(seq, Ordering::SeqCst);
        Ok(())
    }

    /// `sessions` with the times of their first and last page views and latest event, read
    /// from their events (per site, chunks of visits in time order, each read as
    /// [`ExtentReads`] says, bounded by a range of the events' sorting key, `ts`, which the
    /// exact `ts_ms` then narrows).
    async fn with_extents(&self, sessions: Vec<Session>) -> Result<Vec<StoredVisit>, StoreError> {
        let mut by_site: HashMap<SiteId, Vec<Session>> = HashMap::new();
        for session in sessions {
            by_site
                .entry(session.site_id.clone())
                .or_default()
                .push(session);
        }
        let mut visits = Vec::new();
        for (site, mut sessions) in by_site {
            // In time order, so each chunk's range is narrow.
            sessions.sort_unstable_by_key(|s| s.start_ms);
            for chunk in sessions.chunks(VISIT_LOOKUP_CHUNK) {
                let mut reads = ExtentReads::new(chunk);
                while let Some((from, to)) = reads.next_range() {
                    let rows = self
                        .first_rows(format!(
                            "SELECT session_id, countIf(name = 'pageview'), \
                             minIf(ts_ms, name = 'pageview'), maxIf(ts_ms, name = 'pageview'), \
                             max(ts_ms) FROM events PREWHERE site_id = {} \
                             AND ts >= toDateTime({}) AND ts <= toDateTime({}) \
                             AND session_id IN ({}) WHERE ts_ms >= {from} AND ts_ms <= {to} \
                             GROUP BY session_id",
                            quote(site.as_str()),
                            from.div_euclid(1000),
                            to.div_euclid(1000) + 1,
                            numbers(reads.pending_ids())
                        ))
                        .await?;
                    let mut extents = HashMap::new();
                    for row in rows {
                        let pageviews = cell::u64(&row[1])?;
                        let (first, last) = if pageviews > 0 {
                            (Some(cell::i64(&row[2])?), Some(cell::i64(&row[3])?))
                        } else {
                            (None, None)
                        };
                        let extent = Extent {
                            first_pageview_ms: first,
                            last_pageview_ms: last,
                            last_event_ms: cell::i64(&row[4])?,
                        };
                        extents.insert(cell::u64(&row[0])?, extent);
                    }
                    reads.record(extents);
                }
                visits.extend(reads.into_visits());
            }
        }
        Ok(visits)
    }

    /// Newest states of the visits matching `condition` in `table` (`sessions`, or
    /// `visit_states`, the same rows sorted by their end), with the sums of their signs
    /// (`sessions` only: `visit_states` may repeat rows). The condition is a `PREWHERE`: its
    /// columns are read first, the wide ones only for the rows it keeps.
    async fn newest_states(
        &self,
        table: &str,
        condition: &str,
    ) -> Result<Vec<(Session, i64)>, StoreError> {
        let rows = self
            .first_rows(format!(
                "SELECT {} FROM {table} PREWHERE {condition} GROUP BY site_id, session_id \
                 ORDER BY site_id, session_id",
                newest_state_columns()
            ))
            .await?;
        rows.iter()
            .map(|row| session_from(row).map_err(StoreError::from))
            .collect()
    }

    /// Counts of `site`'s events and visits matching the conditions.
    async fn count(
        &self,
        site: &SiteId,
        events_condition: &str,
        sessions_condition: &str,
    ) -> Result<Deleted, StoreError> {
        let site = quote(site.as_str());
        let rows = self
            .first_rows(format!(
                "SELECT (SELECT count() FROM events WHERE site_id = {site} AND {events_condition}), \
                 (SELECT uniqExact(session_id) FROM sessions WHERE site_id = {site} \
                 AND {sessions_condition})"
            ))
            .await?;
        let row = rows.first().ok_or_else(|| StoreError::Unavailable {
            message: "a count gave no row".into(),
        })?;
        Ok(Deleted {
            events: cell::u64(&row[0])?,
            visits: cell::u64(&row[1])?,
        })
    }

    /// Which (site, event id) of `events` are stored.
    async fn stored_ids(&self, events: &[Event]) -> Result<HashSet<(SiteId, String)>, StoreError> {
        let mut by_site: HashMap<&SiteId, Vec<&str>> = HashMap::new();
        for e in events {
            by_site.entry(&e.site_id).or_default().push(&e.event_id);
        }
        let mut stored = HashSet::new();
        for (site, ids) in by_site {
            for chunk in ids.chunks(LOOKUP_CHUNK) {
                let rows = self
                    .first_rows(format!(
                        "SELECT DISTINCT event_id FROM events WHERE site_id = {} \
                         AND event_id IN ({})",
                        quote(site.as_str()),
                        quoted_list(chunk.iter().copied())
                    ))
                    .await?;
                for row in rows {
                    stored.insert((site.clone(), cell::string(&row[0])?));
                }
            }
        }
        Ok(stored)
    }

    /// Rebuilds the visits `(site, session id)` from all their stored events: cancels each
    /// live state and writes the rebuilt one, a version above.
    async fn rebuild_visits(&self, visits: HashSet<(SiteId, u64)>) -> Result<(), StoreError> {
        let mut by_site: HashMap<SiteId, Vec<u64>> = HashMap::new();
        for (site, session) in visits {
            by_site.entry(site).or_default().push(session);
        }
        let mut rows = Vec::new();
        for (site, sessions) in by_site {
            for chunk in sessions.chunks(LOOKUP_CHUNK) {
                let listed = numbers(chunk.iter().copied());
                let site_sql = quote(site.as_str());
                let live = self
                    .newest_states(
                        "sessions",
                        &format!("site_id = {site_sql} AND session_id IN ({listed})"),
                    )
                    .await?;
                let mut newest: HashMap<u64, (Session, i64)> = live
                    .into_iter()
                    .map(|(session, signs)| (session.session_id, (session, signs)))
                    .collect();
                let events = self
                    .first_rows(format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = {site_sql} \
                         AND session_id IN ({listed}) AND name != 'engagement' \
                         ORDER BY session_id, ts_ms, event_id"
                    ))
                    .await?;
                let mut grouped: HashMap<u64, Vec<Event>> = HashMap::new();
                for row in &events {
                    let event = event_from(row)?;
                    grouped.entry(event.session_id).or_default().push(event);
                }
                for (session_id, events) in grouped {
                    let mut version = 1;
                    if let Some((state, signs)) = newest.remove(&session_id) {
                        version = state.version + 1;
                        if signs > 0 {
                            rows.push(session_row(
                                &SessionRow {
                                    session: state,
                                    sign: -1,
                                },
                                0,
                            ));
                        }
                    }
                    if let Some(session) = visit_of(&events, version) {
                        rows.push(session_row(&SessionRow { session, sign: 1 }, 0));
                    }
                }
            }
        }
        self.insert_rows("sessions", &rows).await?;
        Ok(())
    }
}

/// A visit's state from its events in time order (engagement events left out), with the
/// sessionizer's rules: entry and exit pages are the first and last page views, else the
/// first event's page; the attributes of the first event.
fn visit_of(events: &[Event], version: u32) -> Option<Session> {
    let first = events.first()?;
    let last = events.last()?;
    let pageviews: Vec<&Event> = events.iter().filter(|e| e.is_pageview()).collect();
    let engagements = events
        .iter()
        .filter(|e| e.is_pageview() || e.interactive)
        .count();
    Some(Session {
        site_id: first.site_id.clone(),
        session_id: first.session_id,
        visitor_id: first.visitor_id,
        user_id: events.iter().find_map(|e| e.user_id.clone()),
        version,
        start_ms: first.timestamp_ms,
        end_ms: last.timestamp_ms,
        pageviews: pageviews.len() as u32,
        events: events.len() as u32,
        engagements: engagements as u32,
        entry_page: pageviews
            .first()
            .map_or(&first.pathname, |e| &e.pathname)
            .clone(),
        exit_page: pageviews
            .last()
            .map_or(&first.pathname, |e| &e.pathname)
            .clone(),
        hostname: first.hostname.clone(),
        visit: first.visit.clone(),
    })
}

#[async_trait::async_trait]
impl EventWriter for ClickHouseStore {
    async fn insert(&self, batch: Arc<InsertBatch>) -> Result<(), StoreError> {
        let _lock = self.writer.write_lock.lock().await;
        self.recover().await?;
        let result = self.write_batch(&batch).await;
        if result.is_err() {
            // Some rows may be stored: rolled back before the next insert.
            self.writer.needs_recovery.store(true, Ordering::SeqCst);
        }
        self.changed(
            batch
                .events
                .iter()
                .map(|e| &e.site_id)
                .chain(batch.sessions.iter().map(|row| &row.session.site_id)),
        );
        result
    }

    async fn queue_position(&self) -> Result<Option<u64>, StoreError> {
        self.recover_now().await?;
        self.committed_position().await
    }

    async fn open_sessions(&self, since_ms: i64) -> Result<Vec<StoredVisit>, StoreError> {
        self.recover_now().await?;
        let states = self
            .newest_states(
                "visit_states",
                &format!(
                    "end_ms >= {since_ms} AND sign = 1 AND {}",
                    self.writer.partition.condition()
                ),
            )
            .await?;
        self.with_extents(states.into_iter().map(|(s, _)| s).collect())
            .await
    }

    async fn visits_of(
        &self,
        site: &SiteId,
        visitors: Vec<u64>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredVisit>, StoreError> {
        self.recover_now().await?;
        let mut sessions = Vec::new();
        // A range of `visit_states`' sorting key (site, end): the states ending after
        // `from_ms`, the newest of each visit among them.
        for chunk in visitors.chunks(VISIT_LOOKUP_CHUNK) {
            let states = self
                .newest_states(
                    "visit_states",
                    &format!(
                        "site_id = {} AND end_ms >= {from_ms} AND visitor_id IN ({}) \
                         AND sign = 1 AND start_ms <= {to_ms}",
                        quote(site.as_str()),
                        numbers(chunk.iter().copied())
                    ),
                )
                .await?;
            sessions.extend(states.into_iter().map(|(s, _)| s));
        }
        self.with_extents(sessions).await
    }

    async fn client_id_fingerprints(
        &self,
        received_since_ms: i64,
        newest: usize,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = self
            .first_rows(format!(
                "SELECT site_id, event_id, toInt64(toUnixTimestamp(received_at)) * 1000 AS at \
                 FROM events WHERE client_event_id = 1 AND at >= {received_since_ms} AND {} \
                 ORDER BY at DESC LIMIT {newest}",
                self.writer.partition.condition()
            ))
            .await?;
        rows.iter()
            .map(|row| {
                let site = SiteId(cell::string(&row[0])?);
                let id = cell::string(&row[1])?;
                Ok((cell::i64(&row[2])?, client_id_fingerprint(&site, &id)))
            })
            .collect::<Result<_, ChError>>()
            .map_err(StoreError::from)
    }

    async fn stored_client_ids(
        &self,
        site: &SiteId,
        ids: Vec<String>,
        received_since_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut stored = Vec::new();
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let rows = self
                .first_rows(format!(
                    "SELECT DISTINCT event_id FROM events WHERE site_id = {} \
                     AND client_event_id = 1 AND event_id IN ({}) \
                     AND toInt64(toUnixTimestamp(received_at)) * 1000 >= {received_since_ms}",
                    quote(site.as_str()),
                    quoted_list(chunk.iter().map(String::as_str))
                ))
                .await?;
            for row in rows {
                stored.push(cell::string(&row[0])?);
            }
        }
        Ok(stored)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Nothing to do: see `ClickHouseStore`'s documentation.
        Ok(())
    }

    async fn delete_site_events(&self, site: &SiteId) -> Result<Deleted, StoreError> {
        let _lock = self.writer.write_lock.lock().await;
        self.recover().await?;
        // This partition's visitors' rows: another partition's processor deletes its own
        // when it reaches the deletion in its queue, after what was accepted before it.
        let partition = self.writer.partition.condition();
        let deleted = self.count(site, &partition, &partition).await?;
        let site_sql = quote(site.as_str());
        self.delete_where(
            &["events", "event_props", "sessions", "visit_states"],
            &format!("site_id = {site_sql} AND {partition}"),
        )
        .await?;
        let mut tables = vec!["site_imports"];
        tables.extend(ImportedTable::ALL.iter().map(|t| t.name()));
        self.delete_where(&tables, &format!("site_id = {site_sql}"))
            .await?;
        self.changed([site]);
        Ok(deleted)
    }
}

#[async_trait::async_trait]
impl EventData for ClickHouseStore {
    /// One mutation per table and shard for the whole range (a mutation rewrites the parts
    /// it touches, so day-by-day steps would cost more, not less); inserts go on meanwhile.
    async fn delete_before(&self, site: &SiteId, before_ms: i64) -> Result<Deleted, StoreError> {
        let events_condition = format!("ts_ms < {before_ms}");
        let sessions_condition = format!("start_ms < {before_ms}");
        let deleted = self
            .count(site, &events_condition, &sessions_condition)
            .await?;
        let site_sql = quote(site.as_str());
        if deleted.events > 0 {
            self.delete_where(
                &["events", "event_props"],
                &format!("site_id = {site_sql} AND {events_condition}"),
            )
            .await?;
        }
        if deleted.visits > 0 {
            self.delete_where(
                &["sessions", "visit_states"],
                &format!("site_id = {site_sql} AND {sessions_condition}"),
            )
            .await?;
        }
        if deleted != Deleted::default() {
            self.changed([site]);
        }
        Ok(deleted)
    }

    /// A range of `events`' sort key (`ts`) first; `received_at` keeps whole seconds.
    async fn stored_since(
        &self,
        stored_since_ms: i64,
        events_since_ms: i64,
        limit: usize,
    ) -> Result<Vec<(Event, i64)>, StoreError> {
        let stored_at = EVENT_COLUMNS.split(',').count();
        let rows = self
            .first_rows(format!(
                "SELECT {EVENT_COLUMNS}, toInt64(toUnixTimestamp(received_at)) * 1000 \
                 FROM events PREWHERE ts >= toDateTime({}) AND received_at >= toDateTime({}) \
                 ORDER BY received_at, event_id LIMIT {limit}",
                events_since_ms.div_euclid(1000).max(0),
                stored_since_ms.div_euclid(1000).max(0),
            ))
            .await?;
        rows.iter()
            .map(|row| Ok((event_from(row)?, cell::i64(&row[stored_at])?)))
            .collect()
    }

    async fn export_events(
        &self,
        site: &SiteId,
        after: Option<(i64, String)>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let after = match after {
            Some((ms, id)) => format!(
                "AND (ts_ms > {ms} OR (ts_ms = {ms} AND event_id > {}))",
                quote(&id)
            ),
            None => String::new(),
        };
        let rows = self
            .first_rows(format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE site_id = {} {after} \
                 ORDER BY ts_ms, event_id LIMIT {limit}",
                quote(site.as_str())
            ))
            .await?;
        rows.iter()
            .map(|row| event_from(row).map_err(StoreError::from))
            .collect()
    }

    async fn import_events(&self, events: Vec<Event>) -> Result<u64, StoreError> {
        let _lock = self.writer.write_lock.lock().await;
        let stored = self.stored_ids(&events).await?;
        let mut seen = HashSet::new();
        let fresh: Vec<Event> = events
            .into_iter()
            .filter(|e| {
                let key = (e.site_id.clone(), e.event_id.clone());
                !stored.contains(&key) && seen.insert(key)
            })
            .collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        let (rows, props) = event_rows(&fresh, now_ms(), 0);
        self.insert_rows("events", &rows).await?;
        self.insert_rows("event_props", &props).await?;
        let visits: HashSet<(SiteId, u64)> = fresh
            .iter()
            .map(|e| (e.site_id.clone(), e.session_id))
            .collect();
        self.changed(visits.iter().map(|(site, _)| site));
        self.rebuild_visits(visits).await?;
        Ok(fresh.len() as u64)
    }

    async fn import_aggregates(
        &self,
        site: &SiteId,
        source: &str,
        (start_date, end_date): (String, String),
        tables: Vec<(ImportedTable, Vec<ImportedRow>)>,
    ) -> Result<SiteImport, StoreError> {
        let _lock = self.writer.write_lock.lock().await;
        let rows = self
            .first_rows("SELECT max(id) FROM site_imports".into())
            .await?;
        let id = rows
            .first()
            .and_then(|row| row.first())
            .map(cell::u64)
            .transpose()?
            .unwrap_or(0)
            + 1;
        let imported_at_ms = now_ms();
        self.changed([site]);
        let written = self.write_import(site, id, &tables).await;
        if let Err(err) = written {
            // Rows of the import without its `site_imports` row: removed, best effort.
            let tables: Vec<&str> = ImportedTable::ALL.iter().map(|t| t.name()).collect();
            if let Err(cleanup) = self
                .delete_where(&tables, &format!("import_id = {id}"))
                .await
            {
                tracing::warn!(%cleanup, import_id = id, "could not remove a failed import's rows");
            }
            return Err(err);
        }
        let mut row = Map::new();
        row.insert("id".into(), id.into());
        row.insert("site_id".into(), site.as_str().into());
        row.insert("source".into(), source.into());
        row.insert("start_date".into(), start_date.clone().into());
        row.insert("end_date".into(), end_date.clone().into());
        row.insert("imported_at_ms".into(), imported_at_ms.into());
        self.insert_rows("site_imports", &[row]).await?;
        Ok(SiteImport {
            id,
            site_id: site.clone(),
            source: source.to_owned(),
            start_date,
            end_date,
            imported_at_ms,
        })
    }

    async fn site_imports(&self, site: &SiteId) -> Result<Vec<SiteImport>, StoreError> {
        let rows = self
            .first_rows(format!(
                "SELECT id, source, toString(start_date), toString(end_date), imported_at_ms \
                 FROM site_imports WHERE site_id = {} ORDER BY id",
                quote(site.as_str())
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SiteImport {
                    id: cell::u64(&row[0])?,
                    site_id: site.clone(),
                    source: cell::string(&row[1])?,
                    start_date: cell::string(&row[2])?,
                    end_date: cell::string(&row[3])?,
                    imported_at_ms: cell::i64(&row[4])?,
                })
            })
            .collect::<Result<_, ChError>>()
            .map_err(StoreError::from)
    }

    async fn delete_import(&self, site: &SiteId, id: u64) -> Result<bool, StoreError> {
        let site_sql = quote(site.as_str());
        let found = self
            .first_rows(format!(
                "SELECT count() FROM site_imports WHERE site_id = {site_sql} AND id = {id}"
            ))
            .await?;
        let found = found
            .first()
            .and_then(|row| row.first())
            .map(cell::u64)
            .transpose()?
            .unwrap_or(0);
        if found == 0 {
            return Ok(false);
        }
        // The listing goes first, so a delete cut short leaves no listed import half gone.
        self.delete_where(
            &["site_imports"],
            &format!("site_id = {site_sql} AND id = {id}"),
        )
        .await?;
        let tables: Vec<&str> = ImportedTable::ALL.iter().map(|t| t.name()).collect();
        self.delete_where(
            &tables,
            &format!("site_id = {site_sql} AND import_id = {id}"),
        )
        .await?;
        self.changed([site]);
        Ok(true)
    }
}

impl ClickHouseStore {
    async fn write_import(
        &self,
        site: &SiteId,
        id: u64,
        tables: &[(ImportedTable, Vec<ImportedRow>)],
    ) -> Result<(), StoreError> {
        for (table, rows) in tables {
            let texts = table.text_columns();
            let counts = table.count_columns();
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                if row.texts.len() != texts.len() || row.counts.len() != counts.len() {
                    return Err(StoreError::Rejected {
                        message: format!(
                            "a row of {} has {} texts and {} counts, not {} and {}",
                            table.name(),
                            row.texts.len(),
                            row.counts.len(),
                            texts.len(),
                            counts.len()
                        ),
                    });
                }
                let mut json = Map::new();
                json.insert("site_id".into(), site.as_str().into());
                json.insert("import_id".into(), id.into());
                json.insert("date".into(), row.date.clone().into());
                for (name, value) in texts.iter().zip(&row.texts) {
                    json.insert((*name).to_owned(), value.clone().into());
                }
                for (column, value) in counts.iter().zip(&row.counts) {
                    json.insert(column.name.to_owned(), (*value).into());
                }
                out.push(json);
            }
            self.insert_rows(table.name(), &out).await?;
        }
        Ok(())
    }
}

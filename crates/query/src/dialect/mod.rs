//! SQL dialects: the SQL that each engine spells its own way (truncating a timestamp to a
//! time bucket, matching a pattern, seconds since the epoch, timestamp literals, ...), behind
//! one trait, [`SqlDialect`], with one file per engine (`duckdb.rs`, `clickhouse.rs`).
//!
//! Everything else in this crate writes standard SQL and asks the dialect for the rest, so
//! another engine (ClickHouse) is a new file implementing [`SqlDialect`] and a variant of
//! [`Dialect`], not a rewrite of the compiler. Invariant: no function name of one engine
//! appears in this crate outside that engine's file (a test below checks the usual
//! suspects).

mod clickhouse;
mod duckdb;

use crate::model::TimeGrain;

/// SQL engines the query compiler targets: what a [`crate::SqlRunner`] says it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    DuckDb,
    /// ClickHouse 18.16 and later (`clickhouse.rs`).
    ClickHouse,
}

impl Dialect {
    /// The engine's spelling of the SQL that is not the same everywhere.
    pub fn sql(self) -> &'static dyn SqlDialect {
        match self {
            Dialect::DuckDb => &duckdb::DuckDbDialect,
            Dialect::ClickHouse => &clickhouse::ClickHouseDialect,
        }
    }
}

/// What an [`SqlDialect::order_key`] multiplies milliseconds by: 2^20 hash values per
/// millisecond, which leaves room for milliseconds until the year 2248 in a signed 64-bit
/// integer.
pub const ORDER_KEY_SCALE: i64 = 1 << 20;

/// The SQL one engine spells its own way. Every method takes SQL expressions (column names,
/// `?` placeholders, other expressions this crate wrote) and returns an SQL expression; none
/// takes a client's value as text.
pub trait SqlDialect: Send + Sync {
    /// The start of the `grain` bucket that `timestamp` falls in, as a timestamp (weeks start
    /// on Monday).
    fn truncate(&self, grain: TimeGrain, timestamp: &str) -> String;

    /// Whether the regular expression `pattern` (RE2 syntax) matches somewhere in `text`.
    fn matches_regex(&self, text: &str, pattern: &str) -> String;

    /// Whether `needle` occurs in `text`, case-sensitively.
    fn contains_text(&self, text: &str, needle: &str) -> String;

    /// Whether `text` starts with `prefix`.
    fn has_prefix(&self, text: &str, prefix: &str) -> String;

    /// Seconds from the Unix epoch to `timestamp`, as a number.
    fn epoch_seconds(&self, timestamp: &str) -> String;

    /// Milliseconds from the Unix epoch to `timestamp`, as an integer.
    fn epoch_millis(&self, timestamp: &str) -> String;

    /// A 64-bit integer that orders events in time: the milliseconds of `timestamp` times
    /// [`ORDER_KEY_SCALE`] plus a hash of `id` below it, so that events of the same
    /// millisecond still have an order (by the hash of their ids), as an ordering by
    /// `(timestamp, id)` would give them one. Milliseconds back: `key / ORDER_KEY_SCALE`,
    /// rounded down ([`SqlDialect::key_millis`]).
    fn order_key(&self, timestamp: &str, id: &str) -> String;

    /// A 64-bit hash of the text `text`, as an integer: a label that sorts and joins as a
    /// number where the text itself would weigh a sort down.
    fn text_hash(&self, text: &str) -> String;

    /// The milliseconds of an [`SqlDialect::order_key`].
    fn key_millis(&self, key: &str) -> String;

    /// An interval of `seconds` (an integer expression) that can be added to a timestamp.
    fn seconds_interval(&self, seconds: &str) -> String;

    /// The UTC time `utc_ms` (milliseconds since the Unix epoch, whole seconds) as a
    /// timestamp literal.
    fn timestamp_literal(&self, utc_ms: i64) -> String;

    /// Any one value of `expression` in a group, as an aggregate (for a group whose values
    /// are all the same).
    fn arbitrary_value(&self, expression: &str) -> String;

    /// The `fraction` quantile (0 to 1) of `expression` over a group, interpolated between
    /// the two nearest values (SQL's `percentile_cont`), as an aggregate; NULL for a group
    /// without values.
    fn quantile(&self, expression: &str, fraction: f64) -> String;

    /// Whole `grain` periods from `from` to `to`, both the starts of `grain` buckets (as
    /// [`SqlDialect::truncate`] returns them), as an integer: 0 for the same bucket, 1 for
    /// the next, negative before.
    fn periods_between(&self, grain: TimeGrain, from: &str, to: &str) -> String;

    /// As an aggregate, the `value` of the row with the smallest `order` in a group.
    fn first_by(&self, value: &str, order: &str) -> String;

    /// As an aggregate, the `value` of the row with the largest `order` in a group.
    fn last_by(&self, value: &str, order: &str) -> String;

    /// What goes between `name AS` and `(` of a common table expression that a statement
    /// reads more than once, so the engine computes it once (empty where that is the
    /// default).
    fn materialized(&self) -> &'static str;

    /// As an aggregate, the rows of a group for which `condition` holds, counted.
    fn count_if(&self, condition: &str) -> String;

    /// As an aggregate, the non-NULL values of `expression` among the rows of a group for
    /// which `condition` holds, counted.
    fn count_values_if(&self, expression: &str, condition: &str) -> String;

    /// As an aggregate, the sum of `expression` over the rows of a group for which
    /// `condition` holds (NULL or 0 for none: callers read both as 0).
    fn sum_if(&self, expression: &str, condition: &str) -> String;

    /// As an aggregate, the distinct values of `expression` among the rows of a group for
    /// which `condition` holds, counted.
    fn count_distinct_if(&self, expression: &str, condition: &str) -> String;

    /// A condition true for about one `visitor_column` value in `2^bits` (1 to 63), the same
    /// values in every statement: those whose hash has its `bits` highest bits zero, so a
    /// count of distinct values it keeps, times `2^bits`, estimates the count of all.
    /// `None` where the engine's statements count every visitor (ClickHouse: its scans are
    /// fast enough without).
    fn visitor_sample(&self, visitor_column: &str, bits: u32) -> Option<String>;

    /// The boolean constant false.
    fn false_literal(&self) -> &'static str;

    /// The boolean constant true.
    fn true_literal(&self) -> &'static str;

    /// As an aggregate, the largest `expression` of a group, NULL for a group without rows
    /// (where an engine would give its type's default).
    fn max_or_null(&self, expression: &str) -> String;

    /// `text` in lower case (Unicode letters too).
    fn lower(&self, text: &str) -> String;

    /// A text expression (a literal or `?`) typed as text that may be NULL, so the
    /// branches of a `UNION ALL` of it and [`SqlDialect::null_text`] agree on a type.
    fn nullable_text(&self, expression: &str) -> String;

    /// NULL as text.
    fn null_text(&self) -> &'static str;

    /// `expression` converted to the SQL type `to`.
    fn cast(&self, expression: &str, to: SqlType) -> String;

    /// A table (for a `FROM`) of the rows of [`Piece::Rows`] (a table name and its `WHERE`,
    /// as `events WHERE ...`, written by the caller wherever the pieces say), each with
    /// one more column, `alias`: the `value` of the next row of the same `partition` in
    /// `order` (NULL for the last). `key` is a column unique per row (engines without
    /// window functions join the next values back by it).
    fn with_next_value(
        &self,
        partition: &str,
        order: &str,
        value: &str,
        key: &str,
        alias: &str,
    ) -> Vec<Piece>;

    /// An aggregate over all rows of the statement beside each row (a window over
    /// everything) when the engine has window functions: `None` where it has none, so the
    /// caller computes it apart.
    fn total_over_all(&self, aggregate: &str) -> Option<String>;

    /// As an aggregate, the smallest `expression` of a group, NULL for a group without rows
    /// (where an engine would give its type's default).
    fn min_or_null(&self, expression: &str) -> String;

    /// As an aggregate, the `value` of the row with the smallest `order` among the rows of a
    /// group for which `condition` holds; NULL when none does.
    fn first_by_if(&self, value: &str, order: &str, condition: &str) -> String;

    /// As an aggregate, the `value` of the row with the largest `order` among the rows of a
    /// group for which `condition` holds; NULL when none does.
    fn last_by_if(&self, value: &str, order: &str, condition: &str) -> String;

    /// The `IN` of a subquery whose rows may come from any shard of a sharded engine (a
    /// subquery not bound to one visitor, whose events are all on one shard), where a plain
    /// `IN` would read only the shard's own rows.
    fn in_all_shards(&self) -> &'static str;

    /// `column` of `table`, one of the two tables of a join, as the statement names it
    /// (the statement names the columns of both tables apart).
    fn joined_column(&self, table: &str, column: &str) -> String;

    /// What follows `JOIN <right>` to join rows whose `column` (of both tables) is equal.
    fn join_on_equal(&self, left: &str, right: &str, column: &str) -> String;

    /// An integer expression as a 64-bit integer, where the branches of a `UNION ALL` must
    /// agree on its type (unchanged where they need not).
    fn union_int(&self, expression: &str) -> String;

    /// Whether a `LEFT JOIN` gives NULL columns to a row without a match (SQL's rule;
    /// ClickHouse 18.16 gives its types' defaults): where it does, the visit log's current
    /// states are found by a join on the rows taken back, else by a grouping per visit.
    fn left_join_nulls(&self) -> bool;

    /// Whether a statement may name a table in `WITH name AS (SELECT ...)`; where not,
    /// each reference to it is the subquery itself (`compile::With`).
    fn table_ctes(&self) -> bool;

    /// The engine's array functions where it has no window functions: there the statements
    /// that follow each visit or person through its events in order (funnels, paths)
    /// collect each group's events into one sorted array and walk it ([`ArraySql`]). `None`
    /// where window functions do that.
    fn arrays(&self) -> Option<&dyn ArraySql>;

    /// The engine's compact set of small whole numbers, kept by an aggregate
    /// ([`PositionSets`]): retention collects each person's periods into one set as it
    /// groups by person, where a `DISTINCT` of (person, period) and a join would group
    /// twice. `None` where the engine has none (the caller reads another way).
    fn position_sets(&self) -> Option<&dyn PositionSets>;
}

/// Sets of whole numbers from 0 to `positions` - 1 (a few hundred at most), built by an
/// aggregate and read one number at a time. Every method takes and returns SQL expressions.
pub trait PositionSets: Send + Sync {
    /// An aggregate: the set of the values of `position` over the group's rows where
    /// `condition` holds (NULL where none does). Those values must lie in `0..positions`;
    /// below 0 is allowed on the rows `condition` leaves out.
    fn collect(&self, position: &str, positions: u32, condition: &str) -> String;

    /// 1 where `set` (of [`PositionSets::collect`] with the same `positions`) holds
    /// `position` (in `0..positions`), else 0, also for a NULL set.
    fn holds(&self, set: &str, position: &str, positions: u32) -> String;
}

/// Array functions, for an engine without window functions (ClickHouse 18.16): a group's
/// events as one array sorted in time, walked by index. Arrays are 1-based, and reading an
/// item past the end gives its type's default (0, '') rather than failing. Every method
/// takes and returns SQL expressions; a lambda's variables are plain names the caller
/// picks, distinct from the statement's columns.
pub trait ArraySql: Send + Sync {
    /// An `events` row's time in exact milliseconds since the Unix epoch (where
    /// [`SqlDialect::epoch_millis`] of its timestamp may be rounded).
    fn event_millis(&self) -> String;

    /// [`SqlDialect::order_key`] of an `events` row, from its exact milliseconds and its
    /// `event_id`.
    fn event_order_key(&self) -> String;

    /// As an aggregate, the group's rows' `tuple` (`(a, b, ...)`, at least two items) as
    /// one array sorted by the tuples' first item, then their second, ...
    fn sorted_tuples(&self, tuple: &str) -> String;

    /// The `index`th (1-based) item of each tuple of `array`, as an array.
    fn tuple_items(&self, array: &str, index: usize) -> String;

    /// The tuples of `array` for which `condition` holds, `condition` reading the tuple's
    /// items as [`ArraySql::tuple_item`] of `var`.
    fn filter_tuples(&self, array: &str, var: &str, condition: &str) -> String;

    /// The `index`th (1-based) item of the tuple `tuple`.
    fn tuple_item(&self, tuple: &str, index: usize) -> String;

    /// The 1-based indexes of the arrays `arrays` (`(variable, array)` pairs, all of the
    /// same length) at which `condition` holds, in order, `condition` reading the index as
    /// `index` and each array's item there as its variable.
    fn indexes_where(&self, index: &str, arrays: &[(&str, &str)], condition: &str) -> String;

    /// The first of [`ArraySql::indexes_where`], 0 when there is none.
    fn first_index_where(&self, index: &str, arrays: &[(&str, &str)], condition: &str) -> String;

    /// The 1-based indexes of `array`: `[1, 2, ..., length]`.
    fn indexes(&self, array: &str) -> String;

    /// The items of `array` from the 1-based index `offset` on, `length` of them (all the
    /// rest without one).
    fn slice(&self, array: &str, offset: &str, length: Option<&str>) -> String;

    /// The items of `array` in reverse order.
    fn reversed(&self, array: &str) -> String;

    /// The items of `array` but each whose item in `keys` (an array of the same length) is
    /// the same as the one before it: the first of each run of equal keys.
    fn without_repeats(&self, array: &str, keys: &str) -> String;

    /// The non-NULL items of `array`, in ascending order.
    fn sorted_values(&self, array: &str) -> String;

    /// The number of items of `array`.
    fn length(&self, array: &str) -> String;

    /// What follows a `FROM` to turn each row into one row per item of `array`, the item
    /// named `alias` (a row of an empty array goes away).
    fn array_join(&self, array: &str, alias: &str) -> String;

    /// `condition` as 1 or 0 (NULL as 0), an item an array can hold.
    fn flag(&self, condition: &str) -> String;
}

/// The SQL types [`SqlDialect::cast`] converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// Text (NULL stays NULL).
    Text,
    /// A 64-bit signed integer.
    BigInt,
    /// A 64-bit float (NULL stays NULL).
    Double,
    /// A timestamp (UTC, no time zone).
    Timestamp,
    /// A calendar date.
    Date,
}

/// A part of the SQL a dialect writes around rows that the caller writes (with their bound
/// parameters), maybe more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Sql(String),
    /// The caller's rows: a table and its condition (`events WHERE ...`).
    Rows,
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// SQL that only DuckDB writes this way (as this crate writes SQL: function names in
    /// lower case, key words in upper case). None may appear outside `duckdb.rs`.
    const DUCKDB_ONLY: &[&str] = &[
        "date_trunc(",
        "bit_or(",
        "bitstring_agg(",
        "get_bit(",
        "regexp_matches(",
        "regexp_full_match(",
        "contains(",
        "starts_with(",
        "epoch(",
        "epoch_ms(",
        "epoch_us(",
        "to_seconds(",
        "to_timestamp(",
        "make_timestamp(",
        "strftime(",
        "time_bucket(",
        "any_value(",
        "quantile_cont(",
        "arg_min(",
        "arg_max(",
        "date_diff(",
        "hash(",
        "TIMESTAMP '",
    ];

    /// Where `text` (Rust source) writes one of [`DUCKDB_ONLY`], outside comments and the
    /// tests at the bottom of the file (which may spell out the SQL they expect). A name
    /// right after `.`, `:` or a word character is Rust (`names.contains(`), not SQL.
    fn duckdb_only_sql(text: &str) -> Vec<String> {
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut found = Vec::new();
        for (number, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            for name in DUCKDB_ONLY {
                for (at, _) in line.match_indices(name) {
                    let before = line[..at].chars().next_back();
                    let rust = before
                        .is_some_and(|c| c == '.' || c == ':' || c == '_' || c.is_alphanumeric());
                    if !rust {
                        found.push(format!("line {}: {name}", number + 1));
                    }
                }
            }
        }
        found
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("the crate's sources are readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn duckdb_sql_stays_in_its_dialect_file() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let own_file = src.join("dialect").join("duckdb.rs");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        assert!(files.len() > 5, "{files:?}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let found = duckdb_only_sql(&text);
            if file == own_file {
                // The check can fail: it sees DuckDB's own file.
                assert!(
                    found.iter().any(|f| f.ends_with("date_trunc(")),
                    "{found:?}"
                );
            } else {
                assert!(found.is_empty(), "{}: {found:?}", file.display());
            }
        }
    }

    #[test]
    fn rust_method_calls_are_not_sql() {
        assert!(duckdb_only_sql("if names.contains(&x) { Filter::Contains(d, v) }").is_empty());
        assert_eq!(
            duckdb_only_sql("let sql = \"sum(epoch(a))\"; // epoch(b)\n#[cfg(test)]\nepoch(c)"),
            ["line 1: epoch("]
        );
    }
}

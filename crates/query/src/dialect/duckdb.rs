//! DuckDB's spelling of the SQL that differs between engines: the one file of this crate
//! that may name DuckDB's own functions.

use chrono::{TimeZone, Utc};

use super::{Piece, PositionSets, SqlDialect, SqlType, ORDER_KEY_SCALE};
use crate::model::TimeGrain;

/// DuckDB's SQL.
pub struct DuckDbDialect;

impl SqlDialect for DuckDbDialect {
    fn truncate(&self, grain: TimeGrain, timestamp: &str) -> String {
        let unit = match grain {
            TimeGrain::Hour => "hour",
            TimeGrain::Day => "day",
            // ISO weeks: Monday to Sunday.
            TimeGrain::Week => "week",
            TimeGrain::Month => "month",
        };
        format!("date_trunc('{unit}', {timestamp})")
    }

    fn matches_regex(&self, text: &str, pattern: &str) -> String {
        format!("regexp_matches({text}, {pattern})")
    }

    fn contains_text(&self, text: &str, needle: &str) -> String {
        format!("contains({text}, {needle})")
    }

    fn has_prefix(&self, text: &str, prefix: &str) -> String {
        format!("starts_with({text}, {prefix})")
    }

    fn epoch_seconds(&self, timestamp: &str) -> String {
        format!("epoch({timestamp})")
    }

    fn epoch_millis(&self, timestamp: &str) -> String {
        format!("epoch_ms({timestamp})")
    }

    fn order_key(&self, timestamp: &str, id: &str) -> String {
        format!(
            "(epoch_ms({timestamp}) * {ORDER_KEY_SCALE} + CAST(hash({id}) % {ORDER_KEY_SCALE} AS BIGINT))"
        )
    }

    fn text_hash(&self, text: &str) -> String {
        format!("hash({text})")
    }

    fn key_millis(&self, key: &str) -> String {
        format!("({key} // {ORDER_KEY_SCALE})")
    }

    fn seconds_interval(&self, seconds: &str) -> String {
        format!("to_seconds({seconds})")
    }

    fn timestamp_literal(&self, utc_ms: i64) -> String {
        let at = Utc
            .timestamp_millis_opt(utc_ms)
            .single()
            .unwrap_or_default()
            .naive_utc();
        format!("TIMESTAMP '{}'", at.format("%Y-%m-%d %H:%M:%S"))
    }

    fn arbitrary_value(&self, expression: &str) -> String {
        format!("any_value({expression})")
    }

    fn quantile(&self, expression: &str, fraction: f64) -> String {
        format!("quantile_cont({expression}, {fraction})")
    }

    fn periods_between(&self, grain: TimeGrain, from: &str, to: &str) -> String {
        match grain {
            TimeGrain::Hour => format!("date_diff('hour', {from}, {to})"),
            TimeGrain::Day => format!("date_diff('day', {from}, {to})"),
            // Both are Mondays: whole weeks of days.
            TimeGrain::Week => format!("(date_diff('day', {from}, {to}) // 7)"),
            TimeGrain::Month => format!("date_diff('month', {from}, {to})"),
        }
    }

    fn first_by(&self, value: &str, order: &str) -> String {
        format!("arg_min({value}, {order})")
    }

    fn last_by(&self, value: &str, order: &str) -> String {
        format!("arg_max({value}, {order})")
    }

    fn materialized(&self) -> &'static str {
        "MATERIALIZED"
    }

    fn count_if(&self, condition: &str) -> String {
        format!("count(*) FILTER (WHERE {condition})")
    }

    fn count_values_if(&self, expression: &str, condition: &str) -> String {
        format!("count({expression}) FILTER (WHERE {condition})")
    }

    fn sum_if(&self, expression: &str, condition: &str) -> String {
        format!("sum({expression}) FILTER (WHERE {condition})")
    }

    fn count_distinct_if(&self, expression: &str, condition: &str) -> String {
        format!("count(DISTINCT {expression}) FILTER (WHERE {condition})")
    }

    fn visitor_sample(&self, visitor_column: &str, bits: u32) -> Option<String> {
        // Visitor ids are hashes already, but an import may give any number: hashed again.
        // A comparison, not a shift: DuckDB filters the scan by it twice as fast.
        let below = 1u64 << (64 - bits.clamp(1, 63));
        Some(format!("hash({visitor_column}) < {below}::UBIGINT"))
    }

    fn false_literal(&self) -> &'static str {
        "FALSE"
    }

    fn true_literal(&self) -> &'static str {
        "TRUE"
    }

    fn max_or_null(&self, expression: &str) -> String {
        format!("max({expression})")
    }

    fn lower(&self, text: &str) -> String {
        format!("lower({text})")
    }

    fn nullable_text(&self, expression: &str) -> String {
        expression.to_owned()
    }

    fn null_text(&self) -> &'static str {
        "NULL"
    }

    fn cast(&self, expression: &str, to: SqlType) -> String {
        let ty = match to {
            SqlType::Text => "VARCHAR",
            SqlType::BigInt => "BIGINT",
            SqlType::Double => "DOUBLE",
            SqlType::Timestamp => "TIMESTAMP",
            SqlType::Date => "DATE",
        };
        format!("CAST({expression} AS {ty})")
    }

    fn with_next_value(
        &self,
        partition: &str,
        order: &str,
        value: &str,
        _key: &str,
        alias: &str,
    ) -> Vec<Piece> {
        vec![
            Piece::Sql(format!(
                "(SELECT *, lead({value}) OVER (PARTITION BY {partition} ORDER BY {order}) AS {alias} FROM "
            )),
            Piece::Rows,
            Piece::Sql(")".into()),
        ]
    }

    fn total_over_all(&self, aggregate: &str) -> Option<String> {
        Some(format!("{aggregate} OVER ()"))
    }

    fn min_or_null(&self, expression: &str) -> String {
        format!("min({expression})")
    }

    fn first_by_if(&self, value: &str, order: &str, condition: &str) -> String {
        format!("arg_min({value}, {order}) FILTER (WHERE {condition})")
    }

    fn last_by_if(&self, value: &str, order: &str, condition: &str) -> String {
        format!("arg_max({value}, {order}) FILTER (WHERE {condition})")
    }

    fn in_all_shards(&self) -> &'static str {
        "IN"
    }

    fn joined_column(&self, table: &str, column: &str) -> String {
        format!("{table}.{column}")
    }

    fn join_on_equal(&self, left: &str, right: &str, column: &str) -> String {
        format!("ON {right}.{column} = {left}.{column}")
    }

    fn union_int(&self, expression: &str) -> String {
        expression.to_owned()
    }

    fn left_join_nulls(&self) -> bool {
        true
    }

    fn table_ctes(&self) -> bool {
        true
    }

    fn arrays(&self) -> Option<&dyn super::ArraySql> {
        None
    }

    fn position_sets(&self) -> Option<&dyn PositionSets> {
        Some(self)
    }
}

/// Up to 64 positions a `UBIGINT` of bits (`bit_or` is as fast as `min`), more a `BIT`
/// string (`bitstring_agg`, about twice as slow at 10 M rows).
impl PositionSets for DuckDbDialect {
    fn collect(&self, position: &str, positions: u32, condition: &str) -> String {
        if positions <= 64 {
            // The shift's amount cast: an unsigned shift by a BIGINT costs half as much again.
            // `greatest`: the argument is computed for the rows the filter leaves out too.
            format!(
                "bit_or(CAST(1 AS UBIGINT) << CAST(greatest({position}, 0) AS UBIGINT)) \
                 FILTER (WHERE {condition})"
            )
        } else {
            format!(
                "bitstring_agg(CAST(greatest({position}, 0) AS BIGINT), 0, {}) \
                 FILTER (WHERE {condition})",
                positions - 1
            )
        }
    }

    fn holds(&self, set: &str, position: &str, positions: u32) -> String {
        if positions <= 64 {
            format!("coalesce(CAST(({set} >> CAST({position} AS UBIGINT)) & 1 AS BIGINT), 0)")
        } else {
            format!("coalesce(CAST(get_bit({set}, CAST({position} AS INTEGER)) AS BIGINT), 0)")
        }
    }
}

//! ClickHouse's spelling of the SQL that differs between engines, as ClickHouse 18.16 (the
//! oldest release Heartbeat runs on, Debian's package) understands it: the one file of this
//! crate that may name ClickHouse's own functions.
//!
//! What 18.16 lacks shapes some answers here (each checked against a real server by the
//! tests of `heartbeat-store-clickhouse`):
//! - no `DateTime64`: timestamps are whole seconds, so [`SqlDialect::epoch_millis`] and
//!   [`SqlDialect::order_key`] are exact to the second only (events of the same second are
//!   ordered by the hash of their ids); the store keeps exact milliseconds in its own columns,
//!   which funnels and paths read ([`ArraySql::event_millis`], `ts_ms`).
//! - no `toStartOfInterval`: each grain has its own function (`toStartOfHour`, `toMonday`...).
//! - no common table expressions that name a table: [`SqlDialect::table_ctes`] is false, so
//!   `compile::With` writes each reference as the subquery itself (its parameters bound
//!   again), and [`SqlDialect::materialized`] is empty.
//! - no window functions: [`SqlDialect::with_next_value`] pairs each row with the next one
//!   of its partition through a sorted array joined back by a key, and
//!   [`SqlDialect::total_over_all`] is `None` (the caller counts in a scalar subquery).
//!   Funnels and paths, which follow each visit or person through its events in order, have
//!   statements of their own here (`compile/funnel/arrays.rs`, `compile/paths/arrays.rs`,
//!   chosen by [`SqlDialect::arrays`]): each group's events as one sorted array of tuples
//!   (`groupArray`, `arraySort`), walked by index with lambdas over several arrays (never
//!   capturing an array, which 18.16 would copy once per item), one row per attempt or step
//!   by `ARRAY JOIN`, ranks by sorted arrays too.
//! - no `FILTER (WHERE ...)`: conditional aggregates are the `-If` combinators; aggregates
//!   of no rows are their type's default, not NULL ([`SqlDialect::min_or_null`],
//!   [`SqlDialect::first_by_if`] say NULL themselves).
//! - no `TRUE`/`FALSE` literals, no table-qualified column names in a join
//!   ([`SqlDialect::joined_column`], `USING` in [`SqlDialect::join_on_equal`]), and
//!   `UNION ALL` branches must agree on integer sizes ([`SqlDialect::union_int`]).
//! - subqueries of `IN` over `Distributed` tables read each shard's own rows (the store's
//!   `distributed_product_mode = 'local'`, right per visitor); [`SqlDialect::in_all_shards`]
//!   is `GLOBAL IN` for a subquery over several visitors.
//! - `quantile` interpolates exactly over up to 8,192 values and samples above that: the
//!   dialect sorts the group's values and interpolates itself ([`SqlDialect::quantile`]).

use chrono::{TimeZone, Utc};

use super::{ArraySql, Piece, SqlDialect, SqlType, ORDER_KEY_SCALE};
use crate::model::TimeGrain;

/// ClickHouse's SQL (18.16 and later).
pub struct ClickHouseDialect;

impl SqlDialect for ClickHouseDialect {
    fn truncate(&self, grain: TimeGrain, timestamp: &str) -> String {
        match grain {
            TimeGrain::Hour => format!("toStartOfHour({timestamp})"),
            TimeGrain::Day => format!("toStartOfDay({timestamp})"),
            // `toMonday` and `toStartOfMonth` give a Date; buckets are timestamps.
            TimeGrain::Week => format!("toDateTime(toMonday({timestamp}))"),
            TimeGrain::Month => format!("toDateTime(toStartOfMonth({timestamp}))"),
        }
    }

    fn matches_regex(&self, text: &str, pattern: &str) -> String {
        // `match` is RE2, as the patterns are checked for.
        format!("match({text}, {pattern})")
    }

    fn contains_text(&self, text: &str, needle: &str) -> String {
        format!("(position({text}, {needle}) > 0)")
    }

    fn has_prefix(&self, text: &str, prefix: &str) -> String {
        format!("startsWith({text}, {prefix})")
    }

    fn epoch_seconds(&self, timestamp: &str) -> String {
        format!("toInt64(toUnixTimestamp({timestamp}))")
    }

    fn epoch_millis(&self, timestamp: &str) -> String {
        // Whole seconds only: 18.16 has no DateTime64.
        format!("(toInt64(toUnixTimestamp({timestamp})) * 1000)")
    }

    fn text_hash(&self, text: &str) -> String {
        format!("sipHash64({text})")
    }

    fn order_key(&self, timestamp: &str, id: &str) -> String {
        format!(
            "(toInt64(toUnixTimestamp({timestamp})) * {} + toInt64(sipHash64({id}) % {ORDER_KEY_SCALE}))",
            1000 * ORDER_KEY_SCALE
        )
    }

    fn key_millis(&self, key: &str) -> String {
        format!("intDiv({key}, {ORDER_KEY_SCALE})")
    }

    fn seconds_interval(&self, seconds: &str) -> String {
        format!("toIntervalSecond({seconds})")
    }

    fn timestamp_literal(&self, utc_ms: i64) -> String {
        let at = Utc
            .timestamp_millis_opt(utc_ms)
            .single()
            .unwrap_or_default()
            .naive_utc();
        format!("toDateTime('{}', 'UTC')", at.format("%Y-%m-%d %H:%M:%S"))
    }

    fn arbitrary_value(&self, expression: &str) -> String {
        format!("any({expression})")
    }

    fn quantile(&self, expression: &str, fraction: f64) -> String {
        // Exact, as DuckDB's `quantile_cont` (ClickHouse's `quantile` samples past 8,192
        // values): the group's values sorted (`groupArray` skips NULLs), interpolated at
        // `fraction * (n - 1)`; NULL for a group without values. The sorted array is one
        // expression, computed once however often it is named.
        let sorted = format!("arraySort(groupArray(toFloat64({expression})))");
        let at = format!("({fraction} * (length({sorted}) - 1))");
        let low = format!("toUInt64(floor({at}))");
        format!(
            "if(length({sorted}) = 0, NULL, toNullable(arrayElement({sorted}, {low} + 1) + \
             ({at} - {low}) * (arrayElement({sorted}, greatest(1, least({low} + 2, length({sorted})))) - \
             arrayElement({sorted}, {low} + 1))))"
        )
    }

    fn periods_between(&self, grain: TimeGrain, from: &str, to: &str) -> String {
        match grain {
            TimeGrain::Hour => format!("dateDiff('hour', {from}, {to})"),
            TimeGrain::Day => format!("dateDiff('day', {from}, {to})"),
            // Both are Mondays: whole weeks of days.
            TimeGrain::Week => format!("intDiv(dateDiff('day', {from}, {to}), 7)"),
            TimeGrain::Month => format!("dateDiff('month', {from}, {to})"),
        }
    }

    fn first_by(&self, value: &str, order: &str) -> String {
        format!("argMin({value}, {order})")
    }

    fn last_by(&self, value: &str, order: &str) -> String {
        format!("argMax({value}, {order})")
    }

    fn materialized(&self) -> &'static str {
        ""
    }

    fn count_if(&self, condition: &str) -> String {
        format!("countIf(ifNull({condition}, 0))")
    }

    fn count_values_if(&self, expression: &str, condition: &str) -> String {
        format!("countIf(({expression}) IS NOT NULL AND ifNull({condition}, 0))")
    }

    fn sum_if(&self, expression: &str, condition: &str) -> String {
        format!("sumIf({expression}, ifNull({condition}, 0))")
    }

    fn count_distinct_if(&self, expression: &str, condition: &str) -> String {
        format!("uniqExactIf({expression}, ifNull({condition}, 0))")
    }

    fn visitor_sample(&self, _visitor_column: &str, _bits: u32) -> Option<String> {
        None
    }

    fn false_literal(&self) -> &'static str {
        "0"
    }

    fn true_literal(&self) -> &'static str {
        "1"
    }

    fn max_or_null(&self, expression: &str) -> String {
        // `max` of no rows is the type's default (1970-01-01 for a date).
        format!("if(count() > 0, toNullable(max({expression})), NULL)")
    }

    fn lower(&self, text: &str) -> String {
        format!("lowerUTF8({text})")
    }

    fn nullable_text(&self, expression: &str) -> String {
        format!("toNullable(toString({expression}))")
    }

    fn null_text(&self) -> &'static str {
        "CAST(NULL AS Nullable(String))"
    }

    fn cast(&self, expression: &str, to: SqlType) -> String {
        match to {
            // `toString` of NULL is NULL; of a number, its digits.
            SqlType::Text => format!("toString({expression})"),
            SqlType::BigInt => format!("toInt64({expression})"),
            SqlType::Double => format!("toFloat64({expression})"),
            SqlType::Timestamp => format!("toDateTime({expression}, 'UTC')"),
            SqlType::Date => format!("toDate({expression})"),
        }
    }

    fn with_next_value(
        &self,
        partition: &str,
        order: &str,
        value: &str,
        key: &str,
        alias: &str,
    ) -> Vec<Piece> {
        // No window functions: each partition's rows as one sorted array, whose items are
        // paired with the next item's value and joined back to the rows by `key`.
        vec![
            Piece::Sql("(SELECT * FROM (SELECT * FROM ".into()),
            Piece::Rows,
            Piece::Sql(format!(
                ") ALL INNER JOIN (SELECT tupleElement(pair, 1) AS {key}, tupleElement(pair, 2) AS {alias} \
                 FROM (SELECT arraySort(x -> tupleElement(x, 2), groupArray(({key}, {order}, {value}))) AS sorted FROM "
            )),
            Piece::Rows,
            Piece::Sql(format!(
                " GROUP BY {partition}) ARRAY JOIN arrayMap(i -> (tupleElement(sorted[i], 1), \
                 if(i < length(sorted), toNullable(tupleElement(sorted[i + 1], 3)), NULL)), \
                 arrayEnumerate(sorted)) AS pair) USING {key})"
            )),
        ]
    }

    fn total_over_all(&self, _aggregate: &str) -> Option<String> {
        None
    }

    fn min_or_null(&self, expression: &str) -> String {
        // `min` of no rows is the type's default (1970-01-01 for a time).
        format!("if(count() > 0, toNullable(min({expression})), NULL)")
    }

    fn first_by_if(&self, value: &str, order: &str, condition: &str) -> String {
        format!("if(countIf({condition}) > 0, toNullable(argMinIf({value}, {order}, {condition})), NULL)")
    }

    fn last_by_if(&self, value: &str, order: &str, condition: &str) -> String {
        format!("if(countIf({condition}) > 0, toNullable(argMaxIf({value}, {order}, {condition})), NULL)")
    }

    fn in_all_shards(&self) -> &'static str {
        // The store reads a plain `IN`'s subquery on each shard from the shard's own rows
        // (`distributed_product_mode = 'local'`); `GLOBAL IN` runs it once over all shards.
        "GLOBAL IN"
    }

    fn joined_column(&self, _table: &str, column: &str) -> String {
        // 18.16 knows no table-qualified names of a join's columns; the statement names
        // the two sides' columns apart, so the plain name is the one column.
        column.to_owned()
    }

    fn join_on_equal(&self, _left: &str, _right: &str, column: &str) -> String {
        format!("USING {column}")
    }

    fn union_int(&self, expression: &str) -> String {
        format!("toInt64({expression})")
    }

    fn left_join_nulls(&self) -> bool {
        false
    }

    fn table_ctes(&self) -> bool {
        false
    }

    fn arrays(&self) -> Option<&dyn ArraySql> {
        Some(self)
    }

    /// Without table CTEs a statement that reads its per-cohort table once per period would
    /// group by person once per period: retention reads two scans joined instead.
    fn position_sets(&self) -> Option<&dyn super::PositionSets> {
        None
    }
}

/// A lambda of `variables` (one or several): `x -> ...` or `(x, y) -> ...`.
fn lambda(variables: &[&str], body: &str) -> String {
    match variables {
        [one] => format!("{one} -> {body}"),
        many => format!("({}) -> {body}", many.join(", ")),
    }
}

impl ArraySql for ClickHouseDialect {
    fn event_millis(&self) -> String {
        // The store's exact milliseconds beside `ts` (whole seconds).
        "ts_ms".to_owned()
    }

    fn event_order_key(&self) -> String {
        format!("(ts_ms * {ORDER_KEY_SCALE} + toInt64(sipHash64(event_id) % {ORDER_KEY_SCALE}))")
    }

    fn sorted_tuples(&self, tuple: &str) -> String {
        format!("arraySort(groupArray({tuple}))")
    }

    fn tuple_items(&self, array: &str, index: usize) -> String {
        format!("arrayMap(item -> tupleElement(item, {index}), {array})")
    }

    fn filter_tuples(&self, array: &str, var: &str, condition: &str) -> String {
        format!("arrayFilter({}, {array})", lambda(&[var], condition))
    }

    fn tuple_item(&self, tuple: &str, index: usize) -> String {
        format!("tupleElement({tuple}, {index})")
    }

    fn indexes_where(&self, index: &str, arrays: &[(&str, &str)], condition: &str) -> String {
        // The arrays are the lambda's own arguments, not captured: a captured array would
        // be copied once per item.
        let (variables, args) = lambda_over_indexes(index, arrays);
        format!(
            "arrayFilter({}, {})",
            lambda(&variables, condition),
            args.join(", ")
        )
    }

    fn first_index_where(&self, index: &str, arrays: &[(&str, &str)], condition: &str) -> String {
        let (variables, args) = lambda_over_indexes(index, arrays);
        format!(
            "arrayFirstIndex({}, {})",
            lambda(&variables, condition),
            args.join(", ")
        )
    }

    fn indexes(&self, array: &str) -> String {
        format!("arrayEnumerate({array})")
    }

    fn slice(&self, array: &str, offset: &str, length: Option<&str>) -> String {
        match length {
            Some(length) => format!("arraySlice({array}, {offset}, {length})"),
            None => format!("arraySlice({array}, {offset})"),
        }
    }

    fn reversed(&self, array: &str) -> String {
        format!("arrayReverse({array})")
    }

    fn without_repeats(&self, array: &str, keys: &str) -> String {
        // Each key beside the one before it (the first beside itself, and kept by its
        // index): no lambda captures an array, which would copy it once per item.
        format!(
            "arrayFilter((item, key, previous, index) -> index = 1 OR key != previous, {array}, \
             {keys}, arrayPushFront(arrayPopBack({keys}), {keys}[1]), arrayEnumerate({keys}))"
        )
    }

    fn sorted_values(&self, array: &str) -> String {
        format!("arraySort(arrayFilter(item -> item IS NOT NULL, {array}))")
    }

    fn length(&self, array: &str) -> String {
        format!("length({array})")
    }

    fn array_join(&self, array: &str, alias: &str) -> String {
        format!("ARRAY JOIN {array} AS {alias}")
    }

    fn flag(&self, condition: &str) -> String {
        format!("toUInt8(ifNull({condition}, 0))")
    }
}

/// The variables and arguments of a lambda over the indexes of `arrays` and their items:
/// `(index, a, b)` over `arrayEnumerate(first), first, second`.
fn lambda_over_indexes<'a>(
    index: &'a str,
    arrays: &[(&'a str, &str)],
) -> (Vec<&'a str>, Vec<String>) {
    let mut variables = vec![index];
    let mut args = vec![ClickHouseDialect.indexes(arrays[0].1)];
    for (variable, array) in arrays {
        variables.push(variable);
        args.push((*array).to_owned());
    }
    (variables, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spells_clickhouse_functions() {
        let d = ClickHouseDialect;
        assert_eq!(
            d.truncate(TimeGrain::Week, "ts"),
            "toDateTime(toMonday(ts))"
        );
        assert_eq!(
            d.timestamp_literal(1_704_067_200_000),
            "toDateTime('2024-01-01 00:00:00', 'UTC')"
        );
        assert_eq!(d.key_millis("k"), "intDiv(k, 1048576)");
        assert_eq!(d.contains_text("a", "?"), "(position(a, ?) > 0)");
    }
}

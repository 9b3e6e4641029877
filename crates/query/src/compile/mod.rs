//! SQL builders, one module per kind of query, each writing the statements its plan
//! (`plan.rs`) asks for in the runner's dialect: `aggregate.rs` for metrics by dimensions
//! (Plausible's v2 query, every dashboard panel), `imported.rs` for the imported daily
//! aggregates an answer adds when asked (`include.imports`), `goal.rs` for the events that
//! complete goals (`event:goal` filters and breakdowns). Product analytics go beside it as
//! siblings with their own plan: `funnel.rs` (conversion through ordered steps),
//! `retention.rs` (cohorts returning over time) and `paths.rs` (the pages visits move
//! through), sharing [`Builder`] and the dialect.

pub mod aggregate;
pub mod funnel;
pub mod goal;
pub mod imported;
pub mod paths;
pub mod retention;

use crate::dialect::SqlDialect;
use crate::sql::{Sql, SqlValue};

/// The anchored regular expression (RE2 syntax) of a path glob: `*` is any run of
/// characters but `/`, `**` any run at all, everything else itself.
pub fn glob_regex(pattern: &str) -> String {
    let mut out = String::from("^");
    let mut literal = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '*' {
            literal.push(c);
            continue;
        }
        out.push_str(&regex::escape(&literal));
        literal.clear();
        if chars.peek() == Some(&'*') {
            chars.next();
            out.push_str(".*");
        } else {
            out.push_str("[^/]*");
        }
    }
    out.push_str(&regex::escape(&literal));
    out.push('$');
    out
}

/// How a path glob is tested, the cheapest way its pattern allows.
#[derive(Debug, PartialEq)]
enum GlobTest {
    /// No `*`: one page.
    Equal(String),
    /// The only `*`s are one trailing `**` (`/docs/**`): at 10 M events DuckDB's regular
    /// expression took 255 ms where the prefix takes 42.
    Prefix(String),
    /// Anything else: [`glob_regex`].
    Regex(String),
}

fn glob_test(pattern: &str) -> GlobTest {
    match pattern.strip_suffix("**") {
        _ if !pattern.contains('*') => GlobTest::Equal(pattern.to_owned()),
        Some(prefix) if !prefix.contains('*') => GlobTest::Prefix(prefix.to_owned()),
        _ => GlobTest::Regex(glob_regex(pattern)),
    }
}

/// `column` matching the path glob `pattern` (as [`glob_regex`] reads it), written as
/// cheaply as the pattern allows ([`GlobTest`]).
pub(crate) fn glob_sql(b: &mut Builder, column: &str, pattern: &str) {
    match glob_test(pattern) {
        GlobTest::Equal(page) => {
            b.push(&format!("{column} = "));
            b.bind(SqlValue::Text(page));
        }
        GlobTest::Prefix(prefix) => {
            let test = b.dialect().has_prefix(column, "?");
            b.bind_within(&test, SqlValue::Text(prefix));
        }
        GlobTest::Regex(regex) => {
            let test = b.dialect().matches_regex(column, "?");
            b.bind_within(&test, SqlValue::Text(regex));
        }
    }
}

/// A statement being written in one dialect.
pub(crate) struct Builder<'d> {
    text: String,
    params: Vec<SqlValue>,
    dialect: &'d dyn SqlDialect,
}

/// Named subqueries of one statement: common table expressions where the dialect names
/// tables in `WITH` ([`SqlDialect::table_ctes`]), else each reference is the subquery
/// itself, written again with its parameters.
pub(crate) struct With<'d> {
    tables: Vec<(&'static str, Builder<'d>, bool)>,
    named: bool,
}

impl<'d> With<'d> {
    pub(crate) fn new(dialect: &'d dyn SqlDialect) -> Self {
        With {
            tables: Vec::new(),
            named: dialect.table_ctes(),
        }
    }

    /// Names `body` (a `SELECT`); `materialized` when the statement reads it more than once
    /// ([`SqlDialect::materialized`]).
    pub(crate) fn define(&mut self, name: &'static str, body: Builder<'d>, materialized: bool) {
        self.tables.push((name, body, materialized));
    }

    /// The statement's `WITH ... ` (nothing where tables are not named).
    pub(crate) fn start(&self, b: &mut Builder) {
        if !self.named {
            return;
        }
        for (i, (name, body, materialized)) in self.tables.iter().enumerate() {
            b.push(if i == 0 { "WITH " } else { ", " });
            b.push(name).push(" AS ");
            if *materialized {
                let word = b.dialect().materialized();
                if !word.is_empty() {
                    b.push(word).push(" ");
                }
            }
            b.push("(");
            b.append_copy(body);
            b.push(")");
        }
        b.push(" ");
    }

    /// A reference to table `name` in a `FROM` or `JOIN`.
    pub(crate) fn table(&self, b: &mut Builder, name: &str) {
        if self.named {
            b.push(name);
            return;
        }
        let (_, body, _) = self
            .tables
            .iter()
            .find(|(n, _, _)| *n == name)
            .expect("a table defined before it is read");
        b.push("(");
        b.append_copy(body);
        b.push(") AS ").push(name);
    }
}

/// Writes `filter`'s `and`, `or` and `not` as SQL, and each other part (a condition, a
/// behavioural filter) with `leaf`.
pub(crate) fn boolean_sql(
    b: &mut Builder,
    filter: &crate::model::Filter,
    leaf: &mut dyn FnMut(&mut Builder, &crate::model::Filter),
) {
    use crate::model::Filter;
    match filter {
        Filter::And(all) | Filter::Or(all) => {
            let joiner = if matches!(filter, Filter::And(_)) {
                " AND "
            } else {
                " OR "
            };
            b.push("(");
            for (i, inner) in all.iter().enumerate() {
                if i > 0 {
                    b.push(joiner);
                }
                boolean_sql(b, inner, leaf);
            }
            b.push(")");
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            boolean_sql(b, inner, leaf);
            b.push(")");
        }
        other => leaf(b, other),
    }
}

impl<'d> Builder<'d> {
    pub(crate) fn new(dialect: &'d dyn SqlDialect) -> Self {
        Builder {
            text: String::new(),
            params: Vec::new(),
            dialect,
        }
    }

    /// The dialect the statement is written in.
    pub(crate) fn dialect(&self) -> &'d dyn SqlDialect {
        self.dialect
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub(crate) fn bind(&mut self, value: SqlValue) -> &mut Self {
        self.text.push('?');
        self.params.push(value);
        self
    }

    /// Appends `expression`, whose one `?` stands for `value` (a dialect's function of a
    /// bound parameter).
    pub(crate) fn bind_within(&mut self, expression: &str, value: SqlValue) -> &mut Self {
        debug_assert_eq!(expression.matches('?').count(), 1, "{expression}");
        self.text.push_str(expression);
        self.params.push(value);
        self
    }

    /// Appends another builder's text and parameters.
    pub(crate) fn append(&mut self, other: Builder) {
        self.text.push_str(&other.text);
        self.params.extend(other.params);
    }

    /// Appends another builder's expression wrapped by `wrap` (a dialect's function of an
    /// expression, which writes its argument once), with its parameters.
    pub(crate) fn append_wrapped(&mut self, inner: Builder, wrap: impl FnOnce(&str) -> String) {
        self.text.push_str(&wrap(&inner.text));
        self.params.extend(inner.params);
    }

    /// Appends a copy of another builder's text and parameters.
    pub(crate) fn append_copy(&mut self, other: &Builder) {
        self.text.push_str(&other.text);
        self.params.extend(other.params.iter().cloned());
    }

    /// Whether `other` wrote the same text with the same parameters.
    pub(crate) fn same_as(&self, other: &Builder) -> bool {
        self.text == other.text && self.params == other.params
    }

    pub(crate) fn finish(self) -> Sql {
        Sql {
            text: self.text,
            params: self.params,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::aggregate::{statements, Statements};
    use crate::dialect::Dialect;
    use crate::plan::{plan, Source};
    use crate::plausible::parse_query;

    use serde_json::json;

    /// The query of v2 request `body` on a UTC site.
    pub(crate) fn query_of(body: serde_json::Value) -> crate::model::Query {
        let site = crate::test_site("UTC");
        parse_query(&body, &site, &[], 1_700_000_000_000, 0, &Default::default()).unwrap()
    }

    /// The statements the engine runs for v2 request `body` on a UTC site without rollups.
    pub(super) fn statements_of(body: serde_json::Value) -> Statements {
        let query = query_of(body);
        let Source::Tables(reads) = plan(&query, false).source else {
            unreachable!("without rollups, the tables answer");
        };
        statements(&query, &reads, Dialect::DuckDb.sql())
    }

    /// The SQL of every dashboard query, snapshot-tested (`src/snapshots/`): a change to
    /// the generated SQL shows up in review as a diff. Update with `INSTA_UPDATE=always`.
    /// The snapshots stay in `src/snapshots/`, where they were written before this
    /// directory existed.
    #[test]
    fn dashboard_sql_snapshots() {
        let range = json!(["2024-01-01", "2024-01-31"]);
        let top = json!([
            "visitors",
            "visits",
            "pageviews",
            "views_per_visit",
            "bounce_rate",
            "visit_duration"
        ]);
        let cases = [
            ("top_stats", json!({"metrics": top, "date_range": range})),
            (
                "top_stats_filtered",
                // Without views per visit, which a page filter does not allow.
                json!({"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"], "date_range": range, "filters": [["is", "visit:source", ["Google"]], ["contains", "event:page", ["/blog"]]]}),
            ),
            (
                "timeseries_day",
                json!({"metrics": ["visitors", "pageviews"], "date_range": range, "dimensions": ["time:day"]}),
            ),
            (
                "pages",
                json!({"metrics": ["visitors", "pageviews", "bounce_rate", "time_on_page"], "date_range": range, "dimensions": ["event:page"]}),
            ),
            (
                "entry_pages",
                json!({"metrics": ["visitors", "visits", "bounce_rate"], "date_range": range, "dimensions": ["visit:entry_page"]}),
            ),
            (
                "channels",
                json!({"metrics": ["visitors", "bounce_rate"], "date_range": range, "dimensions": ["visit:channel"]}),
            ),
            (
                "countries",
                json!({"metrics": ["visitors", "percentage"], "date_range": range, "dimensions": ["visit:country"]}),
            ),
            (
                "goals",
                json!({"metrics": ["visitors", "events"], "date_range": range, "dimensions": ["event:name"]}),
            ),
            (
                "props",
                json!({"metrics": ["visitors", "events"], "date_range": range, "dimensions": ["event:props:plan"], "filters": [["is_not", "event:props:tier", ["free"]]]}),
            ),
            (
                "props_unfiltered",
                json!({"metrics": ["visitors", "pageviews", "events"], "date_range": range, "dimensions": ["event:props:plan"]}),
            ),
            (
                "scroll_depth",
                json!({"metrics": ["visitors", "scroll_depth"], "date_range": range, "dimensions": ["event:page"], "filters": [["is", "event:props:author", ["john"]]]}),
            ),
            (
                "exit_page_filter",
                json!({"metrics": ["visitors", "bounce_rate"], "date_range": range, "filters": [["is", "visit:exit_page", ["/bye"]], ["not", ["matches", "event:page", ["^/a"]]]]}),
            ),
        ];
        for (name, body) in cases {
            let p = statements_of(body);
            let mut text = String::new();
            for (label, sql) in [
                ("events", &p.events),
                ("sessions", &p.sessions),
                ("time_on_page", &p.time_on_page),
                ("scroll_depth", &p.scroll_depth),
            ] {
                if let Some(sql) = sql {
                    text.push_str(&format!(
                        "-- {label} ({} parameters)\n{}\n",
                        sql.params.len(),
                        sql.text
                    ));
                }
            }
            insta::with_settings!({ snapshot_path => "../snapshots" }, {
                insta::assert_snapshot!(name, text);
            });
        }
    }
}

#[cfg(test)]
mod glob_tests {
    use super::{glob_regex, glob_test, GlobTest};

    #[test]
    fn cheap_tests_answer_as_the_regex() {
        let patterns = [
            "/", "/docs", "/docs/**", "/docs**", "**", "/a/**/b", "/blog/*", "/x/*/**", "/a.b**",
            "/a/***", "/[x]**", "/**/end",
        ];
        let paths = [
            "/",
            "/docs",
            "/docs/",
            "/docs/a/b",
            "/docsx",
            "/doc",
            "/a/q/b",
            "/blog/post",
            "/blog/a/b",
            "/x/y/z",
            "/a.b/c",
            "/aXb",
            "/a/",
            "/[x]/y",
            "/end",
            "/q/end",
            "",
        ];
        for pattern in patterns {
            let regex = regex::Regex::new(&glob_regex(pattern)).unwrap();
            let test = glob_test(pattern);
            for path in paths {
                let cheap = match &test {
                    GlobTest::Equal(page) => path == page,
                    GlobTest::Prefix(prefix) => path.starts_with(prefix.as_str()),
                    GlobTest::Regex(r) => regex::Regex::new(r).unwrap().is_match(path),
                };
                assert_eq!(
                    cheap,
                    regex.is_match(path),
                    "{pattern} on {path:?}: {test:?}"
                );
            }
        }
        assert_eq!(glob_test("/docs/**"), GlobTest::Prefix("/docs/".into()));
        assert_eq!(glob_test("/docs"), GlobTest::Equal("/docs".into()));
        assert!(matches!(glob_test("/blog/*"), GlobTest::Regex(_)));
        assert!(matches!(glob_test("/x/*/**"), GlobTest::Regex(_)));
    }
}

//! Rows read as DuckDB produces them. The `duckdb` crate's `query` and `query_map`
//! materialize a statement's whole result before the first row is read (Arrow buffers of
//! every row), so a read of a day of events or of every recent id holds them all at once:
//! memory that grows with the data. [`for_each_row`] streams the result instead, one DuckDB
//! chunk (2,048 rows) at a time, whatever its size.

use duckdb::arrow::array::{Array, ArrayRef, AsArray};
use duckdb::arrow::datatypes::{
    DataType, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::types::Type;
use duckdb::{Connection, Params};

/// One row of a streamed result.
pub(crate) struct StreamRow<'b> {
    batch: &'b RecordBatch,
    row: usize,
}

impl StreamRow<'_> {
    /// The value of column `index`, as `T`.
    pub fn get<T: FromColumn>(&self, index: usize) -> duckdb::Result<T> {
        let column = self
            .batch
            .columns()
            .get(index)
            .ok_or(duckdb::Error::InvalidColumnIndex(index))?;
        T::from_column(column, self.row).map_err(|err| match err {
            ColumnError::Null => duckdb::Error::InvalidColumnType(
                index,
                "NULL in a column read as NOT NULL".into(),
                Type::Null,
            ),
            ColumnError::Type(found) => {
                duckdb::Error::InvalidColumnType(index, format!("{found}"), Type::Any)
            }
            ColumnError::Range(value) => duckdb::Error::IntegralValueOutOfRange(index, value),
        })
    }
}

/// Why a column's value could not be read.
pub(crate) enum ColumnError {
    Null,
    Type(DataType),
    Range(i128),
}

/// A type a column's value reads as.
pub(crate) trait FromColumn: Sized {
    fn from_column(column: &ArrayRef, row: usize) -> Result<Self, ColumnError>;
}

impl<T: FromColumn> FromColumn for Option<T> {
    fn from_column(column: &ArrayRef, row: usize) -> Result<Self, ColumnError> {
        if column.is_null(row) {
            return Ok(None);
        }
        T::from_column(column, row).map(Some)
    }
}

impl FromColumn for String {
    fn from_column(column: &ArrayRef, row: usize) -> Result<Self, ColumnError> {
        if column.is_null(row) {
            return Err(ColumnError::Null);
        }
        Ok(match column.data_type() {
            DataType::Utf8 => column.as_string::<i32>().value(row).to_owned(),
            DataType::LargeUtf8 => column.as_string::<i64>().value(row).to_owned(),
            DataType::Utf8View => column.as_string_view().value(row).to_owned(),
            other => return Err(ColumnError::Type(other.clone())),
        })
    }
}

impl FromColumn for bool {
    fn from_column(column: &ArrayRef, row: usize) -> Result<Self, ColumnError> {
        if column.is_null(row) {
            return Err(ColumnError::Null);
        }
        match column.data_type() {
            DataType::Boolean => Ok(column.as_boolean().value(row)),
            other => Err(ColumnError::Type(other.clone())),
        }
    }
}

/// A whole number of any integer column.
fn integer(column: &ArrayRef, row: usize) -> Result<i128, ColumnError> {
    if column.is_null(row) {
        return Err(ColumnError::Null);
    }
    Ok(match column.data_type() {
        DataType::Int8 => column.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => column.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => column.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => column.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt8 => column.as_primitive::<UInt8Type>().value(row).into(),
        DataType::UInt16 => column.as_primitive::<UInt16Type>().value(row).into(),
        DataType::UInt32 => column.as_primitive::<UInt32Type>().value(row).into(),
        DataType::UInt64 => column.as_primitive::<UInt64Type>().value(row).into(),
        other => return Err(ColumnError::Type(other.clone())),
    })
}

macro_rules! integer_from_column {
    ($($t:ty),*) => {$(
        impl FromColumn for $t {
            fn from_column(column: &ArrayRef, row: usize) -> Result<Self, ColumnError> {
                let value = integer(column, row)?;
                <$t>::try_from(value).map_err(|_| ColumnError::Range(value))
            }
        }
    )*};
}

integer_from_column!(i8, u8, u16, u32, i64, u64);

/// Runs `sql` with `params` and hands each row of its result to `each`, as DuckDB produces
/// them: at most one chunk of the result is in memory. Nothing else may run on `conn`
/// until it returns. The result's column types come from the same statement with no rows
/// (`LIMIT 0`), which DuckDB answers without reading any.
pub(crate) fn for_each_row<P: Params + Copy>(
    conn: &Connection,
    sql: &str,
    params: P,
    mut each: impl FnMut(&StreamRow<'_>) -> duckdb::Result<()>,
) -> duckdb::Result<()> {
    let schema = conn
        .prepare(&format!("SELECT * FROM ({sql}) LIMIT 0"))?
        .query_arrow(params)?
        .get_schema();
    let mut stmt = conn.prepare(sql)?;
    for batch in stmt.stream_arrow(params, schema)? {
        for row in 0..batch.num_rows() {
            each(&StreamRow { batch: &batch, row })?;
        }
    }
    Ok(())
}

/// Every row of `sql`'s result, read by `read` as it is streamed: for results that are
/// small (a `LIMIT` or a lookup), so one decoder serves both.
pub(crate) fn collect_rows<P: Params + Copy, T>(
    conn: &Connection,
    sql: &str,
    params: P,
    read: impl Fn(&StreamRow<'_>) -> duckdb::Result<T>,
) -> duckdb::Result<Vec<T>> {
    let mut rows = Vec::new();
    for_each_row(conn, sql, params, |row| {
        rows.push(read(row)?);
        Ok(())
    })?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use duckdb::params;

    #[test]
    fn rows_of_every_column_type_stream_in_order() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (s VARCHAR, n BIGINT, u UBIGINT, b BOOLEAN, small UINTEGER, \
             sign TINYINT, tiny UTINYINT, maybe VARCHAR);
             INSERT INTO t SELECT 'row ' || i, i - 5000, 18446744073709551615 - i, i % 2 = 0, \
             i, -1, 7, CASE WHEN i % 3 = 0 THEN NULL ELSE 'x' END FROM range(10000) r(i);",
        )
        .unwrap();
        let rows = collect_rows(
            &conn,
            "SELECT s, n, u, b, small, sign, tiny, maybe, s AS s FROM t WHERE n >= ? ORDER BY n",
            params![-5000],
            |row| {
                Ok((
                    row.get::<String>(0)?,
                    row.get::<i64>(1)?,
                    row.get::<u64>(2)?,
                    row.get::<bool>(3)?,
                    row.get::<u32>(4)?,
                    row.get::<i8>(5)?,
                    row.get::<u8>(6)?,
                    row.get::<Option<String>>(7)?,
                ))
            },
        )
        .unwrap();
        // More rows than one chunk, each read right.
        assert_eq!(rows.len(), 10_000);
        for (i, row) in rows.iter().enumerate() {
            let n = i as i64 - 5000;
            assert_eq!(row.0, format!("row {i}"));
            assert_eq!(row.1, n);
            assert_eq!(row.2, u64::MAX - i as u64);
            assert_eq!(row.3, i % 2 == 0);
            assert_eq!(row.4, i as u32);
            assert_eq!((row.5, row.6), (-1, 7));
            assert_eq!(row.7.is_none(), i % 3 == 0);
        }
        // A NULL read as NOT NULL, a wrong type and a value out of range are errors.
        let read = |column: usize| {
            collect_rows(
                &conn,
                "SELECT maybe, s, n FROM t WHERE maybe IS NULL",
                params![],
                move |row| match column {
                    0 => row.get::<String>(0).map(|_| ()),
                    1 => row.get::<i64>(1).map(|_| ()),
                    _ => row.get::<u8>(2).map(|_| ()),
                },
            )
        };
        assert!(read(0).is_err());
        assert!(read(1).is_err());
        assert!(read(2).is_err());
    }

    #[test]
    fn a_transaction_streams_its_own_changes() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (k BIGINT, v BIGINT); \
             INSERT INTO t SELECT i, 1 FROM range(100000) r(i);",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(
            "DELETE FROM t WHERE k % 10 = 0; \
             INSERT INTO t SELECT i, 2 FROM range(100000) r(i) WHERE i % 10 = 0;",
        )
        .unwrap();
        let sum = |sql: &str| {
            let mut total = 0i64;
            for_each_row(&tx, sql, params![], |row| {
                total += row.get::<i64>(0)?;
                Ok(())
            })
            .unwrap();
            total
        };
        let expected: i64 = tx
            .query_row("SELECT sum(v)::BIGINT FROM t WHERE k >= 0", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(expected, 110_000);
        assert_eq!(sum("SELECT v FROM t WHERE k >= 0"), expected);
    }
}

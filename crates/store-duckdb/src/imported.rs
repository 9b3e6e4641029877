//! Imported daily aggregates (`heartbeat_model::ImportedTable`): each import of a site in
//! `site_imports`, its rows in one `imported_*` table per export file. Written in one
//! transaction per import; deleted with their import or their site.

use duckdb::{params, params_from_iter, Connection, Transaction};
use heartbeat_model::{ImportedRow, ImportedTable, SiteId, SiteImport};

/// Stores one import's tables; returns the import with its new id.
pub(crate) fn insert(
    conn: &mut Connection,
    site: &SiteId,
    source: &str,
    (start_date, end_date): (String, String),
    imported_at_ms: i64,
    tables: Vec<(ImportedTable, Vec<ImportedRow>)>,
) -> duckdb::Result<SiteImport> {
    let tx = conn.transaction()?;
    let id: u64 = tx.query_row(
        "SELECT coalesce(max(id), 0) + 1 FROM site_imports",
        [],
        |row| row.get(0),
    )?;
    tx.execute(
        "INSERT INTO site_imports VALUES (?, ?, ?, CAST(? AS DATE), CAST(? AS DATE), ?)",
        params![
            id,
            site.as_str(),
            source,
            start_date,
            end_date,
            imported_at_ms
        ],
    )?;
    for (table, rows) in tables {
        insert_rows(&tx, site, id, table, rows)?;
    }
    tx.commit()?;
    Ok(SiteImport {
        id,
        site_id: site.clone(),
        source: source.to_owned(),
        start_date,
        end_date,
        imported_at_ms,
    })
}

fn insert_rows(
    tx: &Transaction<'_>,
    site: &SiteId,
    import_id: u64,
    table: ImportedTable,
    rows: Vec<ImportedRow>,
) -> duckdb::Result<()> {
    let columns = table.text_columns().len() + table.count_columns().len();
    // The name comes from the closed set of `ImportedTable`, never from input.
    let sql = format!(
        "INSERT INTO {} VALUES (?, ?, CAST(? AS DATE){})",
        table.name(),
        ", ?".repeat(columns)
    );
    let mut statement = tx.prepare(&sql)?;
    for row in rows {
        let mut values: Vec<duckdb::types::Value> = vec![
            site.as_str().to_owned().into(),
            import_id.into(),
            row.date.into(),
        ];
        values.extend(row.texts.into_iter().map(Into::into));
        values.extend(row.counts.into_iter().map(|count| match count {
            Some(count) => count.into(),
            None => duckdb::types::Value::Null,
        }));
        statement.execute(params_from_iter(values))?;
    }
    Ok(())
}

/// A site's imports, oldest first.
pub(crate) fn list(conn: &Connection, site: &SiteId) -> duckdb::Result<Vec<SiteImport>> {
    let mut statement = conn.prepare(
        "SELECT id, source, CAST(start_date AS VARCHAR), CAST(end_date AS VARCHAR), \
         imported_at_ms FROM site_imports WHERE site_id = ? ORDER BY id",
    )?;
    let rows = statement.query_map(params![site.as_str()], |row| {
        Ok(SiteImport {
            id: row.get(0)?,
            site_id: site.clone(),
            source: row.get(1)?,
            start_date: row.get(2)?,
            end_date: row.get(3)?,
            imported_at_ms: row.get(4)?,
        })
    })?;
    rows.collect()
}

/// Deletes `site`'s import `id` (every import of the site when `id` is `None`) and its
/// rows, inside `tx`. Returns how many imports went.
pub(crate) fn delete(
    tx: &Transaction<'_>,
    site: &SiteId,
    id: Option<u64>,
) -> duckdb::Result<usize> {
    let (condition, values): (&str, Vec<duckdb::types::Value>) = match id {
        Some(id) => (
            "site_id = ? AND import_id = ?",
            vec![site.as_str().to_owned().into(), id.into()],
        ),
        None => ("site_id = ?", vec![site.as_str().to_owned().into()]),
    };
    for table in ImportedTable::ALL {
        tx.execute(
            &format!("DELETE FROM {} WHERE {condition}", table.name()),
            params_from_iter(values.iter()),
        )?;
    }
    tx.execute(
        &format!(
            "DELETE FROM site_imports WHERE {}",
            condition.replace("import_id", "id")
        ),
        params_from_iter(values.iter()),
    )
}

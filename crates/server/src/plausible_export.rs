//! Plausible's CSV export read for an import: the zip Plausible's "Export data" produces,
//! one CSV file per table (`imported_visitors_20240101_20241231.csv`, ... ten in all; the
//! `imported_` prefix may be left out, as Plausible's importer allows), each with a header
//! line naming its columns (`heartbeat_model::ImportedTable` lists them).
//!
//! The whole export is checked before anything is stored: a file missing, a name that is
//! not a table's, a line cut short, a count that is not a whole number or a date that is not
//! a date refuses the import and names the file and line. Columns are found by their
//! header name; a count column the file lacks reads as 0 (older exports lack `pageviews` in
//! some tables), unknown columns are ignored. Rows outside the dates in the file names are
//! skipped, as Plausible's importer does.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::NaiveDate;
use heartbeat_ingest::enrich::referrer::channel_of_source;
use heartbeat_model::{ImportedRow, ImportedTable};

use crate::csv_file::{error, CsvFile, ExportError};

/// The largest a file of the export may grow to once decompressed.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024 * 1024;

/// An export ready to store: the days it covers and every table's rows.
#[derive(Debug)]
pub struct PlausibleExport {
    pub range: (String, String),
    pub tables: Vec<(ImportedTable, Vec<ImportedRow>)>,
}

impl PlausibleExport {
    pub fn rows(&self) -> BTreeMap<&'static str, usize> {
        self.tables
            .iter()
            .map(|(table, rows)| (table.name(), rows.len()))
            .collect()
    }
}

/// The table and the days a file's name says (`imported_devices_20190101_20210101.csv` or
/// `devices_20190101_20210101.csv`).
fn parse_filename(name: &str) -> Option<(ImportedTable, NaiveDate, NaiveDate)> {
    let stem = name.strip_suffix(".csv")?;
    let (rest, end) = stem.rsplit_once('_')?;
    let (table, start) = rest.rsplit_once('_')?;
    let day = |text: &str| {
        (text.len() == 8)
            .then(|| NaiveDate::parse_from_str(text, "%Y%m%d").ok())
            .flatten()
    };
    let table = ImportedTable::from_name(table)
        .or_else(|| ImportedTable::from_name(&format!("imported_{table}")))?;
    Some((table, day(start)?, day(end)?))
}

/// Reads every file of the zip `bytes`; every table must be there.
pub fn read_zip(bytes: &[u8]) -> Result<PlausibleExport, ExportError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| error("body", None, format!("not a zip archive: {e}")))?;
    let mut found: Vec<(ImportedTable, NaiveDate, NaiveDate, Vec<ImportedRow>)> = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| error("body", None, format!("unreadable zip entry: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let path = entry.name().to_owned();
        let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
        let (table, start, end) = parse_filename(&name).ok_or_else(|| {
            error(
                &name,
                None,
                "not a file of Plausible's export (expected imported_<table>_<YYYYMMDD>_<YYYYMMDD>.csv)",
            )
        })?;
        if start > end {
            return Err(error(&name, None, "its dates end before they start"));
        }
        if found.iter().any(|(t, ..)| *t == table) {
            return Err(error(
                &name,
                None,
                format!("{} is in the export twice", table.name()),
            ));
        }
        let mut text = Vec::new();
        (&mut entry)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(|e| error(&name, None, format!("cannot decompress: {e}")))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(error(
                &name,
                None,
                format!("larger than {MAX_FILE_BYTES} bytes"),
            ));
        }
        let rows = read_csv(&name, table, &text, (start, end))?;
        found.push((table, start, end, rows));
    }
    let missing: Vec<&str> = ImportedTable::ALL
        .into_iter()
        .filter(|table| !found.iter().any(|(t, ..)| t == table))
        .map(ImportedTable::name)
        .collect();
    if !missing.is_empty() {
        return Err(error(
            &missing.join(", "),
            None,
            "missing from the export (it has one file per table, ten in all)",
        ));
    }
    let start = found.iter().map(|f| f.1).min().unwrap_or_default();
    let end = found.iter().map(|f| f.2).max().unwrap_or_default();
    found.sort_by_key(|f| f.0.name());
    Ok(PlausibleExport {
        range: (start.to_string(), end.to_string()),
        tables: found.into_iter().map(|f| (f.0, f.3)).collect(),
    })
}

/// Reads one table's CSV: header first, then one row per line.
pub fn read_csv(
    file: &str,
    table: ImportedTable,
    text: &[u8],
    (start, end): (NaiveDate, NaiveDate),
) -> Result<Vec<ImportedRow>, ExportError> {
    // The columns a row cannot do without: its day, its dimension values, its visitors.
    let derived = |name: &str| table == ImportedTable::Sources && name == "channel";
    let mut required = vec!["date", "visitors"];
    required.extend(
        table
            .text_columns()
            .iter()
            .filter(|name| !derived(name))
            .copied(),
    );
    let mut csv = CsvFile::open(file, text, &required)?;
    let position = |name: &str| csv.position(name);
    let date_at = position("date").unwrap_or_default();
    let texts_at: Vec<Option<usize>> = table
        .text_columns()
        .iter()
        .map(|name| position(name))
        .collect();
    let counts_at: Vec<Option<usize>> = table
        .count_columns()
        .iter()
        .map(|column| position(column.name))
        .collect();
    let mut rows = Vec::new();
    for row in csv.rows() {
        let (line, record) = row?;
        let date_text = record.get(date_at).unwrap_or_default().trim();
        let date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d")
            .map_err(|_| error(file, line, format!("date {date_text:?} is not YYYY-MM-DD")))?;
        let mut texts: Vec<String> = texts_at
            .iter()
            .map(|at| {
                at.and_then(|i| record.get(i))
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        let mut counts = Vec::with_capacity(counts_at.len());
        for (column, at) in table.count_columns().iter().zip(&counts_at) {
            let cell = at.and_then(|i| record.get(i)).unwrap_or_default().trim();
            counts.push(match cell {
                "" if column.nullable => None,
                "" if at.is_none() => Some(0),
                _ => Some(cell.parse::<u64>().map_err(|_| {
                    error(
                        file,
                        line,
                        format!("{} {cell:?} is not a whole number", column.name),
                    )
                })?),
            });
        }
        match table {
            // The channel is not exported: it follows from the source and UTM tags.
            ImportedTable::Sources => {
                texts[7] = channel_of_source(&texts[0], &texts[3], &texts[4], "").to_owned();
            }
            // An unknown city is the GeoNames id 0.
            ImportedTable::Locations if texts[2] == "0" => texts[2].clear(),
            _ => {}
        }
        if date < start || date > end {
            continue;
        }
        rows.push(ImportedRow {
            date: date.to_string(),
            texts,
            counts,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn file_names_say_table_and_days() {
        assert_eq!(
            parse_filename("imported_operating_systems_20240101_20241231.csv"),
            Some((
                ImportedTable::OperatingSystems,
                day("2024-01-01"),
                day("2024-12-31")
            ))
        );
        assert_eq!(
            parse_filename("devices_20240101_20240102.csv"),
            Some((ImportedTable::Devices, day("2024-01-01"), day("2024-01-02")))
        );
        assert_eq!(parse_filename("my_data.csv"), None);
        assert_eq!(parse_filename("imported_devices_2024_20240102.csv"), None);
    }

    #[test]
    fn rows_are_read_by_header_name_and_bad_lines_are_named() {
        let range = (day("2024-01-01"), day("2024-01-31"));
        let csv = "visitors,date,device,bounces,visits,visit_duration,pageviews\n\
                   3,2024-01-02,Mobile,1,4,40,7\n\
                   1,2023-12-31,Mobile,0,1,1,1\n";
        let rows = read_csv("d.csv", ImportedTable::Devices, csv.as_bytes(), range).unwrap();
        assert_eq!(rows.len(), 1, "a day outside the file's dates is skipped");
        assert_eq!(rows[0].texts, ["Mobile"]);
        assert_eq!(
            rows[0].counts,
            [Some(3), Some(4), Some(40), Some(1), Some(7)]
        );
        let short = "date,device,visitors\n2024-01-02,Mobile,3\n2024-01-03,Mobile\n";
        let err = read_csv("d.csv", ImportedTable::Devices, short.as_bytes(), range).unwrap_err();
        assert_eq!((err.file.as_str(), err.line), ("d.csv", Some(3)));
        let bad = "date,device,visitors\n2024-01-02,Mobile,-3\n";
        let err = read_csv("d.csv", ImportedTable::Devices, bad.as_bytes(), range).unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("visitors"), "{}", err.message);
        let headless = "date,visitors\n2024-01-02,3\n";
        let err =
            read_csv("d.csv", ImportedTable::Devices, headless.as_bytes(), range).unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.message.contains("device"), "{}", err.message);
    }
}

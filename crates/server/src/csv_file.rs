//! A CSV file of another product's export, read by its header's column names: what the
//! Plausible and Umami imports (`plausible_export.rs`, `umami_export.rs`) share. Every
//! problem names the file and, when one line is to blame, the line (1 is the header).

use std::collections::HashMap;

/// What is wrong with an export: `file` (with the line when one line is to blame) and the
/// problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct ExportError {
    pub file: String,
    pub line: Option<u64>,
    pub message: String,
}

pub fn error(file: &str, line: Option<u64>, message: impl Into<String>) -> ExportError {
    ExportError {
        file: file.to_owned(),
        line,
        message: message.into(),
    }
}

/// An open CSV file whose header has every required column.
pub struct CsvFile<'a> {
    file: &'a str,
    reader: csv::Reader<&'a [u8]>,
    columns: HashMap<String, usize>,
}

impl<'a> CsvFile<'a> {
    /// Reads the header of `text` (named `file` in errors); refuses it when it lacks one of
    /// `required`, naming every one it lacks.
    pub fn open(file: &'a str, text: &'a [u8], required: &[&str]) -> Result<Self, ExportError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(text);
        let columns: HashMap<String, usize> = reader
            .headers()
            .map_err(|e| error(file, Some(1), e.to_string()))?
            .iter()
            .enumerate()
            .map(|(i, name)| (name.trim().to_owned(), i))
            .collect();
        let absent: Vec<&str> = required
            .iter()
            .copied()
            .filter(|name| !columns.contains_key(*name))
            .collect();
        if !absent.is_empty() {
            return Err(error(
                file,
                Some(1),
                format!("the header lacks {}", absent.join(", ")),
            ));
        }
        Ok(CsvFile {
            file,
            reader,
            columns,
        })
    }

    /// The index of column `name`, if the header has it.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.get(name).copied()
    }

    /// Every column of the header by name.
    pub fn columns(&self) -> &HashMap<String, usize> {
        &self.columns
    }

    /// Each row with its line; a row of another length than the header's, or unreadable,
    /// is an error naming its line.
    pub fn rows(
        &mut self,
    ) -> impl Iterator<Item = Result<(Option<u64>, csv::StringRecord), ExportError>> + use<'_, 'a>
    {
        let file = self.file;
        self.reader.records().map(move |record| {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line());
                let message = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("{len} fields where the header has {expected_len}"),
                    _ => e.to_string(),
                };
                error(file, line, message)
            })?;
            Ok((record.position().map(|p| p.line()), record))
        })
    }
}

//! Imported statistics: daily aggregates brought from another product (Plausible's CSV
//! export), kept apart from native events and added to answers only when a query asks
//! (`"include": {"imports": true}`), as Plausible does.
//!
//! Each [`ImportedTable`] is one file of Plausible's export, with its columns as Plausible's
//! CSV importer reads them (`Plausible.Imported.CSVImporter`): the day, the table's text
//! columns (its dimension values; empty when unknown) and its counts.

use serde::{Deserialize, Serialize};

use crate::SiteId;

/// One table of imported daily aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImportedTable {
    Visitors,
    Sources,
    Pages,
    EntryPages,
    ExitPages,
    CustomEvents,
    Locations,
    Devices,
    Browsers,
    OperatingSystems,
}

/// A count column: its name, and whether an empty cell means "unknown" (NULL) rather than
/// being refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountColumn {
    pub name: &'static str,
    pub nullable: bool,
}

const fn count(name: &'static str) -> CountColumn {
    CountColumn {
        name,
        nullable: false,
    }
}

const VISIT_COUNTS: [CountColumn; 5] = [
    count("visitors"),
    count("visits"),
    count("visit_duration"),
    count("bounces"),
    count("pageviews"),
];

const VISITORS_COUNTS: [CountColumn; 5] = [
    count("visitors"),
    count("pageviews"),
    count("bounces"),
    count("visits"),
    count("visit_duration"),
];
const PAGES_COUNTS: [CountColumn; 5] = [
    count("visits"),
    count("visitors"),
    count("pageviews"),
    CountColumn {
        name: "scroll_depth",
        nullable: true,
    },
    count("pageleave_visitors"),
];
const ENTRY_PAGES_COUNTS: [CountColumn; 5] = [
    count("visitors"),
    count("entrances"),
    count("visit_duration"),
    count("bounces"),
    count("pageviews"),
];
const EXIT_PAGES_COUNTS: [CountColumn; 5] = [
    count("visitors"),
    count("visit_duration"),
    count("exits"),
    count("bounces"),
    count("pageviews"),
];
const CUSTOM_EVENTS_COUNTS: [CountColumn; 2] = [count("visitors"), count("events")];

impl ImportedTable {
    pub const ALL: [ImportedTable; 10] = [
        ImportedTable::Visitors,
        ImportedTable::Sources,
        ImportedTable::Pages,
        ImportedTable::EntryPages,
        ImportedTable::ExitPages,
        ImportedTable::CustomEvents,
        ImportedTable::Locations,
        ImportedTable::Devices,
        ImportedTable::Browsers,
        ImportedTable::OperatingSystems,
    ];

    /// The table's name, which is also its file's name in Plausible's export.
    pub fn name(self) -> &'static str {
        match self {
            ImportedTable::Visitors => "imported_visitors",
            ImportedTable::Sources => "imported_sources",
            ImportedTable::Pages => "imported_pages",
            ImportedTable::EntryPages => "imported_entry_pages",
            ImportedTable::ExitPages => "imported_exit_pages",
            ImportedTable::CustomEvents => "imported_custom_events",
            ImportedTable::Locations => "imported_locations",
            ImportedTable::Devices => "imported_devices",
            ImportedTable::Browsers => "imported_browsers",
            ImportedTable::OperatingSystems => "imported_operating_systems",
        }
    }

    pub fn from_name(name: &str) -> Option<ImportedTable> {
        ImportedTable::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The dimension values a row is counted under. `channel` of `imported_sources` is not in
    /// the export: the import derives it from the source and UTM tags.
    pub fn text_columns(self) -> &'static [&'static str] {
        match self {
            ImportedTable::Visitors => &[],
            ImportedTable::Sources => &[
                "source",
                "referrer",
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "utm_content",
                "utm_term",
                "channel",
            ],
            ImportedTable::Pages => &["hostname", "page"],
            ImportedTable::EntryPages => &["entry_page"],
            ImportedTable::ExitPages => &["exit_page"],
            ImportedTable::CustomEvents => &["name", "link_url", "path"],
            // `city` is a GeoNames id in the export (0 when unknown), kept as text as
            // native events keep it.
            ImportedTable::Locations => &["country", "region", "city"],
            ImportedTable::Devices => &["device"],
            ImportedTable::Browsers => &["browser", "browser_version"],
            ImportedTable::OperatingSystems => &["operating_system", "operating_system_version"],
        }
    }

    pub fn count_columns(self) -> &'static [CountColumn] {
        match self {
            ImportedTable::Visitors => &VISITORS_COUNTS,
            ImportedTable::Sources
            | ImportedTable::Locations
            | ImportedTable::Devices
            | ImportedTable::Browsers
            | ImportedTable::OperatingSystems => &VISIT_COUNTS,
            ImportedTable::Pages => &PAGES_COUNTS,
            ImportedTable::EntryPages => &ENTRY_PAGES_COUNTS,
            ImportedTable::ExitPages => &EXIT_PAGES_COUNTS,
            ImportedTable::CustomEvents => &CUSTOM_EVENTS_COUNTS,
        }
    }
}

/// One day's row of an imported table: `texts` and `counts` in the order of the table's
/// [`ImportedTable::text_columns`] and [`ImportedTable::count_columns`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedRow {
    /// The day in the site's time zone, `YYYY-MM-DD`.
    pub date: String,
    pub texts: Vec<String>,
    pub counts: Vec<Option<u64>>,
}

/// One import of a site: where it came from and the days it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteImport {
    /// Given by the store, increasing per store.
    pub id: u64,
    pub site_id: SiteId,
    /// What produced the data, e.g. `plausible_csv`.
    pub source: String,
    /// First and last day covered, `YYYY-MM-DD`, both included.
    pub start_date: String,
    pub end_date: String,
    pub imported_at_ms: i64,
}

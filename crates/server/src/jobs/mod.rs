//! Work that runs beside the requests: retention (deleting events past a site's retention,
//! on an interval), online backups, and, for nodes that share their metadata, refreshing the
//! in-memory directories and agreeing on the visitor-id salts.

pub mod backup;
pub mod leader;
pub mod partitions;
pub mod refresh;
pub mod retention;
pub mod salts;

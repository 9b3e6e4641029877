//! Work that runs beside the requests: retention (deleting events past a site's retention,
//! on an interval) and online backups.

pub mod backup;
pub mod retention;

//! The periods cells are kept for: UTC hours and UTC days.

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// How long a cell's period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    Hour,
    Day,
}

impl Span {
    /// The table holding cells of this span: daily cells in a table of their own, 24 times
    /// smaller, so reading a month scans little.
    pub fn table(self) -> &'static str {
        match self {
            Span::Hour => "rollups_hourly",
            Span::Day => "rollups_daily",
        }
    }

    pub fn ms(self) -> i64 {
        match self {
            Span::Hour => HOUR_MS,
            Span::Day => DAY_MS,
        }
    }

    /// The start of the period of this span that `ms` falls in.
    pub fn start_of(self, ms: i64) -> i64 {
        ms.div_euclid(self.ms()) * self.ms()
    }
}

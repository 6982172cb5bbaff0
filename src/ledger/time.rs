//! Ledger time: microseconds since the Unix epoch, as stored in both databases.

use std::fmt;

/// A point in time, in microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Stored in place of "never" so expiries sort and compare without NULL handling.
pub const NEVER: Timestamp = Timestamp::from_micros(i64::MAX);

/// Microseconds in an hour and in a UTC day: every room counts days with these.
pub const MICROS_PER_HOUR: i64 = 3_600_000_000;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(chrono::Utc::now().timestamp_micros())
    }

    /// The instant `micros` microseconds after the epoch (as stored).
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// Microseconds since the epoch (as stored).
    pub const fn micros(self) -> i64 {
        self.0
    }

    pub fn is_never(self) -> bool {
        self == NEVER
    }

    /// The UTC day it falls in, as days since 1970-01-01.
    pub fn day(self) -> i64 {
        self.0.div_euclid(MICROS_PER_DAY)
    }

    /// Midnight UTC of a day counted as by [`Timestamp::day`].
    pub fn from_day(day: i64) -> Self {
        Timestamp(day.saturating_mul(MICROS_PER_DAY))
    }

    /// `YYYY-MM-DD` (UTC).
    pub fn date(self) -> String {
        match chrono::DateTime::from_timestamp_micros(self.0) {
            Some(t) => t.format("%Y-%m-%d").to_string(),
            None => format!("@{}us", self.0),
        }
    }

    /// `self + hours`, saturating at [`NEVER`].
    pub fn plus_hours(self, hours: i64) -> Self {
        let micros = hours.saturating_mul(MICROS_PER_HOUR);
        Timestamp(self.0.saturating_add(micros))
    }

    pub fn plus_micros(self, micros: i64) -> Self {
        Timestamp(self.0.saturating_add(micros))
    }

    /// Parses RFC 3339 (`2026-12-31T23:00:00Z`) or a bare date (`2026-12-31`, midnight UTC).
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
            return Some(Timestamp(t.timestamp_micros()));
        }
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| Timestamp(dt.and_utc().timestamp_micros()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_never() {
            return f.write_str("never");
        }
        match chrono::DateTime::from_timestamp_micros(self.0) {
            Some(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            None => write!(f, "@{}us", self.0),
        }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.is_never() {
            serializer.serialize_none()
        } else {
            serializer.collect_str(self)
        }
    }
}

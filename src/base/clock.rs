//! Time as nodelock sees it: instants in UTC seconds, an injectable clock, and
//! the date rules every document follows.
//!
//! A date-only expiry ("2027-03-31") means the license runs to the *end* of that
//! day in UTC: it is stored as the first second of the following day, and a
//! license is valid while `now < expires_at`. Nothing here reads the system
//! clock except [`SystemClock`], so tests pin time by passing another [`Clock`].

use time::{Date, OffsetDateTime, format_description::well_known::Rfc3339};

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// How far the clock may run behind the latest trusted time already seen
/// before a check is refused as "clock set back": 24 hours, which absorbs
/// ordinary skew between a vendor's and a workstation's clocks and a badly set
/// time zone, but not a clock moved back to stretch a subscription.
pub const CLOCK_TOLERANCE: i64 = DAY;

/// Where "now" comes from; verification code never asks the OS itself.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// A clock stuck at one instant, for tests and for replaying a decision.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// A date or instant that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    /// Neither `YYYY-MM-DD` nor an RFC 3339 instant.
    #[error("'{0}' is not a date (YYYY-MM-DD) or an RFC 3339 instant (2027-03-31T12:00:00Z)")]
    Unparsable(String),
}

/// Reads a user-given end of validity: a bare date means the end of that day in
/// UTC (returned as the first second of the next day); an RFC 3339 instant is
/// taken as is.
///
/// ```
/// use nodelock::base::clock::{format, parse_end};
/// // "--expires 2027-12-31" holds for all of December 31st, in every time zone's UTC day.
/// assert_eq!(format(parse_end("2027-12-31")?), "2028-01-01T00:00:00Z");
/// # Ok::<(), nodelock::base::clock::TimeError>(())
/// ```
pub fn parse_end(text: &str) -> Result<Timestamp, TimeError> {
    parse(text, true)
}

/// Reads a user-given start of validity or a build date: a bare date means the
/// start of that day in UTC.
pub fn parse_start(text: &str) -> Result<Timestamp, TimeError> {
    parse(text, false)
}

fn parse(text: &str, end_of_day: bool) -> Result<Timestamp, TimeError> {
    let text = text.trim();
    if let Ok(instant) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(instant.unix_timestamp());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = Date::parse(text, &format).map_err(|_| TimeError::Unparsable(text.to_owned()))?;
    let start = date.midnight().assume_utc().unix_timestamp();
    Ok(if end_of_day { start + DAY } else { start })
}

/// Formats an instant as RFC 3339 in UTC (`2027-04-01T00:00:00Z`).
pub fn format(ts: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{ts}"))
}

/// Serialises a timestamp as RFC 3339 (`serialize_with`), for reports whose
/// JSON shows instants as text while the value stays a number in memory.
pub fn serialize_rfc3339<S: serde::Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*ts))
}

/// [`serialize_rfc3339`] for an optional instant (`None` as null).
pub fn serialize_rfc3339_opt<S: serde::Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => s.serialize_str(&format(*ts)),
        None => s.serialize_none(),
    }
}

/// An exclusive end as people read it: an end at midnight UTC is the end of
/// the day before (`2027-12-31, end of day UTC`); other instants as RFC 3339.
pub fn format_end(ts: Timestamp) -> String {
    match OffsetDateTime::from_unix_timestamp(ts - 1) {
        Ok(last) if ts.rem_euclid(DAY) == 0 => format!("{}, end of day UTC", last.date()),
        _ => format(ts),
    }
}

/// Whole days from `now` until `until`, rounded down; negative once past.
pub fn days_left(now: Timestamp, until: Timestamp) -> i64 {
    (until - now).div_euclid(DAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_only_expiry_is_end_of_that_day_in_utc() {
        let end = parse_end("2027-03-31").unwrap();
        assert_eq!(format(end), "2027-04-01T00:00:00Z");
        assert_eq!(parse_start("2027-03-31").unwrap(), end - DAY);
    }

    #[test]
    fn ends_at_midnight_read_as_the_day_before() {
        assert_eq!(
            format_end(parse_end("2027-12-31").unwrap()),
            "2027-12-31, end of day UTC"
        );
        assert_eq!(
            format_end(parse_end("2027-12-31T12:00:00Z").unwrap()),
            "2027-12-31T12:00:00Z"
        );
    }

    #[test]
    fn instants_keep_their_offset() {
        assert_eq!(
            parse_end("2027-03-31T12:00:00+02:00").unwrap(),
            parse_end("2027-03-31T10:00:00Z").unwrap()
        );
    }

    #[test]
    fn garbage_dates_are_refused() {
        for bad in ["", "31/03/2027", "2027-13-01", "tomorrow"] {
            assert!(parse_end(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_left_rounds_down_and_goes_negative() {
        assert_eq!(days_left(0, DAY * 3 - 1), 2);
        assert_eq!(days_left(DAY, 0), -1);
    }
}

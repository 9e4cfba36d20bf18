//! Reading the times of a `status` quickly: a hundred thousand jobs bring
//! a hundred thousand times. The shape the daemon writes (jiff's, in UTC:
//! `2026-07-01T09:30:00.5Z`) is read here; anything else (an offset, a
//! leap second, a year out of four digits) is left to jiff, so the result
//! is always jiff's (tested).

use jiff::Timestamp;
use serde::Deserializer;
use serde::de::{Error, Visitor};

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` as jiff reads it, or `None` for
/// anything else.
fn quick(text: &[u8]) -> Option<Timestamp> {
    let (head, rest) = text.split_at_checked(19)?;
    let digits = |from: usize, n: usize| -> Option<i64> {
        head.get(from..from + n)?.iter().try_fold(0i64, |v, b| {
            b.is_ascii_digit().then(|| v * 10 + i64::from(b - b'0'))
        })
    };
    let punctuation = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if punctuation.iter().any(|&(i, c)| head[i] != c) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let nanos = match rest {
        [b'Z'] => 0,
        [b'.', fraction @ .., b'Z'] if (1..=9).contains(&fraction.len()) => {
            let mut n = 0i32;
            for b in fraction {
                if !b.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + i32::from(b - b'0');
            }
            n * 10i32.pow(9 - u32::try_from(fraction.len()).ok()?)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Timestamp::new(seconds, nanos).ok()
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `text` as a time, as jiff reads it.
fn parse<E: Error>(text: &str) -> Result<Timestamp, E> {
    match quick(text.as_bytes()) {
        Some(t) => Ok(t),
        None => text.parse().map_err(E::custom),
    }
}

/// For `#[serde(deserialize_with)]` on an `Option<Timestamp>` (with
/// `#[serde(default)]`, as serde treats a missing `Option`).
pub(super) fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    d.deserialize_option(OptionVisitor)
}

struct OptionVisitor;

impl<'de> Visitor<'de> for OptionVisitor {
    type Value = Option<Timestamp>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an RFC 3339 time or null")
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(TimeVisitor).map(Some)
    }
}

struct TimeVisitor;

impl Visitor<'_> for TimeVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an RFC 3339 time")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<Timestamp, E> {
        parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn jiffs(text: &str) -> Option<Timestamp> {
        text.parse().ok()
    }

    #[test]
    fn the_daemons_shape_is_read_as_jiff_reads_it_and_the_rest_left_to_jiff() {
        for text in [
            "2026-07-01T09:30:00.5Z",
            "2026-07-01T10:30:00.123456789Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999999Z",
            "0000-01-01T00:00:00Z",
            "9999-12-30T22:00:00Z",
            "2024-02-29T12:00:00Z",
            "2000-02-29T12:00:00Z",
        ] {
            assert_eq!(quick(text.as_bytes()), jiffs(text), "{text}");
            assert!(quick(text.as_bytes()).is_some(), "{text}");
        }
        for text in [
            "2023-02-29T12:00:00Z",
            "1900-02-29T12:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-07-01T24:00:00Z",
            "2016-12-31T23:59:60Z",
            "2026-07-01T09:30:00.Z",
            "2026-07-01T09:30:00.1234567891Z",
            "2026-07-01T09:30:00+01:00",
            "2026-07-01T09:30:00z",
            "2026-07-01t09:30:00Z",
            "2026-07-01 09:30:00Z",
            "+2026-07-01T09:30:00Z",
            "2026-07-01T09:30:00Z ",
            "",
        ] {
            assert_eq!(quick(text.as_bytes()), None, "{text}");
            let read: Result<Timestamp, serde_json::Error> = parse(text);
            assert_eq!(read.ok(), jiffs(text), "{text}");
        }
    }

    proptest! {
        #[test]
        fn every_time_jiff_writes_is_read_back_the_same(
            secs in Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
            nanos in prop_oneof![Just(0), 0..1_000_000_000i32],
        ) {
            if let Ok(t) = Timestamp::new(secs, nanos) {
                let text = t.to_string();
                let read: Timestamp = parse::<serde_json::Error>(&text).unwrap();
                prop_assert_eq!(read, t);
                if !text.starts_with('-') {
                    prop_assert_eq!(quick(text.as_bytes()), Some(t));
                }
            }
        }

        #[test]
        fn anything_of_the_shape_is_read_as_jiff_reads_it(
            text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,10})?Z",
        ) {
            let read: Result<Timestamp, serde_json::Error> = parse(&text);
            prop_assert_eq!(read.ok(), jiffs(&text));
        }
    }

    #[test]
    fn null_and_missing_are_none() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct T {
            #[serde(default, deserialize_with = "option")]
            at: Option<Timestamp>,
        }
        let read = |json: &str| serde_json::from_str::<T>(json).map(|t| t.at).ok();
        assert_eq!(read(r#"{"at":null}"#), Some(None));
        assert_eq!(read("{}"), Some(None));
        assert_eq!(
            read(r#"{"at":"2026-07-01T09:30:00.5Z"}"#),
            Some(jiffs("2026-07-01T09:30:00.5Z"))
        );
        assert_eq!(
            read(r#"{"at":"2026-07-01T09:30:00+02:00"}"#),
            Some(jiffs("2026-07-01T07:30:00Z"))
        );
        assert_eq!(read(r#"{"at":"yesterday"}"#), None);
        assert_eq!(read(r#"{"at":5}"#), None);
    }
}

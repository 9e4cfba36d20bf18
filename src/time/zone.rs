//! Time zones by name without jiff's database of all zones: building it
//! walks the whole of /usr/share/zoneinfo (about 110 KiB of heap that stays,
//! and 5 ms) to look one up (issue 15). UTC is built in, and a zone's TZif
//! file is read by its name; anything else (a name in another case, zone
//! files elsewhere) is left to the database.

use std::path::PathBuf;

use jiff::tz::TimeZone;

/// The zone called `name` (an IANA name such as "Europe/Berlin", or "UTC").
pub fn named(name: &str) -> Result<TimeZone, jiff::Error> {
    if name.eq_ignore_ascii_case("UTC") {
        return Ok(TimeZone::UTC);
    }
    // jiff's database leaves out `posix/` and `right/` (the latter counts
    // leap seconds): a name there is jiff's to refuse, as it always was.
    let plain = !name.starts_with('/')
        && !name.starts_with("posix/")
        && !name.starts_with("right/")
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if plain {
        let dir = std::env::var_os("TZDIR")
            .map_or_else(|| PathBuf::from("/usr/share/zoneinfo"), PathBuf::from);
        if let Some(tz) = std::fs::read(dir.join(name))
            .ok()
            .and_then(|data| TimeZone::tzif(name, &data).ok())
        {
            return Ok(tz);
        }
    }
    TimeZone::get(name)
}

/// The system's zone: like `TimeZone::system()`, but when /etc/localtime
/// links to a zone file, that one zone is looked up by [`named`] (jiff's
/// own lookup of the link's name builds the whole database).
pub fn system() -> TimeZone {
    if std::env::var_os("TZ").is_none()
        && let Ok(target) = std::fs::read_link("/etc/localtime")
        && let Some((_, name)) = target.to_str().and_then(|t| t.rsplit_once("zoneinfo/"))
        && let Ok(tz) = named(name)
    {
        return tz;
    }
    TimeZone::system()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_is_built_in_and_a_named_zone_is_its_tzif_file() {
        assert_eq!(named("UTC").unwrap(), TimeZone::UTC);
        assert_eq!(named("utc").unwrap(), TimeZone::UTC);
        if std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
            let berlin = named("Europe/Berlin").unwrap();
            assert_eq!(berlin.iana_name(), Some("Europe/Berlin"));
            let summer: jiff::Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
            assert_eq!(berlin.to_offset(summer).seconds(), 7200);
        }
    }

    #[test]
    fn names_that_climb_out_of_the_zone_directory_are_left_to_jiff() {
        assert!(named("../../etc/passwd").is_err());
        assert!(named("/etc/passwd").is_err());
        assert!(named("No/Such_Zone").is_err());
    }

    /// The zone files jiff's database leaves out are no zones here either,
    /// as before the direct lookup (`right/` ones count leap seconds).
    #[test]
    fn names_only_as_jiffs_database_knows_them() {
        for name in ["right/Europe/Berlin", "posix/Europe/Berlin", "right/UTC"] {
            assert_eq!(named(name).is_ok(), TimeZone::get(name).is_ok(), "{name}");
        }
    }
}

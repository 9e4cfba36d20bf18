//! Config errors in freshd's own words: what the TOML parser and the cron
//! parser say, turned into a message that names the key and says what
//! would be valid (DESIGN §3).
//!
//! - A wrong type names the key, not the value: `every = 30` is
//!   "expected a duration such as "30s", found the integer 30".
//! - An unknown key suggests the nearest valid one.
//! - A cron error names the field ("minute 65 is out of range 0–59").

use super::Problem;
use super::line_col;

/// Keys whose values are durations written as strings.
const DURATION_KEYS: &[&str] = &[
    "every",
    "timeout",
    "refresh_before_expiry",
    "refresh_token_lifetime",
    "shutdown_grace",
];

/// Turns a TOML syntax or type error into a [`Problem`] at its place.
pub(super) fn toml_problem(text: &str, e: &toml::de::Error) -> Problem {
    let start = e.span().map_or(0, |s| s.start);
    let (line, column) = line_col(text, start);
    let table = enclosing_table(text, start);
    let message = e.message().trim().to_owned();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return unknown_key(line, column, &table, rest);
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let key = key_before(text, start);
        let dotted = join(&table, &key);
        return Problem {
            line,
            column,
            message: wrong_type(&key, rest),
            key: dotted,
        };
    }
    let word = e
        .span()
        .and_then(|s| text.get(s))
        .map(|s| s.trim().trim_matches('"').to_owned())
        .filter(|s| !s.is_empty() && s.chars().all(is_key_char))
        .unwrap_or_default();
    let key = if message.starts_with("missing") || message.contains(&format!("`{word}`")) {
        join(&table, &word)
    } else {
        join(&table, "")
    };
    Problem {
        line,
        column,
        key,
        message,
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_')
}

fn join(table: &str, key: &str) -> String {
    match (table, key) {
        ("", "") => "(top level)".to_owned(),
        ("", k) => k.to_owned(),
        (t, "") => t.to_owned(),
        (t, k) => format!("{t}.{k}"),
    }
}

/// `` `job`, expected one of `daemon`, `accounts`, `jobs` `` → a problem
/// that suggests the nearest valid key.
fn unknown_key(line: usize, column: usize, table: &str, rest: &str) -> Problem {
    let names: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let (unknown, valid) = names.split_first().map_or(("", &[][..]), |(u, v)| (*u, v));
    let nearest = valid
        .iter()
        .map(|v| (distance(unknown, v), *v))
        .filter(|(d, v)| *d <= 2.max(v.len() / 3))
        .min();
    let hint = match nearest {
        Some((_, v)) => format!("did you mean `{v}`? "),
        None => String::new(),
    };
    let list: Vec<String> = valid.iter().map(|v| format!("`{v}`")).collect();
    Problem {
        line,
        column,
        key: join(table, unknown),
        message: format!(
            "unknown key `{unknown}`; {hint}valid here: {} (`man freshd.toml` lists every key)",
            list.join(", ")
        ),
    }
}

/// The key whose value starts at `offset`: the name before the `=` that
/// precedes it on its line (inside an inline table, `outer.inner`).
fn key_before(text: &str, offset: usize) -> String {
    let before = text.get(..offset.min(text.len())).unwrap_or_default();
    let line = before.rsplit('\n').next().unwrap_or_default();
    let mut keys = Vec::new();
    let mut rest = line;
    while let Some(eq) = rest.find('=') {
        let name: String = rest[..eq]
            .trim_end()
            .trim_end_matches('"')
            .chars()
            .rev()
            .take_while(|c| is_key_char(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if !name.is_empty() {
            keys.push(name);
        }
        rest = &rest[eq + 1..];
        // Only keys that open an inline table keep their place in the path.
        if !rest.trim_start().starts_with('{') {
            break;
        }
    }
    keys.join(".")
}

/// `integer `30`, expected a string` for key `every` → "expected a duration
/// such as "30s", found the integer 30".
fn wrong_type(key: &str, rest: &str) -> String {
    let (found, expected) = rest
        .split_once(", expected ")
        .unwrap_or((rest, "something else"));
    let found = found.replace('`', "");
    let found = match found.split_once(' ') {
        Some((kind, value)) => format!("the {kind} {value}"),
        None => format!("a {found}"),
    };
    let last = key.rsplit('.').next().unwrap_or(key);
    let expected = if DURATION_KEYS.contains(&last) {
        "a duration such as \"30s\", \"5m\" or \"1h 30m\" (in quotes)".to_owned()
    } else {
        match expected.trim() {
            "a string" => "a string (in quotes)".to_owned(),
            "a sequence" => "a list such as [\"a\", \"b\"]".to_owned(),
            "i64" | "u64" | "an integer" => "a whole number".to_owned(),
            "a boolean" => "true or false".to_owned(),
            e if e.starts_with("struct") || e.starts_with("a map") => {
                "a table such as { kind = \"…\" }".to_owned()
            }
            e => e.to_owned(),
        }
    };
    format!("expected {expected}, found {found}")
}

/// Edit distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The `[table]` header above byte `offset`, without brackets.
pub(super) fn enclosing_table(text: &str, offset: usize) -> String {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim()
                .replace('"', "")
        })
        .unwrap_or_default()
}

/// The cron fields in order, with their names and ranges, for 5 fields
/// (6 put seconds first).
const FIELDS: [(&str, u32, u32); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// What is wrong with `pattern`, field by field, in freshd's words; `None`
/// when every field looks right (the cron parser's word is then used).
pub(super) fn cron_problem(pattern: &str) -> Option<String> {
    let parts: Vec<&str> = pattern.split_whitespace().collect();
    let fields = match parts.len() {
        5 => &FIELDS[1..],
        6 => &FIELDS[..],
        n => {
            return Some(format!(
                "it has {n} fields; write 5 (minute hour day-of-month month day-of-week, e.g. \"0 6 * * MON\") or 6 with seconds first"
            ));
        }
    };
    parts
        .iter()
        .zip(fields)
        .find_map(|(part, &(name, lo, hi))| field_problem(part, name, lo, hi))
}

fn field_problem(part: &str, name: &str, lo: u32, hi: u32) -> Option<String> {
    for item in part.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step
            && step.parse::<u32>().map_or(true, |s| s == 0 || s > hi)
        {
            return Some(format!(
                "{name} step \"/{step}\" is not a number from 1 to {hi}"
            ));
        }
        if matches!(range, "*" | "?") || range.contains(['L', 'W', '#']) {
            continue;
        }
        let ends = range
            .split_once('-')
            .map_or((range, None), |(a, b)| (a, Some(b)));
        for value in [Some(ends.0), ends.1].into_iter().flatten() {
            let number = value.parse::<u32>().ok().or_else(|| named(value, name));
            match number {
                Some(n) if (lo..=hi).contains(&n) => {}
                Some(n) => return Some(format!("{name} {n} is out of range {lo}–{hi}")),
                None => {
                    return Some(format!(
                        "{name} \"{value}\" is not a number from {lo} to {hi}{}",
                        match name {
                            "month" => " or JAN–DEC",
                            "day of week" => " or SUN–SAT",
                            _ => "",
                        }
                    ));
                }
            }
        }
    }
    None
}

/// `MON` → 1, `JAN` → 1, for the fields that take names.
fn named(value: &str, field: &str) -> Option<u32> {
    let upper = value.to_ascii_uppercase();
    let list: &[&str] = match field {
        "month" => &MONTHS,
        "day of week" => &DAYS,
        _ => return None,
    };
    let i = list.iter().position(|n| *n == upper)?;
    u32::try_from(i)
        .ok()
        .map(|i| if field == "month" { i + 1 } else { i })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_errors_name_the_field() {
        assert_eq!(
            cron_problem("65 * * * *").unwrap(),
            "minute 65 is out of range 0–59"
        );
        assert_eq!(
            cron_problem("0 25 * * *").unwrap(),
            "hour 25 is out of range 0–23"
        );
        assert_eq!(
            cron_problem("0 6 * * FUN").unwrap(),
            "day of week \"FUN\" is not a number from 0 to 7 or SUN–SAT"
        );
        assert_eq!(
            cron_problem("*/0 * * * *").unwrap(),
            "minute step \"/0\" is not a number from 1 to 59"
        );
        assert!(
            cron_problem("0 6 * *")
                .unwrap()
                .starts_with("it has 4 fields")
        );
        assert_eq!(cron_problem("0 6 * * MON-FRI"), None);
        assert_eq!(cron_problem("*/15 0-6,22 1 JAN *"), None);
        assert_eq!(cron_problem("30 0 6 * * MON"), None);
    }

    #[test]
    fn nearest_keys() {
        assert_eq!(distance("job", "jobs"), 1);
        assert_eq!(distance("evry", "every"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn keys_of_values() {
        assert_eq!(key_before("every = 30", 8), "every");
        assert_eq!(key_before("source = { kind = 5 }", 17), "source.kind");
        assert_eq!(key_before("\"every\" = 30", 10), "every");
    }
}

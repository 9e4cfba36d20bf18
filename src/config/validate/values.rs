//! Checks of single values shared by every table: durations, sizes, URLs,
//! paths, commands, names and choices. Each check that fails adds a
//! [`Problem`] to the [`Ctx`] and gives `None`, so validation goes on.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use crate::config::{Problem, line_col};

const DURATION_HINT: &str = "write a duration such as \"30s\", \"5m\" or \"1h 30m\"";

/// What one run of validation has found so far.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub(super) text: &'a str,
    pub(super) problems: Vec<Problem>,
    /// Parsed cron patterns, shared by every job that uses the same one.
    pub(super) crons: HashMap<String, Arc<croner::Cron>>,
    /// Texts many jobs repeat (a pattern, a zone's name), held once.
    shared: std::collections::HashSet<Arc<str>>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Ctx {
            text,
            problems: Vec::new(),
            crons: HashMap::new(),
            shared: std::collections::HashSet::new(),
        }
    }

    /// `text`, shared with every other job that repeats it.
    pub(super) fn shared(&mut self, text: &str) -> Arc<str> {
        if let Some(s) = self.shared.get(text) {
            return Arc::clone(s);
        }
        let s: Arc<str> = Arc::from(text);
        self.shared.insert(Arc::clone(&s));
        s
    }

    /// Adds a problem with the value at `span`, under the dotted `key`.
    pub fn problem(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.problems.push(Problem {
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    pub fn duration(&mut self, value: &Spanned<String>, key: &str) -> Option<Duration> {
        self.parsed(value, key, parse_duration)
    }

    pub fn size(&mut self, value: &Spanned<String>, key: &str) -> Option<u64> {
        self.parsed(value, key, parse_size)
    }

    /// `value` parsed by `parse`, whose error is the problem.
    fn parsed<T>(
        &mut self,
        value: &Spanned<String>,
        key: &str,
        parse: fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        parse(value.get_ref())
            .map_err(|msg| self.problem(value.span(), key, msg))
            .ok()
    }

    /// Whether the name of an account or a job (`what`, in `[table.NAME]`)
    /// is valid; a problem if not.
    pub(super) fn name(&mut self, name: &Spanned<String>, table: &str, what: &str) -> bool {
        let n = name.get_ref();
        let ok = valid_name(n);
        if !ok {
            self.problem(
                name.span(),
                &format!("{table}.{n}"),
                format!("\"{n}\" is not a valid {what} name; {NAME_RULE}"),
            );
        }
        ok
    }

    /// The choice named by `value`, or a problem that lists the names.
    pub fn one_of<T: Copy>(
        &mut self,
        value: &Spanned<String>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        if let Some((_, v)) = choices.iter().find(|(name, _)| *name == value.get_ref()) {
            return Some(*v);
        }
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        self.problem(
            value.span(),
            key,
            format!(
                "\"{}\" is not valid; use one of {}",
                value.get_ref(),
                quoted_list(&names)
            ),
        );
        None
    }

    /// An http(s) URL, exactly as written: some token endpoints end in `/`.
    pub fn url(&mut self, value: &Spanned<String>, key: &str) -> Option<String> {
        match reqwest::Url::parse(value.get_ref()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Some(value.get_ref().clone())
            }
            _ => {
                self.problem(
                    value.span(),
                    key,
                    format!(
                        "\"{}\" is not an http(s) URL; write e.g. \"https://accounts.example.com/oauth/token\"",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }

    pub fn absolute_path(&mut self, value: &Spanned<String>, key: &str) -> Option<PathBuf> {
        let path = PathBuf::from(value.get_ref());
        if path.is_absolute() {
            return Some(path);
        }
        self.problem(
            value.span(),
            key,
            format!(
                "\"{}\" is not an absolute path; write e.g. \"/run/user/1000/freshd.sock\"",
                value.get_ref()
            ),
        );
        None
    }

    /// A path that may be relative (to the state directory), but not empty.
    pub fn relative_or_absolute(&mut self, value: &Spanned<String>, key: &str) -> Option<PathBuf> {
        if value.get_ref().trim().is_empty() {
            self.problem(value.span(), key, "the path is empty; write a file name such as \"out.json\" (relative paths live in the state directory)");
            return None;
        }
        Some(PathBuf::from(value.get_ref()))
    }

    /// A program and its arguments, with a program.
    pub fn argv(&mut self, value: &Spanned<Vec<String>>, key: &str) -> Option<Vec<String>> {
        if value.get_ref().first().is_none_or(|p| p.is_empty()) {
            self.problem(
                value.span(),
                key,
                "the command is empty; write the program and its arguments as a list, e.g. [\"/usr/local/bin/radio-to-playlist\", \"--station\", \"fip\"]",
            );
            return None;
        }
        Some(value.get_ref().clone())
    }
}

/// `"a", "b", "c"`: names as the messages list them.
pub fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    quoted.join(", ")
}

/// Parses the durations the config accepts: jiff's friendly format
/// (`"30s"`, `"5m"`, `"1h 30m"`, `"2 days"`) or ISO 8601 (`"PT30S"`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let not_a_duration = || format!("\"{text}\" is not a duration; {DURATION_HINT}");
    let span: jiff::Span = text.trim().parse().map_err(|_| not_a_duration())?;
    let parsed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| {
            format!("\"{text}\" has months or years, whose length varies; {DURATION_HINT}")
        })?;
    if parsed.is_negative() || parsed.is_zero() {
        return Err(format!(
            "\"{text}\" is not a positive duration; {DURATION_HINT}"
        ));
    }
    Duration::try_from(parsed).map_err(|_| not_a_duration())
}

/// Parses a size: a whole number of bytes with a unit, `"512KiB"`,
/// `"16MiB"`, `"1GiB"` (also `B`, `KB`, `MB`, `GB` in powers of 1000).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "\"{text}\" is not a size; write a number and a unit, e.g. \"16MiB\" (units B, KiB, MiB, GiB, KB, MB, GB)"
        )
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim() {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(bad()),
    };
    match number.checked_mul(scale) {
        Some(0) => Err(format!("\"{text}\" is not a positive size")),
        Some(n) => Ok(n),
        None => Err(bad()),
    }
}

/// Names of accounts and jobs go into key names, file names and journal
/// fields, so they are kept to a safe alphabet.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.len() <= 64
}

const NAME_RULE: &str = "names start with a letter or digit, then letters, digits, '-', '_' or '.', at most 64 characters";

//! `[jobs.NAME]`: the keys every job has (account, type, trigger, timeout),
//! then the job type's own, checked by the type itself through a
//! [`JobCheck`]. Which types exist and which keys each takes comes from the
//! registry that validation is given ([`JobTypes`]; `jobs::TYPES`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use toml::Spanned;

use super::daemon::timezone;
use super::values::{Ctx, quoted_list};
use crate::config::raw::{Keys, RawAccount, RawJob, RawTable, Shape};
use crate::config::{Job, Registered, Trigger};

/// Default job `timeout`: long enough for a playlist of thousands of items
/// at Spotify's pace, short enough that a hung job is noticed within a day.
const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The shortest `every`: anything faster is a busy loop against a provider.
const MIN_EVERY: Duration = Duration::from_secs(1);

/// The keys of every job, whatever its type.
const COMMON_JOB_KEYS: &Keys = &[
    ("account", Shape::Text),
    ("type", Shape::Text),
    ("schedule", Shape::Text),
    ("every", Shape::Text),
    ("timezone", Shape::Text),
    ("timeout", Shape::Text),
];

/// Every key a `[jobs.NAME]` table may have: the common ones, then each
/// type's in the registry's order (a key two types share, once).
pub fn job_keys<B>(types: &[Registered<B>]) -> Vec<(&'static str, Shape)> {
    let mut keys = COMMON_JOB_KEYS.to_vec();
    for (key, shape) in types.iter().flat_map(|t| t.keys.iter()) {
        if !keys.iter().any(|(k, _)| k == key) {
            keys.push((key, *shape));
        }
    }
    keys
}

/// The job types of one validation, with the keys they take together.
#[derive(Debug)]
pub(super) struct JobTypes<'t, B> {
    types: &'t [Registered<B>],
    /// [`job_keys`] of `types`.
    pub(super) keys: Vec<(&'static str, Shape)>,
}

impl<'t, B> JobTypes<'t, B> {
    pub(super) fn new(types: &'t [Registered<B>]) -> Self {
        JobTypes {
            types,
            keys: job_keys(types),
        }
    }
}

/// One job's type-specific keys, as its type's check sees them.
#[derive(Debug)]
pub struct JobCheck<'c, 'a> {
    cx: &'c mut Ctx<'a>,
    name: &'c str,
    raw: &'c RawTable,
    span: Range<usize>,
    /// The job's trigger, when it is valid.
    pub trigger: Option<&'c Trigger>,
}

impl<'c> JobCheck<'c, '_> {
    /// The job's table.
    pub fn raw(&self) -> &'c RawTable {
        self.raw
    }

    /// The dotted key of the job's `key`: `jobs.NAME.KEY`.
    pub fn key(&self, key: &str) -> String {
        format!("jobs.{}.{key}", self.name)
    }

    /// A problem with the value at `span`, under the job's `key`.
    pub fn problem(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let key = self.key(key);
        self.cx.problem(span, &key, message);
    }

    /// A problem with the job's table as a whole, such as a missing key.
    pub fn missing(&mut self, key: &str, message: impl Into<String>) {
        self.problem(self.span.clone(), key, message);
    }

    /// The choice named by `value` (see [`Ctx::one_of`]).
    pub fn one_of<T: Copy>(
        &mut self,
        value: &Spanned<String>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let key = self.key(key);
        self.cx.one_of(value, &key, choices)
    }

    /// A program and its arguments (see [`Ctx::argv`]).
    pub fn argv(&mut self, value: &Spanned<Vec<String>>, key: &str) -> Option<Vec<String>> {
        let key = self.key(key);
        self.cx.argv(value, &key)
    }

    /// A path, relative to the state directory or absolute.
    pub fn path(&mut self, value: &Spanned<String>, key: &str) -> Option<PathBuf> {
        let key = self.key(key);
        self.cx.relative_or_absolute(value, &key)
    }

    /// An http(s) URL (see [`Ctx::url`]).
    pub fn url(&mut self, value: &Spanned<String>, key: &str) -> Option<String> {
        let key = self.key(key);
        self.cx.url(value, &key)
    }

    /// A size such as `"16MiB"`.
    pub fn size(&mut self, value: &Spanned<String>, key: &str) -> Option<u64> {
        let key = self.key(key);
        self.cx.size(value, &key)
    }
}

pub(super) fn job<B>(
    cx: &mut Ctx<'_>,
    types: &JobTypes<'_, B>,
    name: &Spanned<String>,
    raw: &Spanned<RawJob>,
    accounts: &BTreeMap<Spanned<String>, Spanned<RawAccount>>,
    zone: Option<(&TimeZone, &str)>,
) -> Option<Job> {
    let n = name.get_ref();
    let ok_name = cx.name(name, "jobs", "job");
    let (r, span) = (&raw.get_ref().0, raw.span());
    let job_type = job_type(cx, types, n, r, span.clone())?;
    let account = account(cx, n, r, span.clone(), accounts);
    let trigger = trigger(cx, n, r, span.clone(), zone);
    let timeout = r.text("timeout").map_or(Some(DEFAULT_JOB_TIMEOUT), |t| {
        cx.duration(t, &format!("jobs.{n}.timeout"))
    });
    let kind = job_type.check(&mut JobCheck {
        cx,
        name: n,
        raw: r,
        span,
        trigger: trigger.as_ref(),
    });
    if !ok_name {
        return None;
    }
    Some(Job {
        name: n.clone(),
        account: account?,
        trigger: trigger?,
        timeout: timeout?,
        kind: kind?,
    })
}

/// The job's type from the registry, after a problem with each key that
/// belongs to another type.
fn job_type<'t, B>(
    cx: &mut Ctx<'_>,
    types: &JobTypes<'t, B>,
    n: &str,
    r: &RawTable,
    span: Range<usize>,
) -> Option<&'t Registered<B>> {
    let key = |k: &str| format!("jobs.{n}.{k}");
    let names: Vec<&str> = types.types.iter().map(|t| t.name).collect();
    let Some(kind) = r.text("type") else {
        cx.problem(
            span,
            &key("type"),
            format!("missing key `type`; use one of {}", quoted_list(&names)),
        );
        return None;
    };
    let type_name = kind.get_ref().as_str();
    let Some(job_type) = types.types.iter().find(|t| t.name == type_name) else {
        cx.problem(
            kind.span(),
            &key("type"),
            format!(
                "\"{type_name}\" is not a job type; use one of {}",
                quoted_list(&names)
            ),
        );
        return None;
    };
    let own = |k: &str| COMMON_JOB_KEYS.iter().any(|(c, _)| *c == k) || job_type.has_key(k);
    for (k, _) in &types.keys {
        if let Some(span) = r.span(k)
            && !own(k)
        {
            let valid: Vec<&str> = COMMON_JOB_KEYS
                .iter()
                .chain(job_type.keys)
                .map(|(k, _)| *k)
                .collect();
            cx.problem(
                span,
                &key(k),
                format!(
                    "`{k}` is not a key of a `{type_name}` job; its keys are {}",
                    valid.join(", ")
                ),
            );
        }
    }
    Some(job_type)
}

/// The job's account: one of the accounts in the file.
fn account(
    cx: &mut Ctx<'_>,
    n: &str,
    r: &RawTable,
    span: Range<usize>,
    accounts: &BTreeMap<Spanned<String>, Spanned<RawAccount>>,
) -> Option<Arc<str>> {
    let key = format!("jobs.{n}.account");
    let Some(a) = r.text("account") else {
        cx.problem(
            span,
            &key,
            "missing key `account`; name one of the [accounts.*] in this file",
        );
        return None;
    };
    // By key, not by a walk over every account: ten thousand accounts by a
    // hundred thousand jobs must not take a billion comparisons.
    if accounts.contains_key(a.get_ref().as_str()) {
        return Some(cx.shared(a.get_ref()));
    }
    let known: Vec<&str> = accounts.keys().map(|k| k.get_ref().as_str()).collect();
    let hint = if known.is_empty() {
        format!("add an [accounts.{}] table", a.get_ref())
    } else {
        format!("accounts in this file: {}", known.join(", "))
    };
    cx.problem(
        a.span(),
        &key,
        format!("no account named \"{}\"; {hint}", a.get_ref()),
    );
    None
}

/// When the job runs: `schedule` (cron, in a zone) or `every`.
fn trigger(
    cx: &mut Ctx<'_>,
    n: &str,
    r: &RawTable,
    span: Range<usize>,
    zone: Option<(&TimeZone, &str)>,
) -> Option<Trigger> {
    let key = |k: &str| format!("jobs.{n}.{k}");
    match (r.text("schedule"), r.text("every")) {
        (Some(_), Some(every)) => {
            cx.problem(
                every.span(),
                &key("every"),
                "give either `schedule` (cron) or `every` (an interval), not both",
            );
            None
        }
        (None, None) => {
            cx.problem(span, &key("schedule"), "missing key `schedule` or `every`; write e.g. schedule = \"0 6 * * MON\" (cron) or every = \"30s\"");
            None
        }
        (None, Some(every)) => interval(cx, n, r, every),
        (Some(schedule), None) => cron(cx, n, r, schedule, zone),
    }
}

fn interval(cx: &mut Ctx<'_>, n: &str, r: &RawTable, every: &Spanned<String>) -> Option<Trigger> {
    let key = |k: &str| format!("jobs.{n}.{k}");
    if let Some(tz) = r.text("timezone") {
        cx.problem(
            tz.span(),
            &key("timezone"),
            "`timezone` applies to `schedule` only; an `every` interval needs no zone",
        );
    }
    let d = cx.duration(every, &key("every"))?;
    if d < MIN_EVERY {
        cx.problem(
            every.span(),
            &key("every"),
            "the interval is shorter than 1s; write at least \"1s\"",
        );
        return None;
    }
    Some(Trigger::Every(d))
}

fn cron(
    cx: &mut Ctx<'_>,
    n: &str,
    r: &RawTable,
    schedule: &Spanned<String>,
    zone: Option<(&TimeZone, &str)>,
) -> Option<Trigger> {
    let key = |k: &str| format!("jobs.{n}.{k}");
    let cron = cron_pattern(cx, schedule, &key("schedule"))?;
    let (timezone, timezone_name) = match r.text("timezone") {
        Some(tz) => timezone(cx, tz, &key("timezone"))?,
        None => {
            let (tz, name) = zone?;
            (tz.clone(), name.to_owned())
        }
    };
    Some(Trigger::Cron {
        cron,
        pattern: cx.shared(schedule.get_ref()),
        timezone,
        timezone_name: cx.shared(&timezone_name),
    })
}

/// A cron pattern, parsed once however many jobs use it.
fn cron_pattern(
    cx: &mut Ctx<'_>,
    schedule: &Spanned<String>,
    key: &str,
) -> Option<Arc<croner::Cron>> {
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .dom_and_dow(false)
        .build();
    let parsed = match cx.crons.get(schedule.get_ref()).cloned() {
        Some(c) => Ok(c),
        None => parser.parse(schedule.get_ref()).map(Arc::new),
    };
    match parsed {
        Ok(c) => {
            cx.crons.insert(schedule.get_ref().clone(), Arc::clone(&c));
            Some(c)
        }
        Err(e) => {
            let why = crate::config::messages::cron_problem(schedule.get_ref())
                .unwrap_or_else(|| e.to_string());
            cx.problem(
                schedule.span(),
                key,
                format!(
                    "\"{}\" is not a cron pattern: {why}; write 5 fields (minute hour day-of-month month day-of-week, e.g. \"0 6 * * MON\") or 6 with seconds first",
                    schedule.get_ref()
                ),
            );
            None
        }
    }
}

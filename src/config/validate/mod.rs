//! The second stage: [`raw`](super::raw) values checked and turned into
//! [`Config`]. Every check adds a [`Problem`] and goes on, so that one run of
//! `freshd check` shows everything that is wrong.
//!
//! By concern: [`values`] (durations, URLs, paths, names), [`daemon`]
//! (`[daemon]` and time zones), [`account`] (`[accounts.NAME]`) and [`job`]
//! (`[jobs.NAME]`'s common keys; each job type checks its own keys in its
//! file under `src/jobs/`, through the registry that [`validate`] is given).

mod account;
mod daemon;
mod job;
mod values;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub use job::JobCheck;
#[cfg(test)]
pub(super) use job::job_keys;
#[cfg(test)]
pub(super) use values::parse_size;
pub use values::{Ctx, parse_duration, quoted_list};

use super::raw::{RawConfig, RawDaemonOnly, with_job_keys};
use super::{Config, Daemon, Problem, Registered};

/// Only the `[daemon]` table of `text`, checked; the rest is skipped.
pub(super) fn validate_daemon(text: &str) -> Result<Daemon, Vec<Problem>> {
    let raw: RawDaemonOnly =
        toml::from_str(text).map_err(|e| vec![super::messages::toml_problem(text, &e)])?;
    let mut cx = Ctx::new(text);
    match daemon::daemon(&mut cx, &raw.daemon) {
        Some(daemon) if cx.problems.is_empty() => Ok(daemon),
        _ => Err(cx.problems),
    }
}

pub(super) fn validate<B>(
    text: &str,
    path: &Path,
    private: bool,
    types: &[Registered<B>],
) -> Result<Config, Vec<Problem>> {
    let types = job::JobTypes::new(types);
    let raw: RawConfig = with_job_keys(&types.keys, || toml::from_str(text))
        .map_err(|e| vec![super::messages::toml_problem(text, &e)])?;
    let mut cx = Ctx::new(text);
    let daemon = daemon::daemon(&mut cx, &raw.daemon);
    let mut accounts = BTreeMap::new();
    for (name, acc) in &raw.accounts {
        if let Some(a) = account::account(&mut cx, name, acc, private) {
            accounts.insert(a.name.clone(), Arc::new(a));
        }
    }
    let mut jobs = BTreeMap::new();
    for (name, job) in &raw.jobs {
        let zone = daemon
            .as_ref()
            .map(|d| (&d.timezone, d.timezone_name.as_str()));
        if let Some(j) = job::job(&mut cx, &types, name, job, &raw.accounts, zone) {
            jobs.insert(j.name.clone(), Arc::new(j));
        }
    }
    match daemon {
        Some(daemon) if cx.problems.is_empty() => Ok(Config {
            path: path.to_owned(),
            daemon,
            accounts,
            jobs,
        }),
        _ => Err(cx.problems),
    }
}

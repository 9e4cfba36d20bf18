//! A job type as one unit: its keys, their validation and its body.
//!
//! Each type's file implements [`JobType`]; [`super::TYPES`] lists them
//! through [`register`], and everything that depends on the set of types
//! reads that list: the config's validation (the keys a `[jobs.NAME]` table
//! may have, the "not a key of a `TYPE` job" check, the list of types in the
//! messages) and [`super::body_for`]. A job's checked settings travel in the
//! config as a [`JobKind`], which only its own type looks into.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::JobBody;
use crate::config::{JobCheck, JobKind, JobSettings, Keys, Registered};

/// One job type.
pub trait JobType: 'static {
    /// What a job of this type is configured to do, checked.
    type Settings: fmt::Debug + PartialEq + Send + Sync + 'static;
    /// Its name, as in `type = "NAME"`.
    const NAME: &'static str;
    /// The keys it takes besides the common ones, in the order messages
    /// list them.
    const KEYS: &'static Keys;
    /// Checks this type's keys of one job: every problem goes to `job`, and
    /// `None` means there was one.
    fn check(job: &mut JobCheck<'_, '_>) -> Option<Self::Settings>;
    /// What one run does.
    fn body(settings: &Self::Settings) -> Arc<dyn JobBody>;
}

/// The registry line of `T`.
pub const fn register<T: JobType>() -> Registered<Arc<dyn JobBody>> {
    Registered::new(T::NAME, T::KEYS, check::<T>, body::<T>)
}

fn check<T: JobType>(job: &mut JobCheck<'_, '_>) -> Option<JobKind> {
    T::check(job).map(|settings| JobKind::new(Typed::<T>(settings)))
}

/// `None` only for a kind that [`check`] did not make for `T`.
fn body<T: JobType>(kind: &JobKind) -> Option<Arc<dyn JobBody>> {
    kind.settings::<T::Settings>().map(T::body)
}

/// `T`'s settings, as the config holds them.
struct Typed<T: JobType>(T::Settings);

impl<T: JobType> JobSettings for Typed<T> {
    fn type_name(&self) -> &'static str {
        T::NAME
    }

    fn as_any(&self) -> &dyn Any {
        &self.0
    }

    fn same_as(&self, other: &dyn JobSettings) -> bool {
        other.type_name() == T::NAME
            && other
                .as_any()
                .downcast_ref::<T::Settings>()
                .is_some_and(|o| *o == self.0)
    }
}

impl<T: JobType> fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use crate::config::Config;
    use crate::jobs::{TYPES, body_for};

    #[test]
    fn every_type_checks_its_jobs_into_kinds_that_its_body_takes() {
        let text = include_str!("../../config/freshd.toml");
        let config = Config::parse(text, Path::new("freshd.toml"), true, TYPES).unwrap();
        let mut seen = BTreeSet::new();
        for job in config.jobs.values() {
            let line = TYPES.iter().find(|t| t.name == job.kind.type_name());
            assert!(line.unwrap().body(&job.kind).is_some(), "{}", job.name);
            for other in TYPES.iter().filter(|t| t.name != job.kind.type_name()) {
                assert!(other.body(&job.kind).is_none(), "{}", job.name);
            }
            let _ = body_for(job);
            seen.insert(job.kind.type_name());
        }
        let all: BTreeSet<&str> = TYPES.iter().map(|t| t.name).collect();
        assert_eq!(seen, all, "config/freshd.toml has a job of every type");
    }
}

//! A job type as one unit: its keys, their validation and its body.
//!
//! Each type's file implements [`JobType`]; [`super::TYPES`] lists them, and
//! everything that depends on the set of types reads that list: the keys a
//! `[jobs.NAME]` table may have (so the "unknown key" error and its "did you
//! mean"), the "not a key of a `TYPE` job" check, the list of types in the
//! messages, and the body a job runs. A job's checked settings travel as a
//! [`JobKind`], which only its own type looks into.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::JobBody;
use crate::config::{JobCheck, Keys};

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

/// A line of the registry: a [`JobType`] behind plain values.
#[derive(Debug, Clone, Copy)]
pub struct Registered {
    pub name: &'static str,
    pub keys: &'static Keys,
    check: fn(&mut JobCheck<'_, '_>) -> Option<JobKind>,
}

impl Registered {
    pub const fn of<T: JobType>() -> Registered {
        Registered {
            name: T::NAME,
            keys: T::KEYS,
            check: check::<T>,
        }
    }

    /// Checks this type's keys of one job (see [`JobType::check`]).
    pub fn check(&self, job: &mut JobCheck<'_, '_>) -> Option<JobKind> {
        (self.check)(job)
    }

    /// Whether `key` is one of this type's own.
    pub fn has_key(&self, key: &str) -> bool {
        self.keys.iter().any(|(k, _)| *k == key)
    }
}

fn check<T: JobType>(job: &mut JobCheck<'_, '_>) -> Option<JobKind> {
    T::check(job).map(|settings| JobKind(Arc::new(Typed::<T>(settings))))
}

/// What a job does: its type and that type's checked settings.
#[derive(Clone)]
pub struct JobKind(Arc<dyn Settings>);

impl JobKind {
    /// The type's name, as in `type = "NAME"`.
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// The settings, if they are an `S`.
    pub fn settings<S: 'static>(&self) -> Option<&S> {
        self.0.settings().downcast_ref()
    }

    /// A new body for one job of this kind.
    pub fn body(&self) -> Arc<dyn JobBody> {
        self.0.body()
    }
}

impl PartialEq for JobKind {
    fn eq(&self, other: &Self) -> bool {
        self.type_name() == other.type_name() && self.0.same_as(other.0.settings())
    }
}

impl fmt::Debug for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.type_name(), self.0)
    }
}

/// A type's settings with the type erased.
trait Settings: fmt::Debug + Send + Sync {
    fn type_name(&self) -> &'static str;
    fn settings(&self) -> &dyn Any;
    fn same_as(&self, other: &dyn Any) -> bool;
    fn body(&self) -> Arc<dyn JobBody>;
}

struct Typed<T: JobType>(T::Settings);

impl<T: JobType> Settings for Typed<T> {
    fn type_name(&self) -> &'static str {
        T::NAME
    }

    fn settings(&self) -> &dyn Any {
        &self.0
    }

    fn same_as(&self, other: &dyn Any) -> bool {
        other
            .downcast_ref::<T::Settings>()
            .is_some_and(|o| *o == self.0)
    }

    fn body(&self) -> Arc<dyn JobBody> {
        T::body(&self.0)
    }
}

impl<T: JobType> fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

//! What the config knows of job types: a registry line ([`Registered`]) gives
//! a type's name, its keys and its check, and a checked job carries its
//! settings as a [`JobKind`].
//!
//! The registry itself is `jobs::TYPES`, one line per type, each made from
//! that type's file under `src/jobs/`. It reaches validation as a parameter
//! of [`super::Config::parse`], and a line's body is of a type `B` the config
//! never names, so that the config does not import the jobs, which import it.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::{JobCheck, Keys};

/// A line of the job type registry: one type behind plain values. `B` is
/// what a job of the type runs (the jobs' body), which the config only
/// passes along.
#[derive(Debug)]
pub struct Registered<B> {
    /// As in `type = "NAME"`.
    pub name: &'static str,
    /// The keys it takes besides the common ones, in the order messages
    /// list them.
    pub keys: &'static Keys,
    check: fn(&mut JobCheck<'_, '_>) -> Option<JobKind>,
    body: fn(&JobKind) -> Option<B>,
}

impl<B> Registered<B> {
    /// A line from a type's name, keys, check and body. `check` makes the
    /// [`JobKind`]s that `body` turns into what a job runs; `body` gives
    /// `None` for a kind that `check` did not make.
    pub const fn new(
        name: &'static str,
        keys: &'static Keys,
        check: fn(&mut JobCheck<'_, '_>) -> Option<JobKind>,
        body: fn(&JobKind) -> Option<B>,
    ) -> Self {
        Registered {
            name,
            keys,
            check,
            body,
        }
    }

    /// Checks this type's keys of one job: every problem goes to `job`, and
    /// `None` means there was one.
    pub fn check(&self, job: &mut JobCheck<'_, '_>) -> Option<JobKind> {
        (self.check)(job)
    }

    /// What a job of `kind` runs, if `kind` is of this type.
    pub fn body(&self, kind: &JobKind) -> Option<B> {
        if kind.type_name() != self.name {
            return None;
        }
        (self.body)(kind)
    }

    /// Whether `key` is one of this type's own.
    pub fn has_key(&self, key: &str) -> bool {
        self.keys.iter().any(|(k, _)| *k == key)
    }
}

/// A type's checked settings with the type erased: what the config needs of
/// them (a name, a comparison for reload, a debug form).
pub trait JobSettings: fmt::Debug + Send + Sync + 'static {
    /// The type's name, as in `type = "NAME"`.
    fn type_name(&self) -> &'static str;
    /// The settings themselves, for their own type to look into.
    fn as_any(&self) -> &dyn Any;
    /// Whether `other` is the same type with equal settings.
    fn same_as(&self, other: &dyn JobSettings) -> bool;
}

/// What a job does: its type and that type's checked settings.
#[derive(Clone)]
pub struct JobKind(Arc<dyn JobSettings>);

impl JobKind {
    pub fn new(settings: impl JobSettings) -> Self {
        JobKind(Arc::new(settings))
    }

    /// The type's name, as in `type = "NAME"`.
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// The settings, if they are an `S`.
    pub fn settings<S: 'static>(&self) -> Option<&S> {
        self.0.as_any().downcast_ref()
    }
}

impl PartialEq for JobKind {
    fn eq(&self, other: &Self) -> bool {
        self.type_name() == other.type_name() && self.0.same_as(&*other.0)
    }
}

impl fmt::Debug for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.type_name(), self.0)
    }
}

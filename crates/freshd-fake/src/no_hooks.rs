//! `hooks.rs` without the `testing` feature: no faults, no records, no
//! `/admin`, so the release binary's `freshd demo` carries none of them.

use crate::http::HttpResponse;

/// Nothing to hold.
#[derive(Debug, Default)]
pub(crate) struct Hooks;

impl Hooks {
    /// Nothing is injected.
    pub(crate) fn injected(&mut self) -> Result<Option<String>, HttpResponse> {
        Ok(None)
    }

    /// Nothing is injected.
    pub(crate) fn injected_for(&mut self, _user: &str) -> Result<Option<String>, HttpResponse> {
        Ok(None)
    }

    /// Nothing is recorded.
    pub(crate) fn issued(&mut self, _secret: &str) {}

    /// Nothing is recorded.
    pub(crate) fn rotated(&mut self, _user: &str) {}

    /// `/authorize` always grants.
    pub(crate) fn denies(&self) -> bool {
        false
    }
}

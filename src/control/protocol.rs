//! What crosses the control socket: one [`Request`] line from the client,
//! one [`Response`] line from the daemon, both JSON.
//!
//! Every answer is one kind of [`Response`], tagged by `"answer"`; the
//! daemon never picks an exit code: the client maps each kind to one, in
//! `client::exit_code`. The client and the daemon ship together, so a new
//! kind needs no compatibility shim; requests keep their shape.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::status::{JobResult, StatusReport};

/// What a client asks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
    Reload,
    RunJob {
        job: String,
    },
    Token {
        account: String,
    },
    /// The store's token for `account` changed (a login, import or logout):
    /// look again, and answer once it is in use.
    Adopt {
        account: String,
        /// The SHA-256 (hex) of the token the client stored, so the daemon
        /// can tell whether its own rotation raced the client's write.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fingerprint: Option<String>,
    },
}

/// The daemon's answer: one kind per outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Response {
    /// `reload`: the new configuration runs.
    Reloaded,
    Status {
        report: Box<StatusReport>,
    },
    Token {
        token: TokenText,
    },
    /// `run-job`: the run ended; `detail` says why when it was not ok.
    JobFinished {
        result: JobResult,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// `adopt`: what the daemon did with the token in the store.
    Adopted {
        adoption: Adoption,
    },
    /// The request was not done: `refusal` says why, `error` says it to a
    /// person.
    Refused {
        refusal: Refusal,
        error: String,
    },
}

impl Response {
    pub fn refused(refusal: Refusal, error: impl Into<String>) -> Self {
        Response::Refused {
            refusal,
            error: error.into(),
        }
    }
}

/// What `adopt` did with the token in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adoption {
    /// The new token is in use (its first refresh worked).
    Working,
    /// The daemon already used this token.
    Unchanged,
    /// The store holds no token any more; the account has none now.
    Removed,
    /// The daemon's own rotation was written over the client's token: the
    /// client stores its token again.
    Raced,
}

/// Why a request was not done; the client's exit code follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Not a request freshd knows, or it names no job or account it has.
    Usage,
    /// The configuration or the credentials need a person.
    NeedsPerson,
    /// Anything else: shutting down, busy, a store that cannot be read.
    Failed,
}

/// An access token on its way to `freshd token`; never printed by `Debug`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct TokenText(pub String);

impl fmt::Debug for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_tagged_by_kind() {
        let line =
            serde_json::to_string(&Response::refused(Refusal::NeedsPerson, "log in")).unwrap();
        assert_eq!(
            line,
            r#"{"answer":"refused","refusal":"needs_person","error":"log in"}"#
        );
        let ran = Response::JobFinished {
            result: JobResult::Skipped,
            detail: Some("nothing playing".into()),
        };
        let line = serde_json::to_string(&ran).unwrap();
        assert_eq!(
            line,
            r#"{"answer":"job_finished","result":"skipped","detail":"nothing playing"}"#
        );
        assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), ran);
    }

    #[test]
    fn requests_keep_their_shape() {
        let line = serde_json::to_string(&Request::RunJob { job: "j".into() }).unwrap();
        assert_eq!(line, r#"{"command":"run_job","job":"j"}"#);
    }

    #[test]
    fn a_token_is_not_debug_printed() {
        let answer = Response::Token {
            token: TokenText("secret".into()),
        };
        assert!(!format!("{answer:?}").contains("secret"));
    }
}

//! What crosses the control socket: one [`Request`] line from the client,
//! one [`Response`] line from the daemon, both JSON.
//!
//! Every answer is one kind of [`Response`], tagged by `"answer"`; the
//! daemon never picks an exit code: the client maps each kind to one, in
//! `client::exit_code`. Requests keep their shape. A daemon started before
//! an upgrade (the package does not restart it) answers in the first
//! version's shape, `{"ok": …}`: [`Response::read`] understands both.

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

impl Response {
    /// Reads the daemon's answer to `request`: this version's shape, or the
    /// first version's (`ok`, `error`, `exit_code`, `status`, `token`,
    /// `result`) from a daemon started before an upgrade.
    pub fn read(line: &str, request: &Request) -> Result<Response, serde_json::Error> {
        Response::read_bytes(line.as_bytes(), request)
    }

    /// [`Response::read`] of the line's bytes (surrounding white space
    /// allowed).
    pub fn read_bytes(line: &[u8], request: &Request) -> Result<Response, serde_json::Error> {
        // A status is read straight into its report: the tagged enum would
        // first copy every value of a hundred thousand jobs into serde's
        // generic buffer and read them again from there.
        if matches!(request, Request::Status)
            && let Ok(status) = serde_json::from_slice::<StatusAnswer>(line)
        {
            return Ok(Response::Status {
                report: status.report,
            });
        }
        match serde_json::from_slice::<Response>(line) {
            Ok(answer) => Ok(answer),
            Err(e) => match serde_json::from_slice::<FirstVersion>(line) {
                Ok(old) => Ok(old.into_response(request)),
                Err(_) => Err(e),
            },
        }
    }
}

/// [`Response::Status`] as a plain struct, which serde reads in one pass.
/// Any other answer fails at its tag, and is read as a [`Response`].
#[derive(Deserialize)]
struct StatusAnswer {
    #[expect(dead_code, reason = "only checked: it must say status")]
    answer: StatusTag,
    report: Box<StatusReport>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum StatusTag {
    Status,
}

/// An answer as daemons before the typed protocol wrote it.
#[derive(Deserialize)]
struct FirstVersion {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    exit_code: Option<u8>,
    #[serde(default)]
    status: Option<Box<StatusReport>>,
    #[serde(default)]
    token: Option<TokenText>,
    #[serde(default)]
    result: Option<String>,
}

impl FirstVersion {
    fn into_response(self, request: &Request) -> Response {
        let error = self.error.unwrap_or_default();
        let job_result = match self.result.as_deref() {
            Some("ok") => Some(JobResult::Ok),
            Some("error") => Some(JobResult::Error),
            Some("skipped") => Some(JobResult::Skipped),
            _ => None,
        };
        match (request, self.ok) {
            (Request::RunJob { .. }, _) if job_result.is_some() => Response::JobFinished {
                result: job_result.unwrap_or(JobResult::Error),
                detail: (!self.ok).then(|| {
                    let detail = error.split_once(": ").map_or(error.as_str(), |(_, d)| d);
                    detail.to_owned()
                }),
            },
            (_, false) => Response::refused(
                match self.exit_code {
                    Some(2) => Refusal::Usage,
                    Some(78) => Refusal::NeedsPerson,
                    _ => Refusal::Failed,
                },
                error,
            ),
            (Request::Status, true) => match self.status {
                Some(report) => Response::Status { report },
                None => Response::refused(Refusal::Failed, "the daemon sent no status"),
            },
            (Request::Token { .. }, true) => match self.token {
                Some(token) => Response::Token { token },
                None => Response::refused(Refusal::Failed, "the daemon sent no token"),
            },
            (Request::Adopt { .. }, true) => Response::Adopted {
                adoption: match self.result.as_deref() {
                    Some("unchanged") => Adoption::Unchanged,
                    Some("removed") => Adoption::Removed,
                    Some("raced") => Adoption::Raced,
                    _ => Adoption::Working,
                },
            },
            (Request::Reload | Request::RunJob { .. }, true) => Response::Reloaded,
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

    /// Found by review: after `apt upgrade` the daemon started before it
    /// still answers in the first version's shape.
    #[test]
    fn answers_of_a_daemon_started_before_the_upgrade_are_understood() {
        let run = Request::RunJob { job: "j".into() };
        let adopt = Request::Adopt {
            account: "a".into(),
            fingerprint: None,
        };
        let token = Request::Token {
            account: "a".into(),
        };
        let cases = [
            (r#"{"ok":true}"#, &Request::Reload, Response::Reloaded),
            (
                r#"{"ok":true,"token":"at-1"}"#,
                &token,
                Response::Token {
                    token: TokenText("at-1".into()),
                },
            ),
            (
                r#"{"ok":true,"result":"raced"}"#,
                &adopt,
                Response::Adopted {
                    adoption: Adoption::Raced,
                },
            ),
            (
                r#"{"ok":false,"error":"no account named \"x\"; accounts: a","exit_code":2}"#,
                &token,
                Response::refused(Refusal::Usage, "no account named \"x\"; accounts: a"),
            ),
            (
                r#"{"ok":false,"error":"account a needs a login","exit_code":78}"#,
                &token,
                Response::refused(Refusal::NeedsPerson, "account a needs a login"),
            ),
            (
                r#"{"ok":false,"error":"error: HTTP 500","exit_code":1,"result":"error"}"#,
                &run,
                Response::JobFinished {
                    result: JobResult::Error,
                    detail: Some("HTTP 500".into()),
                },
            ),
            (
                r#"{"ok":true,"result":"ok"}"#,
                &run,
                Response::JobFinished {
                    result: JobResult::Ok,
                    detail: None,
                },
            ),
        ];
        for (line, request, expected) in cases {
            assert_eq!(Response::read(line, request).unwrap(), expected, "{line}");
        }
    }

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

//! The control socket's requests, answered: `status`, `reload`,
//! `run-job`, `token` and `adopt`. Each answer is one kind of
//! [`Response`]; the client picks the exit code.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::Daemon;
use super::registry::{Registry, run_job};
use crate::control::{Adoption, Answer, Handler, Refusal, Request, Response, TokenText};
use crate::oauth::{Adopted, TokenError, TokenManager};

/// The daemon's side of the control socket.
pub(super) struct ControlHandler(pub(super) Arc<Daemon>);

impl Handler for ControlHandler {
    fn handle(&self, request: Request) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>> {
        Box::pin(async move {
            let daemon = &self.0;
            match request {
                // Copied under the locks here, written after they are let go.
                Request::Status => Answer::Status(Box::new(daemon.registry.report())),
                Request::Reload => reload(daemon).await.into(),
                Request::RunJob { job } => run_job(&daemon.registry, &job).await.into(),
                Request::Token { account } => token(&daemon.registry, &account).await.into(),
                Request::Adopt {
                    account,
                    fingerprint,
                } => adopt(&daemon.registry, &account, fingerprint.as_deref())
                    .await
                    .into(),
            }
        })
    }
}

/// Hands the reload to the serve loop (which also does SIGHUP's) and
/// answers what it found.
async fn reload(daemon: &Daemon) -> Response {
    let shutting_down = || Response::refused(Refusal::Failed, "freshd is shutting down");
    let (tx, rx) = oneshot::channel();
    if daemon.reloads.send(tx).await.is_err() {
        return shutting_down();
    }
    match rx.await {
        Ok(Ok(())) => Response::Reloaded,
        Ok(Err(e)) => Response::refused(Refusal::NeedsPerson, e),
        Err(_) => shutting_down(),
    }
}

/// The running account's token manager, or the answer naming the known ones.
fn account_tokens(registry: &Registry, account: &str) -> Result<Arc<TokenManager>, Response> {
    let running = registry.read();
    match running.accounts.get(account) {
        Some(a) => Ok(Arc::clone(&a.tokens)),
        None => {
            let known: Vec<&str> = running.accounts.keys().map(String::as_str).collect();
            Err(Response::refused(
                Refusal::Usage,
                format!(
                    "no account named \"{account}\"; accounts: {}",
                    known.join(", ")
                ),
            ))
        }
    }
}

/// `adopt`: the account looks at the store again (its keeper tells
/// `changed` if that changed anything).
async fn adopt(registry: &Registry, account: &str, fingerprint: Option<&str>) -> Response {
    let tokens = match account_tokens(registry, account) {
        Ok(t) => t,
        Err(answer) => return answer,
    };
    let adoption = match tokens.adopt(fingerprint).await {
        Ok(Adopted::Working) => Adoption::Working,
        Ok(Adopted::Unchanged) => Adoption::Unchanged,
        Ok(Adopted::Removed) => Adoption::Removed,
        Ok(Adopted::Raced) => Adoption::Raced,
        Ok(Adopted::Failing(why)) => return Response::refused(Refusal::NeedsPerson, why),
        Err(e) => {
            return Response::refused(
                Refusal::Failed,
                format!("the daemon cannot read the store: {e}"),
            );
        }
    };
    Response::Adopted { adoption }
}

async fn token(registry: &Registry, account: &str) -> Response {
    let tokens = match account_tokens(registry, account) {
        Ok(t) => t,
        Err(answer) => return answer,
    };
    match tokens.access_token().await {
        Ok(t) => Response::Token {
            token: TokenText(secrecy::ExposeSecret::expose_secret(&t).to_owned()),
        },
        Err(
            e @ (TokenError::NoToken { .. }
            | TokenError::NeedsLogin { .. }
            | TokenError::Misconfigured { .. }),
        ) => Response::refused(Refusal::NeedsPerson, e.to_string()),
        Err(e) => Response::refused(Refusal::Failed, e.to_string()),
    }
}

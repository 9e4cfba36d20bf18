//! The client commands `freshd token`, `status`, `run-job` and `reload`:
//! ask the running daemon over the control socket, print what it answered,
//! and return the exit code (DESIGN §2).
//!
//! Everything a person reads goes to stderr with one `freshd:` prefix and
//! says what to do next; `token` and `status` print their results on stdout.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::control::{self, ClientError, Refusal, Request, Response};
use crate::daemon::EXIT_CONFIG;
use crate::status::JobResult;

/// `freshd status`'s exit code when some account waits for a person.
pub const EXIT_NEEDS_PERSON: u8 = 3;

/// The exit code for each kind of answer (DESIGN §2); the one place they
/// are chosen, for these commands and for `login`, `import-token` and
/// `logout`, which tell a running daemon.
pub fn exit_code(answer: &Response) -> u8 {
    match answer {
        Response::Reloaded | Response::Token { .. } | Response::Adopted { .. } => 0,
        Response::Status { report } if report.needs_person() => EXIT_NEEDS_PERSON,
        Response::Status { .. } => 0,
        Response::JobFinished {
            result: JobResult::Ok,
            ..
        } => 0,
        Response::JobFinished { .. } => 1,
        Response::Refused { refusal, .. } => match refusal {
            Refusal::Usage => 2,
            Refusal::NeedsPerson => EXIT_CONFIG,
            Refusal::Failed => 1,
        },
    }
}

/// `freshd token ACCOUNT`: the access token on stdout.
pub async fn token(config: &Path, account: String) -> u8 {
    let answer = match ask(config, &Request::Token { account }).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    match &answer {
        Response::Token { token } => println!("{}", token.0),
        other => return refused(other),
    }
    exit_code(&answer)
}

/// `freshd status [--json]`: exit 0 when every account is ok, 3 when one
/// needs a person (`needs_login`, `no_token`), so that scripts can test it.
pub async fn status(config: &Path, json: bool) -> anyhow::Result<u8> {
    let answer = match ask(config, &Request::Status).await {
        Ok(a) => a,
        Err(code) => return Ok(code),
    };
    match &answer {
        Response::Status { report } if json => println!("{}", serde_json::to_string(report)?),
        Response::Status { report } => print!("{}", report.render(jiff::Timestamp::now())),
        other => return Ok(refused(other)),
    }
    Ok(exit_code(&answer))
}

/// `freshd run-job JOB`: exit 0 only if the run succeeded.
pub async fn run_job(config: &Path, job: String) -> u8 {
    let answer = match ask(config, &Request::RunJob { job: job.clone() }).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    match &answer {
        Response::JobFinished {
            result: JobResult::Ok,
            ..
        } => println!("{job}: ok"),
        // The job ran: "error: …" or "skipped: …".
        Response::JobFinished { result, detail } => eprintln!(
            "{job}: {}: {}",
            result.as_str(),
            detail.as_deref().unwrap_or("(no reason given)")
        ),
        other => return refused(other),
    }
    exit_code(&answer)
}

/// `freshd reload` (and the units' `ExecReload=`): a refused reload exits 78
/// with the daemon's reasons, which `systemctl status` then shows.
pub async fn reload(config: &Path) -> u8 {
    let answer = match ask(config, &Request::Reload).await {
        Ok(a) => a,
        Err(code) => return code,
    };
    match &answer {
        Response::Reloaded => println!("reloaded"),
        Response::Refused { error, .. } => eprintln!(
            "freshd: reload refused; the daemon keeps running its previous configuration:\n{error}"
        ),
        other => return refused(other),
    }
    exit_code(&answer)
}

/// Says on stderr why the daemon did not do what was asked, and returns
/// the exit code: an answer of another kind than asked counts as a failure.
pub fn refused(answer: &Response) -> u8 {
    let unexpected;
    let answer = match answer {
        Response::Refused { .. } => answer,
        _ => {
            unexpected = Response::refused(
                Refusal::Failed,
                "the daemon gave an answer of another kind than asked (is it another version of freshd?)",
            );
            &unexpected
        }
    };
    if let Response::Refused { error, .. } = answer {
        eprintln!("freshd: {error}");
    }
    exit_code(answer)
}

/// Asks the running daemon; on failure prints why and returns the exit
/// code. The socket path comes from the config, else from the environment.
/// A broken config must not keep `freshd token` from a daemon that runs an
/// older, good one, nor `freshd reload` from hearing why it was refused: its
/// `socket =` is still read when the file is valid TOML.
async fn ask(config: &Path, request: &Request) -> Result<Response, u8> {
    // Only `[daemon]` is read and checked: a hundred thousand jobs would
    // take seconds to validate, and the client needs none of them.
    let configured = match Config::load_daemon(config) {
        Ok(d) => d.socket,
        Err(ConfigError::Read { .. }) => None,
        Err(e) => {
            if *request != Request::Reload {
                // A reload's refusal gives these reasons itself.
                eprintln!(
                    "freshd: warning: the config has errors (a running daemon keeps the config it loaded):\n{e}"
                );
            }
            socket_in_broken_config(config)
        }
    };
    let socket = control::socket_path(configured.as_deref());
    control::ask(&socket, request).await.map_err(|e| {
        eprintln!("freshd: {}", explain(&e, request));
        1
    })
}

/// `[daemon] socket` of a config that does not validate, if it is valid TOML.
fn socket_in_broken_config(config: &Path) -> Option<PathBuf> {
    let (bytes, _) = crate::fsutil::read_regular(config, crate::config::MAX_CONFIG_BYTES).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    let socket = PathBuf::from(table.get("daemon")?.get("socket")?.as_str()?);
    socket.is_absolute().then_some(socket)
}

/// What went wrong talking to the daemon, and what to do about it: the
/// system unit's commands for its socket, the user unit's otherwise.
fn explain(e: &ClientError, request: &Request) -> String {
    match e {
        ClientError::NotRunning { path, source } => format!(
            "nothing answers on {} ({source}): freshd is not running, or not for this user; {}",
            path.display(),
            start_hint(path)
        ),
        ClientError::Closed { path } => match request {
            Request::RunJob { job } => format!(
                "the daemon stopped while {job} was running (it closed {} without an answer); whether the run finished is unknown: {}",
                path.display(),
                journal_hint(path)
            ),
            _ => format!(
                "the daemon closed {} without an answer (did it stop?): {}",
                path.display(),
                journal_hint(path)
            ),
        },
        ClientError::NoAnswer { path } => format!(
            "freshd did not answer on {} within a minute; it may be stuck: {}",
            path.display(),
            journal_hint(path)
        ),
        other => other.to_string(),
    }
}

/// Whether `socket` is the system unit's (`RuntimeDirectory=freshd`).
fn is_system_socket(socket: &Path) -> bool {
    socket.starts_with("/run/freshd")
}

fn start_hint(socket: &Path) -> &'static str {
    if is_system_socket(socket) {
        "start it with `sudo systemctl start freshd` (the system unit)"
    } else {
        "start it with `systemctl --user start freshd` or `freshd run`"
    }
}

fn journal_hint(socket: &Path) -> &'static str {
    if is_system_socket(socket) {
        "see `journalctl -u freshd`"
    } else {
        "see `journalctl --user -u freshd`"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_answer_has_its_exit_code() {
        use crate::control::Adoption;
        use crate::status::{AccountState, AccountStatus, StatusReport};
        let refusal = |refusal| Response::refused(refusal, "why");
        assert_eq!(exit_code(&refusal(Refusal::Usage)), 2);
        assert_eq!(exit_code(&refusal(Refusal::NeedsPerson)), EXIT_CONFIG);
        assert_eq!(exit_code(&refusal(Refusal::Failed)), 1);
        let finished = |result| Response::JobFinished {
            result,
            detail: None,
        };
        assert_eq!(exit_code(&finished(JobResult::Ok)), 0);
        assert_eq!(exit_code(&finished(JobResult::Error)), 1);
        assert_eq!(exit_code(&finished(JobResult::Skipped)), 1);
        let adopted = Response::Adopted {
            adoption: Adoption::Unchanged,
        };
        assert_eq!(exit_code(&adopted), 0);
        let mut report = StatusReport::default();
        let status = |report: &StatusReport| Response::Status {
            report: Box::new(report.clone()),
        };
        assert_eq!(exit_code(&status(&report)), 0);
        report.accounts.push(AccountStatus {
            name: "a".into(),
            state: AccountState::NoToken,
            access_token_expires_at: None,
            last_refresh: None,
            last_error: None,
            warning: None,
            store_error: None,
            static_token: false,
        });
        assert_eq!(exit_code(&status(&report)), EXIT_NEEDS_PERSON);
        assert_eq!(
            refused(&Response::Reloaded),
            1,
            "an answer of another kind fails"
        );
    }

    #[test]
    fn hints_name_the_unit_whose_socket_was_probed() {
        let system = explain(
            &ClientError::NoAnswer {
                path: "/run/freshd/control.sock".into(),
            },
            &Request::Status,
        );
        assert!(system.ends_with("see `journalctl -u freshd`"), "{system}");
        let user = explain(
            &ClientError::Closed {
                path: "/run/user/1000/freshd/control.sock".into(),
            },
            &Request::RunJob { job: "j".into() },
        );
        assert_eq!(
            user,
            "the daemon stopped while j was running (it closed /run/user/1000/freshd/control.sock without an answer); whether the run finished is unknown: see `journalctl --user -u freshd`"
        );
    }

    #[test]
    fn the_socket_of_a_config_that_does_not_validate_is_still_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[daemon]\nsocket = \"/tmp/x.sock\"\nbogus = 1\n").unwrap();
        assert_eq!(socket_in_broken_config(&path), Some("/tmp/x.sock".into()));
        std::fs::write(&path, "[daemon]\nsocket = \"relative.sock\"\n").unwrap();
        assert_eq!(socket_in_broken_config(&path), None);
        std::fs::write(&path, "[daemon\nsocket = \"/tmp/x.sock\"\n").unwrap();
        assert_eq!(socket_in_broken_config(&path), None);
    }
}

//! [`run`] in three phases. Start: config, state directory, secret store,
//! each account's refresh token (a store that cannot be read is exit 78),
//! the control socket, the first refresh of every account, then `READY=1`,
//! and only then the job loops. Serve: SIGHUP and `freshd reload` reload,
//! until SIGTERM, SIGINT or `Options::stop`. Shutdown: the loops stop
//! between runs, running jobs get `shutdown_grace`, token requests in
//! flight are finished, and the socket this daemon made is removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handler::ControlHandler;
use super::registry::{Registry, Services};
use super::{Daemon, Options, ReloadRequest, StartError, heartbeat};
use crate::config::Config;
use crate::notify::Notifier;
use crate::oauth::TokenManager;
use crate::secrets::SecretStore;
use crate::statelock::StateLock;
use crate::{control, jobs, systemd};

/// At most this many first refreshes at once: a thousand accounts starting
/// together must not open a thousand sockets to the provider in one go,
/// while a few dozen keep a slow provider's round trips overlapped.
const FIRST_WAVE: usize = 32;

/// `READY=1` comes at most this long after exec when first refreshes are
/// slow (DESIGN §6): one account is ready within its round trip; ten
/// thousand do not hold up systemd's start job. Counted from exec, not from
/// after loading the config and the tokens, which take seconds at that
/// scale.
const READY_WAIT: Duration = Duration::from_secs(10);
/// Of [`READY_WAIT`], what is kept for scheduling the jobs after the wait
/// (a hundred thousand take a few hundred milliseconds).
const JOB_START_ALLOWANCE: Duration = Duration::from_secs(1);

/// The signals the daemon answers.
struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> Result<Self, StartError> {
        let install = |kind| signal(kind).map_err(StartError::Signals);
        Ok(Signals {
            hup: install(SignalKind::hangup())?,
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
        })
    }
}

/// What start-up leaves running.
struct Started {
    daemon: Arc<Daemon>,
    reloads: mpsc::Receiver<ReloadRequest>,
    socket: PathBuf,
    /// The device and inode of the socket this daemon made.
    ours: Option<(u64, u64)>,
    control_cancel: CancellationToken,
    /// The accounts whose first refresh was still going at `READY=1`.
    first_wave: Vec<Arc<TokenManager>>,
    /// Held until the daemon exits: one daemon per state directory.
    _lock: StateLock,
}

/// Runs the daemon until SIGTERM/SIGINT (or `options.stop`); returns the
/// exit code.
pub async fn run(options: Options) -> Result<u8, StartError> {
    // Handlers first: a SIGHUP that arrives right after READY=1 must reload,
    // not kill us with the default action.
    let mut signals = Signals::install()?;
    let mut started = start(&options).await?;
    let first_wave = std::mem::take(&mut started.first_wave);
    let heartbeat = heartbeat::spawn(
        &started.daemon,
        started.daemon.registry.summary(),
        first_wave,
    );
    serve(&mut started, &mut signals, &options.stop).await;
    shutdown(&started, &mut signals.int).await;
    heartbeat.abort();
    // Only the socket this daemon made: if something else was put at the
    // path since, it is not ours to delete (issue 12 §3).
    if started.ours.is_some() && inode(&started.socket) == started.ours {
        let _ = std::fs::remove_file(&started.socket);
    }
    Ok(0)
}

async fn start(options: &Options) -> Result<Started, StartError> {
    let mut config = options.config.load()?;
    let state_dir = super::state_dir(&config).ok_or(StartError::NoStateDir)?;
    crate::fsutil::ensure_private_dir(&state_dir).map_err(|source| StartError::StateDir {
        path: state_dir.clone(),
        source,
    })?;
    let lock = StateLock::acquire(&state_dir)?;
    let (daemon, reloads) = new_daemon(options, &config, state_dir)?;
    let registry = &daemon.registry;
    registry.with_stored_client_secret(&mut config).await?;
    let managers = registry.load_accounts(&config).await?;
    let socket = control::socket_path(config.daemon.socket.as_deref());
    let listener = control::bind(&socket).await?;
    let ours = inode(&socket);
    // The first refresh of every account, FIRST_WAVE at a time, by the
    // accounts' own loops; `status` shows the rest as refreshing.
    registry.start_accounts(
        &managers,
        &Arc::new(tokio::sync::Semaphore::new(FIRST_WAVE)),
    );
    // `status` and `token` answer while the first refreshes run; jobs start
    // after READY=1.
    let control_cancel = CancellationToken::new();
    tokio::spawn(control::serve(
        listener,
        Arc::new(ControlHandler(Arc::clone(&daemon))),
        control_cancel.clone(),
        TaskTracker::new(),
    ));
    let first_wave = wait_first_refreshes(registry, &managers).await;
    registry.start_first_jobs(config);
    let summary = registry.summary();
    tracing::info!("ready: {summary}; control socket {}", socket.display());
    systemd::ready(&summary.to_string());
    systemd::release_free_memory();
    Ok(Started {
        daemon,
        reloads,
        socket,
        ours,
        control_cancel,
        first_wave,
        _lock: lock,
    })
}

/// The daemon's shared parts for `config`, with no account or job running
/// yet, and the receiving end of its reload requests.
fn new_daemon(
    options: &Options,
    config: &Config,
    state_dir: PathBuf,
) -> Result<(Arc<Daemon>, mpsc::Receiver<ReloadRequest>), StartError> {
    let store: Arc<dyn SecretStore> = match &options.store {
        Some(s) => Arc::clone(s),
        None => crate::setup::open_store(config.daemon.secrets, &state_dir),
    };
    let http = crate::http::api_client().map_err(|e| StartError::Http(e.to_string()))?;
    let token_http = crate::http::token_client().map_err(|e| StartError::Http(e.to_string()))?;
    let (reloads, requests) = mpsc::channel(4);
    let notifier = Notifier::new(Some(state_dir.clone()));
    let services = Services {
        store,
        clock: Arc::clone(&options.clock),
        http,
        token_http,
        state_dir,
        source: options.config.clone(),
    };
    let daemon = Daemon {
        registry: Registry::new(config, services),
        reloads,
        notifier,
    };
    Ok((Arc::new(daemon), requests))
}

/// `READY=1` waits for the first refreshes until [`READY_WAIT`] after exec
/// (DESIGN §6), less the [`JOB_START_ALLOWANCE`]; returns the accounts
/// still waiting then.
async fn wait_first_refreshes(
    registry: &Registry,
    managers: &BTreeMap<String, Arc<TokenManager>>,
) -> Vec<Arc<TokenManager>> {
    let now = tokio::time::Instant::now();
    let since_exec = crate::status::started_at().map_or(Duration::ZERO, |t| t.elapsed());
    let deadline = now + READY_WAIT.saturating_sub(since_exec + JOB_START_ALLOWANCE);
    // A first refresh, once over, stays over: each change looks on from
    // the first account still waiting, not at all ten thousand again.
    let mut waiting = managers.values().peekable();
    let settled = async {
        loop {
            while waiting.next_if(|m| m.settled()).is_some() {}
            if waiting.peek().is_none() {
                break;
            }
            registry.changed.notified().await;
        }
    };
    if tokio::time::timeout_at(deadline, settled).await.is_ok() {
        return Vec::new();
    }
    let left: Vec<Arc<TokenManager>> = waiting.filter(|m| !m.settled()).cloned().collect();
    tracing::info!(
        "{} accounts still wait for their first refresh; READY=1 now, they go on",
        left.len()
    );
    left
}

/// Reloads on SIGHUP or `freshd reload`, until a signal or `stop` says to
/// stop.
async fn serve(started: &mut Started, signals: &mut Signals, stop: &CancellationToken) {
    loop {
        let reply = tokio::select! {
            _ = signals.hup.recv() => None,
            Some(reply) = started.reloads.recv() => Some(reply),
            _ = signals.term.recv() => break,
            _ = signals.int.recv() => break,
            () = stop.cancelled() => break,
        };
        let registry = &started.daemon.registry;
        tracing::info!("reloading {}", registry.source.origin());
        systemd::reloading();
        let result = registry.reload().await;
        let summary = registry.summary();
        match &result {
            Ok(()) => tracing::info!("reload done: {summary}"),
            Err(e) => tracing::error!("reload refused, the running configuration stays: {e}"),
        }
        systemd::ready(&summary.to_string());
        systemd::release_free_memory();
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
}

/// Loops stop between runs; running jobs get the grace period (a second
/// SIGINT cuts it short); then token requests in flight are finished.
async fn shutdown(started: &Started, int: &mut Signal) {
    let registry = &started.daemon.registry;
    let grace = registry.read().config.daemon.shutdown_grace;
    let running = registry.running_jobs();
    let note = if running.is_empty() {
        "stopping".to_owned()
    } else {
        format!(
            "stopping; waiting up to {} for {}",
            crate::config::format_duration(grace),
            running.join(", ")
        )
    };
    tracing::info!("{note}");
    systemd::stopping(&note);
    started.control_cancel.cancel();
    registry.root.cancel();
    registry.tracker.close();
    tokio::select! {
        () = registry.tracker.wait() => tracing::info!("stopped"),
        () = tokio::time::sleep(grace) => tracing::warn!("jobs (or a token request) still running after the grace period of {}; jobs are stopped now, a token request is finished first", crate::config::format_duration(grace)),
        _ = int.recv() => tracing::warn!("second interrupt: stopping at once"),
    }
    // Whatever jobs' programs left running gets SIGTERM, then SIGKILL.
    jobs::child::stop_all().await;
    finish_token_requests(registry).await;
}

/// Whatever the jobs' grace: a token request in flight is finished and its
/// rotation stored, and a rotation the store refused gets one more try
/// (DESIGN §5). Bounded by the request's own timeout and two store calls,
/// which fit in the units' `TimeoutStopSec=`.
async fn finish_token_requests(registry: &Registry) {
    let managers = registry.token_managers();
    // The requests run in tasks of their own, so waiting for one manager
    // after another takes as long as the slowest, not the sum.
    let all = async {
        for m in &managers {
            m.finish().await;
        }
    };
    let bound = crate::oauth::endpoint::TOKEN_REQUEST_TIMEOUT + 2 * crate::secrets::STORE_TIMEOUT;
    if tokio::time::timeout(bound, all).await.is_err() {
        tracing::error!(
            "token requests still unfinished after {}; stopping anyway",
            crate::config::format_duration(bound)
        );
    }
}

/// The device and inode at `path` (not following a symlink).
fn inode(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

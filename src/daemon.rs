//! The daemon: start, reload, shut down, answer the control socket.
//!
//! Start-up order: config, state directory, secret store, each account's
//! refresh token (a store that cannot be read is exit 78), the control
//! socket, the first refresh of every account, then `READY=1`, and only then
//! the first job runs. SIGHUP validates the whole new config before
//! anything changes; accounts whose settings did not change keep their token
//! manager (and so their tokens), jobs that did not change keep their
//! schedule and status. SIGTERM stops the scheduler (no run starts), gives
//! running jobs `shutdown_grace`, and exits 0.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::Cooldowns;
use crate::config::{Config, ConfigError, Job};
use crate::control::{self, Handler, Request, Response, TokenText};
use crate::jobs::RunOutcome;
use crate::jobs::{self, JobContext};
use crate::notify::Notifier;
use crate::oauth::endpoint::HttpEndpoint;
use crate::oauth::{Adopted, TokenError, TokenManager};
pub use crate::paths::state_dir;
use crate::scheduler::{self, JobKey, Scheduler};
use crate::secrets::{SecretError, SecretKind, SecretStore};
use crate::status::{JobReport, StatusReport};
use crate::sync::RwLockExt;
use crate::systemd;
use crate::time::{Clock, SystemClock};

/// Exit code for "a person must fix the configuration or credentials".
pub const EXIT_CONFIG: u8 = 78;

/// At most this many first refreshes at once: a thousand accounts starting
/// together must not open a thousand sockets to the provider in one go,
/// while a few dozen keep a slow provider's round trips overlapped.
const FIRST_WAVE: usize = 32;

/// `READY=1` waits at most this long for first refreshes (DESIGN §6): one
/// account is ready within its round trip; ten thousand do not hold up
/// systemd's start job.
const READY_WAIT: Duration = Duration::from_secs(10);

/// Where the config comes from: a file (reloadable) or fixed (the demo).
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    Fixed(Box<Config>),
}

impl ConfigSource {
    fn load(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigSource::File(p) => Config::load(p),
            ConfigSource::Fixed(c) => Ok((**c).clone()),
        }
    }
}

/// How to run the daemon; the demo and tests replace parts.
#[derive(Debug)]
pub struct Options {
    pub config: ConfigSource,
    /// A store to use instead of the one the config names.
    pub store: Option<Arc<dyn SecretStore>>,
    pub clock: Arc<dyn Clock>,
    /// Stops the daemon as SIGTERM would (the demo's `--for`).
    pub stop: CancellationToken,
}

impl Options {
    pub fn new(config: ConfigSource) -> Self {
        Self {
            config,
            store: None,
            clock: Arc::new(SystemClock::default()),
            stop: CancellationToken::new(),
        }
    }
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("account {account}: {source}")]
    Secrets {
        account: String,
        #[source]
        source: SecretError,
    },
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "no state directory: set [daemon] state_dir, or run under systemd (StateDirectory=), or set $XDG_STATE_HOME or $HOME"
    )]
    NoStateDir,
    #[error(transparent)]
    Locked(#[from] crate::statelock::LockError),
    #[error(transparent)]
    Socket(#[from] control::BindError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

impl StartError {
    /// The exit code: 78 when a person must act.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_)
            | StartError::NoStateDir
            | StartError::Socket(control::BindError::NotASocket { .. }) => EXIT_CONFIG,
            StartError::Secrets { source, .. } if source.needs_person() => EXIT_CONFIG,
            _ => 1,
        }
    }
}

/// A scheduled job.
#[derive(Debug)]
struct JobHandle {
    job: Arc<Job>,
    tokens: Arc<TokenManager>,
    key: JobKey,
}

/// A running account.
#[derive(Debug)]
struct AccountHandle {
    tokens: Arc<TokenManager>,
    cancel: CancellationToken,
}

#[derive(Debug)]
struct State {
    config: Arc<Config>,
    accounts: BTreeMap<String, AccountHandle>,
    jobs: BTreeMap<String, JobHandle>,
}

/// What every task shares.
#[derive(Debug)]
struct Shared {
    state: RwLock<State>,
    store: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    /// For the APIs jobs call: same-origin redirects only.
    http: reqwest::Client,
    /// For token endpoints: no redirects.
    token_http: reqwest::Client,
    state_dir: PathBuf,
    source: ConfigSource,
    tracker: TaskTracker,
    root: CancellationToken,
    /// Every job's schedule; its timer and runs are on `tracker`.
    scheduler: Scheduler,
    reloads: mpsc::Sender<oneshot::Sender<Result<(), String>>>,
    /// Something `STATUS=` shows changed.
    changed: Arc<Notify>,
    cooldowns: Arc<Cooldowns>,
    notifier: Notifier,
}

impl Shared {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read_locked()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write_locked()
    }

    fn report(&self) -> StatusReport {
        let state = self.read();
        let accounts = state.accounts.values().map(|a| a.tokens.status()).collect();
        let mut jobs: Vec<JobReport> = state
            .jobs
            .values()
            .map(|j| {
                let s = self.scheduler.state(j.key).unwrap_or_default();
                let last_error = match &s.last_outcome {
                    Some(RunOutcome::Error(e) | RunOutcome::Skipped(e)) => Some(e.clone()),
                    _ => None,
                };
                JobReport {
                    name: j.job.name.clone(),
                    account: j.job.account.clone(),
                    next_run: s.next_run,
                    last_run: s.last_run,
                    last_result: s.last_outcome.as_ref().map(|o| o.word().to_owned()),
                    last_error,
                    running_since: s.last_run.filter(|_| s.running),
                }
            })
            .collect();

        jobs.sort_by(|a, b| a.name.cmp(&b.name));
        let daemon = Some(crate::status::DaemonInfo::this_process(
            describe(&self.source),
            describe_socket(&state.config),
            state.config.daemon.timezone_name.clone(),
        ));
        StatusReport {
            accounts,
            jobs,
            daemon,
        }
    }

    fn new_manager(&self, account: &Arc<crate::config::Account>) -> Arc<TokenManager> {
        let account = Arc::clone(account);
        let endpoint = HttpEndpoint::for_account(
            self.token_http.clone(),
            &account,
            account.client_secret.clone(),
            Some(self.state_dir.clone()),
        );
        TokenManager::new(
            account,
            Arc::new(endpoint),
            Arc::clone(&self.store),
            Arc::clone(&self.clock),
            Some(self.state_dir.clone()),
        )
    }

    /// Reads a client secret from the store for accounts that have none in
    /// the file, so the token endpoint gets it.
    async fn with_stored_client_secret(&self, config: &mut Config) -> Result<(), StartError> {
        for (name, account) in config.accounts.iter_mut() {
            if account.client_secret.is_some() {
                continue;
            }
            let secret = crate::secrets::get(&self.store, name, SecretKind::ClientSecret)
                .await
                .map_err(|source| StartError::Secrets {
                    account: name.clone(),
                    source,
                })?;
            if let Some(secret) = secret {
                let mut a = (**account).clone();
                a.client_secret = Some(secret);
                *account = Arc::new(a);
            }
        }
        Ok(())
    }

    fn spawn_account(&self, tokens: &Arc<TokenManager>) -> AccountHandle {
        tokens.set_observer(Arc::clone(&self.changed));
        let cancel = self.root.child_token();
        let t = Arc::clone(tokens);
        let c = cancel.clone();
        let changed = Arc::clone(&self.changed);
        self.tracker.spawn(async move {
            t.run(c).await;
            changed.notify_one();
        });
        AccountHandle {
            tokens: Arc::clone(tokens),
            cancel,
        }
    }

    fn spawn_job(&self, job: &Arc<Job>, tokens: &Arc<TokenManager>) -> JobHandle {
        let body = jobs::body_for(job);
        let cx = JobContext {
            job: Arc::clone(job),
            tokens: Arc::clone(tokens),
            http: self.http.clone(),
            state_dir: self.state_dir.clone(),
            cooldowns: Arc::clone(&self.cooldowns),
            clock: Arc::clone(&self.clock),
        };
        let run = scheduler::boxed(move || {
            let (body, cx) = (Arc::clone(&body), cx.clone());
            async move { body.run(&cx).await }
        });
        JobHandle {
            job: Arc::clone(job),
            tokens: Arc::clone(tokens),
            key: self.scheduler.add(Arc::clone(job), run),
        }
    }

    /// Tells a person what needs them, through `notify` (each event at most
    /// once a day).
    fn notify(&self, report: &StatusReport) {
        let (config, failures) = {
            let state = self.read();
            let failures = state
                .jobs
                .iter()
                .map(|(n, j)| {
                    let failures = self.scheduler.state(j.key).map_or(0, |s| s.failures);
                    (n.clone(), failures)
                })
                .collect();
            (Arc::clone(&state.config), failures)
        };
        let notices = crate::notify::notices(report, &failures);
        if !notices.is_empty() {
            self.notifier.send(&config, notices, self.clock.now());
        }
    }

    /// Schedules every job of `config`, keeping those in `keep` that did not
    /// change.
    fn start_jobs(
        &self,
        config: &Config,
        accounts: &BTreeMap<String, AccountHandle>,
        mut keep: BTreeMap<String, JobHandle>,
    ) -> BTreeMap<String, JobHandle> {
        let mut running = BTreeMap::new();
        for (name, job) in &config.jobs {
            // A validated config names only accounts it defines.
            let Some(tokens) = accounts.get(&job.account).map(|a| &a.tokens) else {
                tracing::error!(JOB = %name, "no account {} for the job; it is not started", job.account);
                continue;
            };
            if let Some(old) = keep.remove(name) {
                if *old.job == **job && Arc::ptr_eq(&old.tokens, tokens) {
                    running.insert(name.clone(), old);
                    continue;
                }
                tracing::info!(JOB = %name, "job restarted: the reload changed it or its account");
                self.scheduler.remove(old.key);
            }
            running.insert(name.clone(), self.spawn_job(job, tokens));
        }
        for (name, old) in keep {
            tracing::info!(JOB = %name, "job stopped (changed or removed by the reload)");
            self.scheduler.remove(old.key);
        }
        running
    }

    /// SIGHUP: the new config is loaded and validated (secrets included)
    /// before anything changes; on any error the running config stays.
    async fn reload(&self) -> Result<(), String> {
        // Off the runtime thread: a config on a hung mount must not stop the
        // token keeper or the control socket while it is read.
        let source = self.source.clone();
        let mut config = tokio::task::spawn_blocking(move || source.load())
            .await
            .map_err(|e| format!("reading the config failed: {e}"))?
            .map_err(|e| e.to_string())?;
        let old = Arc::clone(&self.read().config);
        if config.daemon.secrets != old.daemon.secrets
            || config.daemon.socket != old.daemon.socket
            || config.daemon.state_dir != old.daemon.state_dir
        {
            return Err("[daemon] secrets, socket and state_dir take effect only on a restart (systemctl restart freshd); nothing was changed".into());
        }
        self.with_stored_client_secret(&mut config)
            .await
            .map_err(|e| e.to_string())?;
        // New or changed accounts get a new manager, loaded before the swap.
        let mut fresh = BTreeMap::new();
        for (name, account) in &config.accounts {
            let unchanged = self
                .read()
                .accounts
                .get(name)
                .is_some_and(|h| h.tokens.account().same_as(account));
            if unchanged {
                continue;
            }
            let manager = self.new_manager(account);
            manager
                .load()
                .await
                .map_err(|e| format!("account {name}: {e}"))?;
            fresh.insert(name.clone(), manager);
        }
        // The chain goes on in the new manager: it takes what the old one
        // holds (a rotation the store refused, the newest token), after the
        // old one's request in flight, and the old one sends nothing more.
        // Done before the swap, so `status` and `token` never see an empty
        // daemon while a request is waited for.
        let replaced: Vec<(Arc<TokenManager>, Arc<TokenManager>)> = {
            let state = self.read();
            fresh
                .iter()
                .filter_map(|(n, m)| {
                    state
                        .accounts
                        .get(n)
                        .map(|o| (Arc::clone(m), Arc::clone(&o.tokens)))
                })
                .collect()
        };
        for (new, old) in &replaced {
            new.inherit(old).await;
        }
        let (old_accounts, old_jobs) = {
            let mut state = self.write();
            (
                std::mem::take(&mut state.accounts),
                std::mem::take(&mut state.jobs),
            )
        };
        let mut accounts = BTreeMap::new();
        let mut kept = Vec::new();
        let mut old_accounts = old_accounts;
        for name in config.accounts.keys() {
            if let Some(manager) = fresh.remove(name) {
                tracing::info!(ACCOUNT = %name, "account (re)started by the reload");
                if let Some(old) = old_accounts.remove(name) {
                    old.cancel.cancel();
                }
                accounts.insert(name.clone(), self.spawn_account(&manager));
            } else if let Some(handle) = old_accounts.remove(name) {
                kept.push(Arc::clone(&handle.tokens));
                accounts.insert(name.clone(), handle);
            }
        }
        for (name, gone) in old_accounts {
            tracing::info!(ACCOUNT = %name, "account removed by the reload");
            gone.cancel.cancel();
            // Its request in flight is finished and a rotation the store
            // refused gets a last try; what cannot be saved is said.
            let tokens = gone.tokens;
            self.tracker.spawn(async move {
                tokens.retire().await;
                tokens.finish().await;
            });
        }
        let jobs = self.start_jobs(&config, &accounts, old_jobs);
        {
            let mut state = self.write();
            state.config = Arc::new(config);
            state.accounts = accounts;
            state.jobs = jobs;
        }
        // Accounts that were waiting for a token look in the store again.
        for tokens in kept {
            if let Err(e) = tokens.reload_secret().await {
                tracing::error!(ACCOUNT = %tokens.account().name, "{e}");
            }
        }
        Ok(())
    }
}

struct ControlHandler(Arc<Shared>);

impl Handler for ControlHandler {
    fn handle(&self, request: Request) -> Pin<Box<dyn Future<Output = Response> + Send + '_>> {
        Box::pin(async move {
            let shared = &self.0;
            match request {
                Request::Status => Response {
                    ok: true,
                    status: Some(Box::new(shared.report())),
                    ..Response::default()
                },
                Request::Reload => {
                    let (tx, rx) = oneshot::channel();
                    if shared.reloads.send(tx).await.is_err() {
                        return Response::error("freshd is shutting down", 1);
                    }
                    match rx.await {
                        Ok(Ok(())) => Response::ok(),
                        Ok(Err(e)) => Response::error(e, EXIT_CONFIG),
                        Err(_) => Response::error("freshd is shutting down", 1),
                    }
                }
                Request::RunJob { job } => run_job(shared, &job).await,
                Request::Token { account } => token(shared, &account).await,
                Request::Adopt {
                    account,
                    fingerprint,
                } => adopt(shared, &account, fingerprint.as_deref()).await,
            }
        })
    }
}

async fn run_job(shared: &Shared, name: &str) -> Response {
    let key = {
        let state = shared.read();
        match state.jobs.get(name) {
            Some(j) => j.key,
            None => {
                let known: Vec<&str> = state.jobs.keys().map(String::as_str).collect();
                return Response::error(
                    format!("no job named \"{name}\"; jobs: {}", known.join(", ")),
                    2,
                );
            }
        }
    };
    let (tx, rx) = oneshot::channel();
    if !shared.scheduler.run_now(key, tx) {
        return Response::error("the job was stopped (reload or shutdown)", 1);
    }
    match rx.await {
        Ok(RunOutcome::Ok) => Response {
            ok: true,
            result: Some("ok".into()),
            ..Response::default()
        },
        Ok(RunOutcome::Error(msg)) => Response {
            result: Some("error".into()),
            ..Response::error(format!("error: {msg}"), 1)
        },
        Ok(RunOutcome::Skipped(msg)) => Response {
            result: Some("skipped".into()),
            ..Response::error(format!("skipped: {msg}"), 1)
        },
        Err(_) => Response::error("the job was stopped before it ran", 1),
    }
}

/// The running account's token manager, or the answer naming the known ones.
fn account_tokens(shared: &Shared, account: &str) -> Result<Arc<TokenManager>, Response> {
    let state = shared.read();
    match state.accounts.get(account) {
        Some(a) => Ok(Arc::clone(&a.tokens)),
        None => {
            let known: Vec<&str> = state.accounts.keys().map(String::as_str).collect();
            Err(Response::error(
                format!(
                    "no account named \"{account}\"; accounts: {}",
                    known.join(", ")
                ),
                2,
            ))
        }
    }
}

async fn adopt(shared: &Shared, account: &str, fingerprint: Option<&str>) -> Response {
    let tokens = match account_tokens(shared, account) {
        Ok(t) => t,
        Err(answer) => return answer,
    };
    let result = tokens.adopt(fingerprint).await;
    shared.changed.notify_one();
    let word = match result {
        Ok(Adopted::Working) => "working",
        Ok(Adopted::Unchanged) => "unchanged",
        Ok(Adopted::Removed) => "removed",
        Ok(Adopted::Raced) => "raced",
        Ok(Adopted::Failing(why)) => return Response::error(why, EXIT_CONFIG),
        Err(e) => return Response::error(format!("the daemon cannot read the store: {e}"), 1),
    };
    Response {
        ok: true,
        result: Some(word.into()),
        ..Response::default()
    }
}

async fn token(shared: &Shared, account: &str) -> Response {
    let tokens = match account_tokens(shared, account) {
        Ok(t) => t,
        Err(answer) => return answer,
    };
    match tokens.access_token().await {
        Ok(t) => Response {
            ok: true,
            token: Some(TokenText(
                secrecy::ExposeSecret::expose_secret(&t).to_owned(),
            )),
            ..Response::default()
        },
        Err(
            e @ (TokenError::NoToken { .. }
            | TokenError::NeedsLogin { .. }
            | TokenError::Misconfigured { .. }),
        ) => Response::error(e.to_string(), EXIT_CONFIG),
        Err(e) => Response::error(e.to_string(), 1),
    }
}

/// Runs the daemon until SIGTERM/SIGINT (or `options.stop`); returns the
/// exit code.
pub async fn run(options: Options) -> Result<u8, StartError> {
    // Handlers first: a SIGHUP that arrives right after READY=1 must reload,
    // not kill us with the default action.
    let signals = |kind| signal(kind).map_err(StartError::Signals);
    let mut hup = signals(SignalKind::hangup())?;
    let mut term = signals(SignalKind::terminate())?;
    let mut int = signals(SignalKind::interrupt())?;
    let mut config = options.config.load()?;
    let Some(state_dir) = state_dir(&config) else {
        return Err(StartError::NoStateDir);
    };
    crate::fsutil::ensure_private_dir(&state_dir).map_err(|source| StartError::StateDir {
        path: state_dir.clone(),
        source,
    })?;
    // Held until run() returns: one daemon per state directory.
    let _lock = crate::statelock::StateLock::acquire(&state_dir)?;
    let store: Arc<dyn SecretStore> = match &options.store {
        Some(s) => Arc::clone(s),
        None => crate::setup::open_store(config.daemon.secrets, &state_dir),
    };
    let http = crate::http::api_client().map_err(|e| StartError::Http(e.to_string()))?;
    let token_http = crate::http::token_client().map_err(|e| StartError::Http(e.to_string()))?;
    let (reload_tx, mut reload_rx) = mpsc::channel(4);
    let (tracker, root, changed) = (TaskTracker::new(), CancellationToken::new(), Arc::default());
    let scheduler = Scheduler::start(
        Arc::clone(&options.clock),
        &tracker,
        root.child_token(),
        Arc::clone(&changed),
    );
    let shared = Arc::new(Shared {
        state: RwLock::new(State {
            config: Arc::new(config.clone()),
            accounts: BTreeMap::new(),
            jobs: BTreeMap::new(),
        }),
        store,
        clock: Arc::clone(&options.clock),
        http,
        token_http,
        notifier: Notifier::new(Some(state_dir.clone())),
        state_dir,
        source: options.config.clone(),
        tracker,
        root,
        scheduler,
        reloads: reload_tx,
        changed,
        cooldowns: Arc::default(),
    });
    shared.with_stored_client_secret(&mut config).await?;
    let mut managers = BTreeMap::new();
    for (name, account) in &config.accounts {
        let m = shared.new_manager(account);
        m.load().await.map_err(|source| StartError::Secrets {
            account: name.clone(),
            source,
        })?;
        managers.insert(name.clone(), m);
    }
    let socket = control::socket_path(config.daemon.socket.as_deref());
    let listener = control::bind(&socket).await?;
    let ours = inode(&socket);
    // The first refresh of every account, FIRST_WAVE at a time, by the
    // accounts' own loops; READY=1 waits for them at most READY_WAIT, and
    // `status` shows the rest as refreshing (DESIGN §6).
    let wave = Arc::new(tokio::sync::Semaphore::new(FIRST_WAVE));
    let accounts: BTreeMap<String, AccountHandle> = managers
        .iter()
        .map(|(n, m)| {
            m.set_first_wave(Arc::clone(&wave));
            (n.clone(), shared.spawn_account(m))
        })
        .collect();
    shared.write().accounts = accounts;
    // `status` and `token` answer while the first refreshes run; jobs start
    // after READY=1.
    let control_cancel = CancellationToken::new();
    tokio::spawn(control::serve(
        listener,
        Arc::new(ControlHandler(Arc::clone(&shared))),
        control_cancel.clone(),
        TaskTracker::new(),
    ));
    let settled = async {
        while !managers.values().all(|m| m.settled()) {
            shared.changed.notified().await;
        }
    };
    if tokio::time::timeout(READY_WAIT, settled).await.is_err() {
        let waiting = managers.values().filter(|m| !m.settled()).count();
        tracing::info!(
            "{waiting} accounts still wait for their first refresh; READY=1 now, they go on"
        );
    }
    {
        let mut state = shared.write();
        let jobs = shared.start_jobs(&config, &state.accounts, BTreeMap::new());
        state.config = Arc::new(config);
        state.jobs = jobs;
    }
    let summary = shared.report().summary();
    tracing::info!("ready: {summary}; control socket {}", socket.display());
    systemd::ready(&summary);
    systemd::release_free_memory();
    let heartbeat = spawn_heartbeat(&shared);

    loop {
        let reply = tokio::select! {
            _ = hup.recv() => None,
            Some(reply) = reload_rx.recv() => Some(reply),
            _ = term.recv() => break,
            _ = int.recv() => break,
            () = options.stop.cancelled() => break,
        };
        tracing::info!("reloading {}", describe(&shared.source));
        systemd::reloading();
        let result = shared.reload().await;
        match &result {
            Ok(()) => tracing::info!("reload done: {}", shared.report().summary()),
            Err(e) => tracing::error!("reload refused, the running configuration stays: {e}"),
        }
        systemd::ready(&shared.report().summary());
        systemd::release_free_memory();
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }

    // Shutdown: no run starts any more; running jobs get the grace period.
    let grace = shared.read().config.daemon.shutdown_grace;
    let running: Vec<String> = shared
        .read()
        .jobs
        .values()
        .filter(|j| shared.scheduler.state(j.key).is_some_and(|s| s.running))
        .map(|j| j.job.name.clone())
        .collect();
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
    control_cancel.cancel();
    shared.root.cancel();
    shared.tracker.close();
    tokio::select! {
        () = shared.tracker.wait() => tracing::info!("stopped"),
        () = tokio::time::sleep(grace) => tracing::warn!("jobs (or a token request) still running after the grace period of {}; jobs are stopped now, a token request is finished first", crate::config::format_duration(grace)),
        _ = int.recv() => tracing::warn!("second interrupt: stopping at once"),
    }
    // Whatever jobs' programs left running gets SIGTERM, then SIGKILL.
    jobs::child::stop_all().await;
    finish_token_requests(&shared).await;
    heartbeat.abort();
    // Only the socket this daemon made: if something else was put at the
    // path since, it is not ours to delete (issue 12 §3).
    if ours.is_some() && inode(&socket) == ours {
        let _ = std::fs::remove_file(&socket);
    }
    Ok(0)
}

/// Whatever the jobs' grace: a token request in flight is finished and its
/// rotation stored, and a rotation the store refused gets one more try
/// (DESIGN §5). Bounded by the request's own timeout and two store calls,
/// which fit in the units' `TimeoutStopSec=`.
async fn finish_token_requests(shared: &Shared) {
    let managers: Vec<Arc<TokenManager>> = shared
        .read()
        .accounts
        .values()
        .map(|a| Arc::clone(&a.tokens))
        .collect();
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
fn inode(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

fn describe(source: &ConfigSource) -> String {
    match source {
        ConfigSource::File(p) => p.display().to_string(),
        ConfigSource::Fixed(_) => "the built-in configuration".into(),
    }
}

/// The heartbeat: `WATCHDOG=1` when systemd asks for it, and `STATUS=`
/// whenever an account or job changed. It runs on the same runtime as the
/// scheduler, so a stuck runtime stops the pings and systemd restarts us.
fn spawn_heartbeat(shared: &Arc<Shared>) -> tokio::task::JoinHandle<()> {
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        // An interval keeps its beat whatever else wakes this loop: a sleep
        // restarted on every status change would starve the watchdog while
        // jobs run often.
        let mut beat = systemd::watchdog_interval().map(|i| {
            let mut t = tokio::time::interval(i / 2);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        // READY=1 carried the first summary; what the first refreshes found
        // may already need a person.
        let mut last = String::new();
        shared.notify(&shared.report());
        loop {
            let tick = async {
                match beat.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tick => systemd::watchdog(),
                () = shared.changed.notified() => {}
            }
            let report = shared.report();
            shared.notify(&report);
            let summary = report.summary();
            if summary != last {
                systemd::status(&summary);
                last = summary;
            }
        }
    })
}

/// For `freshd check`: the state directory as the daemon would use it.
pub fn describe_state_dir(config: &Config) -> String {
    state_dir(config).map_or_else(
        || "(none: set [daemon] state_dir)".into(),
        |p| p.display().to_string(),
    )
}

/// The socket path as the daemon would use it.
pub fn describe_socket(config: &Config) -> String {
    control::socket_path(config.daemon.socket.as_deref())
        .display()
        .to_string()
}

//! The running accounts and jobs: how each is started, what `status`
//! reads of them, and a reload's diffing of the old set against the new.
//!
//! Invariants: an account whose settings did not change keeps its token
//! manager (and so its tokens); a job that did not change, on an account
//! that kept its manager, keeps its schedule and status. A replaced manager hands its chain
//! to the new one before the swap, so `status` and `token` never see an
//! empty daemon. Every change `status` shows reaches one route: `changed`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{ConfigSource, StartError};
use crate::api::Cooldowns;
use crate::config::{Account, Config, Job};
use crate::control::{Refusal, Response};
use crate::jobs::{self, JobContext, RunOutcome};
use crate::notify::FailingJob;
use crate::oauth::TokenManager;
use crate::scheduler::{self, JobKey, JobState, Scheduler};
use crate::secrets::SecretStore;
use crate::status::{AccountStatus, DaemonInfo, JobResult, JobRow, StatusSnapshot, Summary};
use crate::sync::RwLockExt;
use crate::time::Clock;

mod reload;

/// A scheduled job.
#[derive(Debug)]
pub(super) struct JobHandle {
    job: Arc<Job>,
    tokens: Arc<TokenManager>,
    key: JobKey,
}

/// A running account.
#[derive(Debug)]
pub(super) struct AccountHandle {
    pub(super) tokens: Arc<TokenManager>,
    cancel: CancellationToken,
}

/// The config in force, and the accounts and jobs running it.
#[derive(Debug)]
pub(super) struct Running {
    /// The config in force, but for its jobs: they are in `jobs`.
    pub(super) config: Arc<Config>,
    pub(super) accounts: BTreeMap<String, AccountHandle>,
    jobs: BTreeMap<String, JobHandle>,
}

/// The running accounts and jobs, and what starting one needs.
#[derive(Debug)]
pub(super) struct Registry {
    running: RwLock<Running>,
    store: Arc<dyn SecretStore>,
    pub(super) clock: Arc<dyn Clock>,
    /// For token endpoints: no redirects.
    token_http: reqwest::Client,
    state_dir: PathBuf,
    pub(super) source: ConfigSource,
    /// Every account's and job's task, waited for at shutdown.
    pub(super) tracker: TaskTracker,
    /// Cancelling it stops every account and the scheduler.
    pub(super) root: CancellationToken,
    /// Every job's schedule and state; its timer and runs are on `tracker`.
    scheduler: Scheduler,
    /// What every job's runs share.
    job_services: Arc<JobServices>,
    /// Something `status` shows changed: an account's keeper (its
    /// observer), a job's run, or a reload tells it; the heartbeat waits
    /// on it.
    pub(super) changed: Arc<Notify>,
}

/// What every run of every job is given besides its job and account.
#[derive(Debug)]
struct JobServices {
    /// For the APIs jobs call: same-origin redirects only.
    http: reqwest::Client,
    state_dir: PathBuf,
    cooldowns: Arc<Cooldowns>,
    clock: Arc<dyn Clock>,
}

impl JobServices {
    /// One run's context.
    fn context(&self, job: Arc<Job>, tokens: Arc<TokenManager>) -> JobContext {
        JobContext {
            job,
            tokens,
            http: self.http.clone(),
            state_dir: self.state_dir.clone(),
            cooldowns: Arc::clone(&self.cooldowns),
            clock: Arc::clone(&self.clock),
        }
    }
}

/// What [`Registry::new`] needs besides the config.
pub(super) struct Services {
    pub(super) store: Arc<dyn SecretStore>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) http: reqwest::Client,
    pub(super) token_http: reqwest::Client,
    pub(super) state_dir: PathBuf,
    pub(super) source: ConfigSource,
}

impl Registry {
    /// An empty registry for `config`: no account or job runs yet.
    pub(super) fn new(config: &Config, services: Services) -> Self {
        let (tracker, root, changed) =
            (TaskTracker::new(), CancellationToken::new(), Arc::default());
        let scheduler = Scheduler::start(
            Arc::clone(&services.clock),
            &tracker,
            root.child_token(),
            Arc::clone(&changed),
        );
        let job_services = Arc::new(JobServices {
            http: services.http,
            state_dir: services.state_dir.clone(),
            cooldowns: Arc::default(),
            clock: Arc::clone(&services.clock),
        });
        Registry {
            running: RwLock::new(Running {
                config: Arc::new(Config {
                    path: config.path.clone(),
                    daemon: config.daemon.clone(),
                    accounts: config.accounts.clone(),
                    jobs: BTreeMap::new(),
                }),
                accounts: BTreeMap::new(),
                jobs: BTreeMap::new(),
            }),
            store: services.store,
            clock: services.clock,
            token_http: services.token_http,
            state_dir: services.state_dir,
            source: services.source,
            tracker,
            root,
            scheduler,
            job_services,
            changed,
        }
    }

    pub(super) fn read(&self) -> std::sync::RwLockReadGuard<'_, Running> {
        self.running.read_locked()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Running> {
        self.running.write_locked()
    }

    /// What `freshd status` shows: copies of the times, the jobs shared
    /// (no name is copied), so the locks are held only briefly.
    pub(super) fn report(&self) -> StatusSnapshot {
        let running = self.read();
        let accounts = self.account_statuses_of(&running);
        // In name order already (a map by name); one lock for every state.
        // Jobs get their keys in name order, but for those a reload added:
        // the states, walked in key order, are mostly met in turn.
        let jobs: Vec<JobRow> = self.scheduler.states(|states| {
            let states: Vec<(JobKey, &JobState)> = states.iter().collect();
            let idle = JobState::default();
            let mut next = 0;
            running
                .jobs
                .values()
                .map(|j| {
                    let at = match states.get(next) {
                        Some((key, _)) if *key == j.key => Ok(next),
                        _ => states.binary_search_by_key(&j.key, |(key, _)| *key),
                    };
                    let state = match at {
                        Ok(i) => {
                            next = i + 1;
                            states[i].1
                        }
                        Err(_) => &idle,
                    };
                    job_row(j, state)
                })
                .collect()
        });
        let daemon = Some(DaemonInfo::this_process(
            self.source.origin(),
            super::socket_text(&running.config),
            running.config.daemon.timezone_name.clone(),
        ));
        StatusSnapshot {
            accounts,
            jobs,
            daemon,
        }
    }

    /// The counts systemd's `STATUS=` line shows, without the rest of the
    /// report.
    pub(super) fn summary(&self) -> Summary {
        let running = self.read();
        let mut summary = Summary::default();
        for (name, account) in &running.accounts {
            summary.count_account(name, account.tokens.status().state);
        }
        summary.count_jobs(running.jobs.len(), self.scheduler.last_failed());
        summary
    }

    /// Every account's status, in name order.
    pub(super) fn account_statuses(&self) -> Vec<AccountStatus> {
        self.account_statuses_of(&self.read())
    }

    fn account_statuses_of(&self, running: &Running) -> Vec<AccountStatus> {
        running
            .accounts
            .values()
            .map(|a| a.tokens.status())
            .collect()
    }

    /// The jobs whose last runs failed, with how many in a row.
    pub(super) fn failing_jobs(&self) -> Vec<FailingJob> {
        self.scheduler
            .failing()
            .into_iter()
            .map(|(job, state)| FailingJob {
                name: job.name.clone(),
                account: job.account.to_string(),
                failures: state.failures,
                last_error: last_error(&state),
            })
            .collect()
    }

    /// The names of the jobs running now.
    pub(super) fn running_jobs(&self) -> Vec<String> {
        self.read()
            .jobs
            .values()
            .filter(|j| self.job_state(j).running)
            .map(|j| j.job.name.clone())
            .collect()
    }

    /// What the scheduler holds of a job (nothing yet for one just removed).
    fn job_state(&self, job: &JobHandle) -> JobState {
        self.scheduler.state(job.key).unwrap_or_default()
    }

    /// Every account's token manager.
    pub(super) fn token_managers(&self) -> Vec<Arc<TokenManager>> {
        self.read()
            .accounts
            .values()
            .map(|a| Arc::clone(&a.tokens))
            .collect()
    }

    pub(super) fn new_manager(&self, account: &Arc<Account>) -> Arc<TokenManager> {
        let account = Arc::clone(account);
        let endpoint = crate::setup::token_endpoint(
            &account,
            account.client_secret(),
            self.token_http.clone(),
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

    /// A loaded token manager for each account of `config`: a store that
    /// cannot be read stops the start.
    pub(super) async fn load_accounts(
        &self,
        config: &Config,
    ) -> Result<BTreeMap<String, Arc<TokenManager>>, StartError> {
        let mut managers = BTreeMap::new();
        for (name, account) in &config.accounts {
            let m = self.new_manager(account);
            m.load().await.map_err(|source| StartError::Secrets {
                account: name.clone(),
                source,
            })?;
            managers.insert(name.clone(), m);
        }
        Ok(managers)
    }

    /// Reads a client secret from the store (`setup::client_secret`) for accounts that have none in
    /// the file, so the token endpoint gets it.
    pub(super) async fn with_stored_client_secret(
        &self,
        config: &mut Config,
    ) -> Result<(), StartError> {
        for (name, account) in config.accounts.iter_mut() {
            if account.client_secret.is_some() {
                continue;
            }
            let secret = crate::setup::client_secret(&self.store, account)
                .await
                .map_err(|source| StartError::Secrets {
                    account: name.clone(),
                    source,
                })?;
            if let Some(secret) = secret {
                let mut a = (**account).clone();
                a.client_secret = Some(secret.into());
                *account = Arc::new(a);
            }
        }
        Ok(())
    }

    /// Starts every account of `managers`, their first refreshes `wave`
    /// permits at a time.
    pub(super) fn start_accounts(
        &self,
        managers: &BTreeMap<String, Arc<TokenManager>>,
        wave: &Arc<tokio::sync::Semaphore>,
    ) {
        let accounts = managers
            .iter()
            .map(|(n, m)| {
                m.set_first_wave(Arc::clone(wave));
                (n.clone(), self.spawn_account(m))
            })
            .collect();
        self.write().accounts = accounts;
    }

    /// Starts every job of `config` (at start-up, after `READY=1`), which
    /// is then the config in force.
    pub(super) fn start_first_jobs(&self, config: Config) {
        let mut running = self.write();
        let jobs = self.start_jobs(&config, &running.accounts, BTreeMap::new());
        running.config = Arc::new(without_jobs(config));
        running.jobs = jobs;
    }

    fn spawn_account(&self, tokens: &Arc<TokenManager>) -> AccountHandle {
        tokens.set_observer(Arc::clone(&self.changed));
        let cancel = self.root.child_token();
        let t = Arc::clone(tokens);
        let c = cancel.clone();
        self.tracker.spawn(async move { t.run(c).await });
        AccountHandle {
            tokens: Arc::clone(tokens),
            cancel,
        }
    }

    fn spawn_job(&self, job: &Arc<Job>, tokens: &Arc<TokenManager>) -> JobHandle {
        let body = jobs::body_for(job);
        // What every job shares is held once; a run's context is made when
        // it starts, not kept per job (a hundred thousand jobs, one state
        // directory).
        let shared = Arc::clone(&self.job_services);
        let (for_run, tokens_for_run) = (Arc::clone(job), Arc::clone(tokens));
        let run = scheduler::boxed(move || {
            let body = Arc::clone(&body);
            let cx = shared.context(Arc::clone(&for_run), Arc::clone(&tokens_for_run));
            async move { body.run(&cx).await }
        });
        JobHandle {
            job: Arc::clone(job),
            tokens: Arc::clone(tokens),
            key: self.scheduler.add(Arc::clone(job), run),
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
            let Some(tokens) = accounts.get(&*job.account).map(|a| &a.tokens) else {
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
}

/// `config` as [`Running`] keeps it: its jobs are in `Running::jobs`, not
/// held twice (a hundred thousand names and map entries).
pub(super) fn without_jobs(config: Config) -> Config {
    Config {
        jobs: BTreeMap::new(),
        ..config
    }
}

/// `status`'s line for one job.
fn job_row(j: &JobHandle, s: &JobState) -> JobRow {
    JobRow {
        job: Arc::clone(&j.job),
        next_run: s.next_run,
        last_run: s.last_run,
        last_result: s.last_outcome.as_ref().map(job_result),
        last_error: last_error(s),
        running: s.running,
    }
}

/// What the job's last run said when it was not ok.
fn last_error(s: &JobState) -> Option<String> {
    match &s.last_outcome {
        Some(RunOutcome::Error(e) | RunOutcome::Skipped(e)) => Some(e.clone()),
        _ => None,
    }
}

/// How `status` names a run's outcome.
fn job_result(outcome: &RunOutcome) -> JobResult {
    match outcome {
        RunOutcome::Ok => JobResult::Ok,
        RunOutcome::Error(_) => JobResult::Error,
        RunOutcome::Skipped(_) => JobResult::Skipped,
    }
}

/// `freshd run-job`: runs the job now (after its run in progress, if any)
/// and answers how the run ended.
pub(super) async fn run_job(registry: &Registry, name: &str) -> Response {
    let key = {
        let running = registry.read();
        match running.jobs.get(name) {
            Some(j) => j.key,
            None => {
                let known: Vec<&str> = running.jobs.keys().map(String::as_str).collect();
                return Response::refused(
                    Refusal::Usage,
                    format!("no job named \"{name}\"; jobs: {}", known.join(", ")),
                );
            }
        }
    };
    let (tx, rx) = oneshot::channel();
    if !registry.scheduler.run_now(key, tx) {
        return Response::refused(Refusal::Failed, "the job was stopped (reload or shutdown)");
    }
    match rx.await {
        Ok(outcome) => Response::JobFinished {
            result: job_result(&outcome),
            detail: match outcome {
                RunOutcome::Ok => None,
                RunOutcome::Error(msg) | RunOutcome::Skipped(msg) => Some(msg),
            },
        },
        Err(_) => Response::refused(Refusal::Failed, "the job was stopped before it ran"),
    }
}

//! A reload's diffing: the new config is read and its accounts loaded
//! before anything changes; then, in one swap, changed accounts get their
//! new manager, unchanged ones stay, removed ones stop, and the jobs follow.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{AccountHandle, Registry};
use crate::config::Config;
use crate::oauth::TokenManager;

impl Registry {
    /// SIGHUP: the new config is loaded and validated (secrets included)
    /// before anything changes; on any error the running config stays.
    pub(in crate::daemon) async fn reload(&self) -> Result<(), String> {
        let mut config = self.read_new_config().await?;
        self.with_stored_client_secret(&mut config)
            .await
            .map_err(|e| e.to_string())?;
        let fresh = self.load_changed_accounts(&config).await?;
        self.hand_over(&fresh).await;
        let kept = self.swap(config, fresh);
        self.changed.notify_one();
        // Accounts that were waiting for a token look in the store again.
        for tokens in kept {
            if let Err(e) = tokens.reload_secret().await {
                tracing::error!(ACCOUNT = %tokens.account().name, "{e}");
            }
        }
        Ok(())
    }

    /// The new config, refused if it changes what only a restart changes.
    async fn read_new_config(&self) -> Result<Config, String> {
        // Off the runtime thread: a config on a hung mount must not stop the
        // token keeper or the control socket while it is read.
        let source = self.source.clone();
        let config = tokio::task::spawn_blocking(move || source.load())
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
        Ok(config)
    }

    /// New or changed accounts get a new manager, loaded before the swap.
    async fn load_changed_accounts(
        &self,
        config: &Config,
    ) -> Result<BTreeMap<String, Arc<TokenManager>>, String> {
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
        Ok(fresh)
    }

    /// The chain goes on in the new manager: it takes what the old one
    /// holds (a rotation the store refused, the newest token), after the
    /// old one's request in flight, and the old one sends nothing more.
    /// Done before the swap, so `status` and `token` never see an empty
    /// daemon while a request is waited for.
    async fn hand_over(&self, fresh: &BTreeMap<String, Arc<TokenManager>>) {
        let replaced: Vec<(Arc<TokenManager>, Arc<TokenManager>)> = {
            let running = self.read();
            fresh
                .iter()
                .filter_map(|(n, m)| {
                    running
                        .accounts
                        .get(n)
                        .map(|o| (Arc::clone(m), Arc::clone(&o.tokens)))
                })
                .collect()
        };
        for (new, old) in &replaced {
            new.inherit(old).await;
        }
    }

    /// Puts `config` in force: `fresh` accounts start, unchanged ones stay,
    /// removed ones stop; then the jobs follow. Returns the accounts kept.
    fn swap(
        &self,
        config: Config,
        mut fresh: BTreeMap<String, Arc<TokenManager>>,
    ) -> Vec<Arc<TokenManager>> {
        let (mut old_accounts, old_jobs) = {
            let mut running = self.write();
            (
                std::mem::take(&mut running.accounts),
                std::mem::take(&mut running.jobs),
            )
        };
        let mut accounts = BTreeMap::new();
        let mut kept = Vec::new();
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
        self.retire(old_accounts);
        let jobs = self.start_jobs(&config, &accounts, old_jobs);
        let mut running = self.write();
        running.config = Arc::new(super::without_jobs(config));
        running.accounts = accounts;
        running.jobs = jobs;
        kept
    }

    /// Stops the accounts a reload removed. Each one's request in flight is
    /// finished and a rotation the store refused gets a last try; what
    /// cannot be saved is said.
    fn retire(&self, gone: BTreeMap<String, AccountHandle>) {
        for (name, gone) in gone {
            tracing::info!(ACCOUNT = %name, "account removed by the reload");
            gone.cancel.cancel();
            let tokens = gone.tokens;
            self.tracker.spawn(async move {
                tokens.retire().await;
                tokens.finish().await;
            });
        }
    }
}

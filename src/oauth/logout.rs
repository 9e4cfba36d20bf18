//! `freshd logout`: revoke the refresh token at the provider (RFC 7009)
//! where it has a revocation endpoint, then delete it from the store.
//!
//! A revocation that fails for a reason that may pass (the provider is
//! down) deletes nothing, so that running logout again can still revoke; a
//! provider that refuses outright does not keep the token in the store.
//! The token and the client secret are never printed.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::SecretString;

use super::endpoint::{HttpEndpoint, RefreshError, Revocation};
use crate::config::Account;
use crate::secrets::{self, SecretKind, SecretStore};

/// Exit code when a person must act (DESIGN §2).
const EXIT_CONFIG: u8 = 78;

/// How a logout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: u8,
    /// The store holds no refresh token for the account now: a running
    /// daemon should drop its own.
    pub deleted: bool,
}

/// Logs `account` out, saying what happened on stderr.
pub async fn logout(
    account: &Account,
    store: &Arc<dyn SecretStore>,
    client_secret: Option<SecretString>,
    http: reqwest::Client,
    state_dir: Option<PathBuf>,
) -> Outcome {
    let kept = |exit_code| Outcome {
        exit_code,
        deleted: false,
    };
    let name = account.name.as_str();
    // The refresh token, and the long-lived access token of a provider
    // that issues no refresh token (DESIGN §4).
    let mut stored = Vec::new();
    for kind in [SecretKind::RefreshToken, SecretKind::AccessToken] {
        match secrets::get(store, name, kind).await {
            Ok(Some(token)) => stored.push((kind, token)),
            Ok(None) => {}
            Err(e) => {
                eprintln!("freshd: {e}");
                return kept(if e.needs_person() { EXIT_CONFIG } else { 1 });
            }
        }
    }
    if stored.is_empty() {
        eprintln!("freshd: no token of {name} is stored; nothing to revoke");
    }
    let endpoint = HttpEndpoint::for_account(http, account, client_secret, state_dir.clone());
    let code = match revoke_all(&endpoint, name, &stored).await {
        Ok(code) => code,
        Err(code) => return kept(code),
    };
    for kind in [SecretKind::RefreshToken, SecretKind::AccessToken] {
        if let Err(e) = secrets::delete(store, name, kind).await {
            eprintln!("freshd: {e}");
            return kept(if e.needs_person() { EXIT_CONFIG } else { 1 });
        }
    }
    if let Some(dir) = state_dir {
        super::token_info::remove_token_info(&dir, name);
    }
    for (kind, _) in &stored {
        eprintln!(
            "freshd: deleted the {} of {name} from {}",
            revoked_noun(*kind),
            store.hint(name, *kind)
        );
    }
    Outcome {
        exit_code: code,
        deleted: true,
    }
}

/// Revokes each stored token at the provider, saying how it went: `Ok`
/// with the exit code once the tokens may be deleted (a refusal is said,
/// and they go anyway), `Err` with it when nothing may be deleted (the
/// provider could not be reached: try again later).
async fn revoke_all(
    endpoint: &HttpEndpoint,
    name: &str,
    stored: &[(SecretKind, SecretString)],
) -> Result<u8, u8> {
    let mut code = 0;
    for (kind, token) in stored {
        let what = revoked_noun(*kind);
        match endpoint.revoke(token, kind.as_str()).await {
            Ok(Revocation::Revoked { url }) => {
                eprintln!("freshd: revoked the {what} of {name} at {url}");
            }
            Ok(Revocation::NoEndpoint) => eprintln!(
                "freshd: the provider of {name} has no revocation endpoint that freshd knows of (set `revocation_url`, or `issuer` to discover it): the {what} stays valid at the provider until you remove freshd's access there"
            ),
            Err(e @ RefreshError::Transient { .. }) => {
                eprintln!(
                    "freshd: cannot revoke the {what} of {name}: {e}; nothing was deleted: run `freshd logout {name}` again later"
                );
                return Err(1);
            }
            Err(e) => {
                eprintln!(
                    "freshd: the provider refused to revoke the {what} of {name}: {e}; deleting it here anyway (remove freshd's access at the provider to be sure)"
                );
                code = 1;
            }
        }
    }
    Ok(code)
}

/// What logout says it revoked.
fn revoked_noun(kind: SecretKind) -> &'static str {
    match kind {
        SecretKind::AccessToken => "access token",
        _ => "refresh token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::memory::MemoryStore;
    use secrecy::ExposeSecret;

    fn account(extra: &str) -> Account {
        let config = crate::config::Config::parse(
            &format!(
                "[accounts.a]\nclient_id = \"id\"\ntoken_url = \"http://127.0.0.1:9/t\"\n{extra}"
            ),
            std::path::Path::new("/x.toml"),
            false,
            crate::jobs::TYPES,
        )
        .unwrap();
        (*config.accounts["a"]).clone()
    }

    fn store_with_token() -> Arc<dyn SecretStore> {
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::new());
        store
            .set("a", SecretKind::RefreshToken, &SecretString::from("rt"))
            .unwrap();
        store
    }

    #[tokio::test]
    async fn without_a_revocation_endpoint_the_token_is_deleted() {
        let store = store_with_token();
        store
            .set("a", SecretKind::AccessToken, &SecretString::from("at"))
            .unwrap();
        let out = logout(&account(""), &store, None, reqwest::Client::new(), None).await;
        assert_eq!(
            out,
            Outcome {
                exit_code: 0,
                deleted: true
            }
        );
        assert!(store.get("a", SecretKind::RefreshToken).unwrap().is_none());
        assert!(store.get("a", SecretKind::AccessToken).unwrap().is_none());
    }

    #[tokio::test]
    async fn an_unreachable_revocation_endpoint_deletes_nothing() {
        let store = store_with_token();
        let acc = account("revocation_url = \"http://127.0.0.1:9/revoke\"\n");
        let out = logout(&acc, &store, None, reqwest::Client::new(), None).await;
        assert_eq!(
            out,
            Outcome {
                exit_code: 1,
                deleted: false
            }
        );
        let kept = store.get("a", SecretKind::RefreshToken).unwrap().unwrap();
        assert_eq!(kept.expose_secret(), "rt");
    }
}

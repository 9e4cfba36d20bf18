//! The Secret Service (gnome-keyring, KWallet, KeePassXC) through
//! `keyring-core` and the pure-Rust zbus store. Entries are service
//! `freshd`, user `ACCOUNT/refresh_token` or `ACCOUNT/client_secret`, with no
//! other attributes to match, so `secret-tool store … service freshd
//! username ACCOUNT/refresh_token` makes an entry freshd finds and
//! `secret-tool lookup` finds what freshd stored.
//!
//! Every call blocks on D-Bus; callers use [`super::get`] / [`super::set`].
//!
//! # Sessions survive a keyring restart
//!
//! The zbus store opens one Secret Service session when it is built and
//! keeps it; freshd keeps one only while calls use it and a second after
//! (each open session holds two bus connections, each with a zbus
//! thread). A keyring daemon that restarts (`gnome-keyring-daemon
//! --replace`) forgets that session, and every later call would fail with
//! `org.freedesktop.Secret.Error.NoSession`, or, worse, a session path the
//! new daemon reuses would carry secrets encrypted for a key it never
//! agreed. So before each call freshd asks the bus who owns
//! `org.freedesktop.secrets` and opens a new session when the owner
//! changed, and a call that fails for any reason other than a locked
//! keyring is tried once more on a new session.

use crate::sync::MutexExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyring_core::Error as KeyringError;
use keyring_core::api::CredentialStoreApi;
use secrecy::{ExposeSecret, SecretString};
use zbus_secret_service_keyring_store::Store;

use super::{SERVICE, SecretError, SecretKind, SecretStore};

/// The Secret Service's well-known bus name.
const BUS_NAME: &str = "org.freedesktop.secrets";

/// The Secret Service, connected while calls use it and again after it
/// restarts.
#[derive(Debug, Default)]
pub struct KeyringStore {
    open: Arc<Mutex<Open>>,
}

/// How long a session stays open after its last call: calls in a row
/// (every account's tokens read at start, one after another) share one,
/// instead of each paying for two bus connections and a key exchange
/// (about 45 ms in a debug build, against 1.4 ms on an open session).
const LINGER: Duration = Duration::from_secs(1);

/// The session calls share, and how many calls are using it. It is closed
/// [`LINGER`] after the last call finished: an open session keeps two bus
/// connections, each with a thread of zbus's, for a store that is used at
/// start-up and when a token rotates, then not for hours.
#[derive(Debug, Default)]
struct Open {
    session: Option<Arc<Session>>,
    users: usize,
    /// When the last call finished.
    released: Option<Instant>,
    /// A thread is waiting to close the session.
    closer: bool,
}

/// One call's use of the shared session; dropping the last may close it.
struct InUse {
    open: Arc<Mutex<Open>>,
}

impl Drop for InUse {
    fn drop(&mut self) {
        let mut open = self.open.locked();
        open.users = open.users.saturating_sub(1);
        if open.users > 0 || open.session.is_none() {
            return;
        }
        open.released = Some(Instant::now());
        if open.closer {
            return;
        }
        let shared = Arc::clone(&self.open);
        let spawned = std::thread::Builder::new()
            .name("keyring-close".into())
            .spawn(move || close_when_unused(&shared));
        match spawned {
            Ok(_) => open.closer = true,
            Err(_) => {
                // No thread: close it now.
                let closing = open.session.take();
                drop(open);
                drop(closing);
            }
        }
    }
}

/// Closes the session once no call has used it for [`LINGER`]; leaves it
/// to a later call's end when one is using it.
fn close_when_unused(open: &Mutex<Open>) {
    let mut wait = LINGER;
    loop {
        std::thread::sleep(wait);
        let mut guard = open.locked();
        let idle = guard.released.map_or(LINGER, |at| at.elapsed());
        if guard.users == 0 && idle < LINGER {
            // Used again meanwhile: wait out the rest.
            wait = LINGER - idle;
            continue;
        }
        guard.closer = false;
        let closing = if guard.users == 0 {
            guard.session.take()
        } else {
            None
        };
        drop(guard);
        // The connections close outside the lock.
        drop(closing);
        return;
    }
}

/// One Secret Service session, and who served it.
#[derive(Debug)]
struct Session {
    store: Arc<Store>,
    /// A bus connection of our own, to ask who owns [`BUS_NAME`].
    bus: zbus::blocking::Connection,
    /// The owner's unique name when the session was opened.
    owner: Option<String>,
}

impl Session {
    fn open() -> Result<Session, SecretError> {
        let bus = zbus::blocking::Connection::session().map_err(|e| SecretError::NoService {
            detail: e.to_string(),
        })?;
        // The store's own connection activates the service if need be.
        let store = Store::new().map_err(|e| classify(&e))?;
        let owner = owner(&bus);
        Ok(Session { store, bus, owner })
    }

    /// Whether the service that served this session still owns the name.
    fn current(&self) -> bool {
        self.owner.is_some() && owner(&self.bus) == self.owner
    }
}

/// The unique name that owns [`BUS_NAME`], if anyone does (and the bus
/// answers).
fn owner(bus: &zbus::blocking::Connection) -> Option<String> {
    let proxy = zbus::blocking::fdo::DBusProxy::new(bus).ok()?;
    let name = zbus::names::BusName::try_from(BUS_NAME).ok()?;
    proxy.get_name_owner(name).ok().map(|n| n.to_string())
}

impl KeyringStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks a call as using the session until the guard drops.
    fn use_session(&self) -> InUse {
        self.open.locked().users += 1;
        InUse {
            open: Arc::clone(&self.open),
        }
    }

    /// The open session, or a new one when there is none or its service
    /// has gone (the bus name changed owner).
    fn session(&self) -> Result<Arc<Session>, SecretError> {
        let mut open = self.open.locked();
        let slot = &mut open.session;
        if let Some(s) = slot.as_ref() {
            if s.current() {
                return Ok(Arc::clone(s));
            }
            tracing::info!(
                "the Secret Service restarted ({BUS_NAME} has a new owner): opening a new session"
            );
        }
        *slot = None;
        let fresh = Arc::new(Session::open()?);
        *slot = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    /// Forgets `stale` (unless another call already replaced it).
    fn forget(&self, stale: &Arc<Session>) {
        let mut open = self.open.locked();
        if open.session.as_ref().is_some_and(|s| Arc::ptr_eq(s, stale)) {
            open.session = None;
        }
    }

    /// `call` on the entry, tried once more on a new session when it fails
    /// for a reason a new session may cure (not a locked keyring, not a
    /// missing entry).
    fn with_entry<T>(
        &self,
        account: &str,
        kind: SecretKind,
        call: impl Fn(&keyring_core::Entry) -> Result<T, KeyringError>,
    ) -> Result<Result<T, KeyringError>, SecretError> {
        let _in_use = self.use_session();
        let session = self.session()?;
        let first = call(&entry(&session.store, account, kind)?);
        match &first {
            Err(e @ KeyringError::PlatformFailure(_)) if !looks_locked(&e.to_string()) => {
                tracing::info!(
                    "the Secret Service failed ({e}): trying once more on a new session"
                );
                self.forget(&session);
                let session = self.session()?;
                Ok(call(&entry(&session.store, account, kind)?))
            }
            _ => Ok(first),
        }
    }
}

fn entry(
    store: &Store,
    account: &str,
    kind: SecretKind,
) -> Result<keyring_core::Entry, SecretError> {
    let label = format!("freshd {account} {}", kind);
    let modifiers = HashMap::from([("label", label.as_str())]);
    store
        .build(SERVICE, &user(account, kind), Some(&modifiers))
        .map_err(|e| classify(&e))
}

/// The `username` attribute of an entry.
pub fn user(account: &str, kind: SecretKind) -> String {
    format!("{account}/{}", kind.as_str())
}

/// Turns a keyring error into one that says what to do. keyring-core's
/// errors hold no secret values, only platform messages.
fn classify(e: &KeyringError) -> SecretError {
    let detail = e.to_string();
    match e {
        KeyringError::NoStorageAccess(_) => SecretError::Locked { detail },
        KeyringError::PlatformFailure(_) if looks_locked(&detail) => SecretError::Locked { detail },
        KeyringError::PlatformFailure(_) if looks_unreachable(&detail) => {
            SecretError::NoService { detail }
        }
        _ => SecretError::Keyring { detail },
    }
}

fn looks_locked(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("locked") || d.contains("prompt") || d.contains("dismissed")
}

fn looks_unreachable(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "dbus",
        "d-bus",
        "address",
        "connect",
        "no such file",
        "serviceunknown",
        "not provided",
        "name",
    ]
    .iter()
    .any(|w| d.contains(w))
}

impl SecretStore for KeyringStore {
    fn get(&self, account: &str, kind: SecretKind) -> Result<Option<SecretString>, SecretError> {
        match self.with_entry(account, kind, keyring_core::Entry::get_password)? {
            Ok(p) => Ok(Some(SecretString::from(p))),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(KeyringError::BadEncoding(_)) => Err(SecretError::NotText {
                what: format!("{} in the keyring", kind),
            }),
            Err(KeyringError::Ambiguous(entries)) => Err(SecretError::Keyring {
                detail: format!(
                    "{} entries match service {SERVICE} username {}; remove all but one with `secret-tool clear service {SERVICE} username {}` and store it again",
                    entries.len(),
                    user(account, kind),
                    user(account, kind)
                ),
            }),
            Err(e) => Err(classify(&e)),
        }
    }

    fn set(
        &self,
        account: &str,
        kind: SecretKind,
        value: &SecretString,
    ) -> Result<(), SecretError> {
        self.with_entry(account, kind, |e| e.set_password(value.expose_secret()))?
            .map_err(|e| classify(&e))
    }

    fn delete(&self, account: &str, kind: SecretKind) -> Result<(), SecretError> {
        match self.with_entry(account, kind, keyring_core::Entry::delete_credential)? {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(classify(&e)),
        }
    }

    fn hint(&self, account: &str, kind: SecretKind) -> String {
        format!(
            "the keyring entry service {SERVICE} username {} (secret-tool store --label='freshd {account} {}' service {SERVICE} username {})",
            user(account, kind),
            kind,
            user(account, kind)
        )
    }
}

//! Token manager behaviour on tokio's paused clock, against a scripted
//! endpoint (the HTTP endpoint is covered end to end in tests/).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use super::endpoint::{GrantRequest, Lifetime, RefreshError, Tokens};
use super::plan::expiry_warning;
use super::*;
use crate::config::Config;
use crate::secrets::memory::MemoryStore;
use crate::secrets::{SecretKind, SecretStore};
use crate::time::TokioClock;

type Script = Box<dyn Fn(u32, Option<String>) -> Result<Tokens, RefreshError> + Send + Sync>;

/// Answers with `script(n, refresh_token_sent)` after a 50 ms round trip,
/// counting requests and remembering which refresh tokens were sent.
struct Scripted {
    count: AtomicU32,
    sent: Mutex<Vec<Option<String>>>,
    script: Script,
    queue: Mutex<VecDeque<Result<Tokens, RefreshError>>>,
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scripted")
    }
}

impl TokenEndpoint for Scripted {
    fn request<'a>(
        &'a self,
        grant: GrantRequest<'a>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Tokens, RefreshError>> + Send + 'a>,
    > {
        let rt = match grant {
            GrantRequest::RefreshToken(t) => Some(t.expose_secret().to_owned()),
            _ => None,
        };
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let n = self.count.fetch_add(1, Ordering::SeqCst);
            self.sent.lock().unwrap().push(rt.clone());
            if let Some(r) = self.queue.lock().unwrap().pop_front() {
                return r;
            }
            (self.script)(n, rt)
        })
    }
}

fn tokens(n: u32, lifetime: u64, rotate: bool) -> Tokens {
    Tokens {
        access_token: SecretString::from(format!("at-{n}")),
        lifetime: Lifetime::Given(Duration::from_secs(lifetime)),
        refresh_token: rotate.then(|| SecretString::from(format!("rt-{}", n + 1))),
        scope: None,
    }
}

fn transient(retry_after: Option<u64>) -> Result<Tokens, RefreshError> {
    Err(RefreshError::Transient {
        reason: "the token endpoint failed (503)".into(),
        retry_after: retry_after.map(Duration::from_secs),
    })
}

struct Rig {
    manager: Arc<TokenManager>,
    endpoint: Arc<Scripted>,
    store: Arc<MemoryStore>,
    clock: Arc<TokioClock>,
    cancel: CancellationToken,
}

async fn rig(script: Script) -> Rig {
    let text = "[accounts.a]\ntoken_url = \"http://127.0.0.1:1/token\"\nclient_id = \"id\"\nrefresh_before_expiry = \"5m\"\n";
    let config = Config::parse(text, Path::new("t.toml"), true, crate::jobs::TYPES).unwrap();
    let account = config.accounts["a"].clone();
    let endpoint = Arc::new(Scripted {
        count: AtomicU32::new(0),
        sent: Mutex::default(),
        script,
        queue: Mutex::default(),
    });
    let store = Arc::new(MemoryStore::new());
    store
        .set("a", SecretKind::RefreshToken, &SecretString::from("rt-0"))
        .unwrap();
    let clock = Arc::new(TokioClock::new("2026-06-01T00:00:00Z".parse().unwrap()));
    let manager = TokenManager::new(
        account,
        endpoint.clone(),
        store.clone(),
        clock.clone(),
        None,
    );
    manager.load().await.unwrap();
    Rig {
        manager,
        endpoint,
        store,
        clock,
        cancel: CancellationToken::new(),
    }
}

impl Rig {
    fn requests(&self) -> u32 {
        self.endpoint.count.load(Ordering::SeqCst)
    }

    fn start(&self) {
        tokio::spawn(self.manager.clone().run(self.cancel.clone()));
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_callers_at_expiry_make_one_request() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, false)))).await;
    let mut callers = Vec::new();
    for _ in 0..1000 {
        let m = rig.manager.clone();
        callers.push(tokio::spawn(async move { m.access_token().await }));
    }
    for c in callers {
        assert_eq!(c.await.unwrap().unwrap().expose_secret(), "at-0");
    }
    assert_eq!(rig.requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn refreshes_ahead_of_expiry_with_jitter() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, false)))).await;
    rig.start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.requests(), 1, "the first refresh happens at start");
    // refresh_before_expiry = 5m, jitter up to 20 % of it: between 54 and 55 minutes.
    tokio::time::sleep(Duration::from_secs(53 * 60 + 59)).await;
    assert_eq!(rig.requests(), 1);
    tokio::time::sleep(Duration::from_secs(62)).await;
    assert_eq!(rig.requests(), 2);
    assert_eq!(rig.manager.status().state, "ok");
    rig.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn transient_failures_back_off_exponentially() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, false)))).await;
    for _ in 0..4 {
        rig.endpoint
            .queue
            .lock()
            .unwrap()
            .push_back(transient(None));
    }
    rig.start();
    let mut at = Vec::new();
    let start = tokio::time::Instant::now();
    let mut seen = 0;
    while seen < 5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if rig.requests() > seen {
            seen = rig.requests();
            at.push(start.elapsed().as_secs_f64());
        }
    }
    // Waits of 2, 4, 8, 16 s, each ±20 %, plus the 50 ms round trips.
    let gaps: Vec<f64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, nominal) in gaps.iter().zip([2.0, 4.0, 8.0, 16.0]) {
        assert!(
            *gap >= nominal * 0.8 && *gap <= nominal * 1.2 + 0.3,
            "gaps {gaps:?}"
        );
    }
    assert_eq!(rig.manager.status().state, "ok");
    assert_eq!(rig.manager.status().last_error, None);
    rig.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_an_hour_is_honoured_without_making_callers_wait() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, false)))).await;
    rig.endpoint
        .queue
        .lock()
        .unwrap()
        .push_back(transient(Some(3600)));
    rig.start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.requests(), 1);
    let status = rig.manager.status();
    assert_eq!(status.state, "backoff");
    // A caller is told at once, not after an hour.
    let before = tokio::time::Instant::now();
    let err = rig.manager.access_token().await.unwrap_err();
    assert_eq!(before.elapsed(), Duration::ZERO);
    assert!(matches!(err, TokenError::Backoff { .. }), "{err}");
    tokio::time::sleep(Duration::from_secs(3590)).await;
    assert_eq!(
        rig.requests(),
        1,
        "nothing is sent before Retry-After passes"
    );
    tokio::time::sleep(Duration::from_secs(40)).await;
    assert_eq!(rig.requests(), 2);
    assert_eq!(
        rig.manager.access_token().await.unwrap().expose_secret(),
        "at-1"
    );
    rig.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn no_request_after_invalid_grant() {
    let rig = rig(Box::new(|_, _| {
        Err(RefreshError::Revoked {
            reason: "invalid_grant: Refresh token revoked".into(),
        })
    }))
    .await;
    rig.start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.requests(), 1);
    for _ in 0..100 {
        let err = rig.manager.access_token().await.unwrap_err();
        assert!(err.to_string().contains("run `freshd login a`"), "{err}");
    }
    tokio::time::sleep(Duration::from_secs(7 * 86400)).await;
    assert_eq!(rig.requests(), 1);
    assert_eq!(rig.manager.status().state, "needs_login");
    // A new token and a reload bring it back.
    rig.store
        .set("a", SecretKind::RefreshToken, &SecretString::from("rt-new"))
        .unwrap();
    rig.endpoint
        .queue
        .lock()
        .unwrap()
        .push_back(Ok(tokens(7, 3600, false)));
    rig.manager.reload_secret().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        rig.manager.access_token().await.unwrap().expose_secret(),
        "at-7"
    );
    assert_eq!(
        rig.endpoint
            .sent
            .lock()
            .unwrap()
            .last()
            .cloned()
            .flatten()
            .as_deref(),
        Some("rt-new")
    );
    rig.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn rotated_refresh_token_is_stored_and_used_next() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, true)))).await;
    rig.manager.access_token().await.unwrap();
    let stored = rig
        .store
        .get("a", SecretKind::RefreshToken)
        .unwrap()
        .unwrap();
    assert_eq!(stored.expose_secret(), "rt-1");
    rig.clock.jump(Duration::from_secs(3600));
    rig.manager.access_token().await.unwrap();
    let sent = rig.endpoint.sent.lock().unwrap().clone();
    assert_eq!(sent, vec![Some("rt-0".into()), Some("rt-1".into())]);
}

#[tokio::test(start_paused = true)]
async fn a_store_that_cannot_write_keeps_the_rotated_token_in_memory() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, true)))).await;
    rig.store.fail_writes(true);
    assert_eq!(
        rig.manager.access_token().await.unwrap().expose_secret(),
        "at-0"
    );
    let status = rig.manager.status();
    assert!(
        status
            .store_error
            .as_deref()
            .unwrap_or("")
            .contains("cannot store the rotated refresh token"),
        "{status:?}"
    );
    rig.clock.jump(Duration::from_secs(3600));
    rig.store.fail_writes(false);
    rig.manager.access_token().await.unwrap();
    assert_eq!(
        rig.endpoint.sent.lock().unwrap()[1].as_deref(),
        Some("rt-1")
    );
    assert_eq!(
        rig.store
            .get("a", SecretKind::RefreshToken)
            .unwrap()
            .unwrap()
            .expose_secret(),
        "rt-2"
    );
    assert_eq!(rig.manager.status().store_error, None);
}

#[tokio::test(start_paused = true)]
async fn a_token_expired_during_a_suspend_is_refreshed_on_waking() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, false)))).await;
    rig.start();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(rig.requests(), 1);
    rig.clock.jump(Duration::from_secs(8 * 3600));
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(
        rig.requests(),
        2,
        "refreshed within one 30 s step of waking"
    );
    rig.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn missing_token_is_a_state_not_a_request() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, false)))).await;
    let empty = Arc::new(MemoryStore::new());
    let m = TokenManager::new(
        rig.manager.account().clone(),
        rig.endpoint.clone(),
        empty,
        rig.clock.clone(),
        None,
    );
    m.load().await.unwrap();
    assert_eq!(m.status().state, "no_token");
    assert!(matches!(
        m.access_token().await.unwrap_err(),
        TokenError::NoToken { .. }
    ));
    assert_eq!(rig.requests(), 0);
}

#[test]
fn expiry_warning_starts_fourteen_days_before() {
    let obtained: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let life = Duration::from_secs(182 * 86400);
    assert!(expiry_warning("s", obtained, life, "2026-06-15T00:00:00Z".parse().unwrap()).is_none());
    let w = expiry_warning("s", obtained, life, "2026-06-18T00:00:00Z".parse().unwrap()).unwrap();
    assert_eq!(
        w,
        "the refresh token was obtained on 2026-01-01 and the provider ends it around 2026-07-02: run `freshd login s` before then"
    );
}

fn answer(n: u32, lifetime: Lifetime) -> Result<Tokens, RefreshError> {
    Ok(Tokens {
        access_token: SecretString::from(format!("at-{n}")),
        lifetime,
        refresh_token: Some(SecretString::from(format!("rt-{}", n + 1))),
        scope: None,
    })
}

fn stored(rig: &Rig) -> String {
    rig.store
        .get("a", SecretKind::RefreshToken)
        .unwrap()
        .unwrap()
        .expose_secret()
        .to_owned()
}

#[tokio::test(start_paused = true)]
async fn expires_in_zero_is_no_hot_loop_and_token_does_not_hang() {
    let rig = rig(Box::new(|n, _| {
        answer(n, Lifetime::Expired("expires_in 0".into()))
    }))
    .await;
    rig.start();
    // `freshd token` gets an answer at once, not a hang.
    let err = tokio::time::timeout(Duration::from_secs(1), rig.manager.access_token())
        .await
        .expect("access_token must not hang")
        .unwrap_err();
    assert!(err.to_string().contains("dead on arrival"), "{err}");
    tokio::time::sleep(Duration::from_secs(600)).await;
    // At most four requests in any minute: 10 minutes, about 4 + 9.
    assert!(rig.requests() <= 4 * 10, "{} requests", rig.requests());
    assert!(rig.requests() >= 4, "{} requests", rig.requests());
    // Each answer rotated the refresh token: the newest is stored.
    assert_eq!(stored(&rig), format!("rt-{}", rig.requests()));
    rig.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn an_unusable_expires_in_means_the_default_lifetime() {
    let rig = rig(Box::new(|n, _| {
        answer(n, Lifetime::Unusable("expires_in \"abc\"".into()))
    }))
    .await;
    rig.start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rig.requests(), 1);
    // Refreshed before the assumed hour is over, not never.
    tokio::time::sleep(DEFAULT_LIFETIME).await;
    assert_eq!(rig.requests(), 2);
    assert_eq!(rig.manager.status().state, "ok");
    rig.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_backward_wall_clock_step_never_hands_out_an_expired_token() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, false)))).await;
    assert_eq!(
        rig.manager.access_token().await.unwrap().expose_secret(),
        "at-0"
    );
    // NTP steps the wall clock two hours back; then the token's hour passes.
    rig.clock.step_wall(-SignedDuration::from_hours(2));
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(
        rig.manager.access_token().await.unwrap().expose_secret(),
        "at-1"
    );
    let status = rig.manager.status();
    assert!(status.access_token_expires_at.unwrap() > rig.clock.now());
}

#[tokio::test(start_paused = true)]
async fn an_unstored_rotation_is_retried_on_its_own() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, true)))).await;
    rig.store.fail_writes(true);
    rig.start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stored(&rig), "rt-0");
    assert!(rig.manager.status().store_error.is_some());
    rig.store.fail_writes(false);
    // Retries at 2 s, 4 s, …: stored within a minute, with no new refresh.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(stored(&rig), "rt-1");
    assert_eq!(rig.requests(), 1);
    assert_eq!(rig.manager.status().store_error, None);
    rig.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_rotation_is_not_written_over_a_token_stored_by_a_login() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, true)))).await;
    rig.manager.access_token().await.unwrap();
    assert_eq!(stored(&rig), "rt-1");
    // A login stores a token of a new grant while the daemon runs.
    rig.store
        .set(
            "a",
            SecretKind::RefreshToken,
            &SecretString::from("rt-login"),
        )
        .unwrap();
    rig.clock.jump(Duration::from_secs(3600));
    rig.manager.access_token().await.unwrap();
    // The rotation of the old chain (rt-2) is not written over it…
    assert_eq!(stored(&rig), "rt-login");
    // …and the next refresh uses the login's token.
    rig.clock.jump(Duration::from_secs(3600));
    rig.manager.access_token().await.unwrap();
    let sent = rig.endpoint.sent.lock().unwrap().clone();
    assert_eq!(sent.last().unwrap().as_deref(), Some("rt-login"));
}

#[tokio::test(start_paused = true)]
async fn adopt_takes_a_new_token_at_once_and_says_whether_it_works() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, false)))).await;
    rig.manager.access_token().await.unwrap();
    assert_eq!(rig.manager.adopt(None).await.unwrap(), Adopted::Unchanged);
    rig.store
        .set(
            "a",
            SecretKind::RefreshToken,
            &SecretString::from("rt-login"),
        )
        .unwrap();
    assert_eq!(rig.manager.adopt(None).await.unwrap(), Adopted::Working);
    let sent = rig.endpoint.sent.lock().unwrap().clone();
    assert_eq!(sent.last().unwrap().as_deref(), Some("rt-login"));
}

#[tokio::test(start_paused = true)]
async fn a_reload_does_not_resend_a_refused_token() {
    let rig = rig(Box::new(|_, _| {
        Err(RefreshError::Revoked {
            reason: "invalid_grant".into(),
        })
    }))
    .await;
    assert!(rig.manager.access_token().await.is_err());
    assert_eq!(rig.requests(), 1);
    rig.manager.reload_secret().await.unwrap();
    assert!(rig.manager.access_token().await.is_err());
    assert_eq!(rig.requests(), 1, "the refused token was sent again");
    rig.store
        .set("a", SecretKind::RefreshToken, &SecretString::from("rt-new"))
        .unwrap();
    rig.manager.reload_secret().await.unwrap();
    assert!(rig.manager.access_token().await.is_err());
    assert_eq!(rig.requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_in_flight_finishes_and_is_stored_when_its_caller_gives_up() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, true)))).await;
    let m = rig.manager.clone();
    let caller = tokio::spawn(async move { m.access_token().await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    // The request is on the wire (50 ms round trip) when the caller goes.
    caller.abort();
    rig.manager.finish().await;
    assert_eq!(rig.requests(), 1);
    assert_eq!(stored(&rig), "rt-1");
}

#[tokio::test(start_paused = true)]
async fn a_request_sent_but_unanswered_backs_off_at_least_30_s() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, false)))).await;
    rig.endpoint
        .queue
        .lock()
        .unwrap()
        .push_back(Err(RefreshError::Unanswered {
            reason: "no answer within the timeout".into(),
        }));
    rig.start();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(rig.requests(), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(rig.requests(), 2);
    assert_eq!(rig.manager.status().state, "ok");
    rig.cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn an_older_token_of_the_chain_reappearing_in_the_store_is_not_adopted() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, true)))).await;
    rig.manager.access_token().await.unwrap();
    assert_eq!(stored(&rig), "rt-1");
    // The rotated copy vanished (a state directory wiped), so the store
    // shows the credential the chain started from again: it is spent.
    rig.store
        .set("a", SecretKind::RefreshToken, &SecretString::from("rt-0"))
        .unwrap();
    rig.clock.jump(Duration::from_secs(3600));
    rig.manager.access_token().await.unwrap();
    let sent = rig.endpoint.sent.lock().unwrap().clone();
    assert_eq!(sent, vec![Some("rt-0".into()), Some("rt-1".into())]);
    assert_eq!(stored(&rig), "rt-2");
}

#[tokio::test(start_paused = true)]
async fn a_long_lived_access_token_is_handed_out_and_never_refreshed() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, false)))).await;
    let store = Arc::new(MemoryStore::new());
    store
        .set(
            "a",
            SecretKind::AccessToken,
            &SecretString::from("at-forever"),
        )
        .unwrap();
    let m = TokenManager::new(
        rig.manager.account().clone(),
        rig.endpoint.clone(),
        store,
        rig.clock.clone(),
        None,
    );
    m.load().await.unwrap();
    let cancel = CancellationToken::new();
    tokio::spawn(m.clone().run(cancel.clone()));
    rig.clock.jump(Duration::from_secs(400 * 86400));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        m.access_token().await.unwrap().expose_secret(),
        "at-forever"
    );
    let status = m.status();
    assert_eq!((status.state.as_str(), status.static_token), ("ok", true));
    assert_eq!(status.access_token_expires_at, None);
    assert_eq!(rig.requests(), 0);
    // An API refusing it puts the account in needs_login, with no request.
    let err = m
        .refresh_after_401(&SecretString::from("at-forever"))
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::NeedsLogin { .. }), "{err}");
    assert_eq!(m.status().state, "needs_login");
    assert_eq!(rig.requests(), 0);
    cancel.cancel();
}

#[tokio::test(start_paused = true)]
async fn adopt_says_raced_when_a_rotation_was_written_over_the_clients_token() {
    let rig = rig(Box::new(|n, _| Ok(tokens(n, 3600, true)))).await;
    rig.manager.access_token().await.unwrap();
    // The client stored rt-login, but the daemon's rotation (rt-1) landed
    // on the store after it.
    let client = fingerprint_hex(&SecretString::from("rt-login"));
    assert_eq!(
        rig.manager.adopt(Some(&client)).await.unwrap(),
        Adopted::Raced
    );
    // The client stores it again and asks again: adopted.
    rig.store
        .set(
            "a",
            SecretKind::RefreshToken,
            &SecretString::from("rt-login"),
        )
        .unwrap();
    assert_eq!(
        rig.manager.adopt(Some(&client)).await.unwrap(),
        Adopted::Working
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_without_a_usable_access_token_still_keeps_its_rotation() {
    let rig = rig(Box::new(|n, _| {
        let mut t = endpoint::classify(
            200,
            None,
            format!(r#"{{"access_token":12345,"refresh_token":"rt-{}"}}"#, n + 1).as_bytes(),
            &[],
        )?;
        t.access_token = SecretString::from(String::new());
        Ok(t)
    }))
    .await;
    let err = rig.manager.access_token().await.unwrap_err();
    assert!(err.to_string().contains("no usable access_token"), "{err}");
    assert_eq!(stored(&rig), "rt-1");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_of_years_is_capped_at_a_day_without_a_panic() {
    let rig = rig(Box::new(|_, _| {
        Err(RefreshError::Transient {
            reason: "the token endpoint is rate limiting (429)".into(),
            retry_after: Some(Duration::MAX),
        })
    }))
    .await;
    assert!(rig.manager.access_token().await.is_err());
    let TokenState::Backoff { at, .. } = rig.manager.lock().state.clone() else {
        panic!("not in backoff");
    };
    assert!(at <= rig.clock.boot() + endpoint::MAX_RETRY_AFTER, "{at:?}");
}

//! A typed client for the Spotify Web API endpoints freshd's jobs use
//! (DESIGN §8).
//!
//! Every request carries the account's access token; a 401 forces one
//! refresh and one retry. A 429 starts a cooldown for the app's client id
//! (shared by every account and job of that app) that honours
//! `Retry-After`, an hour at least for `QUOTA_EXCEEDED`; during it requests
//! fail at once with [`ApiError::Cooldown`], which jobs report as
//! `skipped` with the time they may run again. Nothing ever sleeps out a
//! 429. An answer is read up to [`MAX_BODY`] bytes, never more. 5xx answers
//! and network errors are retried a few times with short
//! waits, but only for requests that are safe to repeat: a `POST` that may
//! have landed is never sent twice, so a playlist is never doubled.

pub mod types;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use reqwest::Method;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use crate::api::Cooldowns;
use crate::api::{self, SendError, retry_wait};
use crate::oauth::endpoint::{describe_reqwest, retry_after};
use crate::oauth::{TokenError, TokenManager};
use crate::time::Clock;
use types::{
    Item, Page, PlayHistory, Playing, Playlist, PlaylistEntry, SearchResults, Snapshot, User,
};

/// Playlist pages are read 50 items at a time (the API's maximum).
pub const READ_PAGE: usize = 50;
/// Playlist writes carry at most 100 URIs (the API's maximum).
pub const WRITE_BATCH: usize = 100;
/// The largest answer read: a page of 50 playlist items is about 100 KiB,
/// so 8 MiB is room for any real one while a runaway answer cannot take
/// the daemon's memory.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// The most of an error body quoted in a message.
const MAX_QUOTE: usize = 200;

/// Why a request did not succeed. Holds no token.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the Spotify app is rate limited until {}{}", crate::time::to_the_second(*.until), if *.quota { " (quota exceeded)" } else { "" })]
    Cooldown { until: Timestamp, quota: bool },
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{method} {path} answered {status}: {message}")]
    Status {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("{method} {path}: {detail}")]
    Network {
        method: String,
        path: String,
        detail: String,
    },
    #[error("{method} {path}: the answer is larger than {} MiB, far more than the API sends; it was not read", MAX_BODY >> 20)]
    TooLarge { method: String, path: String },
    #[error("{method} {path}: the answer is not what the API documents ({detail})")]
    Decode {
        method: String,
        path: String,
        detail: String,
    },
}

/// One account's view of the Web API.
#[derive(Debug, Clone)]
pub struct Spotify {
    http: reqwest::Client,
    base: String,
    tokens: Arc<TokenManager>,
    cooldowns: Arc<Cooldowns>,
    clock: Arc<dyn Clock>,
}

impl Spotify {
    pub fn new(
        http: reqwest::Client,
        base: String,
        tokens: Arc<TokenManager>,
        cooldowns: Arc<Cooldowns>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            base,
            tokens,
            cooldowns,
            clock,
        }
    }

    fn client_id(&self) -> &str {
        &self.tokens.account().client_id
    }

    /// Sends one request; `Ok(None)` for a 204.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let now = self.clock.now();
        if let Some(until) = self.cooldowns.until(self.client_id(), now) {
            return Err(ApiError::Cooldown {
                until,
                quota: false,
            });
        }
        let url = format!("{}{path}", self.base);
        let shown = path.split('?').next().unwrap_or(path).to_owned();
        let network = |e: &reqwest::Error| ApiError::Network {
            method: method.to_string(),
            path: shown.clone(),
            detail: describe_reqwest(e),
        };
        let build = |req: reqwest::RequestBuilder| match body {
            Some(b) => req.json(b),
            None => req,
        };
        let mut tries = 0;
        loop {
            tries += 1;
            let (resp, token) =
                match api::send(&self.http, &self.tokens, &method, &url, &shown, build).await {
                    Ok(answer) => answer,
                    Err(SendError::Token(e)) => return Err(e.into()),
                    Err(SendError::Network(e)) => return Err(network(&e)),
                };
            let status = resp.status().as_u16();
            let wait = retry_after(resp.headers());
            let bytes = match read_body(resp).await {
                Ok(b) => b,
                Err(BodyError::TooLarge) => {
                    return Err(ApiError::TooLarge {
                        method: method.to_string(),
                        path: shown,
                    });
                }
                Err(BodyError::Network(e)) => match retry_wait(&method, None, tries) {
                    Some(w) => {
                        tracing::debug!("{method} {shown}: {}; trying again", describe_reqwest(&e));
                        tokio::time::sleep(w).await;
                        continue;
                    }
                    None => return Err(network(&e)),
                },
            };
            return self.answer(status, wait, bytes, &token, &method, shown);
        }
    }

    /// What a whole answer means: its body, `None` for a 204, or the error.
    fn answer(
        &self,
        status: u16,
        wait: Option<Duration>,
        bytes: Vec<u8>,
        token: &SecretString,
        method: &Method,
        shown: String,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        match status {
            204 => Ok(None),
            200..=299 => Ok(Some(bytes)),
            429 => Err(self.cool_down(wait, &bytes)),
            _ => Err(ApiError::Status {
                method: method.to_string(),
                path: shown,
                status,
                message: error_message(&bytes, token),
            }),
        }
    }

    fn cool_down(&self, wait: Option<Duration>, body: &[u8]) -> ApiError {
        let (until, quota) =
            self.cooldowns
                .after_429(self.client_id(), self.clock.now(), wait, body);
        tracing::warn!(
            ACCOUNT = %self.tokens.account().name,
            "Spotify rate limits this app (429{}); its jobs are skipped until {until}",
            if quota { ", quota exceeded" } else { "" }
        );
        ApiError::Cooldown { until, quota }
    }

    async fn get<T: DeserializeOwned + Default>(&self, path: &str) -> Result<T, ApiError> {
        let bytes = self.request(Method::GET, path, None).await?;
        decode("GET", path, bytes)
    }

    async fn send_json<T: DeserializeOwned + Default>(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<T, ApiError> {
        let name = method.to_string();
        let bytes = self.request(method, path, Some(body)).await?;
        decode(&name, path, bytes)
    }

    pub async fn me(&self) -> Result<User, ApiError> {
        self.get("/me").await
    }

    /// What plays now; `None` when nothing does (204).
    pub async fn currently_playing(&self) -> Result<Option<Playing>, ApiError> {
        let path = "/me/player/currently-playing?additional_types=track,episode";
        match self.request(Method::GET, path, None).await? {
            None => Ok(None),
            Some(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(None),
            Some(b) => decode("GET", path, Some(b)).map(Some),
        }
    }

    pub async fn recently_played(&self, limit: u32) -> Result<Vec<Item>, ApiError> {
        let page: Page<PlayHistory> = self
            .get(&format!("/me/player/recently-played?limit={limit}"))
            .await?;
        Ok(page.items.into_iter().filter_map(|h| h.track).collect())
    }

    pub async fn top_tracks(&self, time_range: &str, limit: u32) -> Result<Vec<Item>, ApiError> {
        let page: Page<Item> = self
            .get(&format!(
                "/me/top/tracks?time_range={time_range}&limit={limit}"
            ))
            .await?;
        Ok(page.items)
    }

    /// Every playlist the user owns or follows.
    pub async fn my_playlists(&self) -> Result<Vec<Playlist>, ApiError> {
        let mut all = Vec::new();
        loop {
            let page: Page<Playlist> = self
                .get(&format!(
                    "/me/playlists?limit={READ_PAGE}&offset={}",
                    all.len()
                ))
                .await?;
            let n = page.items.len();
            all.extend(page.items);
            if n < READ_PAGE || page.next.is_none() || all.len() >= 100_000 {
                return Ok(all);
            }
        }
    }

    /// Creates a private playlist.
    pub async fn create_playlist(
        &self,
        name: &str,
        description: &str,
    ) -> Result<Playlist, ApiError> {
        let body = json!({ "name": name, "public": false, "description": description });
        self.send_json(Method::POST, "/me/playlists", &body).await
    }

    /// The URIs of every item of a playlist, in order.
    pub async fn playlist_items(&self, id: &str) -> Result<Vec<String>, ApiError> {
        let mut uris = Vec::new();
        let mut offset = 0;
        loop {
            let path = format!(
                "/playlists/{id}/items?limit={READ_PAGE}&offset={offset}&additional_types=track,episode"
            );
            let page: Page<PlaylistEntry> = self.get(&path).await?;
            let n = page.items.len();
            offset += n;
            uris.extend(
                page.items
                    .into_iter()
                    .filter_map(PlaylistEntry::into_item)
                    .map(|i| i.uri)
                    .filter(|u| !u.is_empty()),
            );
            if n < READ_PAGE || page.next.is_none() {
                return Ok(uris);
            }
        }
    }

    /// Replaces a playlist's items with at most [`WRITE_BATCH`] URIs.
    pub async fn replace_items(&self, id: &str, uris: &[String]) -> Result<Snapshot, ApiError> {
        self.send_json(
            Method::PUT,
            &format!("/playlists/{id}/items"),
            &json!({ "uris": uris }),
        )
        .await
    }

    /// Adds at most [`WRITE_BATCH`] URIs at `position` (the end if `None`).
    pub async fn add_items(
        &self,
        id: &str,
        uris: &[String],
        position: Option<usize>,
    ) -> Result<Snapshot, ApiError> {
        let body = match position {
            Some(p) => json!({ "uris": uris, "position": p }),
            None => json!({ "uris": uris }),
        };
        self.send_json(Method::POST, &format!("/playlists/{id}/items"), &body)
            .await
    }

    /// Removes every occurrence of at most [`WRITE_BATCH`] URIs.
    pub async fn remove_items(
        &self,
        id: &str,
        uris: &[String],
        snapshot: Option<&str>,
    ) -> Result<Snapshot, ApiError> {
        let items: Vec<Value> = uris.iter().map(|u| json!({ "uri": u })).collect();
        let body = match snapshot {
            Some(s) => json!({ "items": items, "snapshot_id": s }),
            None => json!({ "items": items }),
        };
        self.send_json(Method::DELETE, &format!("/playlists/{id}/items"), &body)
            .await
    }

    /// Tracks matching `query` (at most 10, the API's limit).
    pub async fn search_tracks(&self, query: &str, limit: u32) -> Result<Vec<Item>, ApiError> {
        let q = serde_urlencoded::to_string([
            ("q", query),
            ("type", "track"),
            ("limit", &limit.min(10).to_string()),
        ])
        .unwrap_or_default();
        let results: SearchResults = self.get(&format!("/search?{q}")).await?;
        Ok(results.tracks.items)
    }
}

enum BodyError {
    TooLarge,
    Network(reqwest::Error),
}

/// The whole body, read chunk by chunk up to [`MAX_BODY`].
async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Network)? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn decode<T: DeserializeOwned + Default>(
    method: &str,
    path: &str,
    bytes: Option<Vec<u8>>,
) -> Result<T, ApiError> {
    let Some(bytes) = bytes else {
        return Ok(T::default());
    };
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
        method: method.to_owned(),
        path: path.split('?').next().unwrap_or(path).to_owned(),
        detail: e.to_string(),
    })
}

/// The API's own message, cut short and without the token.
fn error_message(body: &[u8], token: &SecretString) -> String {
    let message = serde_json::from_slice::<types::ErrorBody>(body)
        .ok()
        .map(|b| b.error.message)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .chars()
                .take(MAX_QUOTE)
                .collect()
        });
    crate::api::redact(message.trim(), token)
}

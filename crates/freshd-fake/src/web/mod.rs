//! The fake Spotify Web API: the endpoints freshd's jobs use, with state
//! (playlists with snapshots, a player, a catalogue) and the 2026 rules
//! that matter: pages of at most 50, writes of at most 100 URIs, 403 on the
//! old `/tracks` paths, 204 when nothing plays, `/search` limit 1 to 10.

#[cfg(feature = "testing")]
use std::collections::VecDeque;
#[cfg(feature = "testing")]
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::http::{HttpRequest, HttpResponse};

mod catalogue;
#[cfg(feature = "testing")]
mod faults;
mod playlists;

pub use catalogue::{Track, demo_catalogue};
#[cfg(feature = "testing")]
pub use faults::ApiFault;
pub use playlists::FakePlaylist;

/// What the player reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Player {
    /// Nothing plays: 204.
    Idle,
    /// An ad: `item` is null.
    Ad,
    /// A catalogue track (by index) at a position, playing or paused.
    Track {
        index: usize,
        progress_ms: u64,
        playing: bool,
    },
    /// An episode.
    Episode { progress_ms: u64 },
    /// The catalogue played in a loop from `since` (the demo's session).
    Session { since: Timestamp },
}

/// The Web API's state.
#[derive(Debug)]
pub struct WebState {
    pub user: String,
    pub catalogue: Vec<Track>,
    pub top: Vec<usize>,
    pub recent: Vec<usize>,
    pub playlists: Vec<FakePlaylist>,
    pub player: Player,
    /// Faults for the next requests (tests only).
    #[cfg(feature = "testing")]
    pub faults: VecDeque<ApiFault>,
    /// Every request: (method, path) (tests only).
    #[cfg(feature = "testing")]
    pub log: Vec<(String, String)>,
    /// The next add to a playlist is applied, then answered 500 (an
    /// acknowledgement lost on the way back; tests only).
    #[cfg(feature = "testing")]
    pub lose_next_add_ack: bool,
    /// Every answer waits this long after the state changed (a slow API;
    /// tests only).
    #[cfg(feature = "testing")]
    pub delay: Option<Duration>,
    serial: u64,
}

impl Default for WebState {
    fn default() -> Self {
        let catalogue = demo_catalogue();
        Self {
            user: "demo-user".into(),
            top: (0..catalogue.len()).collect(),
            recent: (0..catalogue.len()).rev().collect(),
            catalogue,
            playlists: Vec::new(),
            player: Player::Idle,
            #[cfg(feature = "testing")]
            faults: VecDeque::new(),
            #[cfg(feature = "testing")]
            log: Vec::new(),
            #[cfg(feature = "testing")]
            lose_next_add_ack: false,
            #[cfg(feature = "testing")]
            delay: None,
            serial: 0,
        }
    }
}

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::json(
        status,
        &json!({"error": {"status": status, "message": message}}),
    )
}

fn query_u64(req: &HttpRequest, key: &str, default: u64) -> Result<u64, HttpResponse> {
    match req.query.get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| error(400, &format!("Invalid {key}"))),
    }
}

impl WebState {
    /// Answers `req` (its path without `/v1`); `authorized` says whether its
    /// bearer token is valid.
    pub fn handle(&mut self, req: &HttpRequest, path: &str, authorized: bool) -> HttpResponse {
        let response = self.answer(req, path, authorized);
        #[cfg(feature = "testing")]
        let response = HttpResponse {
            delay: self.delay,
            ..response
        };
        response
    }

    fn answer(&mut self, req: &HttpRequest, path: &str, authorized: bool) -> HttpResponse {
        #[cfg(feature = "testing")]
        if let Some(response) = self.injected(req, path) {
            return response;
        }
        if !authorized {
            return error(401, "The access token expired");
        }
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let result = match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["me"]) => Ok(HttpResponse::json(
                200,
                &json!({"id": self.user, "display_name": "Demo User", "type": "user"}),
            )),
            ("GET", ["me", "player", "currently-playing"]) => Ok(self.currently_playing()),
            ("GET", ["me", "player", "recently-played"]) => self.recently_played(req),
            ("GET", ["me", "top", "tracks"]) => self.top_tracks(req),
            ("GET", ["me", "playlists"]) => self.my_playlists(req),
            ("POST", ["me", "playlists"]) => self.create_playlist(req),
            (_, ["playlists", _, "tracks"]) => {
                Err(error(403, "Forbidden: use /playlists/{id}/items"))
            }
            ("GET", ["playlists", id, "items"]) => self.items(req, id),
            ("POST", ["playlists", id, "items"]) => self.add(req, id),
            ("PUT", ["playlists", id, "items"]) => self.replace(req, id),
            ("DELETE", ["playlists", id, "items"]) => self.remove(req, id),
            ("GET", ["search"]) => self.search(req),
            _ => Err(error(404, "Service not found")),
        };
        result.unwrap_or_else(|e| e)
    }

    fn limit(req: &HttpRequest, max: u64, default: u64) -> Result<(usize, usize), HttpResponse> {
        let limit = query_u64(req, "limit", default)?;
        if !(1..=max).contains(&limit) {
            return Err(error(400, &format!("Invalid limit: {limit} (1 to {max})")));
        }
        let offset = query_u64(req, "offset", 0)?;
        Ok((
            usize::try_from(limit).unwrap_or(1),
            usize::try_from(offset).unwrap_or(0),
        ))
    }

    fn page(items: Vec<Value>, limit: usize, offset: usize, total: usize) -> Value {
        let next = (offset + items.len() < total).then(|| format!("offset={}", offset + limit));
        json!({"items": items, "limit": limit, "offset": offset, "total": total, "next": next, "href": ""})
    }

    fn currently_playing(&self) -> HttpResponse {
        let now = Timestamp::now();
        let (index, progress, playing) = match &self.player {
            Player::Idle => return HttpResponse::empty(204),
            Player::Ad => {
                return HttpResponse::json(
                    200,
                    &json!({"is_playing": true, "progress_ms": 1000, "currently_playing_type": "ad", "item": null, "timestamp": now.as_millisecond()}),
                );
            }
            Player::Episode { progress_ms } => {
                let item = json!({"type": "episode", "id": "ep1", "uri": "spotify:episode:512ojhOuo1ktJprKbVcKyQ", "name": "The Daily", "duration_ms": 1_800_000, "show": {"name": "A Podcast", "type": "show"}});
                return HttpResponse::json(
                    200,
                    &json!({"is_playing": true, "progress_ms": progress_ms, "currently_playing_type": "episode", "item": item, "timestamp": now.as_millisecond()}),
                );
            }
            Player::Track {
                index,
                progress_ms,
                playing,
            } => (*index, *progress_ms, *playing),
            Player::Session { since } => {
                let total: u64 = self.catalogue.iter().map(|t| t.duration_ms).sum();
                let elapsed = u64::try_from(now.duration_since(*since).as_millis()).unwrap_or(0)
                    % total.max(1);
                let mut at = elapsed;
                let mut index = 0;
                for (i, t) in self.catalogue.iter().enumerate() {
                    if at < t.duration_ms {
                        index = i;
                        break;
                    }
                    at -= t.duration_ms;
                }
                (index, at, true)
            }
        };
        let Some(track) = self.catalogue.get(index) else {
            return HttpResponse::empty(204);
        };
        HttpResponse::json(
            200,
            &json!({
                "is_playing": playing,
                "progress_ms": progress,
                "currently_playing_type": "track",
                "item": track.json(),
                "timestamp": now.as_millisecond(),
                "actions": {"disallows": {}},
            }),
        )
    }

    fn recently_played(&self, req: &HttpRequest) -> Result<HttpResponse, HttpResponse> {
        let (limit, _) = Self::limit(req, 50, 20)?;
        let items: Vec<Value> = self
            .recent
            .iter()
            .filter_map(|&i| self.catalogue.get(i))
            .take(limit)
            .map(|t| json!({"track": t.json(), "played_at": "2026-11-01T10:00:00Z"}))
            .collect();
        Ok(HttpResponse::json(
            200,
            &json!({"items": items, "limit": limit, "next": null, "href": ""}),
        ))
    }

    fn top_tracks(&self, req: &HttpRequest) -> Result<HttpResponse, HttpResponse> {
        let (limit, offset) = Self::limit(req, 50, 20)?;
        match req.query.get("time_range").map(String::as_str) {
            None | Some("short_term" | "medium_term" | "long_term") => {}
            Some(other) => return Err(error(400, &format!("Invalid time range: {other}"))),
        }
        let items: Vec<Value> = self
            .top
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|&i| self.catalogue.get(i))
            .map(Track::json)
            .collect();
        Ok(HttpResponse::json(
            200,
            &Self::page(items, limit, offset, self.top.len()),
        ))
    }
}

//! The fake Spotify Web API: the endpoints freshd's jobs use, with state
//! (playlists with snapshots, a player, a catalogue) and the 2026 rules
//! that matter: pages of at most 50, writes of at most 100 URIs, 403 on the
//! old `/tracks` paths, 204 when nothing plays, `/search` limit 1 to 10.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::http::{HttpRequest, HttpResponse};

/// A track in the fake catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub id: String,
    pub name: String,
    pub artist: String,
    pub album: String,
    pub duration_ms: u64,
}

impl Track {
    pub fn new(id: &str, artist: &str, name: &str, album: &str, duration_ms: u64) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            artist: artist.into(),
            album: album.into(),
            duration_ms,
        }
    }

    pub fn uri(&self) -> String {
        format!("spotify:track:{}", self.id)
    }

    fn json(&self) -> Value {
        json!({
            "type": "track",
            "id": self.id,
            "uri": self.uri(),
            "name": self.name,
            "duration_ms": self.duration_ms,
            "artists": [{"name": self.artist, "type": "artist", "id": format!("ar{}", self.id)}],
            "album": {"name": self.album, "type": "album", "id": format!("al{}", self.id)},
            "is_local": false,
            "explicit": false,
            "popularity": 50,
        })
    }
}

/// A playlist in the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePlaylist {
    pub id: String,
    pub name: String,
    pub public: bool,
    pub items: Vec<String>,
    pub snapshot: u64,
}

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

/// A fault for the next API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFault {
    /// 429 with `Retry-After` seconds; `quota` adds `QUOTA_EXCEEDED`.
    RateLimited { retry_after: u64, quota: bool },
    /// 500
    ServerError,
    /// 401, whatever the token.
    Unauthorized,
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
    pub faults: VecDeque<ApiFault>,
    /// Every request: (method, path).
    pub log: Vec<(String, String)>,
    /// The next add to a playlist is applied, then answered 500 (an
    /// acknowledgement lost on the way back).
    pub lose_next_add_ack: bool,
    /// Every answer waits this long after the state changed (a slow API).
    pub delay: Option<Duration>,
    serial: u64,
}

/// Twelve short tracks: the demo's session plays them in a loop.
pub fn demo_catalogue() -> Vec<Track> {
    [
        (
            "1",
            "Nina Simone",
            "Feeling Good",
            "I Put a Spell on You",
            21_000,
        ),
        ("2", "Miles Davis", "So What", "Kind of Blue", 27_000),
        ("3", "Daft Punk", "Digital Love", "Discovery", 24_000),
        ("4", "Björk", "Jóga", "Homogenic", 30_000),
        ("5", "Massive Attack", "Teardrop", "Mezzanine", 22_000),
        ("6", "Radiohead", "Reckoner", "In Rainbows", 26_000),
        (
            "7",
            "Stevie Wonder",
            "Sir Duke",
            "Songs in the Key of Life",
            23_000,
        ),
        ("8", "Portishead", "Roads", "Dummy", 28_000),
        ("9", "Air", "La femme d'argent", "Moon Safari", 25_000),
        (
            "10",
            "Aretha Franklin",
            "Respect",
            "I Never Loved a Man",
            20_000,
        ),
        ("11", "Kraftwerk", "Computer Love", "Computer World", 29_000),
        (
            "12",
            "Fela Kuti",
            "Water No Get Enemy",
            "Expensive Shit",
            24_000,
        ),
    ]
    .into_iter()
    .map(|(id, artist, name, album, ms)| Track::new(&format!("{id:0>22}"), artist, name, album, ms))
    .collect()
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
            faults: VecDeque::new(),
            log: Vec::new(),
            lose_next_add_ack: false,
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
        self.log.push((req.method.clone(), path.to_owned()));
        if let Some(fault) = self.faults.pop_front() {
            return match fault {
                ApiFault::RateLimited { retry_after, quota } => {
                    let mut body =
                        json!({"error": {"status": 429, "message": "API rate limit exceeded"}});
                    if quota {
                        body["error"]["reason"] = json!("QUOTA_EXCEEDED");
                    }
                    HttpResponse::json(429, &body)
                        .with_header("Retry-After", &retry_after.to_string())
                }
                ApiFault::ServerError => error(500, "Server error"),
                ApiFault::Unauthorized => error(401, "The access token expired"),
            };
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

    fn playlist_json(&self, p: &FakePlaylist) -> Value {
        json!({
            "id": p.id, "name": p.name, "public": p.public, "collaborative": false,
            "owner": {"id": self.user, "type": "user"},
            "snapshot_id": format!("snap-{}-{}", p.id, p.snapshot),
            "items": {"total": p.items.len(), "href": ""},
            "uri": format!("spotify:playlist:{}", p.id), "type": "playlist",
        })
    }

    fn my_playlists(&self, req: &HttpRequest) -> Result<HttpResponse, HttpResponse> {
        let (limit, offset) = Self::limit(req, 50, 20)?;
        let items: Vec<Value> = self
            .playlists
            .iter()
            .skip(offset)
            .take(limit)
            .map(|p| self.playlist_json(p))
            .collect();
        Ok(HttpResponse::json(
            200,
            &Self::page(items, limit, offset, self.playlists.len()),
        ))
    }

    fn create_playlist(&mut self, req: &HttpRequest) -> Result<HttpResponse, HttpResponse> {
        let body: Value =
            serde_json::from_slice(&req.body).map_err(|_| error(400, "Invalid JSON"))?;
        let name = body["name"]
            .as_str()
            .ok_or_else(|| error(400, "Missing name"))?;
        self.serial += 1;
        let playlist = FakePlaylist {
            id: format!("{:0>22}", format!("pl{}", self.serial)),
            name: name.to_owned(),
            // The API's default is public: only an explicit false is private.
            public: body["public"].as_bool().unwrap_or(true),
            items: Vec::new(),
            snapshot: 1,
        };
        let json = self.playlist_json(&playlist);
        self.playlists.push(playlist);
        Ok(HttpResponse::json(201, &json))
    }

    fn find(&mut self, id: &str) -> Result<&mut FakePlaylist, HttpResponse> {
        self.playlists
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| error(404, "Resource not found"))
    }

    fn item_json(&self, uri: &str) -> Value {
        match self.catalogue.iter().find(|t| t.uri() == uri) {
            Some(t) => t.json(),
            None => {
                json!({"type": "track", "uri": uri, "name": "Unknown", "duration_ms": 1000, "artists": [], "album": {"name": ""}})
            }
        }
    }

    fn items(&mut self, req: &HttpRequest, id: &str) -> Result<HttpResponse, HttpResponse> {
        let (limit, offset) = Self::limit(req, 50, 20)?;
        let items = self.find(id)?.items.clone();
        let page: Vec<Value> = items
            .iter()
            .skip(offset)
            .take(limit)
            .map(|u| json!({"added_at": "2026-11-01T10:00:00Z", "is_local": false, "item": self.item_json(u)}))
            .collect();
        Ok(HttpResponse::json(
            200,
            &Self::page(page, limit, offset, items.len()),
        ))
    }

    fn uris(req: &HttpRequest) -> Result<(Vec<String>, Value), HttpResponse> {
        let body: Value =
            serde_json::from_slice(&req.body).map_err(|_| error(400, "Invalid JSON"))?;
        let uris: Vec<String> = body["uris"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if uris.len() > 100 {
            return Err(error(400, "Too many ids requested (at most 100)"));
        }
        Ok((uris, body))
    }

    fn snapshot(p: &mut FakePlaylist) -> HttpResponse {
        p.snapshot += 1;
        HttpResponse::json(
            200,
            &json!({"snapshot_id": format!("snap-{}-{}", p.id, p.snapshot)}),
        )
    }

    fn add(&mut self, req: &HttpRequest, id: &str) -> Result<HttpResponse, HttpResponse> {
        let (uris, body) = Self::uris(req)?;
        let lose = self.lose_next_add_ack;
        let p = self.find(id)?;
        let at = body["position"].as_u64().map_or(p.items.len(), |x| {
            usize::try_from(x).unwrap_or(usize::MAX).min(p.items.len())
        });
        p.items.splice(at..at, uris);
        let mut resp = Self::snapshot(p);
        if lose {
            self.lose_next_add_ack = false;
            return Ok(error(500, "Server error"));
        }
        resp.status = 201;
        Ok(resp)
    }

    fn replace(&mut self, req: &HttpRequest, id: &str) -> Result<HttpResponse, HttpResponse> {
        let (uris, _) = Self::uris(req)?;
        let p = self.find(id)?;
        p.items = uris;
        Ok(Self::snapshot(p))
    }

    fn remove(&mut self, req: &HttpRequest, id: &str) -> Result<HttpResponse, HttpResponse> {
        let body: Value =
            serde_json::from_slice(&req.body).map_err(|_| error(400, "Invalid JSON"))?;
        let gone: Vec<String> = body["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| i["uri"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if gone.len() > 100 {
            return Err(error(400, "Too many tracks (at most 100)"));
        }
        let p = self.find(id)?;
        p.items.retain(|u| !gone.contains(u));
        Ok(Self::snapshot(p))
    }

    fn search(&self, req: &HttpRequest) -> Result<HttpResponse, HttpResponse> {
        let (limit, _) = Self::limit(req, 10, 5)?;
        let q = req
            .query
            .get("q")
            .ok_or_else(|| error(400, "No search query"))?
            .to_lowercase();
        if req.query.get("type").map(String::as_str) != Some("track") {
            return Err(error(400, "type must be track here"));
        }
        // Every word of the query (field filters stripped) must appear.
        let words: Vec<String> = q
            .split_whitespace()
            .map(|w| {
                w.split_once(':')
                    .map_or(w, |(_, v)| v)
                    .trim_matches('"')
                    .to_owned()
            })
            .filter(|w| !w.is_empty())
            .collect();
        let items: Vec<Value> = self
            .catalogue
            .iter()
            .filter(|t| {
                let hay = format!("{} {} {}", t.artist, t.name, t.album).to_lowercase();
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .take(limit)
            .map(Track::json)
            .collect();
        let total = items.len();
        Ok(HttpResponse::json(
            200,
            &json!({"tracks": Self::page(items, limit, 0, total)}),
        ))
    }
}

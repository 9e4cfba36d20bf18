//! The parts of Spotify's Web API objects freshd reads. Every struct
//! ignores unknown fields and defaults missing ones, so new or absent
//! fields never break a job.

use serde::{Deserialize, Serialize};

/// `GET /me`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct User {
    pub id: String,
    pub display_name: Option<String>,
}

/// A name-only reference (artist, album, show).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct Named {
    pub name: String,
}

/// A track or an episode, as playlists, the player and search give them.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Item {
    /// `track` or `episode`.
    #[serde(rename = "type")]
    pub kind: String,
    pub uri: String,
    pub name: String,
    pub duration_ms: u64,
    /// Tracks only.
    pub artists: Vec<Named>,
    /// Tracks only.
    pub album: Option<Named>,
    /// Episodes only.
    pub show: Option<Named>,
    pub is_local: bool,
}

impl Item {
    /// Artists of a track, or the show of an episode.
    pub fn artist_names(&self) -> Vec<String> {
        if self.kind == "episode" {
            return self.show.iter().map(|s| s.name.clone()).collect();
        }
        self.artists.iter().map(|a| a.name.clone()).collect()
    }
}

/// A page of anything.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: Option<u64>,
    pub next: Option<String>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            total: None,
            next: None,
        }
    }
}

/// One entry of a playlist: the item under `item` (2026) or `track` (before).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlaylistEntry {
    pub item: Option<Item>,
    pub track: Option<Item>,
}

impl PlaylistEntry {
    pub fn into_item(self) -> Option<Item> {
        self.item.or(self.track)
    }
}

/// `GET /me/playlists` entries and `POST /me/playlists` answers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Playlist {
    pub id: String,
    pub name: String,
    pub owner: Option<Owner>,
    pub snapshot_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Owner {
    pub id: String,
}

/// Answers of playlist writes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub snapshot_id: String,
}

/// `GET /me/player/currently-playing`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Playing {
    pub is_playing: bool,
    pub progress_ms: Option<u64>,
    /// `track`, `episode`, `ad` or `unknown`.
    pub currently_playing_type: String,
    pub item: Option<Item>,
}

/// `GET /me/player/recently-played` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PlayHistory {
    pub track: Option<Item>,
}

/// `GET /search`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SearchResults {
    pub tracks: Page<Item>,
}

/// Spotify's error body: `{"error": {"status": 429, "message": "…", "reason": "…"}}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ErrorDetail {
    pub message: String,
    pub reason: Option<String>,
}

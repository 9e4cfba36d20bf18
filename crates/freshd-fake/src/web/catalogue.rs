//! The fake catalogue: its tracks (the demo's twelve) and `/search`.

use serde_json::{Value, json};

use super::WebState;
use super::error;
use crate::http::{HttpRequest, HttpResponse};

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

    pub(super) fn json(&self) -> Value {
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

impl WebState {
    pub(super) fn search(&self, req: &HttpRequest) -> Result<HttpResponse, HttpResponse> {
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

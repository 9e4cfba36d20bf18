//! The fake's playlists: listing, creating, and reading and writing their
//! items (pages of at most 50, writes of at most 100 URIs), each write a
//! new snapshot.

use serde_json::{Value, json};

use super::{WebState, error};
use crate::http::{HttpRequest, HttpResponse};

/// A playlist in the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakePlaylist {
    pub id: String,
    pub name: String,
    pub public: bool,
    pub items: Vec<String>,
    pub snapshot: u64,
}

impl WebState {
    fn playlist_json(&self, p: &FakePlaylist) -> Value {
        json!({
            "id": p.id, "name": p.name, "public": p.public, "collaborative": false,
            "owner": {"id": self.user, "type": "user"},
            "snapshot_id": format!("snap-{}-{}", p.id, p.snapshot),
            "items": {"total": p.items.len(), "href": ""},
            "uri": format!("spotify:playlist:{}", p.id), "type": "playlist",
        })
    }

    pub(super) fn my_playlists(&self, req: &HttpRequest) -> Result<HttpResponse, HttpResponse> {
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

    pub(super) fn create_playlist(
        &mut self,
        req: &HttpRequest,
    ) -> Result<HttpResponse, HttpResponse> {
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

    pub(super) fn items(
        &mut self,
        req: &HttpRequest,
        id: &str,
    ) -> Result<HttpResponse, HttpResponse> {
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

    pub(super) fn add(
        &mut self,
        req: &HttpRequest,
        id: &str,
    ) -> Result<HttpResponse, HttpResponse> {
        let (uris, body) = Self::uris(req)?;
        let p = self.find(id)?;
        let at = body["position"].as_u64().map_or(p.items.len(), |x| {
            usize::try_from(x).unwrap_or(usize::MAX).min(p.items.len())
        });
        p.items.splice(at..at, uris);
        let resp = Self::snapshot(p);
        #[cfg(feature = "testing")]
        if self.lose_add_ack() {
            return Ok(error(500, "Server error"));
        }
        Ok(HttpResponse {
            status: 201,
            ..resp
        })
    }

    pub(super) fn replace(
        &mut self,
        req: &HttpRequest,
        id: &str,
    ) -> Result<HttpResponse, HttpResponse> {
        let (uris, _) = Self::uris(req)?;
        let p = self.find(id)?;
        p.items = uris;
        Ok(Self::snapshot(p))
    }

    pub(super) fn remove(
        &mut self,
        req: &HttpRequest,
        id: &str,
    ) -> Result<HttpResponse, HttpResponse> {
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
}

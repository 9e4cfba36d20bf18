//! `type = "playlist"`: makes a playlist what its source says.
//!
//! `replace` makes it exactly the source, in order (the first 100 with one
//! `PUT`, the rest appended in batches of 100) and writes nothing when it
//! already is. `append` adds only what is missing (at the top or bottom) and
//! trims the oldest past `max_items`. A target named but missing is created
//! private, once: its id is remembered in the state directory, so a
//! playlist that the API does not list yet is not created twice. A failure
//! part-way is mended by the next run, never doubled: replace starts over
//! with a `PUT`, append adds only what is still missing, and adding is never
//! retried blindly.

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use super::sources::{self, Source, SourceError};
use super::{JobBody, JobContext, JobType, api_outcome};
use super::{RunOutcome, RunReport};
use crate::config::{JobCheck, Keys, Shape, choices};
use crate::spotify::{ApiError, Spotify, WRITE_BATCH};

/// The most of a remembered playlist id file read (an id is 22 bytes).
const MAX_ID_FILE: u64 = 1024;

/// The `playlist` job type.
#[derive(Debug)]
pub struct Type;

impl JobType for Type {
    type Settings = PlaylistJob;
    const NAME: &'static str = "playlist";
    const KEYS: &'static Keys = &[
        ("playlist", Shape::Text),
        ("source", Shape::Table(sources::SOURCE_KEYS)),
        ("mode", Shape::Text),
        ("max_items", Shape::Integer),
        ("position", Shape::Text),
    ];

    fn check(job: &mut JobCheck<'_, '_>) -> Option<PlaylistJob> {
        let r = job.raw();
        let playlist = match r.text("playlist") {
            Some(p) if !p.get_ref().trim().is_empty() => {
                Some(PlaylistRef::parse(p.get_ref().trim()))
            }
            Some(p) => {
                job.problem(p.span(), "playlist", "the playlist is empty; give a name (created private if missing) or \"spotify:playlist:ID\"");
                None
            }
            None => {
                job.missing("playlist", "missing key `playlist`; give a name (created private if missing) or \"spotify:playlist:ID\"");
                None
            }
        };
        let source = match r.table("source") {
            Some(s) => sources::check(job, s),
            None => {
                job.missing("source", "missing key `source`; e.g. source = { kind = \"top_tracks\", time_range = \"short_term\", limit = 50 }");
                None
            }
        };
        let mode = mode(job)?;
        Some(PlaylistJob {
            playlist: playlist?,
            source: source?,
            mode,
        })
    }

    fn body(settings: &PlaylistJob) -> Arc<dyn JobBody> {
        Arc::new(PlaylistBody(settings.clone()))
    }
}

/// `mode`, with `position` and `max_items` for `append` only.
fn mode(job: &mut JobCheck<'_, '_>) -> Option<PlaylistMode> {
    let r = job.raw();
    let append = match r.text("mode") {
        None => false,
        Some(m) => job.one_of(m, "mode", &[("replace", false), ("append", true)])?,
    };
    if !append {
        for k in ["max_items", "position"] {
            if let Some(span) = r.span(k) {
                job.problem(span, k, format!("`{k}` applies to mode = \"append\" only"));
            }
        }
        return Some(PlaylistMode::Replace);
    }
    let position = r.text("position").map_or(Some(Position::Bottom), |p| {
        job.one_of(p, "position", Position::CHOICES)
    });
    let max_items = match r.integer("max_items") {
        Some(m) if (1..=10_000).contains(m.get_ref()) => {
            Some(Some(u32::try_from(*m.get_ref()).unwrap_or(10_000)))
        }
        Some(m) => {
            job.problem(
                m.span(),
                "max_items",
                format!(
                    "{} is out of range; Spotify playlists hold 1 to 10000 items",
                    m.get_ref()
                ),
            );
            None
        }
        None => Some(None),
    };
    Some(PlaylistMode::Append {
        position: position?,
        max_items: max_items?,
    })
}

/// `type = "playlist"`
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistJob {
    pub playlist: PlaylistRef,
    pub source: Source,
    pub mode: PlaylistMode,
}

/// A playlist, by name or by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistRef {
    /// Found among the user's playlists (and created private if missing,
    /// when it is a job's target).
    Name(String),
    /// `spotify:playlist:ID`
    Id(String),
}

impl PlaylistRef {
    /// `spotify:playlist:ID`, else a name.
    pub fn parse(value: &str) -> PlaylistRef {
        match value.strip_prefix("spotify:playlist:") {
            Some(id) => PlaylistRef::Id(id.to_owned()),
            None => PlaylistRef::Name(value.to_owned()),
        }
    }
}

/// How a playlist job writes its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistMode {
    /// The playlist becomes exactly the source, in order.
    Replace,
    /// What is not there yet is added; `max_items` keeps the newest.
    Append {
        position: Position,
        max_items: Option<u32>,
    },
}

choices! {
    /// Where appended items go.
    pub enum Position {
        Top = "top",
        Bottom = "bottom",
    }
}

#[derive(Debug)]
pub struct PlaylistBody(pub PlaylistJob);

impl JobBody for PlaylistBody {
    fn run<'a>(
        &'a self,
        cx: &'a JobContext,
    ) -> Pin<Box<dyn Future<Output = RunReport> + Send + 'a>> {
        Box::pin(async move { self.run_once(cx).await.into() })
    }
}

fn source_outcome(e: SourceError) -> RunOutcome {
    match e {
        SourceError::Api(a) => api_outcome(a),
        SourceError::Input(msg) => RunOutcome::Error(msg),
    }
}

impl PlaylistBody {
    async fn run_once(&self, cx: &JobContext) -> RunOutcome {
        let api = match cx.spotify() {
            Ok(a) => a,
            Err(outcome) => return outcome,
        };
        // The source first: if it fails, nothing is touched.
        let desired = match sources::resolve(&self.0.source, &api, cx).await {
            Ok(d) => d,
            Err(e) => return source_outcome(e),
        };
        let result = async {
            let id = self.target(&api, cx).await?;
            match self.0.mode {
                PlaylistMode::Replace => replace(&api, cx, &id, &desired).await,
                PlaylistMode::Append {
                    position,
                    max_items,
                } => append(&api, cx, &id, &desired, position, max_items).await,
            }
        }
        .await;
        match result {
            Ok(()) => RunOutcome::Ok,
            Err(e) => api_outcome(e),
        }
    }

    /// The file that remembers a created playlist's id.
    fn remembered_path(cx: &JobContext) -> PathBuf {
        cx.state_dir.join(format!("{}.playlist-id", cx.job.name))
    }

    /// The target's id: given, found by name, remembered, or created.
    async fn target(&self, api: &Spotify, cx: &JobContext) -> Result<String, ApiError> {
        let name = match &self.0.playlist {
            PlaylistRef::Id(id) => return Ok(id.clone()),
            PlaylistRef::Name(n) => n,
        };
        let path = Self::remembered_path(cx);
        let remembered = super::blocking(move || crate::fsutil::read_regular(&path, MAX_ID_FILE))
            .await
            .ok()
            .map(|(bytes, _)| String::from_utf8_lossy(&bytes).trim().to_owned());
        let me = api.me().await?;
        let mine = api.my_playlists().await?;
        if let Some(id) = &remembered
            && mine.iter().any(|p| &p.id == id)
        {
            return Ok(id.clone());
        }
        let owned_by_me =
            |p: &&crate::spotify::types::Playlist| p.owner.as_ref().is_none_or(|o| o.id == me.id);
        if let Some(found) = mine.iter().filter(owned_by_me).find(|p| &p.name == name) {
            self.remember(cx, &found.id).await;
            return Ok(found.id.clone());
        }
        if let Some(id) = remembered {
            // Made by an earlier run but not listed (yet): still ours.
            return Ok(id);
        }
        let created = api
            .create_playlist(name, &format!("Kept by freshd (job {})", cx.job.name))
            .await?;
        tracing::info!(JOB = %cx.job.name, ACCOUNT = %cx.job.account, "created the private playlist \"{name}\"");
        self.remember(cx, &created.id).await;
        Ok(created.id)
    }

    async fn remember(&self, cx: &JobContext, id: &str) {
        let path = Self::remembered_path(cx);
        let (at, bytes) = (path.clone(), id.as_bytes().to_vec());
        if let Err(e) = super::blocking(move || crate::fsutil::write_private(&at, &bytes)).await {
            tracing::warn!(JOB = %cx.job.name, "cannot remember the playlist id in {}: {e}", path.display());
        }
    }
}

async fn replace(
    api: &Spotify,
    cx: &JobContext,
    id: &str,
    desired: &[String],
) -> Result<(), ApiError> {
    let current = api.playlist_items(id).await?;
    if current == desired {
        tracing::info!(JOB = %cx.job.name, "the playlist already is the source ({} items); nothing written", desired.len());
        return Ok(());
    }
    let (first, rest) = desired.split_at(desired.len().min(WRITE_BATCH));
    api.replace_items(id, first).await?;
    for batch in rest.chunks(WRITE_BATCH) {
        api.add_items(id, batch, None).await?;
    }
    tracing::info!(JOB = %cx.job.name, "the playlist now is the source: {} items (it had {})", desired.len(), current.len());
    Ok(())
}

async fn append(
    api: &Spotify,
    cx: &JobContext,
    id: &str,
    desired: &[String],
    position: Position,
    max_items: Option<u32>,
) -> Result<(), ApiError> {
    let current = api.playlist_items(id).await?;
    let have: HashSet<&String> = current.iter().collect();
    let new: Vec<String> = desired
        .iter()
        .filter(|u| !have.contains(u))
        .cloned()
        .collect();
    for (i, batch) in new.chunks(WRITE_BATCH).enumerate() {
        let at = match position {
            Position::Top => Some(i * WRITE_BATCH),
            Position::Bottom => None,
        };
        api.add_items(id, batch, at).await?;
    }
    let after: Vec<String> = match position {
        Position::Top => new.iter().chain(&current).cloned().collect(),
        Position::Bottom => current.iter().chain(&new).cloned().collect(),
    };
    let mut trimmed = 0;
    if let Some(max) = max_items.map(|m| m as usize)
        && after.len() > max
    {
        let excess = after.len() - max;
        let (oldest, kept): (&[String], &[String]) = match position {
            Position::Top => (&after[max..], &after[..max]),
            Position::Bottom => (&after[..excess], &after[excess..]),
        };
        // Removal is by URI: never remove one that is also among the kept.
        let kept: HashSet<&String> = kept.iter().collect();
        let mut seen = HashSet::new();
        let drop: Vec<String> = oldest
            .iter()
            .filter(|u| !kept.contains(u) && seen.insert(*u))
            .cloned()
            .collect();
        for batch in drop.chunks(WRITE_BATCH) {
            api.remove_items(id, batch, None).await?;
        }
        trimmed = drop.len();
    }
    if new.is_empty() && trimmed == 0 {
        tracing::info!(JOB = %cx.job.name, "nothing new to add ({} items)", current.len());
    } else {
        tracing::info!(JOB = %cx.job.name, "added {} items, removed {trimmed} oldest", new.len());
    }
    Ok(())
}

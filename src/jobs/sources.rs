//! Where a playlist job's items come from (DESIGN §3): the user's top
//! tracks, recently played, another playlist, search lines ("Artist -
//! Title", matched in [`super::search`]), or URIs; the `source = { … }`
//! table's keys and their checks.
//! Lines come from the config, a file, or a program's output. A source that
//! fails (a program exiting non-zero, an unreadable file) fails the run
//! before anything is written.

use std::collections::HashSet;
use std::path::PathBuf;

use toml::Spanned;

use super::JobContext;
use super::child::{self, Program, Stdout};
use super::playlist::PlaylistRef;
use super::search::best_match;
use crate::config::{JobCheck, Keys, RawTable, Shape, choices, quoted_list};
use crate::spotify::types::Item;
use crate::spotify::{ApiError, Spotify};

/// Where a playlist job's items come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    TopTracks { time_range: TimeRange, limit: u32 },
    RecentlyPlayed { limit: u32 },
    Playlist { playlist: PlaylistRef },
    Search { lines: Lines },
    Uris { lines: Lines },
}

choices! {
    /// `short_term` (4 weeks), `medium_term` (6 months), `long_term` (years).
    pub enum TimeRange {
        ShortTerm = "short_term",
        MediumTerm = "medium_term",
        LongTerm = "long_term",
    }
}

/// Lines of input for `search` and `uris` sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lines {
    List(Vec<String>),
    File(PathBuf),
    Command(Vec<String>),
}

/// The keys of a playlist job's `source = { … }`.
pub const SOURCE_KEYS: &Keys = &[
    ("kind", Shape::Text),
    ("time_range", Shape::Text),
    ("limit", Shape::Integer),
    ("playlist", Shape::Text),
    ("queries", Shape::List),
    ("uris", Shape::List),
    ("file", Shape::Text),
    ("command", Shape::List),
];

/// Each source kind, with the keys it takes besides `kind`.
const SOURCE_KINDS: &[(&str, &[&str])] = &[
    ("top_tracks", &["time_range", "limit"]),
    ("recently_played", &["limit"]),
    ("playlist", &["playlist"]),
    ("search", &["queries", "file", "command"]),
    ("uris", &["uris", "file", "command"]),
];

/// Checks a playlist job's `source` table.
pub(super) fn check(job: &mut JobCheck<'_, '_>, raw: &Spanned<RawTable>) -> Option<Source> {
    let r = raw.get_ref();
    let kinds: Vec<&str> = SOURCE_KINDS.iter().map(|(k, _)| *k).collect();
    let Some(kind) = r.text("kind") else {
        job.problem(
            raw.span(),
            "source.kind",
            format!("missing key `kind`; use one of {}", quoted_list(&kinds)),
        );
        return None;
    };
    let Some(&(kind_name, allowed)) = SOURCE_KINDS.iter().find(|(k, _)| k == kind.get_ref()) else {
        job.problem(
            kind.span(),
            "source.kind",
            format!(
                "\"{}\" is not a source kind; use one of {}",
                kind.get_ref(),
                quoted_list(&kinds)
            ),
        );
        return None;
    };
    let bad = misplaced_keys(job, r, kind_name, allowed);
    let limit = limit(job, r);
    let source = match kind_name {
        "top_tracks" => Source::TopTracks {
            time_range: r
                .text("time_range")
                .map_or(Some(TimeRange::MediumTerm), |t| {
                    job.one_of(t, "source.time_range", TimeRange::CHOICES)
                })?,
            limit: limit?,
        },
        "recently_played" => Source::RecentlyPlayed { limit: limit? },
        "playlist" => Source::Playlist {
            playlist: source_playlist(job, raw)?,
        },
        "search" => Source::Search {
            lines: check_lines(job, raw, "queries")?,
        },
        _ => Source::Uris {
            lines: check_uris(job, raw)?,
        },
    };
    (!bad).then_some(source)
}

/// A problem with each key that the source's kind does not take; whether
/// there was one.
fn misplaced_keys(
    job: &mut JobCheck<'_, '_>,
    r: &RawTable,
    kind_name: &str,
    allowed: &[&str],
) -> bool {
    let mut bad = false;
    for (k, _) in &SOURCE_KEYS[1..] {
        if let Some(span) = r.span(k)
            && !allowed.contains(k)
        {
            bad = true;
            job.problem(
                span,
                &format!("source.{k}"),
                format!(
                    "`{k}` is not a key of a `{kind_name}` source; its keys are kind, {}",
                    allowed.join(", ")
                ),
            );
        }
    }
    bad
}

/// `limit`: 50 unless given.
fn limit(job: &mut JobCheck<'_, '_>, r: &RawTable) -> Option<u32> {
    match r.integer("limit") {
        Some(l) if (1..=50).contains(l.get_ref()) => {
            Some(u32::try_from(*l.get_ref()).unwrap_or(50))
        }
        Some(l) => {
            job.problem(
                l.span(),
                "source.limit",
                format!(
                    "{} is out of range; Spotify gives 1 to 50 items here",
                    l.get_ref()
                ),
            );
            None
        }
        None => Some(50),
    }
}

fn source_playlist(job: &mut JobCheck<'_, '_>, raw: &Spanned<RawTable>) -> Option<PlaylistRef> {
    match raw.get_ref().text("playlist") {
        Some(p) if !p.get_ref().trim().is_empty() => Some(PlaylistRef::parse(p.get_ref().trim())),
        _ => {
            job.problem(
                raw.span(),
                "source.playlist",
                "a `playlist` source needs `playlist`: a name or \"spotify:playlist:ID\"",
            );
            None
        }
    }
}

/// A `uris` source's lines, with every URI written in the config valid.
fn check_uris(job: &mut JobCheck<'_, '_>, raw: &Spanned<RawTable>) -> Option<Lines> {
    let lines = check_lines(job, raw, "uris")?;
    if let (Lines::List(uris), Some(span)) = (&lines, raw.get_ref().span("uris"))
        && let Some(bad) = uris.iter().find(|u| !valid_item_uri(u))
    {
        job.problem(
            span,
            "source.uris",
            format!("\"{bad}\" is not a track or episode URI; write e.g. \"spotify:track:4uLU6hMCjMI75M1A2tKUQC\""),
        );
        return None;
    }
    Some(lines)
}

/// Exactly one of `list_key`, `file`, `command` in a source.
fn check_lines(
    job: &mut JobCheck<'_, '_>,
    raw: &Spanned<RawTable>,
    list_key: &str,
) -> Option<Lines> {
    let r = raw.get_ref();
    let list = r.list(list_key);
    let given = [list.is_some(), r.has("file"), r.has("command")]
        .iter()
        .filter(|given| **given)
        .count();
    if given != 1 {
        job.problem(raw.span(), &format!("source.{list_key}"), format!("give exactly one of `{list_key}` (a list), `file` (a path, one item a line) or `command` (a program that prints one item a line)"));
        return None;
    }
    if let Some(list) = list {
        return Some(Lines::List(list.get_ref().clone()));
    }
    if let Some(file) = r.text("file") {
        return job.path(file, "source.file").map(Lines::File);
    }
    r.list("command")
        .and_then(|c| job.argv(c, "source.command"))
        .map(Lines::Command)
}

/// `spotify:track:ID` or `spotify:episode:ID`: what a playlist holds.
pub fn valid_item_uri(uri: &str) -> bool {
    let id = uri
        .strip_prefix("spotify:track:")
        .or_else(|| uri.strip_prefix("spotify:episode:"));
    id.is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The most a source program may print; more is surely a mistake.
const MAX_COMMAND_OUTPUT: usize = 4 * 1024 * 1024;
/// The largest source file read: the same as a program's output.
const MAX_SOURCE_FILE: u64 = MAX_COMMAND_OUTPUT as u64;

/// Why a source gave nothing to work with.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("{0}")]
    Input(String),
}

/// The source's URIs, in order, without repeats.
pub async fn resolve(
    source: &Source,
    api: &Spotify,
    cx: &JobContext,
) -> Result<Vec<String>, SourceError> {
    let uris: Vec<String> = match source {
        Source::TopTracks { time_range, limit } => {
            uris_of(api.top_tracks(time_range.as_str(), *limit).await?)
        }
        Source::RecentlyPlayed { limit } => uris_of(api.recently_played(*limit).await?),
        Source::Playlist { playlist } => {
            let id = find_playlist(api, playlist).await?.ok_or_else(|| {
                SourceError::Input(format!(
                    "the source playlist {} is not among your playlists",
                    describe(playlist)
                ))
            })?;
            api.playlist_items(&id).await?
        }
        Source::Search { lines: input } => {
            let lines = lines(input, cx).await?;
            let mut found = Vec::new();
            for line in &lines {
                match best_match(api, line).await? {
                    Some(uri) => found.push(uri),
                    None => {
                        tracing::warn!(JOB = %cx.job.name, "no good match for \"{line}\"; it is left out")
                    }
                }
            }
            tracing::info!(JOB = %cx.job.name, "search matched {} of {} lines", found.len(), lines.len());
            found
        }
        Source::Uris { lines: input } => {
            let mut uris = Vec::new();
            for line in lines(input, cx).await? {
                if valid_item_uri(&line) {
                    uris.push(line);
                } else {
                    tracing::warn!(JOB = %cx.job.name, "\"{line}\" is not a track or episode URI; it is left out");
                }
            }
            uris
        }
    };
    let mut seen = HashSet::new();
    Ok(uris
        .into_iter()
        .filter(|u| seen.insert(u.clone()))
        .collect())
}

fn uris_of(items: Vec<Item>) -> Vec<String> {
    items
        .into_iter()
        .map(|i| i.uri)
        .filter(|u| !u.is_empty())
        .collect()
}

fn describe(p: &PlaylistRef) -> String {
    match p {
        PlaylistRef::Name(n) => format!("\"{n}\""),
        PlaylistRef::Id(id) => format!("spotify:playlist:{id}"),
    }
}

/// A playlist's id: given, or found by name among the user's playlists.
pub async fn find_playlist(api: &Spotify, p: &PlaylistRef) -> Result<Option<String>, ApiError> {
    match p {
        PlaylistRef::Id(id) => Ok(Some(id.clone())),
        PlaylistRef::Name(name) => Ok(api
            .my_playlists()
            .await?
            .into_iter()
            .find(|pl| &pl.name == name)
            .map(|pl| pl.id)),
    }
}

/// Non-empty lines that are not `#` comments.
async fn lines(input: &Lines, cx: &JobContext) -> Result<Vec<String>, SourceError> {
    let text = match input {
        Lines::List(items) => {
            return Ok(items
                .iter()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect());
        }
        Lines::File(path) => {
            let path = cx.resolve(path);
            let read = path.clone();
            let bytes = super::blocking(move || {
                crate::fsutil::read_regular(&read, MAX_SOURCE_FILE).map(|(b, _)| b)
            })
            .await
            .map_err(|e| SourceError::Input(format!("cannot read {}: {e}", path.display())))?;
            String::from_utf8(bytes)
                .map_err(|_| SourceError::Input(format!("{} is not UTF-8 text", path.display())))?
        }
        Lines::Command(argv) => command_output(argv, cx).await?,
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// A source program's standard output; its standard error goes to the log.
async fn command_output(argv: &[String], cx: &JobContext) -> Result<String, SourceError> {
    let program = argv.first().map_or("", String::as_str);
    let finished = child::run(Program {
        argv,
        cx,
        token: None,
        env: &[],
        stdout: Stdout::Capture {
            limit: MAX_COMMAND_OUTPUT,
        },
    })
    .await
    .map_err(|e| SourceError::Input(format!("the source command failed: {e}")))?;
    if !finished.status.success() {
        return Err(SourceError::Input(format!(
            "the source command {program} failed ({}); the playlist was left as it was",
            finished.status
        )));
    }
    Ok(String::from_utf8_lossy(&finished.stdout).into_owned())
}

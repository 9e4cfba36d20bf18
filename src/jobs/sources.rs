//! Where a playlist job's items come from (DESIGN §3): the user's top
//! tracks, recently played, another playlist, search lines ("Artist -
//! Title", best match taken, nothing when nothing matches well), or URIs.
//! Lines come from the config, a file, or a program's output. A source that
//! fails (a program exiting non-zero, an unreadable file) fails the run
//! before anything is written.

use std::collections::HashSet;

use super::JobContext;
use super::child::{self, Program, Stdout};
use crate::config::{Lines, PlaylistRef, Source, valid_item_uri};
use crate::spotify::types::Item;
use crate::spotify::{ApiError, Spotify};

/// The most a source program may print; more is surely a mistake.
const MAX_COMMAND_OUTPUT: usize = 4 * 1024 * 1024;
/// The largest source file read: the same as a program's output.
const MAX_SOURCE_FILE: u64 = MAX_COMMAND_OUTPUT as u64;
/// How many search results are weighed per line (the API allows 10).
const SEARCH_CANDIDATES: u32 = 5;
/// The least score (0 to 1) a search result needs to be taken.
const MATCH_THRESHOLD: f64 = 0.6;

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

/// Splits "Artist - Title"; a line without " - " is all title.
pub fn split_line(line: &str) -> (Option<&str>, &str) {
    match line.split_once(" - ") {
        Some((artist, title)) if !artist.trim().is_empty() && !title.trim().is_empty() => {
            (Some(artist.trim()), title.trim())
        }
        _ => (None, line.trim()),
    }
}

async fn best_match(api: &Spotify, line: &str) -> Result<Option<String>, ApiError> {
    let (artist, title) = split_line(line);
    // Decorations such as "(Remastered)" are for the scoring, not the query.
    let plain = normalize(title);
    let query = match artist {
        Some(a) => format!("track:{plain} artist:{a}"),
        None => plain,
    };
    let candidates = api.search_tracks(&query, SEARCH_CANDIDATES).await?;
    Ok(candidates
        .into_iter()
        .map(|item| (score(artist, title, &item), item.uri))
        .filter(|(s, _)| *s >= MATCH_THRESHOLD)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, uri)| uri))
}

/// Lower case, letters and digits only, without "(feat. …)", "- Remastered"
/// and the like.
pub fn normalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let cut = [
        "(feat",
        "[feat",
        " feat.",
        " - remaster",
        " - live",
        "(remaster",
        " - radio edit",
    ]
    .iter()
    .filter_map(|m| lower.find(m))
    .min()
    .unwrap_or(lower.len());
    lower[..cut]
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn similarity(a: &str, b: &str) -> f64 {
    let (a, b) = (normalize(a), normalize(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    if a.contains(&b) || b.contains(&a) {
        return 0.85;
    }
    let wa: HashSet<&str> = a.split(' ').collect();
    let wb: HashSet<&str> = b.split(' ').collect();
    let common = wa.intersection(&wb).count() as f64;
    common / (wa.union(&wb).count() as f64)
}

/// How well `item` answers "artist - title", from 0 to 1.
pub fn score(artist: Option<&str>, title: &str, item: &Item) -> f64 {
    let t = similarity(title, &item.name);
    let Some(artist) = artist else {
        return t;
    };
    let a = item
        .artist_names()
        .iter()
        .map(|n| similarity(artist, n))
        .fold(0.0, f64::max);
    0.6 * t + 0.4 * a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spotify::types::Named;

    fn track(artist: &str, name: &str) -> Item {
        Item {
            kind: "track".into(),
            name: name.into(),
            artists: vec![Named {
                name: artist.into(),
            }],
            ..Item::default()
        }
    }

    #[test]
    fn lines_split_on_the_first_spaced_dash() {
        assert_eq!(
            split_line("Nina Simone - Feeling Good"),
            (Some("Nina Simone"), "Feeling Good")
        );
        assert_eq!(
            split_line("Jay-Z - 99 Problems - Live"),
            (Some("Jay-Z"), "99 Problems - Live")
        );
        assert_eq!(split_line("Teardrop"), (None, "Teardrop"));
    }

    #[test]
    fn best_match_prefers_the_right_artist_and_ignores_decorations() {
        let good = score(
            Some("Massive Attack"),
            "Teardrop",
            &track("Massive Attack", "Teardrop - Remastered 2019"),
        );
        let cover = score(
            Some("Massive Attack"),
            "Teardrop",
            &track("José González", "Teardrop"),
        );
        let other = score(
            Some("Massive Attack"),
            "Teardrop",
            &track("Massive Attack", "Angel"),
        );
        assert!(good >= 0.99, "{good}");
        assert!(cover < good && cover >= MATCH_THRESHOLD, "{cover}");
        assert!(other < MATCH_THRESHOLD, "{other}");
    }
}

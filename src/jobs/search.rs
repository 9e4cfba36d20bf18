//! Search lines ("Artist - Title") matched to tracks: the best of a few
//! results, weighed by how alike the artist and the title are once
//! decorations ("(feat. …)", "- Remastered") are stripped; nothing when
//! nothing matches well.

use std::collections::HashSet;

use crate::spotify::types::Item;
use crate::spotify::{ApiError, Spotify};

/// How many search results are weighed per line (the API allows 10).
const SEARCH_CANDIDATES: u32 = 5;
/// The least score (0 to 1) a search result needs to be taken.
const MATCH_THRESHOLD: f64 = 0.6;

/// Splits "Artist - Title"; a line without " - " is all title.
pub fn split_line(line: &str) -> (Option<&str>, &str) {
    match line.split_once(" - ") {
        Some((artist, title)) if !artist.trim().is_empty() && !title.trim().is_empty() => {
            (Some(artist.trim()), title.trim())
        }
        _ => (None, line.trim()),
    }
}

pub async fn best_match(api: &Spotify, line: &str) -> Result<Option<String>, ApiError> {
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

//! `type = "now_playing"`: polls what plays and records each new item.
//!
//! The next poll is planned from the track's remaining time (+1 s), capped
//! by `every`; when nothing plays, or playback is paused, it is `every`.
//! Each item that starts playing is appended to `history` as one whole JSON
//! line ([`crate::fsutil::append_private`]: one `write` of the full line,
//! cut off again if the disk is full, then fsynced; never through a link),
//! then `on_change` runs with the item in `FRESHD_*` variables. An item
//! whose line cannot be written fails one run and is not retried.
//! The same item is never reported twice in a row, across restarts too: the
//! last line of the history is read at start.

use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::{JobBody, JobContext, JobType, api_outcome};
use super::{RunOutcome, RunReport};
use crate::config::{JobCheck, Keys, Shape, Trigger};
use crate::spotify::types::Item;
use crate::sync::MutexExt;

/// The `now_playing` job type.
#[derive(Debug)]
pub struct Type;

impl JobType for Type {
    type Settings = NowPlayingJob;
    const NAME: &'static str = "now_playing";
    const KEYS: &'static Keys = &[("history", Shape::Text), ("on_change", Shape::List)];

    fn check(job: &mut JobCheck<'_, '_>) -> Option<NowPlayingJob> {
        let r = job.raw();
        let settings = NowPlayingJob {
            history: r.text("history").and_then(|h| job.path(h, "history")),
            on_change: r.list("on_change").and_then(|c| job.argv(c, "on_change")),
        };
        if let Some(Trigger::Cron { .. }) = job.trigger {
            job.missing("schedule", "a `now_playing` job polls: give `every` (the longest gap between polls, e.g. \"30s\") instead of `schedule`");
            return None;
        }
        Some(settings)
    }

    fn body(settings: &NowPlayingJob) -> Arc<dyn JobBody> {
        Arc::new(NowPlaying::new(settings.clone()))
    }
}

/// `type = "now_playing"`
#[derive(Debug, Clone, PartialEq)]
pub struct NowPlayingJob {
    /// The history file; relative paths live in the state directory.
    pub history: Option<PathBuf>,
    /// A program to run on each change, with the item in `FRESHD_*`.
    pub on_change: Option<Vec<String>>,
}

/// Poll this long after the planned end of a track: the player needs a
/// moment to move on, and polling at the very end would see the old track.
const AFTER_END: Duration = Duration::from_secs(1);

/// When to poll again while an item is on: just after its planned end if it
/// plays, else `None` (the job's `every`). The scheduler caps it by `every`,
/// so a skip is seen within `every`. The benchmark simulates this function.
pub fn again_within(is_playing: bool, progress_ms: u64, duration_ms: u64) -> Option<Duration> {
    is_playing.then(|| Duration::from_millis(duration_ms.saturating_sub(progress_ms)) + AFTER_END)
}

/// One line of the history file (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryLine {
    pub played_at: Timestamp,
    pub uri: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub artists: Vec<String>,
    pub album: Option<String>,
    pub duration_ms: u64,
}

impl HistoryLine {
    /// The `FRESHD_*` variables `on_change` gets.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("FRESHD_URI".to_owned(), self.uri.clone()),
            ("FRESHD_TYPE".to_owned(), self.kind.clone()),
            ("FRESHD_NAME".to_owned(), self.name.clone()),
            ("FRESHD_ARTISTS".to_owned(), self.artists.join(", ")),
            (
                "FRESHD_ALBUM".to_owned(),
                self.album.clone().unwrap_or_default(),
            ),
            (
                "FRESHD_DURATION_MS".to_owned(),
                self.duration_ms.to_string(),
            ),
            ("FRESHD_PLAYED_AT".to_owned(), self.played_at.to_string()),
        ]
    }
}

#[derive(Debug)]
pub struct NowPlaying {
    config: NowPlayingJob,
    /// The URI last reported.
    last: Mutex<LastReported>,
}

/// What the job knows of the track it reported last.
#[derive(Debug, Clone)]
enum LastReported {
    /// Nothing yet: the history's last line is read on the first run.
    NotRead,
    /// The URI reported last, or `None` when nothing ever was.
    Known(Option<String>),
}

impl NowPlaying {
    pub fn new(config: NowPlayingJob) -> Self {
        Self {
            config,
            last: Mutex::new(LastReported::NotRead),
        }
    }

    fn history_path(&self, cx: &JobContext) -> Option<PathBuf> {
        self.config.history.as_ref().map(|p| cx.resolve(p))
    }

    /// The URI last reported, reading the history's last line the first time.
    async fn last_uri(&self, cx: &JobContext) -> Option<String> {
        if let LastReported::Known(uri) = &*self.last.locked() {
            return uri.clone();
        }
        let from_file = match self.history_path(cx) {
            Some(p) => super::blocking(move || last_line(&p))
                .await
                .ok()
                .flatten()
                .and_then(|l| serde_json::from_str::<HistoryLine>(&l).ok())
                .map(|h| h.uri),
            None => None,
        };
        *self.last.locked() = LastReported::Known(from_file.clone());
        from_file
    }

    fn set_last(&self, uri: &str) {
        *self.last.locked() = LastReported::Known(Some(uri.to_owned()));
    }

    async fn poll(&self, cx: &JobContext) -> RunReport {
        let api = match cx.spotify() {
            Ok(a) => a,
            Err(outcome) => return outcome.into(),
        };
        let playing = match api.currently_playing().await {
            Ok(p) => p,
            Err(e) => return api_outcome(e).into(),
        };
        let Some(playing) = playing else {
            tracing::debug!(JOB = %cx.job.name, "nothing plays");
            return RunReport {
                quiet: true,
                ..RunOutcome::Ok.into()
            };
        };
        let Some(item) = playing.item.filter(|i| !i.uri.is_empty()) else {
            tracing::debug!(JOB = %cx.job.name, "playing: {} without an item", playing.currently_playing_type);
            return RunReport {
                quiet: true,
                ..RunOutcome::Ok.into()
            };
        };
        let progress = playing.progress_ms.unwrap_or(0);
        let changed = self.last_uri(cx).await.as_deref() != Some(item.uri.as_str());
        if changed {
            // Seen either way: an item whose line cannot be written (a full
            // disk) fails one run, and is not retried (and logged) at every
            // poll while it plays.
            self.set_last(&item.uri);
            if let Err(e) = self.record(cx, &item, progress).await {
                return RunOutcome::Error(e).into();
            }
        }
        let again_within = again_within(playing.is_playing, progress, item.duration_ms);
        RunReport {
            outcome: RunOutcome::Ok,
            again_within,
            // The change itself has its own journal line (the item played).
            quiet: true,
        }
    }

    async fn record(&self, cx: &JobContext, item: &Item, progress_ms: u64) -> Result<(), String> {
        let now = cx.clock.now();
        let played_at = now
            .checked_sub(SignedDuration::from_millis(
                i64::try_from(progress_ms).unwrap_or(0),
            ))
            .unwrap_or(now)
            .round(jiff::Unit::Second)
            .unwrap_or(now);
        let line = HistoryLine {
            played_at,
            uri: item.uri.clone(),
            kind: if item.kind.is_empty() {
                "track".into()
            } else {
                item.kind.clone()
            },
            name: item.name.clone(),
            artists: item.artist_names(),
            album: item.album.as_ref().map(|a| a.name.clone()),
            duration_ms: item.duration_ms,
        };
        tracing::info!(
            JOB = %cx.job.name,
            ACCOUNT = %cx.job.account,
            "now playing: {} – {}",
            line.artists.join(", "),
            line.name
        );
        if let Some(path) = self.history_path(cx) {
            let mut text = serde_json::to_string(&line).map_err(|e| e.to_string())?;
            text.push('\n');
            let at = path.clone();
            super::blocking(move || crate::fsutil::append_private(&at, text.as_bytes()))
                .await
                .map_err(|e| {
                    format!("cannot append \"{}\" to {}: {e}", line.name, path.display())
                })?;
        }
        if let Some(argv) = &self.config.on_change {
            let env = line.env();
            // on_change gets the item, not the token: it needs no more.
            if let RunOutcome::Error(e) = super::command::run_argv(argv, cx, None, &env).await {
                tracing::warn!(JOB = %cx.job.name, "on_change failed: {e}");
            }
        }
        Ok(())
    }
}

/// How much of the history's end is read for its last line: far more
/// than one line, and a history of years is not read whole.
const TAIL: u64 = 64 * 1024;

/// The last non-empty line of the history, if it is a regular file.
fn last_line(path: &Path) -> std::io::Result<Option<String>> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(meta.len().saturating_sub(TAIL)))?;
    let mut tail = Vec::new();
    file.take(TAIL).read_to_end(&mut tail)?;
    Ok(String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::to_owned))
}

impl JobBody for NowPlaying {
    fn run<'a>(
        &'a self,
        cx: &'a JobContext,
    ) -> Pin<Box<dyn Future<Output = RunReport> + Send + 'a>> {
        Box::pin(self.poll(cx))
    }
}

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::config::Config;

fn cron(pattern: &str, zone: &str) -> Trigger {
    let text = format!(
        "[accounts.a]\ntoken_url = \"http://127.0.0.1:1/t\"\nclient_id = \"x\"\n[jobs.j]\naccount = \"a\"\ntype = \"command\"\ncommand = [\"true\"]\nschedule = \"{pattern}\"\ntimezone = \"{zone}\"\n"
    );
    let config = Config::parse(&text, Path::new("t.toml"), true).unwrap();
    config.jobs["j"].trigger.clone()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Runs a job loop on the paused clock from `start` for `span`, with a body
/// that takes `took(n)` for run `n`; returns the wall times runs started at.
async fn starts(
    trigger: Trigger,
    start: Timestamp,
    span: Duration,
    took: impl Fn(u32) -> Duration + Send + 'static,
) -> Vec<Timestamp> {
    let clock = Arc::new(TokioClock::new(start));
    let runs = Arc::new(Mutex::new(Vec::new()));
    let (_tx, manual) = mpsc::channel(1);
    let cancel = CancellationToken::new();
    let job = JobLoop {
        name: "j".into(),
        trigger,
        timeout: Duration::from_secs(3600),
        clock: clock.clone(),
        status: Arc::default(),
        cancel: cancel.clone(),
        manual,
    };
    let counter = Arc::new(AtomicU32::new(0));
    let body_runs = runs.clone();
    let handle = tokio::spawn(job.run(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        body_runs.lock().unwrap().push(clock.now());
        let d = took(n);
        async move {
            tokio::time::sleep(d).await;
            Ran::from(RunOutcome::Ok)
        }
    }));
    tokio::time::sleep(span).await;
    cancel.cancel();
    handle.await.unwrap();
    Arc::try_unwrap(runs).unwrap().into_inner().unwrap()
}

#[test]
fn berlin_spring_forward_runs_0230_job_once() {
    // 2026-03-29: clocks go from 02:00 to 03:00 CET→CEST; 02:30 does not exist.
    let t = cron("30 2 * * *", "Europe/Berlin");
    let runs = t.upcoming(ts("2026-03-27T12:00:00Z"), 4);
    assert_eq!(
        runs,
        vec![
            ts("2026-03-28T01:30:00Z"), // 02:30 CET
            ts("2026-03-29T01:00:00Z"), // the first instant after the gap, 03:00 CEST
            ts("2026-03-30T00:30:00Z"), // 02:30 CEST
            ts("2026-03-31T00:30:00Z"),
        ]
    );
}

#[test]
fn berlin_fall_back_runs_0230_job_once() {
    // 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET; 02:30 happens twice.
    let t = cron("30 2 * * *", "Europe/Berlin");
    let runs = t.upcoming(ts("2026-10-24T12:00:00Z"), 3);
    assert_eq!(
        runs,
        vec![
            ts("2026-10-25T00:30:00Z"), // the first 02:30 (CEST) only
            ts("2026-10-26T01:30:00Z"), // 02:30 CET
            ts("2026-10-27T01:30:00Z"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dst_days_run_once_each_in_the_loop() {
    let t = cron("30 2 * * *", "Europe/Berlin");
    let spring = starts(
        t.clone(),
        ts("2026-03-28T12:00:00Z"),
        Duration::from_secs(2 * 86400),
        |_| Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        spring,
        vec![ts("2026-03-29T01:00:00Z"), ts("2026-03-30T00:30:00Z")]
    );
    let fall = starts(
        t,
        ts("2026-10-24T12:00:00Z"),
        Duration::from_secs(2 * 86400),
        |_| Duration::from_secs(1),
    )
    .await;
    assert_eq!(
        fall,
        vec![ts("2026-10-25T00:30:00Z"), ts("2026-10-26T01:30:00Z")]
    );
}

#[test]
fn six_fields_mean_seconds_first() {
    let t = cron("15 0 6 * * MON", "UTC");
    // 2026-11-23 is a Monday.
    assert_eq!(
        t.upcoming(ts("2026-11-22T00:00:00Z"), 1),
        vec![ts("2026-11-23T06:00:15Z")]
    );
}

#[test]
fn interval_counts_from_its_anchor() {
    let t = Trigger::Every(Duration::from_secs(30));
    let a = ts("2026-01-01T00:00:00Z");
    assert_eq!(t.next_after(a, a), Some(ts("2026-01-01T00:00:30Z")));
    assert_eq!(
        t.next_after(a, ts("2026-01-01T00:01:05Z")),
        Some(ts("2026-01-01T00:01:30Z"))
    );
    assert_eq!(
        t.upcoming(a, 3),
        vec![a, ts("2026-01-01T00:00:30Z"), ts("2026-01-01T00:01:00Z")]
    );
}

#[tokio::test(start_paused = true)]
async fn overrunning_job_never_overlaps_and_collapses_missed_runs() {
    let start = ts("2026-01-01T00:00:00Z");
    // The first run takes 25 s, past the starts at 10 s and 20 s; the rest take 1 s.
    let runs = starts(
        Trigger::Every(Duration::from_secs(10)),
        start,
        Duration::from_secs(50),
        |n| Duration::from_secs(if n == 0 { 25 } else { 1 }),
    )
    .await;
    let secs: Vec<i64> = runs
        .iter()
        .map(|t| t.duration_since(start).as_secs())
        .collect();
    assert_eq!(secs, vec![0, 25, 35, 45]);
}

#[tokio::test(start_paused = true)]
async fn suspend_runs_a_missed_job_once_on_waking() {
    let start = ts("2026-01-01T00:00:00Z");
    let clock = Arc::new(TokioClock::new(start));
    let count = Arc::new(AtomicU32::new(0));
    let (_tx, manual) = mpsc::channel(1);
    let cancel = CancellationToken::new();
    let job = JobLoop {
        name: "hourly".into(),
        trigger: cron("0 * * * *", "UTC"),
        timeout: Duration::from_secs(60),
        clock: clock.clone(),
        status: Arc::default(),
        cancel: cancel.clone(),
        manual,
    };
    let c = count.clone();
    let handle = tokio::spawn(job.run(move || {
        c.fetch_add(1, Ordering::SeqCst);
        async { Ran::from(RunOutcome::Ok) }
    }));
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(count.load(Ordering::SeqCst), 0);
    // The machine sleeps for five hours: tokio's monotonic clock does not move.
    clock.jump(Duration::from_secs(5 * 3600));
    tokio::time::sleep(WALL_CLOCK_STEP + Duration::from_secs(1)).await;
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "one run for the five missed ones, within one step"
    );
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    cancel.cancel();
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn manual_run_reports_its_outcome_and_keeps_the_schedule() {
    let start = ts("2026-01-01T00:00:00Z");
    let clock = Arc::new(TokioClock::new(start));
    let (tx, manual) = mpsc::channel(1);
    let status = Arc::new(JobStatus::default());
    let cancel = CancellationToken::new();
    let job = JobLoop {
        name: "daily".into(),
        trigger: cron("0 6 * * *", "UTC"),
        timeout: Duration::from_secs(60),
        clock,
        status: status.clone(),
        cancel: cancel.clone(),
        manual,
    };
    let handle = tokio::spawn(job.run(|| async { RunOutcome::Error("boom".into()).into() }));
    let (reply, outcome) = oneshot::channel();
    tx.send(reply).await.unwrap();
    assert_eq!(outcome.await.unwrap(), RunOutcome::Error("boom".into()));
    let state = status.get();
    assert_eq!(state.next_run, Some(ts("2026-01-01T06:00:00Z")));
    assert_eq!(
        state.last_outcome.as_ref().map(RunOutcome::word),
        Some("error")
    );
    cancel.cancel();
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn timeout_ends_a_run_as_an_error() {
    let start = ts("2026-01-01T00:00:00Z");
    let (tx, manual) = mpsc::channel(1);
    let cancel = CancellationToken::new();
    let job = JobLoop {
        name: "slow".into(),
        trigger: cron("0 6 * * *", "UTC"),
        timeout: Duration::from_secs(5),
        clock: Arc::new(TokioClock::new(start)),
        status: Arc::default(),
        cancel: cancel.clone(),
        manual,
    };
    let handle = tokio::spawn(job.run(|| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ran::from(RunOutcome::Ok)
    }));
    let (reply, outcome) = oneshot::channel();
    tx.send(reply).await.unwrap();
    assert_eq!(
        outcome.await.unwrap(),
        RunOutcome::Error("stopped after its timeout of 5s".into())
    );
    cancel.cancel();
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_poller_runs_again_sooner_when_it_asks_capped_by_its_interval() {
    let start = ts("2026-01-01T00:00:00Z");
    let clock = Arc::new(TokioClock::new(start));
    let runs = Arc::new(Mutex::new(Vec::new()));
    let (_tx, manual) = mpsc::channel(1);
    let cancel = CancellationToken::new();
    let job = JobLoop {
        name: "np".into(),
        trigger: Trigger::Every(Duration::from_secs(30)),
        timeout: Duration::from_secs(60),
        clock: clock.clone(),
        status: Arc::default(),
        cancel: cancel.clone(),
        manual,
    };
    let r = runs.clone();
    // Asks for 7 s, then 100 s (capped to 30 s), then nothing (the interval).
    let asks = [Some(7), Some(100), None, None];
    let handle = tokio::spawn(job.run(move || {
        let n = {
            let mut r = r.lock().unwrap();
            r.push(clock.now());
            r.len() - 1
        };
        async move {
            Ran {
                outcome: RunOutcome::Ok,
                again_within: asks.get(n).copied().flatten().map(Duration::from_secs),
            }
        }
    }));
    tokio::time::sleep(Duration::from_secs(100)).await;
    cancel.cancel();
    handle.await.unwrap();
    let secs: Vec<i64> = runs
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.duration_since(start).as_secs())
        .collect();
    assert_eq!(secs, vec![0, 7, 37, 67, 97]);
}

#[tokio::test(start_paused = true)]
async fn an_idle_wait_wakes_only_for_the_guard_and_its_target() {
    // One wait for an hour away: the waiter itself wakes once, at the end;
    // the guard checks the clock every 30 s without waking it.
    let clock = TokioClock::new(ts("2026-01-01T00:00:00Z"));
    let target = ts("2026-01-01T01:00:00Z");
    let woke = Arc::new(AtomicU32::new(0));
    let w = woke.clone();
    let waiter = tokio::spawn(async move {
        sleep_until_wall(&clock, target).await;
        w.fetch_add(1, Ordering::SeqCst);
        clock.now()
    });
    tokio::time::sleep(Duration::from_secs(3599)).await;
    assert_eq!(woke.load(Ordering::SeqCst), 0);
    assert_eq!(waiter.await.unwrap(), target);
}

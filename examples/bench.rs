//! freshd's benchmark harness: `cargo run --release --example bench`.
//!
//! Runs the real `freshd` binary (target/release/freshd) against the fake
//! provider in a process of its own (target/release/examples/fake_provider),
//! never in this process, and measures the figures of the performance brief
//! against their targets: start-up, idle cost, two scales, a refresh storm,
//! and the polling economy of `now_playing` (simulated). Beside freshd, in
//! the same run, runs the peer a user would otherwise write: a Python loop
//! around spotipy keeping one token fresh against the same provider, and
//! prints its figures and their ratio to freshd's.
//!
//! Every figure comes from /proc: memory from `smaps_rollup`, wakeups as the
//! context switches of every thread (sampled every 50 ms, so threads that
//! exit during a window count up to their last sample), CPU time in
//! nanoseconds from each thread's `schedstat`. A full run writes
//! BENCHMARKS.md; `--help` says how to run a part.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use freshd::control::{self, Request};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixDatagram;
use tokio::process::{Child, ChildStdout, Command};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Token requests a second the provider answers in the scale runs.
const SCALE_RATE: u32 = 300;

/// How long the harness waits for one `status` answer.
const STATUS_GIVE_UP: Duration = Duration::from_secs(10);

/// How each run is set up; `--quick` and the flags change it, and only a
/// run with the defaults is written to BENCHMARKS.md.
#[derive(Debug, Clone)]
struct Settings {
    /// The idle measuring window.
    window: Duration,
    /// How long after READY=1 the scale runs measure memory.
    settle: Duration,
    /// Start-up rounds (each freshd, then the peer).
    rounds: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            settle: Duration::from_secs(90),
            rounds: 15,
        }
    }
}

struct Row {
    figure: String,
    target: String,
    freshd: String,
    peer: String,
    ratio: String,
    /// None: a figure reported without a target.
    met: Option<bool>,
}

fn row(figure: &str, target: &str, freshd: String, peer: &str, met: bool) -> Row {
    Row {
        figure: figure.into(),
        target: target.into(),
        freshd,
        peer: peer.into(),
        ratio: String::new(),
        met: Some(met),
    }
}

/// A figure without a target.
fn info(figure: &str, freshd: String) -> Row {
    Row {
        figure: figure.into(),
        target: "—".into(),
        freshd,
        peer: String::new(),
        ratio: String::new(),
        met: None,
    }
}

impl Row {
    /// The peer's figure and peer ÷ freshd.
    fn versus(mut self, peer: String, mine: f64, theirs: f64) -> Self {
        self.peer = peer;
        self.ratio = ratio(mine, theirs);
        self
    }
}

fn ratio(mine: f64, theirs: f64) -> String {
    if mine > 0.0 {
        format!("{:.1}×", theirs / mine)
    } else if theirs > 0.0 {
        "∞ (freshd 0)".into()
    } else {
        "— (both 0)".into()
    }
}

fn release_dir() -> PathBuf {
    let here = std::env::current_exe().expect("own path");
    // target/release/examples/bench -> target/release
    here.parent()
        .and_then(Path::parent)
        .map(Path::to_owned)
        .expect("target dir")
}

/// `--freshd PATH`, to measure another build.
static FRESHD: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn freshd_bin() -> PathBuf {
    FRESHD
        .get()
        .cloned()
        .unwrap_or_else(|| release_dir().join("freshd"))
}

fn provider_bin() -> PathBuf {
    release_dir().join("examples/fake_provider")
}

/// A figure of `/proc/PID/smaps_rollup` (`Rss`, `Pss`, `Anonymous`) or of
/// `/proc/PID/status` (`VmHWM`), in KiB.
fn proc_kib(pid: u32, file: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Memory of a process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss: u64,
    pss: u64,
    /// Private anonymous memory (`Anonymous` of smaps_rollup; none of it
    /// is shared, as neither freshd nor the peer forks without exec).
    anon: u64,
    /// The peak RSS so far (`VmHWM`).
    peak: u64,
}

fn mem(pid: u32) -> Mem {
    Mem {
        rss: proc_kib(pid, "smaps_rollup", "Rss"),
        pss: proc_kib(pid, "smaps_rollup", "Pss"),
        anon: proc_kib(pid, "smaps_rollup", "Anonymous"),
        peak: proc_kib(pid, "status", "VmHWM"),
    }
}

/// Each thread's context switches (voluntary and not) and nanoseconds on
/// a CPU (`schedstat`), by thread id.
fn thread_counters(pid: u32) -> BTreeMap<u32, (u64, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .filter_map(|t| {
            let path = t.ok()?.path();
            let tid = path.file_name()?.to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(path.join("status")).ok()?;
            let switches = status
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            let cpu = std::fs::read_to_string(path.join("schedstat"))
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some((tid, (switches, cpu)))
        })
        .collect()
}

/// What the threads of a process did during a window.
#[derive(Debug, Clone, Copy, Default)]
struct Activity {
    wakeups: u64,
    cpu_ns: u64,
    /// Threads at the end of the window.
    threads: usize,
    /// Threads seen at any sample of the window.
    seen: usize,
}

/// What the threads of each of `pids` did during `window`, sampled every
/// 50 ms: a thread that starts or exits during the window counts up to its
/// last sample (one that lives less than 50 ms between two samples is
/// missed; tokio's blocking threads linger for seconds).
async fn watch(pids: &[u32], window: Duration) -> Vec<Activity> {
    let mut first: Vec<_> = pids.iter().map(|&p| thread_counters(p)).collect();
    let mut last = first.clone();
    let end = Instant::now() + window;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
        for (i, &pid) in pids.iter().enumerate() {
            for (tid, counts) in thread_counters(pid) {
                first[i].entry(tid).or_insert((0, 0));
                last[i].insert(tid, counts);
            }
        }
    }
    pids.iter()
        .enumerate()
        .map(|(i, &pid)| {
            let mut a = Activity {
                threads: thread_counters(pid).len(),
                seen: last[i].len(),
                ..Activity::default()
            };
            for (tid, (s1, c1)) in &last[i] {
                let (s0, c0) = first[i].get(tid).copied().unwrap_or_default();
                a.wakeups += s1.saturating_sub(s0);
                a.cpu_ns += c1.saturating_sub(c0);
            }
            a
        })
        .collect()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The fake provider in a process of its own.
struct Provider {
    /// Killed when dropped.
    _child: Child,
    port: u16,
    http: reqwest::Client,
}

impl Provider {
    /// Starts target/release/examples/fake_provider with `options`
    /// (`--rate`, `--delay-ms`, `--issue`).
    async fn start(options: &[String]) -> Result<Self> {
        let mut child = Command::new(provider_bin())
            .args(["0", "3600"])
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await??
            .ok_or("the provider said no port")?
            .trim()
            .parse()?;
        Ok(Self {
            _child: child,
            port,
            http: reqwest::Client::new(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn admin(&self, path: &str) -> Result<String> {
        Ok(self
            .http
            .get(self.url(path))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    async fn issue(&self, user: &str) -> Result<String> {
        self.admin(&format!("/admin/issue?user={user}")).await
    }

    async fn token_requests(&self) -> Result<u64> {
        token_requests(&self.http, self.port).await
    }
}

/// The token requests the provider on `port` has answered or holds.
async fn token_requests(http: &reqwest::Client, port: u16) -> Result<u64> {
    Ok(http
        .get(format!("http://127.0.0.1:{port}/admin/token-requests"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?
        .trim()
        .parse()?)
}

/// A config with `accounts` accounts (`a0` …) of `jobs_each`
/// weekly/daily/hourly command jobs, the refresh tokens in `dir/creds`
/// (issued now unless the provider issued them at its start).
async fn write_setup(
    dir: &Path,
    provider: &Provider,
    accounts: usize,
    jobs_each: usize,
) -> Result<PathBuf> {
    let creds = dir.join("creds");
    std::fs::create_dir_all(&creds)?;
    let mut text = format!(
        "[daemon]\nsecrets = \"credentials\"\nstate_dir = \"{}\"\nsocket = \"{}\"\ntimezone = \"UTC\"\n",
        dir.join("state").display(),
        dir.join("control.sock").display()
    );
    let schedules = ["0 6 * * MON", "0 7 * * *", "0 * * * *"];
    for a in 0..accounts {
        let name = format!("a{a}");
        let file = creds.join(format!("{name}.refresh_token"));
        if !file.exists() {
            std::fs::write(&file, provider.issue(&name).await?)?;
        }
        text.push_str(&format!(
            "\n[accounts.{name}]\nclient_id = \"freshd-test-client\"\ntoken_url = \"{}\"\napi_base_url = \"{}\"\n",
            provider.url("/api/token"),
            provider.url("/v1")
        ));
        for j in 0..jobs_each {
            text.push_str(&format!(
                "\n[jobs.{name}-j{j}]\naccount = \"{name}\"\ntype = \"command\"\nschedule = \"{}\"\ncommand = [\"true\"]\n",
                schedules[j % schedules.len()]
            ));
        }
    }
    let config = dir.join("config.toml");
    std::fs::write(&config, text)?;
    Ok(config)
}

/// A `freshd run` on its way up.
struct Freshd {
    child: Child,
    pid: u32,
    notify: UnixDatagram,
    started: Instant,
    log: PathBuf,
    socket: PathBuf,
}

/// Execs `freshd run` on `config` (of `dir`, as `write_setup` wrote it).
fn spawn_freshd(dir: &Path, config: &Path) -> Result<Freshd> {
    let notify_path = dir.join(format!("notify-{}", fastrand::u32(..)));
    let notify = UnixDatagram::bind(&notify_path)?;
    let log = dir.join(format!("log-{}", fastrand::u32(..)));
    let started = Instant::now();
    let child = Command::new(freshd_bin())
        .args(["run", "--config"])
        .arg(config)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("CREDENTIALS_DIRECTORY", dir.join("creds"))
        .env_remove("WATCHDOG_USEC")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("no pid")?;
    Ok(Freshd {
        child,
        pid,
        notify,
        started,
        log,
        socket: dir.join("control.sock"),
    })
}

impl Freshd {
    /// Waits for READY=1; returns the time from exec.
    async fn ready(&mut self) -> Result<Duration> {
        let mut buf = vec![0; 4096];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        loop {
            let n = tokio::select! {
                n = self.notify.recv(&mut buf) => n?,
                status = self.child.wait() => {
                    let text = std::fs::read_to_string(&self.log).unwrap_or_default();
                    return Err(format!("freshd exited ({status:?}) before READY=1: {}", text.lines().last().unwrap_or_default()).into());
                }
                () = tokio::time::sleep_until(deadline) => return Err("no READY=1 within 180 s".into()),
            };
            if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
                return Ok(self.started.elapsed());
            }
        }
    }

    async fn stop(mut self) {
        // SIGTERM, as systemd stops it.
        let _ = std::process::Command::new("kill")
            .arg(self.pid.to_string())
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
    }

    /// `status` asked `n` times one after another: the waits, and whether
    /// one went unanswered for `STATUS_GIVE_UP` (the asking stops there;
    /// that wait counts as `STATUS_GIVE_UP`).
    async fn status_waits(&self, n: usize) -> Result<(Vec<Duration>, bool)> {
        let mut waits = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            let ask = control::ask(&self.socket, &Request::Status);
            let Ok(answer) = tokio::time::timeout(STATUS_GIVE_UP, ask).await else {
                waits.push(STATUS_GIVE_UP);
                return Ok((waits, true));
            };
            waits.push(t.elapsed());
            if !matches!(answer?, control::Response::Status { .. }) {
                return Err("status failed".into());
            }
        }
        Ok((waits, false))
    }
}

/// Execs freshd on a setup and waits for READY=1.
async fn start(dir: &Path, config: &Path) -> Result<(Freshd, Duration)> {
    let mut f = spawn_freshd(dir, config)?;
    let ready = f.ready().await?;
    Ok((f, ready))
}

/// The peer: a Python loop around spotipy's `SpotifyOAuth.get_access_token`
/// keeping a token fresh against the provider, as a user would write it.
/// Its venv (`~/.cache/freshd-bench/venv`) is made once with pip.
struct Peer {
    python: PathBuf,
    /// "Python 3.x.y, spotipy a.b.c"
    version: String,
}

impl Peer {
    async fn new() -> Result<Self> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .ok_or("no cache directory")?
            .join("freshd-bench/venv");
        let python = cache.join("bin/python");
        if !python.exists() {
            let ok = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&cache)
                .status()
                .await?
                .success()
                && Command::new(cache.join("bin/pip"))
                    .args(["install", "-q", "spotipy"])
                    .status()
                    .await?
                    .success();
            if !ok {
                return Err("cannot install spotipy with pip".into());
            }
        }
        let out = Command::new(&python)
            .args([
                "-c",
                "import sys, importlib.metadata as m; print(f'Python {sys.version.split()[0]}, spotipy {m.version(\"spotipy\")}')",
            ])
            .output()
            .await?;
        if !out.status.success() {
            return Err("the venv's Python cannot import spotipy".into());
        }
        Ok(Self {
            python,
            version: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        })
    }

    /// Starts the loop; returns it and the time from exec to its first
    /// fresh token.
    async fn spawn(&self, provider: &Provider) -> Result<(Child, Duration)> {
        let script = format!(
            r#"
import time
from spotipy.oauth2 import SpotifyOAuth
from spotipy.cache_handler import MemoryCacheHandler
SpotifyOAuth.OAUTH_TOKEN_URL = "{url}"
token = {{"access_token": "", "token_type": "Bearer", "expires_in": 0, "expires_at": 0,
         "refresh_token": "{rt}", "scope": "user-read-currently-playing"}}
auth = SpotifyOAuth(client_id="freshd-test-client", client_secret="x",
                    redirect_uri="http://127.0.0.1:8888/callback", scope="user-read-currently-playing",
                    cache_handler=MemoryCacheHandler(token_info=token), open_browser=False)
while True:
    auth.get_access_token(as_dict=False)
    print("fresh", flush=True)
    time.sleep(30)
"#,
            url = provider.url("/api/token"),
            rt = provider.issue("python").await?
        );
        let started = Instant::now();
        let mut child = Command::new(&self.python)
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout: ChildStdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await??;
        if first.as_deref() != Some("fresh") {
            return Err("the Python loop got no token".into());
        }
        let took = started.elapsed();
        // Keep reading its lines so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((child, took))
    }
}

async fn startup(rows: &mut Vec<Row>, peer: Option<&Peer>, s: &Settings) -> Result<()> {
    let provider = Provider::start(&[]).await?;
    let (mut times, mut theirs) = (Vec::new(), Vec::new());
    // Interleaved: freshd, then the peer, round after round.
    for _ in 0..s.rounds {
        let dir = tempfile::tempdir()?;
        let config = write_setup(dir.path(), &provider, 1, 3).await?;
        let (f, ready) = start(dir.path(), &config).await?;
        times.push(ready);
        f.stop().await;
        if let Some(peer) = peer {
            let (mut child, took) = peer.spawn(&provider).await?;
            theirs.push(took);
            let _ = child.kill().await;
        }
    }
    times.sort();
    theirs.sort();
    let median = percentile(&times, 0.5);
    let mut r = row(
        &format!(
            "start-up: exec to READY=1, incl. the first refresh (median of {}, max); peer: exec to its first token",
            times.len()
        ),
        "< 100 ms",
        format!("{} (max {})", ms(median), ms(times[times.len() - 1])),
        "",
        median < Duration::from_millis(100),
    );
    if !theirs.is_empty() {
        let their = percentile(&theirs, 0.5);
        r = r.versus(
            format!("{} (max {})", ms(their), ms(theirs[theirs.len() - 1])),
            median.as_secs_f64(),
            their.as_secs_f64(),
        );
    }
    rows.push(r);
    Ok(())
}

/// freshd (1 account, 3 jobs) and the peer side by side, measured in the
/// same window.
async fn idle(rows: &mut Vec<Row>, peer: Option<&Peer>, s: &Settings) -> Result<()> {
    let provider = Provider::start(&[]).await?;
    let dir = tempfile::tempdir()?;
    let config = write_setup(dir.path(), &provider, 1, 3).await?;
    let (f, _) = start(dir.path(), &config).await?;
    let peer_child = match peer {
        Some(p) => Some(p.spawn(&provider).await?.0),
        None => None,
    };
    let mut pids = vec![f.pid];
    if let Some(c) = &peer_child {
        pids.push(c.id().ok_or("no pid")?);
    }
    // Let the start-up's blocking-pool threads leave first.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let acts = watch(&pids, s.window).await;
    let mems: Vec<Mem> = pids.iter().map(|&p| mem(p)).collect();
    f.stop().await;
    if let Some(mut c) = peer_child {
        let _ = c.kill().await;
    }
    let minutes = s.window.as_secs_f64() / 60.0;
    let (m, a) = (mems[0], acts[0]);
    let theirs = mems.get(1).copied().zip(acts.get(1).copied());
    let with = |r: Row, mine: f64, shown: &dyn Fn(&Mem, &Activity) -> (String, f64)| match &theirs {
        Some((tm, ta)) => {
            let (text, value) = shown(tm, ta);
            r.versus(text, mine, value)
        }
        None => r,
    };
    let wakeups = a.wakeups as f64 / minutes;
    let cpu = a.cpu_ns as f64 / minutes;
    rows.push(with(
        row(
            "idle (1 account, 3 jobs): resident memory, RSS",
            "≤ 6 MiB",
            mib(m.rss),
            "",
            m.rss <= 6 * 1024,
        ),
        m.rss as f64,
        &|tm, _| (mib(tm.rss), tm.rss as f64),
    ));
    rows.push(with(
        info("idle: proportional memory, PSS", mib(m.pss)),
        m.pss as f64,
        &|tm, _| (mib(tm.pss), tm.pss as f64),
    ));
    rows.push(with(
        row(
            "idle: private anonymous memory",
            "≤ 0.6 MiB (614 KiB)",
            format!("{} KiB", thousands(m.anon as usize)),
            "",
            m.anon * 10 <= 6 * 1024,
        ),
        m.anon as f64,
        &|tm, _| {
            (
                format!("{} KiB", thousands(tm.anon as usize)),
                tm.anon as f64,
            )
        },
    ));
    rows.push(with(
        row(
            &format!(
                "idle: wakeups a minute (context switches of all threads, incl. exited ones; over {} s)",
                s.window.as_secs()
            ),
            "0",
            format!("{wakeups:.1}"),
            "",
            a.wakeups == 0,
        ),
        wakeups,
        &|_, ta| {
            let w = ta.wakeups as f64 / minutes;
            (format!("{w:.1}"), w)
        },
    ));
    rows.push(with(
        row(
            "idle: CPU time a minute (schedstat)",
            "< 10 ms",
            format!("{:.0} ns", cpu),
            "",
            cpu < 10e6,
        ),
        cpu,
        &|_, ta| {
            let c = ta.cpu_ns as f64 / minutes;
            (format!("{c:.0} ns"), c)
        },
    ));
    rows.push(with(
        row(
            "idle: threads between events (seen during the window)",
            "1",
            format!("{} ({})", a.threads, a.seen),
            "",
            a.threads == 1 && a.seen == 1,
        ),
        a.threads as f64,
        &|_, ta| (format!("{} ({})", ta.threads, ta.seen), ta.threads as f64),
    ));
    Ok(())
}

/// Inside the harness's own D-Bus session: gnome-keyring unlocked, the
/// refresh token stored as a user would (`secret-tool store`), then freshd
/// exec'd in the shell's place (so `$$` is its PID).
const KEYRING_SESSION: &str = r#"printf 'bench' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; do
  i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1
done
secret-tool store --label='freshd a0 refresh token' service freshd username a0/refresh_token <"$2" || exit 1
rm -f "$2"
echo "PID $$"
exec "$0" run --config "$1""#;

/// The idle setup with `secrets = "keyring"` (the user unit's default):
/// gnome-keyring in a D-Bus session of the harness's own. The Secret
/// Service is reached through zbus, whose reactor thread stays.
async fn idle_keyring(rows: &mut Vec<Row>, s: &Settings) -> Result<()> {
    let tools = [
        "dbus-run-session",
        "gnome-keyring-daemon",
        "secret-tool",
        "dbus-send",
    ];
    let have = |t: &&str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
    };
    if !tools.iter().all(have) {
        rows.push(info(
            "idle with the keyring store",
            "not measured: no gnome-keyring (packages dbus, gnome-keyring, libsecret-tools)".into(),
        ));
        return Ok(());
    }
    let provider = Provider::start(&[]).await?;
    let dir = tempfile::tempdir()?;
    let config = write_setup(dir.path(), &provider, 1, 3).await?;
    let text = std::fs::read_to_string(&config)?
        .replace("secrets = \"credentials\"", "secrets = \"keyring\"");
    std::fs::write(&config, text)?;
    let token = dir.path().join("creds/a0.refresh_token");
    let home = dir.path().join("home");
    let runtime = home.join("run");
    std::fs::create_dir_all(&runtime)?;
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let notify_path = dir.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path)?;
    let log = dir.path().join("log");
    let started = Instant::now();
    let mut child = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", KEYRING_SESSION])
        .arg(freshd_bin())
        .arg(&config)
        .arg(&token)
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("NOTIFY_SOCKET", &notify_path)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("WATCHDOG_USEC")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let pid = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(pid) = line.strip_prefix("PID ") {
                return pid.trim().parse::<u32>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("the keyring session did not start freshd")?;
    let mut f = Freshd {
        child,
        pid,
        notify,
        started,
        log,
        socket: dir.path().join("control.sock"),
    };
    f.ready().await?;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let a = watch(&[pid], s.window).await[0];
    let m = mem(pid);
    f.stop().await;
    let wakeups = a.wakeups as f64 / (s.window.as_secs_f64() / 60.0);
    rows.push(row(
        "idle with the keyring store (gnome-keyring, `secrets = \"keyring\"`): RSS",
        "≤ 6 MiB",
        mib(m.rss),
        "",
        m.rss <= 6 * 1024,
    ));
    rows.push(row(
        "idle with the keyring store: private anonymous memory",
        "≤ 0.6 MiB (614 KiB)",
        format!("{} KiB", thousands(m.anon as usize)),
        "",
        m.anon * 10 <= 6 * 1024,
    ));
    rows.push(row(
        "idle with the keyring store: wakeups a minute",
        "0",
        format!("{wakeups:.1}"),
        "",
        a.wakeups == 0,
    ));
    rows.push(row(
        "idle with the keyring store: threads between events (seen during the window); the second is zbus's reactor (async-io)",
        "1",
        format!("{} ({})", a.threads, a.seen),
        "",
        a.threads == 1 && a.seen == 1,
    ));
    Ok(())
}

/// The sizes of a scale run and its targets.
struct Scale {
    accounts: usize,
    jobs_each: usize,
    ready_target: Duration,
    rss_target_mib: u64,
    status_target: Duration,
}

/// `accounts` accounts with `jobs_each` jobs each, against a provider that
/// answers `SCALE_RATE` token requests a second.
async fn scale(rows: &mut Vec<Row>, sc: &Scale, s: &Settings) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let creds = dir.path().join("creds");
    let provider = Provider::start(&[
        "--rate".into(),
        SCALE_RATE.to_string(),
        "--issue".into(),
        sc.accounts.to_string(),
        creds.display().to_string(),
    ])
    .await?;
    let config = write_setup(dir.path(), &provider, sc.accounts, sc.jobs_each).await?;
    let jobs = sc.accounts * sc.jobs_each;
    // The first wave ends when every account has made its token request.
    let (port, wanted, began) = (provider.port, sc.accounts as u64, Instant::now());
    let wave = tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            if token_requests(&http, port).await.unwrap_or(0) >= wanted {
                return began.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let (f, ready) = start(dir.path(), &config).await?;
    let at_ready = mem(f.pid);
    let settle_end = Instant::now() + s.settle;
    let (mut waits, mut gave_up) = f.status_waits(10).await?;
    tokio::time::sleep_until(settle_end.into()).await;
    let m = mem(f.pid);
    let wave_done = if wave.is_finished() {
        Some(wave.await?)
    } else {
        wave.abort();
        None
    };
    let (later, gave_up_later) = f.status_waits(10).await?;
    waits.extend(later);
    gave_up |= gave_up_later;
    waits.sort();
    let log = f.log.clone();
    f.stop().await;
    // The planned later refreshes, from the log: how many fall in one second.
    let text = std::fs::read_to_string(&log)?;
    let mut per_second: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        if let Some((_, at)) = line.split_once("next refresh at ") {
            let second = at.split_whitespace().next().unwrap_or_default().to_owned();
            *per_second.entry(second).or_default() += 1;
        }
    }
    let busiest = per_second.values().copied().max().unwrap_or(0);
    let spread = per_second.len();
    let what = format!(
        "scale, {} accounts / {} jobs",
        thousands(sc.accounts),
        thousands(jobs)
    );
    rows.push(row(
        &format!("{what}: exec to READY=1 (provider answers {SCALE_RATE} token requests/s)"),
        &format!("≤ {} s", sc.ready_target.as_secs()),
        format!("{:.2} s", ready.as_secs_f64()),
        "",
        ready <= sc.ready_target,
    ));
    rows.push(info(
        &format!("{what}: every account's first token request sent (from exec)"),
        wave_done.map_or_else(
            || format!("not within {} s of READY=1", s.settle.as_secs()),
            |d| format!("{:.1} s", d.as_secs_f64()),
        ),
    ));
    rows.push(row(
        &format!(
            "{what}: RSS {} s after READY=1 (PSS; private anonymous)",
            s.settle.as_secs()
        ),
        &format!("≤ {} MiB", sc.rss_target_mib),
        format!("{} ({}; {})", mib(m.rss), mib(m.pss), mib(m.anon)),
        "",
        m.rss <= sc.rss_target_mib * 1024,
    ));
    rows.push(info(
        &format!("{what}: RSS at READY=1; peak RSS (VmHWM)"),
        format!("{}; {}", mib(at_ready.rss), mib(m.peak)),
    ));
    let median = percentile(&waits, 0.5);
    let max = waits[waits.len() - 1];
    rows.push(row(
        &format!(
            "{what}: `status` answered (median, max of 10 right after READY=1 and 10 {} s later)",
            s.settle.as_secs()
        ),
        &format!("< {} ms", sc.status_target.as_millis()),
        if gave_up {
            format!(
                "{} of 20 asks answered; one had no answer after {} s",
                waits.iter().filter(|w| **w < STATUS_GIVE_UP).count(),
                STATUS_GIVE_UP.as_secs()
            )
        } else {
            format!("{} (max {})", ms(median), ms(max))
        },
        "",
        max < sc.status_target,
    ));
    if sc.accounts <= 1000 {
        let limit = sc.accounts / 20;
        rows.push(row(
            &format!("{what}: later refreshes in the busiest second"),
            "≤ 5 % of accounts",
            format!(
                "{:.1} % ({busiest} of {}; spread over {spread} s)",
                busiest as f64 * 100.0 / sc.accounts as f64,
                thousands(sc.accounts)
            ),
            "",
            busiest <= limit,
        ));
    }
    Ok(())
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 10,000 `token` asks over freshd's control socket while the first
/// refresh of each of `accounts` accounts is in flight (the provider holds
/// each token answer back 200 ms). freshd serves 64 control connections at
/// once; the harness keeps 64 asks in flight.
async fn storm(rows: &mut Vec<Row>) -> Result<()> {
    const ASKS: usize = 10_000;
    const IN_FLIGHT: usize = 64;
    for accounts in [1usize, 100] {
        let provider = Provider::start(&["--delay-ms".into(), "200".into()]).await?;
        let dir = tempfile::tempdir()?;
        let config = write_setup(dir.path(), &provider, accounts, 0).await?;
        let before = provider.token_requests().await?;
        let mut f = spawn_freshd(dir.path(), &config)?;
        while !f.socket.exists() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let socket = Arc::new(f.socket.clone());
        let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let begun = Instant::now();
        let mut asks = tokio::task::JoinSet::new();
        for i in 0..ASKS {
            let permit = Arc::clone(&slots).acquire_owned().await?;
            let socket = Arc::clone(&socket);
            asks.spawn(async move {
                let t = Instant::now();
                let answer = control::ask(
                    &socket,
                    &Request::Token {
                        account: format!("a{}", i % accounts),
                    },
                )
                .await;
                drop(permit);
                match answer {
                    Ok(control::Response::Token { .. }) => Ok(t.elapsed()),
                    Ok(control::Response::Refused { error, .. }) => Err(error),
                    Ok(other) => Err(format!("unexpected answer: {other:?}")),
                    Err(e) => Err(e.to_string()),
                }
            });
        }
        let mut waits = Vec::new();
        while let Some(r) = asks.join_next().await {
            waits.push(r??);
        }
        let all = begun.elapsed();
        f.ready().await?;
        let requests = provider.token_requests().await? - before;
        f.stop().await;
        waits.sort();
        rows.push(row(
            &format!(
                "refresh storm: 10,000 `token` asks over the control socket ({IN_FLIGHT} at once) during the first refresh of {accounts} account(s): token requests"
            ),
            &format!("1 per account ({accounts})"),
            requests.to_string(),
            "",
            requests == accounts as u64,
        ));
        rows.push(info(
            &format!(
                "refresh storm over {accounts} account(s): wait per ask, median / 99th percentile / max (provider round trip 200 ms); all asks answered in"
            ),
            format!(
                "{} / {} / {}; {}",
                ms(percentile(&waits, 0.5)),
                ms(percentile(&waits, 0.99)),
                ms(waits[waits.len() - 1]),
                ms(all)
            ),
        ));
    }
    Ok(())
}

/// Two-hour listening sessions (20 of them, seeded): tracks of 2 to 6
/// minutes, a fifth skipped part-way, up to four pauses of 2 to 10 minutes.
/// The poller follows `freshd::jobs::now_playing::again_within`, capped by
/// `every = 30s` as the scheduler caps it, and is compared with fixed 5 s
/// polling.
fn polling(rows: &mut Vec<Row>) {
    let every: u64 = 30_000;
    let total: u64 = 2 * 3600 * 1000;
    let (mut polls, mut fixed) = (0u64, 0u64);
    let (mut natural, mut skips) = (Vec::new(), Vec::new());
    for seed in 0..20 {
        let (p, n, s) = session(seed, total, every);
        polls += p;
        fixed += total / 5_000;
        natural.extend(n);
        skips.extend(s);
    }
    natural.sort_unstable();
    skips.sort_unstable();
    let p95 = natural
        .get((natural.len() as f64 * 0.95) as usize)
        .copied()
        .unwrap_or(0);
    let worst_skip = skips.last().copied().unwrap_or(0);
    let ratio = fixed as f64 / polls as f64;
    rows.push(row(
        "polling: requests per 2-hour session, every = 30s (mean of 20 sessions)",
        "≥ 4× fewer than fixed 5 s",
        format!("{} ({ratio:.1}× fewer)", polls / 20),
        &format!("{} (fixed 5 s)", fixed / 20),
        ratio >= 4.0,
    ));
    rows.push(row(
        &format!(
            "polling: natural track changes detected, 95th percentile ({} changes)",
            natural.len()
        ),
        "≤ 3 s",
        format!("{:.1} s", p95 as f64 / 1000.0),
        "",
        p95 <= 3000,
    ));
    rows.push(row(
        &format!("polling: skips detected, worst ({} skips)", skips.len()),
        "≤ every (30 s)",
        format!("{:.1} s", worst_skip as f64 / 1000.0),
        "",
        worst_skip <= every,
    ));
}

/// One simulated session: (polls, detection delays of natural changes, of skips).
fn session(seed: u64, total: u64, every: u64) -> (u64, Vec<u64>, Vec<u64>) {
    #[derive(Clone, Copy)]
    struct Span {
        start_ms: u64,
        end_ms: u64,
        track: u32,
        duration_ms: u64,
        offset_ms: u64,
        playing: bool,
        skipped: bool,
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut spans = Vec::new();
    let (mut t, mut track, mut pauses) = (0u64, 0u32, 0);
    while t < total {
        let duration = rng.u64(120_000..=360_000);
        let skip = rng.u8(0..5) == 0;
        let played = if skip {
            duration * rng.u64(10..90) / 100
        } else {
            duration
        };
        if pauses < 4 && rng.u8(0..6) == 0 {
            let first = played / 2;
            let pause = rng.u64(120_000..=600_000);
            spans.push(Span {
                start_ms: t,
                end_ms: t + first,
                track,
                duration_ms: duration,
                offset_ms: 0,
                playing: true,
                skipped: false,
            });
            spans.push(Span {
                start_ms: t + first,
                end_ms: t + first + pause,
                track,
                duration_ms: duration,
                offset_ms: first,
                playing: false,
                skipped: false,
            });
            spans.push(Span {
                start_ms: t + first + pause,
                end_ms: t + pause + played,
                track,
                duration_ms: duration,
                offset_ms: first,
                playing: true,
                skipped: skip,
            });
            t += pause + played;
            pauses += 1;
        } else {
            spans.push(Span {
                start_ms: t,
                end_ms: t + played,
                track,
                duration_ms: duration,
                offset_ms: 0,
                playing: true,
                skipped: skip,
            });
            t += played;
        }
        track += 1;
    }
    let at = |ms: u64| {
        spans
            .iter()
            .find(|s| s.start_ms <= ms && ms < s.end_ms)
            .copied()
    };
    let (mut now, mut polls, mut last) = (0u64, 0u64, None::<u32>);
    let (mut natural, mut skips) = (Vec::new(), Vec::new());
    while now < total {
        polls += 1;
        let Some(s) = at(now) else { break };
        if last != Some(s.track) {
            let first = spans
                .iter()
                .find(|x| x.track == s.track)
                .map_or(now, |x| x.start_ms);
            let prev_skipped = spans
                .iter()
                .rev()
                .find(|x| Some(x.track) == last)
                .is_some_and(|x| x.skipped);
            if last.is_some() {
                if prev_skipped {
                    skips.push(now - first)
                } else {
                    natural.push(now - first)
                }
            }
            last = Some(s.track);
        }
        let progress = s.offset_ms + (now - s.start_ms);
        let next = freshd::jobs::now_playing::again_within(s.playing, progress, s.duration_ms)
            .map_or(every, |d| {
                u64::try_from(d.as_millis()).unwrap_or(every).min(every)
            });
        now += next;
    }
    (polls, natural, skips)
}

/// How many of `link/freshd.order`'s names the measured binary has: the
/// code the daemon runs is placed together only as far as they match
/// (ARCHITECTURE.md, "Memory").
fn link_order_note() -> String {
    let listed = std::fs::read_to_string("link/freshd.order").unwrap_or_default();
    let listed: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
    let names = std::process::Command::new("nm")
        .arg("--defined-only")
        .arg(freshd_bin())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let Some(names) = names else {
        return "The binary's link order (`link/freshd.order`) could not be checked (no `nm`)."
            .into();
    };
    let have: std::collections::HashSet<&str> = names
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let found = listed.iter().filter(|n| have.contains(*n)).count();
    format!(
        "The binary is linked with the daemon's code together (`link/freshd.order`): {found} of its\n\
         {} names are in the binary measured.",
        listed.len()
    )
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or("?".into(), |k| {
            format!("{:.0} GiB", k as f64 / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let libc = std::process::Command::new("ldd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.rsplit(' ').next())
                .map(|v| format!(", glibc {v}"))
        })
        .unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {mem} memory, Linux {}{libc}",
        kernel.trim()
    )
}

const PARTS: [&str; 7] = [
    "startup", "idle", "keyring", "scale", "scale10k", "storm", "polling",
];

const USAGE: &str = "\
usage: cargo build --release --bin freshd
       cargo build --release --example fake_provider --example bench
       target/release/examples/bench [--only PART[,PART…]] [--quick]
              [--window SECS] [--settle SECS] [--no-peer] [--freshd PATH]

Build freshd by itself: built in one go with the examples it would carry
the features of the dev-dependencies (tokio's multi-thread runtime among
them) and not be the binary that ships.

Runs target/release/freshd against target/release/examples/fake_provider
(each its own process) and measures, beside a Python loop around spotipy
(the peer; pip-installed once into ~/.cache/freshd-bench/venv):
  startup   exec to READY=1, including the first refresh (15 rounds, each
            freshd then the peer)
  idle      1 account, 3 jobs, freshd and the peer side by side: RSS, PSS,
            private anonymous memory (smaps_rollup), wakeups and CPU ns of
            all threads (sampled every 50 ms, exited threads included)
  keyring   the idle setup with the keyring store: gnome-keyring in a
            D-Bus session of the harness's own (dbus-run-session)
  scale     1,000 accounts, 10,000 jobs, provider at 300 token requests/s:
            READY=1, RSS `--settle` after it, `status`, refresh spread
  scale10k  10,000 accounts, 100,000 jobs, the same provider
  storm     10,000 `token` asks during the first refresh of 1 and 100 accounts
  polling   requests and detection delays of now_playing (simulated)

--window  the idle window (default 60 s)
--settle  how long after READY=1 the scale runs measure memory (default 90 s)
--quick   --window 20 --settle 20, 5 start-up rounds
--no-peer leaves the peer out
--freshd  measures another freshd binary
Only a run of every part with the defaults rewrites BENCHMARKS.md (about
six minutes); any other prints the table only.
";

fn flag_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return Ok(());
    }
    let mut settings = Settings::default();
    if args.iter().any(|a| a == "--quick") {
        settings.window = Duration::from_secs(20);
        settings.settle = Duration::from_secs(20);
        settings.rounds = 5;
    }
    if let Some(w) = flag_value(&args, "--window") {
        settings.window = Duration::from_secs(w.parse()?);
    }
    if let Some(w) = flag_value(&args, "--settle") {
        settings.settle = Duration::from_secs(w.parse()?);
    }
    let only: Option<Vec<String>> =
        flag_value(&args, "--only").map(|o| o.split(',').map(str::to_owned).collect());
    if let Some(o) = &only
        && let Some(bad) = o.iter().find(|p| !PARTS.contains(&p.as_str()))
    {
        return Err(format!("no part {bad}; the parts: {}", PARTS.join(", ")).into());
    }
    let with_peer = !args.iter().any(|a| a == "--no-peer");
    let other_build = flag_value(&args, "--freshd").map(PathBuf::from);
    let publish_build = other_build.is_none();
    if let Some(path) = other_build {
        let _ = FRESHD.set(path);
    }
    let publish = only.is_none()
        && with_peer
        && publish_build
        && settings.window == Settings::default().window
        && settings.settle == Settings::default().settle
        && settings.rounds == Settings::default().rounds;
    let run = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|p| p == name));
    for bin in [freshd_bin(), provider_bin()] {
        if !bin.exists() {
            return Err(format!(
                "{} is missing; build first: cargo build --release --bin freshd && cargo build --release --example fake_provider --example bench",
                bin.display()
            )
            .into());
        }
    }
    let began = Instant::now();
    let mut rows = Vec::new();
    let rt = tokio::runtime::Runtime::new()?;
    let peer = if with_peer && (run("startup") || run("idle")) {
        Some(rt.block_on(Peer::new())?)
    } else {
        None
    };
    if run("startup") {
        eprintln!("start-up …");
        rt.block_on(startup(&mut rows, peer.as_ref(), &settings))?;
    }
    if run("idle") {
        eprintln!("idle (about {} s) …", settings.window.as_secs() + 20);
        rt.block_on(idle(&mut rows, peer.as_ref(), &settings))?;
    }
    if run("keyring") {
        eprintln!(
            "idle with the keyring store (about {} s) …",
            settings.window.as_secs() + 20
        );
        rt.block_on(idle_keyring(&mut rows, &settings))?;
    }
    if run("scale") {
        eprintln!("scale, 1,000 accounts …");
        let sc = Scale {
            accounts: 1000,
            jobs_each: 10,
            ready_target: Duration::from_secs(5),
            rss_target_mib: 24,
            status_target: Duration::from_millis(100),
        };
        rt.block_on(scale(&mut rows, &sc, &settings))?;
    }
    if run("scale10k") {
        eprintln!("scale, 10,000 accounts …");
        let sc = Scale {
            accounts: 10_000,
            jobs_each: 10,
            ready_target: Duration::from_secs(10),
            rss_target_mib: 160,
            status_target: Duration::from_millis(250),
        };
        rt.block_on(scale(&mut rows, &sc, &settings))?;
    }
    if run("storm") {
        eprintln!("refresh storm …");
        rt.block_on(storm(&mut rows))?;
    }
    if run("polling") {
        polling(&mut rows);
    }

    let mut table = String::from(
        "| figure | target | freshd | peer | peer ÷ freshd | met |\n|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.figure,
            r.target,
            r.freshd,
            r.peer,
            r.ratio,
            match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            }
        ));
    }
    let peer_line = peer.as_ref().map_or_else(String::new, |p| {
        format!(
            "The peer is a Python loop around spotipy's `SpotifyOAuth.get_access_token` ({}) that\n\
             keeps one token fresh against the same provider, as a user would otherwise write it; it runs\n\
             in the same run as freshd: alternately with it for start-up, beside it in the same window\n\
             for the idle figures.\n",
            p.version
        )
    });
    let order = link_order_note();
    let doc = format!(
        "# Benchmarks\n\n\
         Produced by `cargo build --release --bin freshd && cargo build --release --example\n\
         fake_provider --example bench && target/release/examples/bench` on {date} in {mins:.1}\n\
         minutes; machine: {machine}.\n\n\
         The harness runs the release `freshd` binary; every request goes to the fake provider on\n\
         127.0.0.1 in a process of its own (`examples/fake_provider.rs`), which for the scale runs\n\
         answers at most {SCALE_RATE} token requests a second and for the storm holds each token answer\n\
         back 200 ms. Memory comes from `/proc/PID/smaps_rollup`; wakeups are the context switches\n\
         (voluntary and not) of every thread, and CPU time the nanoseconds of every thread's\n\
         `schedstat`, both sampled every 50 ms so that threads that exit during a window count.\n\
         {order}\n\n\
         {peer_line}\n{table}\n\
         The refresh storm has no latency target: freshd runs on one thread by choice (for its idle\n\
         cost) and serves 64 control connections at once, so its figure is reported as measured; the\n\
         rule it keeps is one token request per account however many ask.\n",
        date = jiff::Timestamp::now().strftime("%Y-%m-%d"),
        mins = began.elapsed().as_secs_f64() / 60.0,
        machine = machine(),
    );
    println!("{order}\n{table}");
    if publish {
        std::fs::write("BENCHMARKS.md", &doc)?;
        println!("written to BENCHMARKS.md");
    } else {
        println!("(not a full run with the defaults: BENCHMARKS.md left alone)");
    }
    Ok(())
}

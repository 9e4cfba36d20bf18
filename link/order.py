#!/usr/bin/env python3
"""Writes link/freshd.order: the functions and data freshd's daemon touches,
in the order the linker should place them (build.rs hands the file to lld
as --symbol-ordering-file).

Why: the kernel maps a program's code 64 KiB at a time around each page it
faults in (fault-around), so code spread over the whole binary makes most
of it resident although the daemon runs a small part of it. Placed together,
the part it runs takes a few such windows. See ARCHITECTURE.md, "Memory".

How: the daemon is started from a copy of the binary whose pages are not in
the page cache, with readahead off for the disk it is on, so that only the
pages it faults in are read and mapped. After each phase the resident pages
of the binary (/proc/PID/pagemap) name the symbols on them:
  1. start-up, the first refresh, READY=1 and idling (what most daemons do);
  2. `status`, `token`, each job run once (`run-job`), a reload (SIGHUP).
Phase 1's symbols come first, then phase 2's; within a phase, the binary's
own order.

Pages are coarser than functions: a function sharing a page with one that
ran would count as run. So the daemon measured is a build that starts every
function on a page of its own (LLVM's -align-all-functions=12; the names
are those of the normal build):

  RUSTFLAGS="-C llvm-args=-align-all-functions=12" CARGO_TARGET_DIR=target/aligned \
      cargo build --release --bin freshd
  cargo build --release --example fake_provider
  python3 link/order.py [target/aligned/release/freshd]

Then rebuild freshd; target/release/examples/bench shows the effect. Needs
root (pagemap, readahead). A stale file does no harm: lld skips names it
does not find, and what it does not name goes after what it does.
"""
import os, re, shutil, signal, socket, struct, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else os.path.join(ROOT, "target/aligned/release/freshd")
FAKE = os.path.join(ROOT, "target/release/examples/fake_provider")
OUT = os.path.join(ROOT, "link/freshd.order")


def readahead_file(path):
    """The read_ahead_kb file of the block device holding `path`."""
    dev = os.stat(path).st_dev
    sys_dev = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"
    for queue in (f"{sys_dev}/queue", f"{sys_dev}/../queue"):
        if os.path.exists(f"{queue}/read_ahead_kb"):
            return f"{queue}/read_ahead_kb"
    sys.exit(f"no read_ahead_kb for {path}'s device (is it on a block device?)")


def evict(path):
    os.sync()
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def resident_pages(pid, path):
    """Page numbers (of the file's virtual addresses) resident in pid."""
    maps = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == path:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                maps.append((lo, hi, int(parts[2], 16)))
    base = min(lo - off for lo, _, off in maps)
    pages = set()
    with open(f"/proc/{pid}/pagemap", "rb") as pm:
        for lo, hi, _ in maps:
            pm.seek(lo // 4096 * 8)
            data = pm.read((hi - lo) // 4096 * 8)
            for i in range((hi - lo) // 4096):
                if struct.unpack_from("<Q", data, i * 8)[0] >> 63:
                    pages.add((lo - base) // 4096 + i)
    return pages


def symbols(path):
    """(address, size, mangled name) of the code and read-only data."""
    out = subprocess.run(["nm", "--defined-only", "-S", path],
                         capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[2] in "tTrR" and int(parts[1], 16) > 0:
            syms.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return sorted(syms)


def on_pages(syms, pages):
    return [name for addr, size, name in syms
            if any(p in pages for p in range(addr // 4096, (addr + size - 1) // 4096 + 1))]


def wait_for(cond, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.1)
    sys.exit(f"timed out waiting for {what}")


def measure(secrets):
    """Runs the daemon with `secrets` ("credentials" or "keyring"); the
    symbols on the pages resident after each phase."""
    work = tempfile.mkdtemp(prefix="freshd-order-")
    daemon_bin = os.path.join(work, "freshd")
    client_bin = os.path.join(work, "freshd-client")  # its own page cache
    shutil.copy(BIN, daemon_bin)
    shutil.copy(BIN, client_bin)
    creds = os.path.join(work, "creds")
    os.mkdir(creds)
    fake = subprocess.Popen([FAKE, "0", "3600", "--issue", "1", creds],
                            stdout=subprocess.PIPE, text=True)
    port = int(fake.stdout.readline())
    os.rename(f"{creds}/a0.refresh_token", f"{creds}/spotify.refresh_token")
    if secrets == "keyring":
        with open(f"{creds}/spotify.refresh_token") as token:
            subprocess.run(["secret-tool", "store", "--label=freshd spotify refresh token",
                            "service", "freshd", "username", "spotify/refresh_token"],
                           stdin=token, check=True)
    url = f"http://127.0.0.1:{port}"
    config = os.path.join(work, "config.toml")
    sock = os.path.join(work, "control.sock")
    jobs = {
        "weekly": 'type = "command"\nschedule = "0 6 * * MON"\ncommand = ["true"]',
        "daily": 'type = "command"\nschedule = "0 7 * * *"\ncommand = ["true"]',
        "hourly": 'type = "command"\nschedule = "0 * * * *"\ncommand = ["true"]',
        "playing": 'type = "now_playing"\nevery = "1h"\nhistory = "now-playing.jsonl"',
        "top": 'type = "playlist"\nschedule = "0 6 * * MON"\nplaylist = "Top"\n'
               'source = { kind = "top_tracks", time_range = "short_term", limit = 10 }\nmode = "replace"',
        "api": 'type = "http"\nschedule = "0 7 * * *"\npath = "/me"\noutput = "me.json"',
    }
    with open(config, "w") as f:
        f.write(f'[daemon]\nsecrets = "{secrets}"\nstate_dir = "{work}/state"\n'
                f'socket = "{sock}"\ntimezone = "UTC"\n\n'
                f'[accounts.spotify]\nclient_id = "freshd-test-client"\n'
                f'token_url = "{url}/api/token"\napi_base_url = "{url}/v1"\n')
        for name, body in jobs.items():
            f.write(f'\n[jobs.{name}]\naccount = "spotify"\n{body}\n')
    ra = readahead_file(daemon_bin)
    with open(ra) as f:
        saved = f.read().strip()
    env = dict(os.environ, CREDENTIALS_DIRECTORY=creds)
    env.pop("NOTIFY_SOCKET", None)
    daemon = None
    try:
        with open(ra, "w") as f:
            f.write("0")
        evict(daemon_bin)
        daemon = subprocess.Popen([daemon_bin, "run", "--config", config], env=env,
                                  stderr=open(os.path.join(work, "log"), "w"))

        def answers():
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                s.close()
                return True
            except OSError:
                return False
        wait_for(answers, "the control socket")
        time.sleep(3)  # READY=1 follows the first refresh; then idle
        first = resident_pages(daemon.pid, daemon_bin)
        client = lambda *a: subprocess.run([client_bin, *a, "--config", config], env=env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client("status")
        client("status", "--json")
        client("token", "spotify")
        for name in jobs:
            client("run-job", name)
        daemon.send_signal(signal.SIGHUP)
        time.sleep(2)
        second = resident_pages(daemon.pid, daemon_bin)
    finally:
        with open(ra, "w") as f:
            f.write(saved)
        if daemon:
            daemon.terminate()
            daemon.wait()
        fake.terminate()
    syms = symbols(daemon_bin)
    shutil.rmtree(work)
    return syms, on_pages(syms, first), on_pages(syms, second), len(first), len(second)


def in_session():
    """Both stores measured (inside a D-Bus session with gnome-keyring when
    there is one); the file written."""
    runs = [measure("credentials")]
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        runs.append(measure("keyring"))
    syms = runs[0][0]
    hot, warm = [], []
    for _, first, _, _, _ in runs:
        hot += [n for n in first if n not in set(hot)]
    for _, _, second, _, _ in runs:
        warm += [n for n in second if n not in set(hot) and n not in set(warm)]
    sizes = {n: s for _, s, n in syms}
    kib = lambda names: sum(sizes.get(n, 0) for n in names) // 1024
    with open(OUT, "w") as f:
        f.write("\n".join(hot + warm) + "\n")
    stores = " and ".join(("credentials", "keyring")[: len(runs)])
    print(f"{OUT} ({stores}): {len(hot)} symbols ({kib(hot)} KiB) for start-up and "
          f"idling, {len(warm)} more ({kib(warm)} KiB) for status, token, jobs and reload")


KEYRING = """printf 'order' | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
i=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \\
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true; do
  i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1
done
exec "$@"
"""


def main():
    if os.geteuid() != 0:
        sys.exit("needs root: /proc/PID/pagemap and the disk's read_ahead_kb")
    for p in (BIN, FAKE):
        if not os.path.exists(p):
            sys.exit(f"{p} missing; see this script's doc")
    if "--in-session" in sys.argv:
        return in_session()
    tools = ("dbus-run-session", "gnome-keyring-daemon", "secret-tool", "dbus-send")
    if not all(shutil.which(t) for t in tools):
        print("no gnome-keyring here (packages dbus, gnome-keyring, libsecret-tools): "
              "measuring the credentials store only", file=sys.stderr)
        return in_session()
    home = tempfile.mkdtemp(prefix="freshd-order-home-")
    runtime = os.path.join(home, "run")
    os.mkdir(runtime, 0o700)
    env = dict(os.environ, HOME=home, XDG_RUNTIME_DIR=runtime)
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    try:
        subprocess.run(["dbus-run-session", "--", "sh", "-c", KEYRING, "sh",
                        sys.executable, os.path.abspath(__file__), BIN, "--in-session"],
                       env=env, check=True)
    finally:
        shutil.rmtree(home)


if __name__ == "__main__":
    main()

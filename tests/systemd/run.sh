#!/usr/bin/env bash
# systemd for real: builds the Debian package (cargo deb), boots Debian 12
# with systemd 252 as PID 1 in systemd-nspawn, and runs inside.sh there as a
# oneshot unit that installs the package with apt, checks both of its units,
# its man pages and its bash completion, writes its results and powers off. The container shares the host's loopback, where the fake
# provider (examples/fake_provider.rs) runs. Afterwards the container's
# journal is searched, from outside, for every secret the fake issued.
#
# The debootstrapped root is cached in ${XDG_CACHE_HOME:-~/.cache}/freshd-ci;
# each run works on a copy of it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/freshd-ci"
base="$cache/bookworm"
# Bump when the --include list below changes: a cached root without the
# marker is made again.
marker="$base/.freshd-complete-2"
mirror="${FRESHD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ ! -f "$marker" ]; then
  echo "== debootstrap bookworm (cached in $base)"
  rm -rf "$base.tmp"
  mkdir -p "$cache"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,dbus-user-session,gnome-keyring,libsecret-tools,man-db,bash-completion \
    bookworm "$base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log"; exit 1; }
  rm -rf "$base"
  mv "$base.tmp" "$base"
  touch "$marker"
fi

command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb
echo "== building the package (cargo deb) and the fake provider"
deb=$(cd "$repo" && cargo deb --quiet | tail -n1)
test -s "$deb" || { echo "cargo deb made no package (said: $deb)"; exit 1; }
echo "   $deb"
(cd "$repo" && cargo build --release --quiet --example fake_provider)

work=$(mktemp -d /var/tmp/freshd-systemd.XXXXXX)
fake_pid=""
cleanup() {
  [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$repo/target/release/examples/fake_provider" 0 30 >"$work/fake.port" &
fake_pid=$!
for _ in $(seq 100); do [ -s "$work/fake.port" ] && break; sleep 0.1; done
port=$(head -n1 "$work/fake.port")
echo "== fake provider on 127.0.0.1:$port"

root="$work/root"
cp -a "$base" "$root"
# Only the package: inside.sh installs it with apt, as a user would.
cp "$deb" "$root/root/"
install -Dm755 "$here/inside.sh" "$root/root/inside.sh"
echo "$port" >"$root/root/fake-port"
mkdir -p "$root/var/log/journal"
cat >"$root/etc/systemd/system/freshd-check.service" <<'UNIT'
[Unit]
Description=freshd checks under a real systemd
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/root/inside.sh
ExecStopPost=/bin/systemctl --no-block poweroff
StandardOutput=journal+console
StandardError=journal+console
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/freshd-check.service "$root/etc/systemd/system/multi-user.target.wants/"

echo "== booting the container"
start=$(date +%s)
timeout 900 systemd-nspawn -D "$root" --boot --register=no --keep-unit --console=pipe -q \
  >"$work/console.log" 2>&1 || true
echo "   (ran $(($(date +%s) - start)) s)"

results="$root/root/results.txt"
if [ ! -s "$results" ]; then
  echo "no results; the console said:"
  tail -n 60 "$work/console.log"
  exit 1
fi
cat "$results"

# No secret the fake issued may appear anywhere in the journal.
secrets=$(exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /admin/secrets HTTP/1.0\r\nHost: x\r\n\r\n' >&3
  sed '1,/^\r$/d' <&3)
journalctl -D "$root/var/log/journal" -o export >"$work/journal.txt" 2>/dev/null || true
count=0
leaked=0
while IFS= read -r secret; do
  [ -n "$secret" ] || continue
  count=$((count + 1))
  if grep -qF -- "$secret" "$work/journal.txt"; then leaked=$((leaked + 1)); fi
done <<<"$secrets"
if [ "$leaked" -eq 0 ] && [ "$count" -gt 0 ]; then
  echo "ok: none of the $count secrets the fake issued is in the journal"
else
  echo "FAIL: $leaked of $count secrets the fake issued are in the journal"
fi

failed=$(grep -c '^FAIL' "$results" || true)
if [ "$failed" -ne 0 ] || [ "$leaked" -ne 0 ] || ! grep -q '^done$' "$results"; then
  echo "---- the container's journal for freshd:"
  journalctl -D "$root/var/log/journal" -u freshd -o short-monotonic --no-pager 2>/dev/null | tail -n 60
  echo "---- the user unit's journal:"
  journalctl -D "$root/var/log/journal" _SYSTEMD_USER_UNIT=freshd.service -o short-monotonic --no-pager 2>/dev/null | tail -n 30
  echo "systemd checks: FAILED"
  exit 1
fi
passed=$(grep -c '^ok' "$results" || true)
echo "systemd: $((passed + 1)) passed, 0 failed"

#!/bin/bash
# Runs inside the booted container (as freshd-check.service): installs
# freshd's Debian package with apt, runs its system unit with encrypted
# credentials, then its user unit with gnome-keyring, and checks what
# README's install section promises. Writes "ok: …" / "FAIL: …" lines and
# finally "done" to /root/results.txt.
set -u
out=/root/results.txt
: >"$out"
ok() { echo "ok: $*" >>"$out"; }
fail() { echo "FAIL: $*" >>"$out"; }
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
port=$(cat /root/fake-port)

# The fake provider's admin API, over bash's /dev/tcp (no curl here).
admin() {
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'POST /admin/%s HTTP/1.0\r\nHost: x\r\n\r\n' "$1" >&3
  sed '1,/^\r$/d' <&3
  exec 3>&-
}
show() { systemctl show -p "$1" --value freshd; }

write_config() {
  cat >/etc/freshd/config.toml <<CONF
[daemon]
secrets = "credentials"
shutdown_grace = "3s"

[accounts.spotify]
provider = "spotify"
client_id = "freshd-test-client"
token_url = "http://127.0.0.1:$port/api/token"
api_base_url = "http://127.0.0.1:$port/v1"
refresh_before_expiry = "10s"

[jobs.tick]
account = "spotify"
type = "command"
every = "2s"
command = ["/bin/sh", "-c", "echo tick for \$FRESHD_ACCOUNT"]

[jobs.me]
account = "spotify"
type = "http"
every = "3s"
path = "/me"
CONF
}

# ------------------------------------------------------------------- package
check "apt install ./freshd_*.deb" sh -c "cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ./freshd_*.deb >/root/apt.log 2>&1"
check "the binary is /usr/bin/freshd" test -x /usr/bin/freshd
# Minimal systems lack procps' kill: ExecReload= must not need it.
[ -e /usr/bin/kill ] && mv /usr/bin/kill /usr/bin/kill.away
check "there is no /bin/kill, so ExecReload= cannot lean on it" test ! -e /bin/kill
check "the system unit is /lib/systemd/system/freshd.service" test -f /lib/systemd/system/freshd.service
check "the user unit is /usr/lib/systemd/user/freshd.service" test -f /usr/lib/systemd/user/freshd.service
check "the example config is in /usr/share/doc/freshd/examples" test -f /usr/share/doc/freshd/examples/freshd.toml
check "the copyright file is in place" grep -q "^License: MIT" /usr/share/doc/freshd/copyright
docs=$(systemctl show -p Documentation --value freshd)
check "the unit's Documentation= ($docs) is what the package installs" test \
  "$docs" = '"man:freshd(1)" "man:freshd.toml(5)" file:/usr/share/doc/freshd/README.md' -a -f /usr/share/doc/freshd/README.md
export MANPAGER=cat PAGER=cat MANWIDTH=80
check "man -l renders freshd(1)" sh -c "man -l /usr/share/man/man1/freshd.1.gz 2>&1 | grep -q 'EXIT STATUS'"
check "man freshd finds the page" sh -c "man freshd 2>/dev/null | grep -q 'freshd-status(1)'"
check "man 5 freshd.toml documents refresh_before_expiry" sh -c "man 5 freshd.toml 2>/dev/null | grep -q refresh_before_expiry"
check "man freshd-status finds the command's page" sh -c "man freshd-status 2>/dev/null | grep -q -- --json"
# (_completion_loader returns 124, "completion loaded, try again", on success.)
check "bash completion loads and completes subcommands" bash -c \
  'source /usr/share/bash-completion/bash_completion; _completion_loader freshd; complete -p freshd | grep -q _freshd && COMP_WORDS=(freshd sta) COMP_CWORD=1 COMP_LINE="freshd sta" COMP_POINT=10 && _freshd freshd sta freshd && test "${COMPREPLY[*]}" = status'

# ---------------------------------------------------------------- system unit
mkdir -p /etc/freshd/credentials
admin "issue?user=spotify" | systemd-creds encrypt --name=spotify.refresh_token - \
  /etc/freshd/credentials/spotify.refresh_token.cred
check "systemd-creds encrypt made the credential" test -s /etc/freshd/credentials/spotify.refresh_token.cred
write_config
mkdir -p /etc/systemd/system/freshd.service.d
printf '[Service]\nWatchdogSec=3s\n' >/etc/systemd/system/freshd.service.d/watchdog.conf
systemctl daemon-reload

check "systemctl start reaches active (Type=notify)" systemctl start freshd
frag=$(show FragmentPath)
check "it runs the package's unit ($frag)" test "$frag" = /lib/systemd/system/freshd.service -o "$frag" = /usr/lib/systemd/system/freshd.service
check "the unit is active" systemctl is-active --quiet freshd
status=$(show StatusText)
check "StatusText is meaningful: '$status'" grep -q "1/1 accounts ok, 2 jobs" <<<"$status"

sleep 8
check "the watchdog (3 s) is fed: still active, no restart" test "$(show NRestarts)" = 0 -a "$(show ActiveState)" = active
check "WatchdogTimestamp is set" test -n "$(show WatchdogTimestamp)"

check "systemctl reload works (ExecReload=freshd reload)" systemctl reload freshd
check "active after the reload" systemctl is-active --quiet freshd
check "the journal has the reload" sh -c "journalctl -u freshd -o cat | grep -q 'reload done'"

check "journalctl -u freshd JOB=tick finds the job's lines" sh -c "journalctl -u freshd JOB=tick -o cat | grep -q 'tick for spotify'"
check "journalctl -u freshd ACCOUNT=spotify finds the refreshes" sh -c "journalctl -u freshd ACCOUNT=spotify -o cat | grep -q 'access token refreshed'"
check "refreshes are logged at info priority or above, not as warnings" sh -c \
  "journalctl -u freshd ACCOUNT=spotify -p info -o cat | grep -q 'access token refreshed' && ! journalctl -u freshd ACCOUNT=spotify -p warning -o cat | grep -q 'access token refreshed'"
check "nothing at error priority while all is well" sh -c "test -z \"\$(journalctl -u freshd -p err -o cat)\""
check "freshd status (as root) reaches the socket, exit 0" sh -c "freshd status --config /etc/freshd/config.toml | grep -q 'spotify.*ok'"
check "freshd status has the header" sh -c "freshd status --config /etc/freshd/config.toml | head -n1 | grep -q '^freshd .* (pid [0-9]*), running since '"

# A bad config: systemctl reload fails, says why, and the old config runs on.
cp /etc/freshd/config.toml /root/good.toml
echo 'reload_breaker = 1' >>/etc/freshd/config.toml
check "systemctl reload fails with a bad config" sh -c "! systemctl reload freshd 2>/root/reload.err"
check "systemctl reload says to look at systemctl status" grep -q "systemctl status" /root/reload.err
systemctl status freshd --no-pager -l -n 30 >/root/status.txt 2>&1
check "systemctl status shows that the reload was refused" grep -q 'reload refused' /root/status.txt
check "and why" grep -q 'unknown key .reload_breaker.' /root/status.txt
tail -n 6 /root/status.txt | sed 's/^/   | /' >>"$out"
check "still active after the refused reload" systemctl is-active --quiet freshd
check "no restart for a refused reload (NRestarts $(show NRestarts))" test "$(show NRestarts)" = 0
cp /root/good.toml /etc/freshd/config.toml
check "systemctl reload works again with the config mended" systemctl reload freshd

check "a rotated refresh token landed in the StateDirectory" test -s /var/lib/private/freshd/spotify.refresh_token
mode=$(stat -c %a /var/lib/private/freshd/spotify.refresh_token)
check "it is mode 600 (was $mode)" test "$mode" = 600
rotated=$(cat /var/lib/private/freshd/spotify.refresh_token)

start=$(date +%s%N)
systemctl stop freshd
elapsed=$((($(date +%s%N) - start) / 1000000))
check "systemctl stop takes under 5 s (${elapsed} ms)" test "$elapsed" -lt 5000
check "stop result is success" test "$(show Result)" = success

check "a restart after rotations is ok" systemctl start freshd
check "StatusText after the restart is ok: '$(show StatusText)'" grep -q "1/1 accounts ok" <<<"$(show StatusText)"
check "the restart used the rotated token (it rotated again)" test "$(cat /var/lib/private/freshd/spotify.refresh_token)" != "$rotated"
systemctl stop freshd

# A bad config: exit 78, and no restart loop.
echo 'unknown_key = 1' >>/etc/freshd/config.toml
systemctl start freshd 2>/dev/null
check "a bad config fails the start" test "$(show ActiveState)" != active
check "with status 78 (was $(show ExecMainStatus))" test "$(show ExecMainStatus)" = 78
sleep 12
check "and no restart loop (NRestarts $(show NRestarts))" test "$(show NRestarts)" = 0
check "the journal says what is wrong" sh -c "journalctl -u freshd -o cat | grep -q 'unknown key .unknown_key.'"
write_config
systemctl reset-failed freshd

# A revoked refresh token: the unit stays up, the account needs a login.
admin "revoke?user=spotify" >/dev/null
systemctl start freshd
check "with a revoked token the unit still starts" systemctl is-active --quiet freshd
check "StatusText shows needs_login: '$(show StatusText)'" grep -q "spotify: needs_login" <<<"$(show StatusText)"
check "freshd status shows needs_login" sh -c "freshd status --config /etc/freshd/config.toml | grep -q needs_login"
freshd status --config /etc/freshd/config.toml >/dev/null
code=$?
check "freshd status exits 3 when an account needs a login (was $code)" test "$code" = 3
check "the journal tells to log in, at error priority" sh -c "journalctl -u freshd -p err -o cat | grep -q 'run .freshd login spotify.'"
sleep 3
check "still active" systemctl is-active --quiet freshd
systemctl stop freshd

# ------------------------------------------------------------------ user unit
useradd -m -s /bin/bash tester
uid=$(id -u tester)
loginctl enable-linger tester
for _ in $(seq 100); do [ -S "/run/user/$uid/bus" ] && break; sleep 0.2; done
check "the lingering user's D-Bus is up" test -S "/run/user/$uid/bus"
as() {
  runuser -u tester -- env XDG_RUNTIME_DIR="/run/user/$uid" \
    DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$uid/bus" "$@"
}
as sh -c 'printf user-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1'
first=$(admin "issue?user=spotify")
printf '%s' "$first" | as secret-tool store --label='freshd spotify refresh token' service freshd username spotify/refresh_token
check "secret-tool stored the refresh token" sh -c "test -n \"\$(runuser -u tester -- env DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$uid/bus secret-tool lookup service freshd username spotify/refresh_token)\""
home=/home/tester
as mkdir -p "$home/.config/freshd"
sed -e 's/secrets = "credentials"/secrets = "keyring"/' /etc/freshd/config.toml | as tee "$home/.config/freshd/config.toml" >/dev/null
check "systemctl --user start reaches active" as systemctl --user start freshd
ufrag=$(as systemctl --user show -p FragmentPath --value freshd)
check "it runs the package's user unit ($ufrag)" test "$ufrag" = /usr/lib/systemd/user/freshd.service
ustatus=$(as systemctl --user show -p StatusText --value freshd)
check "the user unit's StatusText: '$ustatus'" grep -q "1/1 accounts ok" <<<"$ustatus"
check "systemctl --user reload works" as systemctl --user reload freshd
check "active after the reload" as systemctl --user is-active --quiet freshd
utoken=$(as freshd token spotify)
check "freshd token works for the user" grep -q '^at-spotify-' <<<"$utoken"
now=$(as secret-tool lookup service freshd username spotify/refresh_token)
check "the rotated refresh token went back into the keyring" test -n "$now" -a "$now" != "$first"
ujournal=$(as journalctl --user -u freshd JOB=tick -o cat 2>&1)
check "journalctl --user -u freshd JOB=tick (as the user) finds the job's lines" grep -q 'tick for spotify' <<<"$ujournal"
check "systemctl --user stop works" as systemctl --user stop freshd
check "the user unit's stop result is success" test "$(as systemctl --user show -p Result --value freshd)" = success

# A locked keyring: exit 78 and a line that says how to unlock it.
as dbus-send --session --dest=org.freedesktop.secrets --print-reply /org/freedesktop/secrets \
  org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >/dev/null
as systemctl --user start freshd 2>/dev/null
check "with the keyring locked the user unit fails" test "$(as systemctl --user show -p ActiveState --value freshd)" != active
check "with status 78 ($(as systemctl --user show -p ExecMainStatus --value freshd))" test "$(as systemctl --user show -p ExecMainStatus --value freshd)" = 78
ujournal=$(as journalctl --user -u freshd -p err -o cat 2>&1)
check "the user's journal says, at error priority, how to unlock it" grep -q 'gnome-keyring-daemon --replace --unlock' <<<"$ujournal"

# ------------------------------------------------------------------ removal
rm -rf /etc/systemd/system/freshd.service.d
check "apt remove freshd takes the binary and both units away" sh -c \
  "DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq freshd >/root/apt-remove.log 2>&1 && test ! -e /usr/bin/freshd -a ! -e /lib/systemd/system/freshd.service -a ! -e /usr/lib/systemd/user/freshd.service"
check "and systemd no longer finds the system unit" sh -c "! systemctl cat freshd >/dev/null 2>&1"

echo done >>"$out"

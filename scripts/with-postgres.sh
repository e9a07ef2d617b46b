#!/usr/bin/env bash
# Runs CMD... against a throwaway PostgreSQL server, for the PostgreSQL
# driver's tests and benchmarks:
#
#   scripts/with-postgres.sh cargo test --all-features
#
# It starts PostgreSQL (15 preferred) from the machine's binaries (installing
# the Debian package where none is found), in a fresh temporary directory,
# listening only on a Unix socket there, and exports:
#
#   LOGSTORE_PG_URL  a connection URL for the server's `postgres` database
#   LOGSTORE_PG_CTL  a command taking `stop` or `start`, so a test can take
#                    the server down and bring it back (the restart test)
#
# The server is stopped and its directory removed when CMD ends, also when
# CMD fails or the script is interrupted; the script exits with CMD's status.
#
# The server runs with fsync=off, so tests are fast; a crash of the machine
# would lose its data, which is thrown away anyway. Benchmarks set
# LOGSTORE_PG_FSYNC=on to run it as a production server would (fsync=on,
# synchronous_commit=on), so figures compare fairly with Durability::Sync.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: scripts/with-postgres.sh CMD [ARGS...]" >&2
    exit 2
fi

find_bindir() {
    local dir
    for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

bindir="${LOGSTORE_PG_BINDIR:-}"
if [ -z "$bindir" ]; then
    if ! bindir="$(find_bindir)"; then
        echo "with-postgres: no PostgreSQL binaries found; installing the postgresql package" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
        bindir="$(find_bindir)"
    fi
fi

# initdb refuses to run as root: as root, the server runs as `postgres`.
as_server=()
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    fi
    as_server=(runuser -u postgres --)
fi

root="$(mktemp -d "${TMPDIR:-/tmp}/logstore-pg.XXXXXX")"
chmod 755 "$root"
if [ "${#as_server[@]}" -gt 0 ]; then
    chown postgres "$root"
fi
data="$root/data"
log="$root/server.log"

fsync="${LOGSTORE_PG_FSYNC:-off}"
case "$fsync" in
    on) durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on" ;;
    off) durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off" ;;
    *) echo "with-postgres: LOGSTORE_PG_FSYNC must be on or off, got $fsync" >&2; exit 2 ;;
esac
server_opts="-c listen_addresses='' -c unix_socket_directories=$root -c max_connections=400 $durability"

stop_server() {
    "${as_server[@]}" "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

cleanup() {
    stop_server
    rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"${as_server[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust --no-sync \
    --encoding=UTF8 --locale=C >"$root/initdb.log" 2>&1 || {
    cat "$root/initdb.log" >&2
    exit 1
}

# The control command the restart test uses; it runs pg_ctl as the server's
# user with the same options, so a start brings back the same server.
ctl="$root/ctl.sh"
cat >"$ctl" <<CTL
#!/usr/bin/env bash
set -euo pipefail
case "\${1:-}" in
    stop) exec ${as_server[*]} "$bindir/pg_ctl" -D "$data" -m fast -w stop ;;
    start) exec ${as_server[*]} "$bindir/pg_ctl" -D "$data" -l "$log" -o "$server_opts" -w start ;;
    *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
CTL
chmod 755 "$ctl"

if ! "$ctl" start >/dev/null; then
    cat "$log" >&2
    exit 1
fi

# A Unix-socket host goes in the URL percent-encoded.
encoded_root="$(printf '%s' "$root" | sed 's|/|%2F|g')"
export LOGSTORE_PG_URL="postgresql://postgres@${encoded_root}/postgres"
export LOGSTORE_PG_CTL="$ctl"

set +e
"$@"
status=$?
set -e
exit "$status"

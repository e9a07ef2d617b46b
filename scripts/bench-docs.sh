#!/usr/bin/env bash
# Runs every benchmark once and writes its tables into BENCHMARKS.md and
# README.md, so that no figure in the docs is typed by hand and the two
# cannot disagree. Each table sits between marker lines
#
#   <!-- bench:NAME -->
#   (replaced by this script)
#   <!-- /bench:NAME -->
#
# and the blocks are:
#
#   rust-sync, rust-sync-floors, rust-sync-readers   logstore bench --markdown (Sync vs SQLite FULL)
#   rust-flush                 logstore bench --durability flush --markdown (Flush vs SQLite NORMAL)
#   pg-sync                    logstore bench --driver postgres --markdown, on a throwaway
#                              PostgreSQL (scripts/with-postgres.sh) run with fsync=on
#   rust-peers                 logstore-peers --markdown: native_db, redb and fjall, Sync and Flush
#   rust-peers-scale           the same at 1,000,000 documents, Flush
#   scale                      logstore bench --scale --markdown: 10k to 10M documents (about
#                              10 minutes, 5 GiB of memory and 15 GiB of disk at 10M)
#   migrate                    examples/migrate_profile.rs: logstore migrate, 200k documents, SQLite to log and back
#   node, node-floors          cd node && npm run bench -- --markdown (after npm run build)
#   node-peers                 the same run: logstore beside better-sqlite3 and lmdb-js
#   readme                     README's comparison, taken from node, rust-sync and rust-flush
#   readme-memory              README's memory ceiling, the sentence of the scale block
#   goals, node-goals          the goals against the blocks above
#   run                        the commit, date and machine of the run
#
# Then the charts in docs/charts/ are drawn from the spliced tables
# (charts/, `logstore-charts BENCHMARKS.md DIR`), so a chart and its table
# come from the same run.
#
# About 25 minutes on a 2-core machine. A marker that no block fills, or a
# table the charts cannot read, fails the script and leaves the docs and
# charts unchanged. Run it on a quiet machine:
# other work on the same cores and disk moves every figure.
set -euo pipefail
cd "$(dirname "$0")/.."

out="$(mktemp -d "${TMPDIR:-/tmp}/logstore-bench-docs.XXXXXX")"
trap 'rm -rf "$out"' EXIT
mkdir "$out/blocks"
started=$SECONDS

say() { echo "bench-docs: $*" >&2; }

# take_blocks FILE: each marked block of FILE into $out/blocks/NAME.md, markers left out.
take_blocks() {
    awk -v dir="$out/blocks" '
        /^<!-- bench:[a-z0-9-]+ -->$/ { file = dir "/" substr($0, 12, length($0) - 15) ".md"; printf "" > file; next }
        /^<!-- \/bench:[a-z0-9-]+ -->$/ { close(file); file = ""; next }
        file != "" { print > file }' "$1"
}

# block NAME: standard input, framed by blank lines, as the block NAME.
block() {
    { echo; cat; echo; } > "$out/blocks/$1.md"
}

say "load: $(cut -d' ' -f1-3 /proc/loadavg)"
say "building"
cargo build --release --quiet -p logstore-cli
cargo build --release --quiet --features sqlite --example migrate_profile
cargo build --release --quiet -p logstore-peers
cargo build --release --quiet -p logstore-charts

say "logstore bench, Sync"
cargo run --release --quiet -- bench --markdown > "$out/rust-sync.md"
say "logstore bench, Flush"
cargo run --release --quiet -- bench --durability flush --markdown > "$out/rust-flush.md"
say "logstore bench against PostgreSQL"
# shellcheck disable=SC2016 # expanded by the inner shell, where with-postgres.sh sets it
LOGSTORE_PG_FSYNC=on scripts/with-postgres.sh \
    sh -c 'cargo run --release --quiet -- bench --driver postgres --url "$LOGSTORE_PG_URL" --markdown' \
    > "$out/pg.md"
say "logstore against native_db, redb and fjall"
cargo run --release --quiet -p logstore-peers -- --markdown > "$out/peers.md"
say "logstore against redb and fjall, 1,000,000 documents"
cargo run --release --quiet -p logstore-peers -- --docs 1000000 --durability flush \
    --markdown --block rust-peers-scale > "$out/peers-scale.md"
say "logstore bench --scale: 10k to 10M documents"
cargo run --release --quiet -- bench --scale --markdown > "$out/scale.md"
for f in rust-sync rust-flush pg peers peers-scale scale; do take_blocks "$out/$f.md"; done

say "logstore migrate, 200,000 documents"
cargo run --release --quiet --features sqlite --example migrate_profile -- 200000 | block migrate

say "the Node.js benchmark"
(
    cd node
    [ -d node_modules ] || npm ci --no-audit --no-fund >&2
    npm run --silent build >&2
    npm run --silent bench -- --markdown
) > "$out/node.md"
take_blocks "$out/node.md"

b="$out/blocks"
: > "$out/missing"

# cell BLOCK OPERATION COLUMN: the cell in COLUMN (1 is the operation) of
# the row of BLOCK's table that names OPERATION.
cell() {
    if [ ! -f "$b/$1.md" ]; then
        echo "$1: the block" >> "$out/missing"
        echo "?"
        return
    fi
    awk -F'|' -v op="$2" -v col="$3" '
        function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
        trim($2) == op { print trim($(col + 1)); found = 1; exit }
        END { if (!found) print "?" }' "$b/$1.md" | {
        read -r text
        [ "$text" != "?" ] || echo "$1: $2" >> "$out/missing"
        echo "$text"
    }
}

# num TEXT: the number in a cell ("2.9x", "81%", "241.3 ms").
num() { printf '%s' "$1" | sed 's/[^0-9.]//g'; }

# millis TEXT: a time cell ("241.3 ms", "12.3 s") in milliseconds; "?" for
# any other unit.
millis() {
    printf '%s\n' "$1" | awk '{ v = $1 + 0 } $2 == "s" { v *= 1000 } $2 != "s" && $2 != "ms" { v = "?" } { print v }'
}

# at_least VALUE GOAL: "met" or "missed".
at_least() { awk -v v="$1" -v g="$2" 'BEGIN { print (v + 0 >= g + 0) ? "met" : "missed" }'; }

# under VALUE GOAL: "met" when VALUE is below GOAL, else "missed".
under() { awk -v v="$1" -v g="$2" 'BEGIN { print (v + 0 < g + 0) ? "met" : "missed" }'; }

# over A B: A / B as a ratio, "12.3x".
over() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }

# lowest BLOCK COLUMN OPERATION...: "operation: ratio" of the row whose
# COLUMN is lowest among OPERATION...
lowest() {
    local blk=$1 col=$2 best="" best_op="" op v
    shift 2
    for op in "$@"; do
        v=$(cell "$blk" "$op" "$col")
        # Strictly lower: of rows equal as printed, the first listed stays.
        if [ -z "$best" ] || [ "$(at_least "$(num "$v")" "$(num "$best")")" = missed ]; then
            best=$v best_op=$op
        fi
    done
    echo "$best_op: $best"
}

say "README's table"
readme_row() { # LABEL NODE_OPERATION RUST_OPERATION
    printf '| %s | %s | %s | %s | %s |\n' "$1" \
        "$(cell node "$2" 6)" "$(cell node "$2" 7)" "$(cell rust-sync "$3" 4)" "$(cell rust-flush "$3" 4)"
}
{
    echo "| operation | Node.js, \`sync\` | Node.js, \`flush\` | Rust, \`Sync\` | Rust, \`Flush\` |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    readme_row "put (new)" "put (new)" "put (new)"
    readme_row "get by id" "get by id" "get by id"
    readme_row "query, 1 filter, limit 20" "query, 1 filter, limit 20" "query, 1 filter, limit 20"
    readme_row "count, 1 filter" "count, 1 filter" "count, 1 filter"
    readme_row "put (new), 8 concurrent writers" "put (new), 8 concurrent writers" "put (new), 8 threads"
    readme_row "blob get, 4 KiB" "blob get, 4 KiB" "blob get, 4 KiB"
    readme_row "blob get, 1 MiB" "blob get, 1 MiB" "blob get, 1 MiB"
    readme_row "open" "open (opens per second)" "open (opens per second)"
} | block readme

if ! grep '^The index lives in memory' "$b/scale.md" > "$out/ceiling"; then
    echo "scale: the memory ceiling" >> "$out/missing"
fi
block readme-memory < "$out/ceiling"

say "goals"
goal() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4"; }
{
    echo "| figure | goal | measured | result |"
    echo "| --- | --- | --- | --- |"
    v=$(cell rust-sync "get by id" 4)
    goal "get by id, parsed" "at least 5x" "$v" "$(at_least "$(num "$v")" 5)"
    v=$(over "$(cell rust-sync "get by id, raw JSON text" 2)" "$(cell rust-sync "get by id" 3)")
    goal "get by id, log raw / SQLite parsed" "at least 10x" "$v" "$(at_least "$(num "$v")" 10)"
    v=$(over "$(cell rust-sync "query, 1 filter, limit 20, raw JSON text" 2)" "$(cell rust-sync "query, 1 filter, limit 20" 3)")
    goal "query, 1 filter, limit 20, log raw / SQLite parsed" "at least 20x" "$v" "$(at_least "$(num "$v")" 20)"
    v=$(cell rust-sync "blob get, 4 KiB" 4)
    goal "blob get, 4 KiB" "at least 1.5x" "$v" "$(at_least "$(num "$v")" 1.5)"
    v=$(cell rust-sync "blob get, 1 MiB" 4)
    goal "blob get, 1 MiB" "at least 1.5x" "$v" "$(at_least "$(num "$v")" 1.5)"
    v=$(cell rust-flush "put (new)" 4)
    goal "put (new), \`Flush\`" "at least 20x" "$v" "$(at_least "$(num "$v")" 20)"
    v=$(cell rust-sync-floors "put (new), 1 thread vs write + fdatasync, 1 writer" 4)
    goal "put (new), \`Sync\`, 1 writer" "90% of the write + fdatasync floor" "$v" "$(at_least "$(num "$v")" 90)"
    v=$(cell rust-sync "put (new), 8 threads" 4)
    f=$(cell rust-sync-floors "put (new), 8 threads vs writes + one fdatasync per batch, 8 writers" 4)
    m=$(at_least "$(num "$v")" 8)
    [ "$m" = met ] || m=$(at_least "$(num "$f")" 90)
    goal "put (new), \`Sync\`, 8 writers" "8x, or 90% of the batched floor" "$v, $f" "$m"
    v=$(cell rust-sync "open (opens per second)" 4)
    goal "open, the bench's store" "at least 0.25x" "$v" "$(at_least "$(num "$v")" 0.25)"
    v=$(cell scale 1000000 8)
    # `bench --scale` prints 10 s and more in seconds.
    ms=$(millis "$v")
    [ "$ms" != "?" ] || echo "scale: 1000000 documents, open from snapshot in ms or s" >> "$out/missing"
    goal "open 1M documents from the snapshot" "under 350 ms" "$v" "$(under "$ms" 350)"
} | block goals
{
    echo "| figure | goal | measured | result |"
    echo "| --- | --- | --- | --- |"
    v=$(cell node "get by id" 6)
    goal "get by id, \`sync\`" "at least 10x" "$v" "$(at_least "$(num "$v")" 10)"
    v=$(cell node "query, 1 filter, limit 20" 6)
    goal "query, 1 filter, limit 20, \`sync\`" "at least 10x" "$v" "$(at_least "$(num "$v")" 10)"
    low=$(lowest node 7 "load 10000 documents (puts)" "put (new)")
    goal "load and put (new), \`flush\`" "at least 20x" "lowest: ${low}" "$(at_least "$(num "${low##* }")" 20)"
    low=$(lowest node 6 "put (new)" "upsert" "CAS put (get + put)" "patch" "delete")
    goal "put, upsert, CAS, patch, delete, \`sync\`" "at least 1.5x" "lowest: ${low}" "$(at_least "$(num "${low##* }")" 1.5)"
    v=$(cell node "lease acquire + release" 6)
    goal "lease acquire + release, \`sync\`" "at least 1.5x" "$v" "$(at_least "$(num "$v")" 1.5)"
    v=$(cell node "put (new), 8 concurrent writers" 6)
    goal "put (new), 8 concurrent writers, \`sync\`" "at least 10x" "$v" "$(at_least "$(num "$v")" 10)"
    low=$(lowest node 6 "blob put, 4 KiB" "blob put, 1 MiB")
    goal "blob put, 4 KiB and 1 MiB, \`sync\`" "at least 1x" "lowest: ${low}" "$(at_least "$(num "${low##* }")" 1)"
} | block node-goals

if [ -s "$out/missing" ]; then
    say "rows missing from the benchmarks' tables:"
    cat "$out/missing" >&2
    exit 1
fi

commit="$(git rev-parse --short HEAD)"
git diff --quiet HEAD -- . ':!*.md' || commit="$commit with uncommitted changes"
cpu="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
mem="$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
printf 'Generated by `scripts/bench-docs.sh` on %s from commit %s: %s cores (%s), %s, %s.\n' \
    "$(date -u +%Y-%m-%d)" "$commit" "$(nproc)" "$cpu" "$mem" "$(uname -sr)" | block run

# Every marked block of FILE replaced, into FILE.new; fails on a block
# this run did not produce.
splice() {
    awk -v dir="$b" '
        /^<!-- bench:[a-z0-9-]+ -->$/ {
            print
            name = substr($0, 12, length($0) - 15)
            file = dir "/" name ".md"
            if ((getline line < file) <= 0) { print "bench-docs: no table for " name > "/dev/stderr"; bad = 1 }
            else { print line; while ((getline line < file) > 0) print line }
            close(file)
            skipping = 1
            next
        }
        skipping && $0 == "<!-- /bench:" name " -->" { skipping = 0; print; next }
        skipping { next }
        { print }
        END {
            if (skipping) { print "bench-docs: no end marker for " name > "/dev/stderr"; bad = 1 }
            exit bad
        }' "$1" > "$1.new"
}
status=0
for doc in BENCHMARKS.md README.md; do splice "$doc" || status=1; done
# The charts of the spliced tables, drawn before either file is replaced.
if [ "$status" -eq 0 ]; then
    say "charts"
    cargo run --release --quiet -p logstore-charts -- BENCHMARKS.md.new "$out/charts" || status=1
fi
if [ "$status" -ne 0 ]; then
    rm -f BENCHMARKS.md.new README.md.new
    exit 1
fi
mv BENCHMARKS.md.new BENCHMARKS.md
mv README.md.new README.md
mkdir -p docs/charts
cp "$out"/charts/*.svg docs/charts/
say "done in $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"

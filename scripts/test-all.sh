#!/usr/bin/env bash
# Every test of the project, on a fresh machine: the Rust suite (all
# features), the smoke of the Rust peers' benchmark (`peers/`) and the
# charts' tests (`charts/`), workspace members outside the default ones, so
# plain `cargo test` skips them, then
# the Node.js driver's build, lints and tests, all against one throwaway
# PostgreSQL server this script starts and stops (the Node contract and
# differential tests run on it too). Servers and npm packages
# come from the registries; nothing is assumed installed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/with-postgres.sh bash -c 'cargo test --all-features && cargo test -p logstore-peers && cargo test -p logstore-charts && scripts/test-node.sh'

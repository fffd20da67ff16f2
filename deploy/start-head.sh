#!/usr/bin/env bash
# The head machine: the Dagster daemon (sensor, backfills, run queue, retries, monitoring) and the
# webserver (the UI, on http://${HOST:-127.0.0.1}:${PORT:-3000}). The UI can launch and delete
# runs and has no login: it listens on this machine only unless HOST says otherwise; put it behind
# the lab's authentication with a reverse proxy (docs/cluster.md) rather than HOST=0.0.0.0.
# The runs it launches send their steps to the Celery workers through MINISCOPE_CELERY_BROKER.
# Needs the environment of deploy/env.example (ENV_FILE names a file of it to read first),
# Postgres and Redis running, and $DAGSTER_HOME/dagster.yaml (a copy of deploy/dagster.yaml).
# Stops both when either stops or on Ctrl-C / SIGTERM.
set -euo pipefail
# shellcheck source=deploy/load-env.sh
. "$(dirname "$0")/load-env.sh"
: "${DAGSTER_HOME:?set DAGSTER_HOME (see deploy/env.example)}"
test -f "$DAGSTER_HOME/dagster.yaml" || {
    echo "start-head.sh: no $DAGSTER_HOME/dagster.yaml (cp deploy/dagster.yaml there)" >&2
    exit 2
}
workspace="$(dirname "$0")/workspace.yaml"
dagster-daemon run -w "$workspace" &
daemon=$!
dagster-webserver -w "$workspace" -h "${HOST:-127.0.0.1}" -p "${PORT:-3000}" &
webserver=$!
trap 'kill "$daemon" "$webserver" 2>/dev/null || true' EXIT INT TERM
wait -n "$daemon" "$webserver"

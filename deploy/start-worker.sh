#!/usr/bin/env bash
# One Celery worker of the conversion runs on this machine:
#     deploy/start-worker.sh [SLOTS [NAME]]
# SLOTS steps at once (default 1: a heavy step uses every core itself); NAME (default
# "miniscope") becomes NAME@<host> in the run's event log, unique per machine. Needs the
# environment of deploy/env.example (the same settings as the head; ENV_FILE names a file of it
# to read first) and the package installed with the cluster extra. The worker reads its settings
# from the environment into memory: no file holds the broker's password, whatever kills it.
# Ctrl-C or SIGTERM stops it once its running step is done (Celery's warm shutdown); a worker that
# dies instead has that step run by another after MINISCOPE_CELERY_REQUEUE_SECONDS.
set -euo pipefail
# shellcheck source=deploy/load-env.sh
. "$(dirname "$0")/load-env.sh"
: "${DAGSTER_HOME:?set DAGSTER_HOME (see deploy/env.example)}"
exec python -m miniscope_assets.executor worker --slots "${1:-1}" --name "${2:-miniscope}"

#!/usr/bin/env bash
# One Celery worker of the conversion runs on this machine:
#     deploy/start-worker.sh [SLOTS [NAME]]
# SLOTS steps at once (default 1: a heavy step uses every core itself); NAME (default
# "miniscope") becomes NAME@<host> in the run's event log, unique per machine. Needs the
# environment of deploy/env.example (the same settings as the head) and the package installed
# with the cluster extra. Ctrl-C stops it once its running step is done (Celery's warm shutdown);
# a worker that dies instead has that step run by another after MINISCOPE_CELERY_REQUEUE_SECONDS.
set -euo pipefail
: "${DAGSTER_HOME:?set DAGSTER_HOME (see deploy/env.example)}"
slots="${1:-1}"
name="${2:-miniscope}"
config="$(mktemp --suffix=.yaml)"
trap 'rm -f "$config"' EXIT
python -m miniscope_assets.executor >"$config"
dagster-celery worker start -A dagster_celery.app -y "$config" -n "$name" -q dagster \
    -i miniscope_assets.definitions -- --concurrency "$slots"

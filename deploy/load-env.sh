# Sourced by the start scripts: if ENV_FILE is set, export every VAR=value line of that file (the
# lab's environment, deploy/env.example filled in), or stop with one line naming it.
if [[ -n "${ENV_FILE:-}" ]]; then
    if [[ ! -r "$ENV_FILE" ]]; then
        echo "$(basename "$0"): cannot read ENV_FILE=$ENV_FILE as $(id -un) on $(hostname):" \
            "it must exist there and be readable by this user (chgrp miniscope $ENV_FILE;" \
            "chmod 640 $ENV_FILE; the user in group miniscope)" >&2
        exit 2
    fi
    set -a
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    set +a
fi

#!/usr/bin/env bash
# One-command entry point of the OHIO stack.
#
#   ./run.sh demo [ARGS...]   run `ohio demo`
#   ./run.sh test [ARGS...]   run the test suite (extra arguments go to pytest)
#
# Both first create or update the virtual environment .venv in the repository root from
# requirements.lock (and install this project into it, editable).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
STAMP="$VENV/.ohio-stamp"
PYTHON="${PYTHON:-python3}"

# ROS 2 nodes started by tests or the demo stay on this machine and, by default, in a domain
# of their own, so that concurrent runs do not discover each other.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(($$ % 90 + 10))}"   # 10..99: inside ROS 2's safe range

usage() {
    cat <<'EOF'
usage: ./run.sh COMMAND [ARGS...]

commands:
  demo [ARGS...]   run `ohio demo` (arguments are passed on)
  test [ARGS...]   run the test suite with pytest (arguments are passed to pytest)

Each command first creates or updates .venv from requirements.lock.
EOF
}

log() {
    echo "[setup] $*"
}

# Hash of everything the venv is built from; stored in $STAMP after a successful install.
deps_hash() {
    cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1
}

ensure_venv() {
    local fresh=0
    if [[ ! -x "$VENV/bin/python" ]]; then
        if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "[setup] error: $PYTHON is not Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
            exit 1
        fi
        log "creating .venv with $("$PYTHON" --version 2>&1)"
        "$PYTHON" -m venv "$VENV"
        rm -f "$STAMP"
        fresh=1
    fi
    local want have=""
    want="$(deps_hash)"
    [[ -f "$STAMP" ]] && have="$(cat "$STAMP")"
    if [[ "$want" == "$have" ]]; then
        log ".venv is up to date"
        return 0
    fi
    if ((fresh)); then
        log "installing requirements.lock into .venv (about 2 min, 2.5 GB)"
    else
        log "updating .venv (requirements.lock or pyproject.toml changed since the last install)"
    fi
    # One pip command for the whole lock: torch is pinned there next to d3rlpy.
    "$VENV/bin/pip" install --quiet -r requirements.lock
    log "installing ohio-stack (editable)"
    "$VENV/bin/pip" install --quiet --no-deps -e .
    echo "$want" >"$STAMP"
    log "done"
}

# The test suite. Returns the first failing status (pytest's exit code for the pytest step).
run_tests() {
    .venv/bin/python -m pytest "$@"
}

cmd="${1:-}"
case "$cmd" in
    demo)
        shift
        ensure_venv
        exec "$VENV/bin/ohio" demo "$@"
        ;;
    test)
        shift
        ensure_venv
        # Under `set -e` a failing run_tests ends the script with its status.
        run_tests "$@"
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        usage >&2
        exit 2
        ;;
esac

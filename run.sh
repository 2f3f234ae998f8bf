#!/usr/bin/env bash
# One-command entry point of the OHIO stack.
#
#   ./run.sh demo [ARGS...]   run `ohio demo`
#   ./run.sh test [ARGS...]   run the test suite (extra arguments go to pytest), then build and
#                             test the colcon workspace ros2_ws (colcon build, colcon test,
#                             colcon test-result --verbose)
#
# Both first create or update the virtual environment .venv in the repository root from
# requirements.lock (and install this project and the ROS 2 package ohio_ros into it, editable).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
STAMP="$VENV/.ohio-stamp"
ROS_PKG="ros2_ws/src/ohio_ros"
# colcon's build, install and log folders (ignored by git)
COLCON_BASE="ros2_ws"
PYTHON="${PYTHON:-python3}"

# ROS 2 nodes started by tests or the demo stay on this machine and, unless ROS_DOMAIN_ID is set,
# in a domain ID (10..99, inside ROS 2's safe range) that this run holds with an exclusive lock
# until it exits, the same locks as ohio_core/ros_env.py, so concurrent runs never share a domain.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
claim_ros_domain() {
    local i d lock_dir="${TMPDIR:-/tmp}"
    for ((i = 0; i < 90; i++)); do
        d=$(( ($$ + i) % 90 + 10 ))
        exec {ROS_DOMAIN_LOCK_FD}>>"$lock_dir/ohio-ros-domain-$d.lock"
        if flock -n "$ROS_DOMAIN_LOCK_FD"; then
            export ROS_DOMAIN_ID=$d
            return 0
        fi
        exec {ROS_DOMAIN_LOCK_FD}>&-
    done
    echo "[setup] error: every ROS domain ID 10..99 is held by another run; set ROS_DOMAIN_ID" >&2
    exit 1
}
[[ -n "${ROS_DOMAIN_ID:-}" ]] || claim_ros_domain

usage() {
    cat <<'EOF'
usage: ./run.sh COMMAND [ARGS...]

commands:
  demo [ARGS...]   run `ohio demo` (arguments are passed on)
  test [ARGS...]   run the test suite with pytest (arguments are passed to pytest), then
                   colcon build, colcon test and colcon test-result --verbose in ros2_ws

Each command first creates or updates .venv from requirements.lock.
EOF
}

log() {
    echo "[setup] $*"
}

# Hash of everything the venv is built from; stored in $STAMP after a successful install.
deps_hash() {
    cat requirements.lock pyproject.toml "$ROS_PKG/setup.py" | sha256sum | cut -d' ' -f1
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
    log "installing ohio_ros (editable: its nodes as console scripts in .venv/bin)"
    "$VENV/bin/pip" install --quiet --no-deps -e "$ROS_PKG"
    echo "$want" >"$STAMP"
    log "done"
}

# colcon in the workspace ros2_ws, with the per-package settings of ./colcon.meta.
colcon_step() {
    "$VENV/bin/colcon" --log-base "$COLCON_BASE/log" "$@"
}

# The test suite: pytest, then colcon build, colcon test and colcon test-result --verbose.
# Every step runs; returns the first failing status (pytest's exit code for the pytest step).
# pytest's summary line is printed again at the very end.
run_tests() {
    local rc=0 step_rc out summary
    out="$(mktemp)"
    PYTHONUNBUFFERED=1 "$VENV/bin/python" -m pytest "$@" 2>&1 | tee "$out" || rc=$?
    summary="$(grep -v '^[[:space:]]*$' "$out" | tail -n 1 || true)"
    rm -f "$out"
    local paths=(--base-paths "$COLCON_BASE/src" --build-base "$COLCON_BASE/build"
                 --install-base "$COLCON_BASE/install")
    echo "[test] colcon build (ros2_ws)"
    step_rc=0
    colcon_step build "${paths[@]}" || step_rc=$?
    if ((step_rc == 0)); then
        echo "[test] colcon test (ros2_ws)"
        colcon_step test "${paths[@]}" --return-code-on-test-failure || step_rc=$?
        echo "[test] colcon test-result --verbose"
        colcon_step test-result --test-result-base "$COLCON_BASE/build" --verbose || step_rc=$?
    fi
    if ((step_rc != 0)); then
        echo "[test] colcon FAILED (exit code $step_rc)" >&2
        ((rc != 0)) || rc=$step_rc
    fi
    echo "$summary"
    return "$rc"
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
        rc=0
        run_tests "$@" || rc=$?
        exit "$rc"
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        usage >&2
        exit 2
        ;;
esac

#!/usr/bin/env bash
# loopgen: one command to set up and regenerate every table and figure, one to run the tests.
#
#   ./run_all.sh                     set up, then run every notebook at the demo profile (default; two side by
#                                    side on a machine with two or more cores, each after the notebooks it reads)
#   ./run_all.sh --profile smoke     the same at smoke scale (what the notebook test in CI runs)
#   ./run_all.sh --profile lmd-sample  a seeded sample of LMD-full, demo-sized models (laptop; see README)
#   ./run_all.sh --profile colab     the paper's models and batch on the demo corpus (a notebook GPU; see README)
#   ./run_all.sh --profile paper     the paper's settings (a GPU and LMD-full; see README)
#   ./run_all.sh --midi-dir PATH     every notebook on your own MIDI folder (demo profile unless --profile says
#                                    otherwise): its tables and figures go to figures/<corpus name>/
#   ./run_all.sh --tests             set up, then ruff + the whole pytest suite (what .ci/run calls)
#   ./run_all.sh --tests --fast      the quick tier: no notebooks, browsers, real MIDI, or tests that start processes
#   ./run_all.sh --setup             set up only
#   ./run_all.sh --lock              set up, then rewrite constraints.txt from the environment
#
# Set-up is idempotent: it creates .venv with python3 (3.10 to 3.13) if missing, installs the project when
# pyproject.toml or the constraints changed (constraints.txt; constraints-py3.10.txt on Python 3.10), installs the fluidsynth library (and, for --tests, Chromium)
# with apt when missing and running as root, registers the "loopgen" Jupyter kernel and nbdime's git drivers.
set -uo pipefail
cd "$(dirname "$0")"

PROFILE=demo
MODE=notebooks
FAST=0
MIDI_DIR=""
ONLY=()
PROFILES="smoke demo demo-long songs lmd-sample colab paper"  # keep in step with loopgen.run.profiles.PROFILES (a test checks)
usage_error() { echo "run_all.sh: error: $* (try --help)" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --profile)
      { [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#-}" = "$2" ]; } || usage_error "--profile needs a value: one of ${PROFILES// /, }"
      PROFILE="$2"; shift 2 ;;
    --profile=*) PROFILE="${1#*=}"; shift ;;
    --midi-dir)
      { [ $# -ge 2 ] && [ -n "$2" ]; } || usage_error "--midi-dir needs a folder of MIDI files"
      [ -d "$2" ] || usage_error "--midi-dir $2 is not a folder"
      MIDI_DIR="$2"; shift 2 ;;
    --tests) MODE=tests; shift ;;
    --fast) FAST=1; shift ;;
    --setup) MODE=setup; shift ;;
    --lock) MODE=lock; shift ;;
    --only)
      shift
      while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do
        [ -n "$1" ] || usage_error "--only takes notebook names, not an empty string"
        ONLY+=("$1"); shift
      done
      [ ${#ONLY[@]} -gt 0 ] || usage_error "--only needs at least one notebook name (e.g. --only 04 05)" ;;
    -h|--help) awk 'NR == 1 { next } /^#/ { print; next } { exit }' "$0"; exit 0 ;;
    *) usage_error "unknown option '$1'; options: --profile NAME, --midi-dir PATH, --only NAME..., --tests [--fast], --setup, --lock" ;;
  esac
done
[ "$FAST" = 0 ] || [ "$MODE" = tests ] || usage_error "--fast goes with --tests (the quick tier of the tests)"
case " $PROFILES " in
  *" $PROFILE "*) ;;
  *) usage_error "--profile must be one of ${PROFILES// /, } (got '$PROFILE')" ;;
esac

log() { printf '\033[1m[run_all]\033[0m %s\n' "$*"; }
PY=.venv/bin/python
TORCH_PIN="torch==2.13.0"

have_apt_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

SUPPORTED_PYTHONS="3.10 to 3.13"  # keep in step with README.md and pyproject.toml (a test checks)
GET_PYTHON="install one (e.g. 'pyenv install 3.11', 'apt-get install python3.11' or python.org) and put its python3 first on PATH"
# The pins pip installs for a Python X.Y: constraints-pyX.Y.txt when there is one (3.10: numpy, pandas, IPython,
# networkx ... need 3.11 in constraints.txt's versions), else constraints.txt.
constraints_for() {
  local version
  version=$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [ -f "constraints-py$version.txt" ]; then echo "constraints-py$version.txt"; else echo constraints.txt; fi
}

setup() {
  local start=$SECONDS
  if ! command -v python3 >/dev/null 2>&1; then echo "python3 is required: loopgen supports Python $SUPPORTED_PYTHONS; $GET_PYTHON" >&2; exit 1; fi
  python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || { echo "python3 is $(python3 --version 2>&1); loopgen supports Python $SUPPORTED_PYTHONS: $GET_PYTHON" >&2; exit 1; }
  log "$( [ -x "$PY" ] && "$PY" --version || python3 --version) (loopgen supports Python $SUPPORTED_PYTHONS)"
  python3 -c 'import sys; sys.exit(0 if sys.version_info < (3, 14) else 1)' \
    || log "python3 is $(python3 --version 2>&1), newer than loopgen was checked with ($SUPPORTED_PYTHONS): carrying on"
  if [ ! -x "$PY" ]; then
    log "creating .venv with $(python3 --version)"
    python3 -m venv .venv || { echo "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
  fi
  local stamp=.venv/.loopgen-install-stamp
  local want pins
  pins=$(constraints_for "$PY")
  want=$(cat pyproject.toml "$pins" 2>/dev/null | sha1sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing packages into .venv (first run: a few minutes)"
    "$PY" -m pip install -q --upgrade pip || exit 1
    # torch first, pinned: on these machines 2.13.0 is the CPU build; on a GPU machine, the CUDA build.
    "$PY" -m pip install -q "$TORCH_PIN" || exit 1
    local constraint=()
    [ -f "$pins" ] && constraint=(-c "$pins")
    "$PY" -m pip install -q "${constraint[@]}" -e ".[dev]" || exit 1
    echo "$want" > "$stamp"
  fi
  # The fluidsynth shared library (audio). Without it everything works except WAV rendering.
  if ! ldconfig -p 2>/dev/null | grep -q libfluidsynth; then
    if have_apt_root; then
      log "installing libfluidsynth3 with apt"
      apt_install libfluidsynth3 || log "apt could not install libfluidsynth3: carrying on without audio"
    else
      log "no fluidsynth library: audio is skipped. Install it with 'sudo apt-get install libfluidsynth3' (Debian/Ubuntu), 'brew install fluid-synth' (macOS) or 'conda install -c conda-forge fluidsynth'."
    fi
  fi
  # A named kernel inside .venv, so papermill runs the notebooks with this environment.
  if [ ! -f .venv/share/jupyter/kernels/loopgen/kernel.json ]; then
    "$PY" -m ipykernel install --sys-prefix --name loopgen --display-name "Python (loopgen)" >/dev/null || exit 1
  fi
  # nbdime: readable notebook diffs and merges in this repository, from any shell (the drivers by their full path in
  # .venv/bin, not by a name only an activated environment finds); and the clean filter that commits notebooks
  # without outputs (loopgen.run.notebook_filter), so saving a run notebook never breaks the tests.
  if [ -d .git ]; then
    local bin
    bin="$(printf '%q' "$(pwd)/.venv/bin")"  # quoted for git's shell: a clone path may hold spaces
    if [ "$(git config --get diff.jupyternotebook.command 2>/dev/null)" != "$bin/git-nbdiffdriver diff" ]; then
      if .venv/bin/nbdime config-git --enable >/dev/null 2>&1; then
        git config diff.jupyternotebook.command "$bin/git-nbdiffdriver diff"
        git config merge.jupyternotebook.driver "$bin/git-nbmergedriver merge %O %A %B %L %P"
        git config difftool.nbdime.cmd "$bin/git-nbdifftool diff \"\$LOCAL\" \"\$REMOTE\" \"\$BASE\""
        git config mergetool.nbdime.cmd "$bin/git-nbmergetool merge \"\$BASE\" \"\$LOCAL\" \"\$REMOTE\" \"\$MERGED\""
      else
        log "nbdime config-git failed (diffs fall back to JSON)"
      fi
    fi
    git config filter.loopgen-notebook.clean "$bin/python -m loopgen.run.notebook_filter"
    git config filter.loopgen-notebook.smudge cat
  fi
  log "environment ready ($((SECONDS - start)) s)"
}

setup_browser() {
  if [ ! -x /usr/bin/chromium ] && have_apt_root; then
    log "installing Debian chromium for the browser test"
    apt_install chromium || log "apt could not install chromium: the browser test will be skipped"
  fi
}

setup
case "$MODE" in
  setup) exit 0 ;;
  lock)
    pins=$(constraints_for "$PY")
    "$PY" -m pip freeze --exclude-editable | grep -viE '^(torch|nvidia-|triton|cuda-)' > "$pins"
    log "wrote $pins ($(wc -l < "$pins") packages; torch is pinned separately: $TORCH_PIN)"
    ;;
  tests)
    [ "$FAST" = 1 ] || setup_browser
    start=$SECONDS
    log "ruff check"
    .venv/bin/ruff check lib tests benchmarks || exit 1
    if [ "$FAST" = 1 ]; then
      log "pytest, fast tier (no notebooks, browsers, real MIDI, or tests that start processes)"
      LOOPGEN_FAST_TIER=1 .venv/bin/pytest -q -p no:cacheprovider -n auto -m "not (notebooks or browser or realmidi or slow)"
    else
      log "pytest"
      .venv/bin/pytest -q -p no:cacheprovider
    fi
    rc=$?
    log "tests finished in $((SECONDS - start)) s (exit $rc)"
    exit $rc
    ;;
  notebooks)
    start=$SECONDS
    log "running every notebook at profile '$PROFILE' into build/executed/$PROFILE"
    # Ctrl-C reaches the runner, which stops with one line and exit 130; this shell carries on to say so.
    trap ':' INT
    "$PY" -m loopgen run-notebooks --profile "$PROFILE" ${MIDI_DIR:+--midi-dir "$MIDI_DIR"} ${ONLY[@]+--only "${ONLY[@]}"}
    rc=$?
    trap - INT
    # One closing line: what failed or stopped and where the log is (loopgen.run.runner.outcome reads runs.json).
    outcome=$("$PY" -c 'import sys; from loopgen.run.runner import outcome_on; print(outcome_on(*sys.argv[1:]))' \
      "$PROFILE" "$rc" "$((SECONDS - start))" "$MIDI_DIR" 2>/dev/null) \
      || outcome="notebooks ended with exit $rc after $((SECONDS - start)) s; see the messages above"
    log "$outcome"
    exit $rc
    ;;
esac

#!/usr/bin/env bash
# Build the separate Python 3.10 virtualenv that runs Rasa 3.6.21, outside the clone, once.
#
# Rasa 3.6 needs Python < 3.11 and pins pydantic 1, so it can never share the project's virtualenv: it runs
# as its own process and we talk to it over HTTP. Idempotent: a stamp file makes a second run a no-op
# (about 3.5 minutes and 2.7 GB the first time).
#
#   FRONTDESK_RASA_HOME    where the virtualenv, generated projects and trained models live
#                          (default: ~/.cache/frontdesk/rasa-3.6.21)
#   FRONTDESK_RASA_PYTHON  a Python 3.10 interpreter to use instead of searching for one
#
# Prints the virtualenv's folder on the last line of its output.
set -euo pipefail

RASA_VERSION="3.6.21"   # always pinned: an unpinned `rasa` resolves to a 2020 release that fails to build
HOME_DIR="${FRONTDESK_RASA_HOME:-$HOME/.cache/frontdesk/rasa-$RASA_VERSION}"
VENV="$HOME_DIR/venv"
STAMP="$VENV/.frontdesk-rasa-$RASA_VERSION"

if [ -f "$STAMP" ] && [ -x "$VENV/bin/rasa" ]; then
  echo "Rasa $RASA_VERSION is ready in $VENV"
  echo "$VENV"
  exit 0
fi

is_py310() { [ -n "$1" ] && [ -x "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null; }

find_python() {
  local candidate
  if [ -n "${FRONTDESK_RASA_PYTHON:-}" ]; then
    is_py310 "$FRONTDESK_RASA_PYTHON" && { echo "$FRONTDESK_RASA_PYTHON"; return 0; }
    echo "FRONTDESK_RASA_PYTHON=$FRONTDESK_RASA_PYTHON is not a Python 3.10 interpreter" >&2
    return 1
  fi
  # pyenv: the measured 3.10.13 first, then any other 3.10.x it has.
  if command -v pyenv >/dev/null 2>&1; then
    local root
    root="$(pyenv root 2>/dev/null || true)"
    for candidate in "$root/versions/3.10.13/bin/python" "$root"/versions/3.10.*/bin/python; do
      is_py310 "$candidate" && { echo "$candidate"; return 0; }
    done
  fi
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}/versions/3.10.13/bin/python" \
                   "$(command -v python3.10 2>/dev/null || true)"; do
    is_py310 "$candidate" && { echo "$candidate"; return 0; }
  done
  echo "no Python 3.10 found: install it with 'pyenv install 3.10.13' or set FRONTDESK_RASA_PYTHON" >&2
  return 1
}

mkdir -p "$HOME_DIR"
# One installer at a time (CI and a developer, or two make targets, may start together).
exec 9>"$HOME_DIR/.setup.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if [ -f "$STAMP" ] && [ -x "$VENV/bin/rasa" ]; then   # another run finished while we waited
  echo "Rasa $RASA_VERSION is ready in $VENV"
  echo "$VENV"
  exit 0
fi

PY="$(find_python)"
echo "building the Rasa $RASA_VERSION virtualenv in $VENV with $PY ($("$PY" -V 2>&1))"
start=$(date +%s)
# No stamp means no finished install: start from scratch rather than trust a half-built virtualenv.
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet "rasa==$RASA_VERSION"
"$VENV/bin/python" -m pip check
installed="$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("rasa"))')"
if [ "$installed" != "$RASA_VERSION" ]; then
  echo "pip installed rasa $installed, not $RASA_VERSION" >&2
  exit 1
fi
echo "$RASA_VERSION installed $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - start )) s with $("$PY" -V 2>&1)" \
  > "$STAMP"
echo "Rasa $RASA_VERSION installed in $VENV in $(( $(date +%s) - start )) s"
echo "$VENV"

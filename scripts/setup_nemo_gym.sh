#!/usr/bin/env bash
# Build the separate NeMo Gym environment used by tests/nemo_gym: nemo-gym 0.7.0 and the extra
# requirements of the resources servers the tests start (mcqa, math_with_judge, gui_coordinate,
# asr_with_pc).
#
#   scripts/setup_nemo_gym.sh [VENV_DIR]      (default: .venv-gym, gitignored)
#
# Why a separate venv: nemo-gym installs top-level packages named `resources_servers`, `environments`
# and `benchmarks` (the last two would shadow this repository's `environments`), and pulls ray, mlflow,
# wandb, datasets, openai and fastapi at its own pins.
# Why --ignore-requires-python: nemo-gym >= 0.5.0 declares Requires-Python >= 3.13.14, which no Python
# on these machines satisfies; on Python 3.12 (pyenv, /root/.pyenv/versions/3.12*) it installs and its
# servers and their own tests run. See docs/nemo-gym.md.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-gym}"
NEMO_GYM_VERSION="0.7.0"
start=$(date +%s)

if [[ -n "${PYTHON:-}" ]]; then
  PY="$PYTHON"
else
  PY="$(ls -d /root/.pyenv/versions/3.12*/bin/python 2>/dev/null | sort -V | tail -1 || true)"
  [[ -n "$PY" ]] || PY="$(command -v python3.12 || true)"
fi
if [[ -z "$PY" ]] || ! "$PY" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
  echo "setup_nemo_gym: no Python 3.12 found (set PYTHON=/path/to/python3.12)" >&2
  exit 1
fi

# The machine's pip configuration adds local find-links / file:// indexes that do not hold these
# packages (and warn for each one); everything here comes from the registry.
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1

rm -rf "$VENV"
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --ignore-requires-python)

echo "setup_nemo_gym: nemo-gym==$NEMO_GYM_VERSION on $("$PY" --version)"
# + the test tools of its `dev` extra that the servers' own tests use
"${PIP[@]}" "nemo-gym==$NEMO_GYM_VERSION" pytest pytest-asyncio requests-mock defusedxml
site="$("$VENV/bin/python" -c 'import resources_servers; print(list(resources_servers.__path__)[0])')"
# the servers' own requirements files name nemo-gym itself (as a path or a pin) plus their extras
for server in mcqa math_with_judge gui_coordinate asr_with_pc; do
  req="$site/$server/requirements.txt"
  [[ -f "$req" ]] || continue
  extras="$(grep -vE '^\s*(#|$|-e|\.|nemo[-_]gym)' "$req" || true)"
  if [[ -n "$extras" ]]; then
    echo "setup_nemo_gym: $server needs: $(echo $extras)"
    mapfile -t extra_array <<<"$extras"
    "${PIP[@]}" "${extra_array[@]}"
  fi
done

"$VENV/bin/python" - <<'PYEOF'
from importlib.metadata import version
import resources_servers

print(f"setup_nemo_gym: nemo-gym {version('nemo-gym')} at {list(resources_servers.__path__)[0]}")
PYEOF
echo "setup_nemo_gym: done in $(( $(date +%s) - start ))s, $(du -sh "$VENV" | cut -f1) in $VENV"

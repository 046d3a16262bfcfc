#!/usr/bin/env bash
# Creates (or updates) the project's virtual environment; idempotent.
#
#   tools/setup_env.sh [VENV]      (default: .venv; PYTHON picks the interpreter, default python3)
#
# Steps, each skipped when already done:
#   1. the venv itself;
#   2. requirements.txt (skipped while its hash matches the last successful install);
#   3. detectron2: left alone when it already imports (e.g. built from git on a GPU machine);
#      otherwise built from PyPI's pb1-detectron2==0.6 sdist (detectron2 v0.6's Python code)
#      without the C++ extension, with a pure-Python placeholder installed as detectron2/_C.py;
#   4. this project, in editable mode.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-${VENV:-$root/.venv}}
python=${PYTHON:-python3}

log() { echo "[setup] $*"; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"
pip() { "$py" -m pip --disable-pip-version-check "$@"; }

stamp="$venv/.lv_adapter_requirements.sha256"
want=$(sha256sum "$root/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing requirements.txt (first run takes a few minutes)"
  pip install -q -r "$root/requirements.txt" 2> >(grep -v "is ignored: it is neither" >&2)
  echo "$want" > "$stamp"
else
  log "requirements.txt unchanged since the last install"
fi

if "$py" -c "import detectron2" 2>/dev/null; then
  log "detectron2 already importable: $("$py" -c 'import detectron2; print(detectron2.__version__, detectron2.__file__)')"
else
  log "building detectron2 0.6 from the pb1-detectron2 sdist, without C++ ops"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  pip download -q --no-deps --no-build-isolation --no-binary :all: pb1-detectron2==0.6 -d "$work" \
    2> >(grep -v "is ignored: it is neither" >&2)
  tar xzf "$work"/pb1-detectron2-0.6.tar.gz -C "$work"
  src="$work/pb1-detectron2-0.6"
  # No C++ sources ship in this sdist: build no extension at all.
  sed -i 's/ext_modules=get_extensions(),/ext_modules=[],/' "$src/setup.py"
  grep -q 'ext_modules=\[\],' "$src/setup.py" || { echo "setup.py of pb1-detectron2 changed: cannot disable its extension" >&2; exit 1; }
  # The placeholder must be inside detectron2 itself: users import detectron2 before lv_adapter.
  cp "$root/lv_adapter/_detectron2_c_placeholder.py" "$src/detectron2/_C.py"
  pip install -q --no-deps --no-build-isolation "$src" 2> >(grep -v "is ignored: it is neither" >&2)
fi

if ! (cd / && "$py" -c "import lv_adapter") 2>/dev/null; then
  log "installing lv_adapter in editable mode"
  pip install -q --no-deps --no-build-isolation -e "$root" 2> >(grep -v "is ignored: it is neither" >&2)
fi
"$py" -W ignore -c "import detectron2, lv_adapter, torch; print('[setup] ready: torch', torch.__version__, '| detectron2', detectron2.__version__)"

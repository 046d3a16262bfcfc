#!/usr/bin/env bash
# Creates (or updates) the project's virtual environment; idempotent.
#
#   tools/setup_env.sh [VENV]      (default: .venv; PYTHON picks the interpreter, default python3)
#   D2_SOURCE=path/to/detectron2.tar.gz tools/setup_env.sh .venv-d2main
#                                  (detectron2 from that source instead of 0.6; a tarball or a
#                                  folder of detectron2's repository, e.g. its main branch)
#   D2_SOURCE=... D2_TARGET=.d2main tools/setup_env.sh .venv
#                                  (the venv keeps 0.6; the other detectron2 goes into the folder
#                                  D2_TARGET alone, used by putting it first on PYTHONPATH. A few
#                                  MB instead of a second ~6 GB venv: `make test-d2main` and CI)
#
# Steps, each skipped when already done:
#   1. the venv itself;
#   2. requirements.txt (skipped while its hash matches the last successful install);
#   3. detectron2, built without the C++ extension, with a pure-Python placeholder installed as
#      detectron2/_C.py (into D2_TARGET too when it is set). Without D2_SOURCE: left alone when it already imports (e.g. built from
#      git on a GPU machine), otherwise built from PyPI's pb1-detectron2==0.6 sdist (detectron2
#      v0.6's Python code). With D2_SOURCE: built from that source unless the venv already holds
#      a build of the same source (same sha256);
#   4. a placeholder installed by an older version of this script is replaced by the current one;
#   5. this project, in editable mode.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-${VENV:-$root/.venv}}
python=${PYTHON:-python3}

log() { echo "[setup] $*"; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
venv=$(cd "$venv" && pwd)  # absolute: some checks below run from another folder
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

# Builds and installs the detectron2 source folder $1 without its C++ extension, into the venv
# or, when $2 is given, into that folder alone.
install_detectron2_without_ext() {
  local src=$1
  # No C++ sources ship in the 0.6 sdist, and the main branch's need a compiler and CUDA:
  # build no extension at all.
  sed -i 's/ext_modules=get_extensions(),/ext_modules=[],/' "$src/setup.py"
  grep -q 'ext_modules=\[\],' "$src/setup.py" || { echo "$src/setup.py changed: cannot disable its extension" >&2; exit 1; }
  # The placeholder must be inside detectron2 itself: users import detectron2 before lv_adapter.
  cp "$root/lv_adapter/_detectron2_c_placeholder.py" "$src/detectron2/_C.py"
  # --no-deps: requirements.txt holds what detectron2 needs (0.6 pins an old black).
  pip install -q --no-deps --no-build-isolation ${2:+--target "$2"} "$src" \
    2> >(grep -v "is ignored: it is neither" >&2)
}

# Unpacks (or copies) D2_SOURCE into $1 and prints the folder that holds its setup.py.
unpack_detectron2_source() {
  local into=$1 setup
  if [ -d "$D2_SOURCE" ]; then
    cp -r "$D2_SOURCE" "$into/src"
  else
    mkdir "$into/src" && tar xzf "$D2_SOURCE" -C "$into/src"
  fi
  # The source itself, or its one top folder (as `git archive --prefix` and GitHub write it).
  setup=$(find "$into/src" -maxdepth 2 -name setup.py -printf '%d %p\n' | sort -n | head -n 1 | cut -d' ' -f2-)
  [ -n "$setup" ] && [ -d "$(dirname "$setup")/detectron2" ] || {
    echo "D2_SOURCE=$D2_SOURCE: no detectron2 source in it (setup.py + detectron2/ expected)" >&2
    exit 1
  }
  dirname "$setup"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The build of D2_SOURCE is skipped while $d2_stamp names the same tarball (a folder can change:
# rebuilt each run).
install_detectron2_source() {
  local d2_stamp=$1 target=${2:-} d2_want src
  if [ ! -e "$D2_SOURCE" ]; then
    echo "D2_SOURCE=$D2_SOURCE: no such file or folder (from $PWD; give a detectron2 tarball or checkout)" >&2
    exit 1
  elif [ -f "$D2_SOURCE" ]; then
    d2_want="sha256 $(sha256sum "$D2_SOURCE" | cut -d' ' -f1)"
  else
    d2_want="folder $(cd "$D2_SOURCE" 2>/dev/null && pwd)"
  fi
  if [ -f "$D2_SOURCE" ] && [ "$(cat "$d2_stamp" 2>/dev/null)" = "$d2_want" ]; then
    log "detectron2 already built from $D2_SOURCE${target:+ in $target}"
    return
  fi
  log "building detectron2 from $D2_SOURCE${target:+ into $target}, without C++ ops"
  src=$(unpack_detectron2_source "$work")
  if [ -n "$target" ]; then
    rm -rf "$target" && mkdir -p "$target"
  else
    # Two distributions must not share the detectron2/ folder.
    pip uninstall -q -y pb1-detectron2 detectron2 2>/dev/null || true
  fi
  install_detectron2_without_ext "$src" "$target"
  # detectron2's main branch also installs its scripts as a top-level `tools` package: first on
  # PYTHONPATH it would shadow this repository's tools/.
  [ -z "$target" ] || rm -rf "$target/tools"
  echo "$d2_want" > "$d2_stamp"
}

if [ -n "${D2_SOURCE:-}" ] && [ -z "${D2_TARGET:-}" ]; then
  install_detectron2_source "$venv/.lv_adapter_detectron2_source"
elif "$py" -c "import detectron2" 2>/dev/null; then
  log "detectron2 already importable: $("$py" -c 'import detectron2; print(detectron2.__version__, detectron2.__file__)')"
else
  log "building detectron2 0.6 from the pb1-detectron2 sdist, without C++ ops"
  pip download -q --no-deps --no-build-isolation --no-binary :all: pb1-detectron2==0.6 -d "$work" \
    2> >(grep -v "is ignored: it is neither" >&2)
  tar xzf "$work"/pb1-detectron2-0.6.tar.gz -C "$work"
  install_detectron2_without_ext "$work/pb1-detectron2-0.6"
fi
if [ -n "${D2_TARGET:-}" ]; then
  [ -n "${D2_SOURCE:-}" ] || { echo "D2_TARGET=$D2_TARGET needs D2_SOURCE (what to build into it)" >&2; exit 1; }
  mkdir -p "$D2_TARGET"
  D2_TARGET=$(cd "$D2_TARGET" && pwd)
  install_detectron2_source "$D2_TARGET/.lv_adapter_detectron2_source" "$D2_TARGET"
fi

# A placeholder installed by an older version of this script is refreshed (it is this project's
# file; detectron2's main branch needs the newer one's torch.ops registration). $1: PYTHONPATH.
refresh_placeholder() {
  local placeholder="$root/lv_adapter/_detectron2_c_placeholder.py" installed
  installed=$(PYTHONPATH=$1 "$py" -c "import importlib.util as u; print(u.find_spec('detectron2._C').origin)" 2>/dev/null || true)
  if [ "${installed##*.}" = py ] && grep -q '^IS_PLACEHOLDER = True' "$installed" \
      && ! cmp -s "$placeholder" "$installed"; then
    log "refreshing the detectron2._C placeholder in $installed"
    cp "$placeholder" "$installed"
  fi
}
refresh_placeholder ""
[ -z "${D2_TARGET:-}" ] || refresh_placeholder "$D2_TARGET"

if ! (cd / && "$py" -c "import lv_adapter") 2>/dev/null; then
  log "installing lv_adapter in editable mode"
  pip install -q --no-deps --no-build-isolation -e "$root" 2> >(grep -v "is ignored: it is neither" >&2)
fi
# detectron2's main branch also calls itself 0.6: name the source it was built from.
ready() {
  PYTHONPATH=$1 "$py" -W ignore -c "import detectron2, lv_adapter, torch; print('[setup] ready: torch', torch.__version__, '| detectron2', detectron2.__version__, end='')"
}
if [ -n "${D2_TARGET:-}" ]; then
  ready "" && echo
  ready "$D2_TARGET" && echo " (built from $D2_SOURCE, with PYTHONPATH=$D2_TARGET)"
else
  ready "" && echo "${D2_SOURCE:+ (built from $D2_SOURCE)}"
fi

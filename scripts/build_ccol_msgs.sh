#!/usr/bin/env bash
# Build ccol_msgs with the ROS 2 PyPI wheels' rosidl tool chain into install/ccol_msgs and make it importable
# from .venv (a .pth file). On a ROS machine use `colcon build` instead; this is for pip-only environments.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
BUILD="$ROOT/build/ccol_msgs"
PREFIX="$ROOT/install/ccol_msgs"
for tool in cmake make cc; do
  command -v "$tool" >/dev/null || { echo "build_ccol_msgs: '$tool' not found; install cmake and a C compiler (apt install cmake build-essential)" >&2; exit 3; }
done
# The wheels' exported CMake targets name include paths of the machine that built them; point them here.
INC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
grep -rlZ "/opt/python/cp311-cp311" "$VENV/share" 2>/dev/null | xargs -0 -r sed -i \
  -e "s#/opt/python/cp311-cp311/include/python3.11#$INC#g" \
  -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages#$SITE#g"
rm -rf "$BUILD" "$PREFIX"
mkdir -p "$BUILD"
export PATH="$VENV/bin:$PATH" CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV"
cmake -S "$ROOT/ccol_msgs" -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$PREFIX" -DPython3_EXECUTABLE="$PY" \
  -DBUILD_TESTING=OFF -DCMAKE_INSTALL_RPATH="$PREFIX/lib" >"$BUILD/configure.log" 2>&1 \
  || { tail -30 "$BUILD/configure.log" >&2; exit 1; }
make -C "$BUILD" -j"$(nproc)" install >"$BUILD/build.log" 2>&1 || { tail -30 "$BUILD/build.log" >&2; exit 1; }
PKG_SITE="$(find "$PREFIX" -type d -name site-packages | head -1)"
# A .pth file puts the package on sys.path and tells the type-support loader (which searches LD_LIBRARY_PATH at
# run time) and the ament index where the libraries are.
cat >"$SITE/ccol_msgs_local.pth" <<PTH
$PKG_SITE
import os; os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in ("$PREFIX/lib", os.environ.get("LD_LIBRARY_PATH", "")) if p)
import os; os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in ("$PREFIX", os.environ.get("AMENT_PREFIX_PATH", "")) if p)
PTH
"$PY" -c "from ccol_msgs.msg import ActionChunk, PolicyStatus; print('ccol_msgs built:', PolicyStatus.__module__)"

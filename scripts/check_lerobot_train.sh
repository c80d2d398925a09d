#!/usr/bin/env bash
# LeRobot's trainers on our export (developer check, not CI: it builds LeRobot's own environment, minutes of CPU):
#   1. LeRobot's environment in $LEROBOT_VENV (default /tmp/lerobot_venv), as scripts/make_lerobot_fixture.py
#      describes it: lerobot 0.4.4 with its pinned dependencies, except torch: LeRobot pins torch < 2.11, whose
#      Linux wheels on PyPI are CUDA builds of several GB, so LeRobot's code runs on the torch 2.13 CPU wheel
#      (torchvision 0.28 without its compiled operators, see make_lerobot_fixture.import_torchvision);
#   2. a small simulator data set: `ccol sim-record` (3 scripted demonstrations, one per task), exported with
#      `ccol export-lerobot` twice: cameras as AV1 video (the default) and as PNG in the parquet (--images png);
#   3. scripts/lerobot_act_check.py on each: `lerobot-train --policy.type=act` (LeRobot's train main, ResNet-18
#      from random weights: no hub here) for $STEPS steps, then `ACTPolicy.from_pretrained` on the checkpoint and
#      one action from it. Its last line says PASS or FAIL; the summary at the end lists both.
# Usage: scripts/check_lerobot_train.sh            (STEPS=20 WORK=/tmp/ccol_lerobot_train CCOL_PYTHON=.venv/bin/python)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${CCOL_PYTHON:-$ROOT/.venv/bin/python}
VENV=${LEROBOT_VENV:-/tmp/lerobot_venv}
WORK=${WORK:-/tmp/ccol_lerobot_train}
STEPS=${STEPS:-20}

if [ ! -x "$VENV/bin/lerobot-train" ]; then
  echo "== building LeRobot's environment in $VENV"
  python3.11 -m venv "$VENV" || exit 1
  "$VENV/bin/pip" install -q torch==2.13.0 torchvision==0.28.0 || exit 1
  "$VENV/bin/pip" install -q --no-deps lerobot==0.4.4 || exit 1
  "$VENV/bin/pip" install -q "datasets>=4,<5" "huggingface-hub[hf-transfer,cli]>=0.34.2,<0.36" "accelerate>=1.10,<2" \
    "diffusers>=0.27.2,<0.36" "einops>=0.8,<0.9" "opencv-python-headless>=4.9,<4.13" "av>=15,<16" "jsonlines>=4,<5" \
    "packaging>=24.2,<26" "draccus==0.10.0" "gymnasium>=1.1.1,<2" "deepdiff>=7.0.1,<9" "imageio[ffmpeg]>=2.34,<3" \
    "termcolor>=2.4,<4" "setuptools>=71,<81" "pyserial>=3.5,<4" "pynput>=1.7.7,<1.9" "wandb>=0.24,<0.25" \
    "rerun-sdk>=0.24,<0.27" pandas pyarrow pillow || exit 1
fi

rm -rf "$WORK" && mkdir -p "$WORK"
echo "== simulator demonstrations and their exports in $WORK"
"$PY" -m ccol_policy.cli sim-record --out "$WORK/bags" --episodes-per-task 1 --workers 1 --no-progress || exit 1
for images in video png; do
  "$PY" -m ccol_policy.cli export-lerobot "$WORK/bags" --out "$WORK/export_$images" --images "$images" \
    --image-size 96x96 --arm-id panda --no-progress || exit 1
done

declare -A outcome
for images in video png; do
  echo "== lerobot-train (ACT, $STEPS steps) on the $images export"
  "$VENV/bin/python" "$ROOT/scripts/lerobot_act_check.py" "$WORK/export_$images" --out "$WORK/run_$images" \
    --steps "$STEPS" > "$WORK/lerobot_$images.log" 2>&1
  outcome[$images]=$(grep -E "^(PASS|FAIL)" "$WORK/lerobot_$images.log" | tail -1)
  grep -E "lerobot [0-9]|step:[0-9]+ |from_pretrained\(|Error|^(PASS|FAIL)" "$WORK/lerobot_$images.log" | tail -8
done
echo "== summary (logs: $WORK/lerobot_*.log)"
for images in video png; do echo "$images export: ${outcome[$images]:-no outcome}"; done
[[ ${outcome[png]} == PASS* ]]

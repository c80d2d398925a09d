"""Peak memory of `ccol eval-bag` on a large bag: it must stream, not load the bag.

    .venv/bin/python bench/bench_eval_bag_memory.py --checkpoint runs/demo/train/best --size-gb 1.0

Writes a bag of 640x480 rgb8 frames at 30 Hz (plus joint states) of about --size-gb, then evaluates it and prints
the process's peak resident memory before and after, and the ratio peak growth / bag size.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bag_factory import make_bag

from ccol_policy.bags import BagTopics
from ccol_policy.eval_bag import evaluate


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--size-gb", type=float, default=1.0)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ccol_bigbag_"))
    try:
        frame = 640 * 480 * 3
        duration = args.size_gb * 1e9 / (frame * 30)
        t0 = time.perf_counter()
        bag = make_bag(tmp / "big", duration=duration, image_size=(480, 640))
        size = sum(f.stat().st_size for f in bag.iterdir()) / 1e9
        print(f"wrote {size:.2f} GB bag ({duration:.0f} s at 30 Hz) in {time.perf_counter() - t0:.0f}s")
        import torch  # noqa: F401 - count the framework in the baseline

        from ccol_policy.policy import CCoLPolicy

        CCoLPolicy.from_checkpoint(args.checkpoint, device="cpu")
        before = peak_mb()
        t0 = time.perf_counter()
        report = evaluate({"ckpt": args.checkpoint}, [bag], tmp / "report", BagTopics(), device="cpu", progress=False)
        after = peak_mb()
        steps = report["summary"]["ckpt"]["steps"]
        print(f"evaluated {steps} steps in {time.perf_counter() - t0:.0f}s")
        print(
            f"peak RSS before evaluation {before:.0f} MB, after {after:.0f} MB; "
            f"growth {after - before:.0f} MB for a {size:.2f} GB bag (ratio {(after - before) / (size * 1000):.3f})"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

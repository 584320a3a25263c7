""" "Quick demo settings" on the demo shapes: test accuracy and training time of a real run.

    .venv/bin/python benchmarks/bench_quick_demo.py [--write]

The Data page's default split of the demo (0.6/0.2/0.2 per class, seed 0: 2,400 training and 800
test pictures of 4 shapes), core.config.QUICK_DEMO (the compact net at 32 px, Adam 3e-3 with a
cosine schedule, 12 epochs, batch 64), trained by a real run process. The same run is repeated
with oneDNN held to AVX2 kernels (ONEDNN_MAX_CPU_ISA=AVX2, inherited by the run process) in
float32 (what precision "auto" picks without bfloat16 hardware), a rough
stand-in for the 2-core AVX2-only laptops the demo must also convince on (bar: 3 minutes).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.report import machine, write_section  # noqa: E402
from core import data, demo, evaluate, runs  # noqa: E402
from core.config import QUICK_DEMO, TrainConfig  # noqa: E402
from core.train import finalize  # noqa: E402


def one_run(ws: str, isa: str | None) -> tuple[float, float]:
    """(test accuracy, seconds from the start to the end of training) of one quick-demo run."""
    if isa:
        os.environ["ONEDNN_MAX_CPU_ISA"] = isa
    else:
        os.environ.pop("ONEDNN_MAX_CPU_ISA", None)
    # An AVX2-only CPU has no bfloat16 hardware: precision "auto" picks float32 there.
    settings = {**QUICK_DEMO, **({"precision": "float32"} if isa else {})}
    run_id = runs.submit(finalize(TrainConfig(split="demo", **settings), ws).to_dict(), ws)
    while runs.status(run_id, ws)["state"] in runs.ACTIVE_STATES:
        time.sleep(1)
    status = runs.status(run_id, ws)
    if status["state"] != "done":
        raise SystemExit(f"run {run_id} ended {status['state']}: {status.get('error')}")
    return evaluate.evaluate_run(run_id, "best", "test", ws).accuracy, status["ended"] - status["started"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    ws = tempfile.mkdtemp(prefix="bench-quick-demo-")
    root = demo.ensure_demo(ws)
    split = data.make_split(data.scan(root), data.SplitSpec("fractions", 0.6, 0.2, 0.2, seed=0))
    data.save_split(split, name="demo", workspace=ws)
    lines = ["| oneDNN kernels | test accuracy | training time |", "|---|---:|---:|"]
    for label, isa in (("this CPU's best", None), ("AVX2 only (ONEDNN_MAX_CPU_ISA=AVX2)", "AVX2")):
        accuracy, seconds = one_run(ws, isa)
        print(f"{label}: test accuracy {accuracy:.3f}, {seconds:.0f} s", flush=True)
        lines.append(f"| {label} | {accuracy:.1%} | {seconds:.0f} s |")
    table = "\n".join(lines)
    body = (
        "The demo's default split (2,400 training, 800 test pictures, 4 shapes), Quick demo settings "
        "(compact net at 32 px, 12 epochs), each a real run.\n\nCommand: `.venv/bin/python "
        f"benchmarks/bench_quick_demo.py --write`\n\nMachine: {machine()}\n\n{table}\n\nThe time "
        "includes decoding the pictures into the cache on the first run. The bar is 95% within 3 "
        "minutes on a 2-core AVX2-only CPU; the AVX2 row only holds oneDNN to AVX2 kernels on this "
        "CPU (same clock and caches), so it is an indication, not that measurement."
    )
    print(table)
    if args.write:
        print(f"wrote {write_section('Quick demo: accuracy and time', body)}")


if __name__ == "__main__":
    main()

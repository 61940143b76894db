"""Does bf16 autocast move a verdict at the quick profile? (issue 9: fp32 vs bf16, note any change.)

Copies the Hinton claims that share the teacher/small/distilled runs into a temporary claims folder
with the quick profile's `precision: bf16` replaced by fp32, trains them into benchmarks/results-fp32/ (or
REPRO_FP32_RESULTS), and prints each claim-variant's verdict and estimate under both precisions,
decided over the same set of claims (Holm included). The bf16 side is the committed results/.
Needs REPRO_DATA with MNIST; about 30 minutes of training on a 2-core CPU the first time.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from repro.spec import load_claims
from repro.store import Store
from repro.verdict import decide_all

CLAIMS = ["hinton-teacher", "hinton-small", "hinton-distilled", "hinton-kd-helps", "hinton-kd-recovers-gap"]


def fp32_claims(folder: Path) -> Path:
    (folder / "_shared").mkdir(parents=True)
    base = Path("claims/_shared/hinton-mnist.yaml").read_text()
    assert "      precision: bf16\n" in base, "the quick profile no longer sets bf16: update this script"
    (folder / "_shared/hinton-mnist.yaml").write_text(base.replace("      precision: bf16\n", "      precision: fp32\n"))
    for claim in CLAIMS:
        shutil.copy(f"claims/{claim}.yaml", folder)
    return folder


def main():
    os.environ.pop("REPRO_PRECISION", None)  # each side keeps its specs' own precision
    fp32_results = Path(os.environ.get("REPRO_FP32_RESULTS", "benchmarks/results-fp32"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = fp32_claims(Path(tmp) / "claims")
        subprocess.run([sys.executable, "-m", "repro.cli", "--claims", str(folder), "--results", str(fp32_results),
                        "run", "--profile", "quick", *CLAIMS], check=True)
        verdicts = {"bf16": decide_all({c: v for c, v in load_claims("claims").items() if c in CLAIMS}, "quick",
                                       Store(os.environ.get("REPRO_RESULTS", "results"))),
                    "fp32": decide_all(load_claims(folder), "quick", Store(fp32_results))}
    print(f"\n{'claim [variant]':42s} {'bf16':15s} {'fp32':15s} estimate bf16 | fp32")
    both = [(b, f) for b, f in zip(verdicts["bf16"], verdicts["fp32"]) if "NOT RUN" not in (b["status"], f["status"])]
    for b, f in zip(verdicts["bf16"], verdicts["fp32"]):
        assert (b["claim"], b["variant"]) == (f["claim"], f["variant"])
        est = lambda v: f"{v['estimate']:.4g} [{v['estimate_ci'][0]:.4g}, {v['estimate_ci'][1]:.4g}]"  # noqa: E731
        changed = "  <- changed" if b["status"] != f["status"] else ""
        print(f"{b['claim'] + ' [' + b['variant'] + ']':42s} {b['status']:15s} {f['status']:15s} {est(b)} | {est(f)}{changed}")
    agree = sum(b["status"] == f["status"] for b, f in both)
    print(f"\nwhere both precisions have results: {agree} of {len(both)} verdicts agree")


if __name__ == "__main__":
    main()

"""The Ray executor on a real local Ray cluster: the same stored results as the local executor, each run once."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from repro.executors import RayExecutor, make_executor
from repro.plan import plan
from repro.run import LocalExecutor
from repro.spec import load_claims
from repro.store import Store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def smoke_jobs(store):
    claim = load_claims(ROOT / "claims")["hinton-kd-helps"]
    return plan([claim], "smoke", store)


def stored(root: Path) -> dict:
    """Relative path -> the stored result, less what differs between any two runs (time, clock)."""
    out = {}
    for path in sorted(root.rglob("*.json")):
        doc = json.loads(path.read_text())
        doc["provenance"].pop("created")
        out[path.relative_to(root)] = {k: v for k, v in doc.items() if k not in ("wall_s", "checksum")}
    return out


@pytest.fixture
def ray_cluster(monkeypatch):
    ray = pytest.importorskip("ray", reason="ray is not installed (optional): pip install 'kd-repro[ray]'")
    monkeypatch.setenv("RAY_DISABLE_USAGE_STATS", "1")
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield ray
    ray.shutdown()


def test_ray_executor_stores_what_the_local_executor_stores(tmp_path, ray_cluster):
    local_store = Store(tmp_path / "local" / "results", tmp_path / "local" / "cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the Ray workers (OMP_NUM_THREADS=1)
    try:
        local = LocalExecutor(local_store, CPU, log=lambda msg: None).submit(smoke_jobs(local_store))
    finally:
        torch.set_num_threads(threads)

    ray_store = Store(tmp_path / "ray" / "results", tmp_path / "ray" / "cache")
    executor = make_executor("ray", ray_store, CPU)
    assert isinstance(executor, RayExecutor)
    first = executor.submit(smoke_jobs(ray_store))
    # 18 jobs, 12 run keys: teacher and small are shared by both variants, trained once, stored twice
    assert first == local == {"counts": {"trained": 12, "cached": 6, "failed": 0}, "not_runnable": {}}
    results = stored(ray_store.root)
    assert len(results) == 18
    assert results == stored(local_store.root)  # same metrics per epoch, same provenance command and commit
    assert not list(ray_store.root.rglob("*.tmp"))

    files = {p: p.read_text() for p in ray_store.root.rglob("*.json")}
    again = RayExecutor(ray_store, CPU).submit(smoke_jobs(ray_store))
    assert again["counts"] == {"trained": 0, "cached": 18, "failed": 0}
    assert {p: p.read_text() for p in ray_store.root.rglob("*.json")} == files


def test_unknown_executor_is_named():
    with pytest.raises(ValueError, match="unknown executor 'dask'; known: local, ray"):
        make_executor("dask", Store(os.devnull), CPU)

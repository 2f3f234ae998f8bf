"""``ohio bench relabel``: relabel one hour of 50 Hz arm bags, end to end, and measure it.

The data: reach episodes of the scripted expert under the OSC, simulated and written by
``ohio collect`` into ``bags`` MCAP bags (made once, cached in ``cache``). The measured run is
``ohio relabel``'s work: read every bag (one streaming job per bag, ``workers`` processes),
relabel with the analytical inverse, write the dataset. It runs in a fresh Python process, so
its peak memory (``ru_maxrss`` of that process and of its largest worker) is the relabel's own.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ohio_core.data.collect import collect_bag
from ohio_core.pipeline.bag_relabel import RelabelConfig, relabel_bags
from ohio_core.pipeline.dataset import save_dataset
from ohio_core.pipeline.parallel import map_items

TARGETS = {"seconds": ("<=", 60.0)}
HORIZON = 250


def _collect_one(job: tuple) -> dict:
    out, episodes, seed = job
    return collect_bag(out, "reach", "expert", episodes=episodes, seed=seed, horizon=HORIZON, progress=False)


def make_data(cache: Path, hours: float, bags: int, seed: int, workers: int) -> list[Path]:
    """The bags for ``hours`` of data at 50 Hz (made once; reused when complete)."""
    periods = int(round(hours * 3600 / 0.02))
    episodes = max(math.ceil(periods / HORIZON), bags)
    folder = Path(cache) / f"relabel_{hours:g}h_{bags}bags_seed{seed}"
    paths = [folder / f"bag_{i:02d}" for i in range(bags)]
    if (folder / "done.json").is_file():
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    for p in paths:
        if p.exists():
            shutil.rmtree(p)
    per = [episodes // bags + (i < episodes % bags) for i in range(bags)]
    print(f"simulating {episodes} episodes ({hours:g} h at 50 Hz) into {bags} bags in {folder} (once; cached)",
          file=sys.stderr)
    jobs = [(str(p), n, seed + i) for i, (p, n) in enumerate(zip(paths, per))]
    made = list(map_items(_collect_one, jobs, workers=workers, desc="bags"))
    bad = [o.error for o in made if o.error]
    if bad:
        raise RuntimeError(f"making the benchmark bags failed: {bad[0]}")
    (folder / "done.json").write_text(json.dumps({"episodes": episodes, "periods": episodes * HORIZON,
                                                  "bags": [o.value for o in sorted(made, key=lambda o: o.index)]}))
    return paths


def measure(bags: list[str], workers: int) -> dict:
    """Relabel ``bags`` as ``ohio relabel`` does and time it (run in a fresh process)."""
    t0 = time.perf_counter()
    run = relabel_bags(bags, RelabelConfig(method="analytical"), workers=workers, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        save_dataset(run.data, Path(tmp) / "bench", {"task": run.task, "method": "analytical", "k": 5})
    seconds = time.perf_counter() - t0
    acc = run.account
    main_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    worker_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": seconds, "messages": sum(acc.messages.values()), "messages_per_topic": acc.messages,
            "control_steps": acc.segments.control_steps_in, "segments_written": acc.segments.segments_written,
            "segments_dropped": acc.segments.segments_dropped, "peak_rss_mb_main": main_kb / 1024,
            "peak_rss_mb_worker": worker_kb / 1024}


def run(hours: float = 1.0, bags: int = 4, workers: int = 2, seed: int = 0, cache: Path = Path("out/bench")) -> dict:
    paths = make_data(cache, hours, bags, seed, workers)
    code = ("import json, sys; from ohio_core.bench.relabel import measure; "
            "print('RESULT ' + json.dumps(measure(json.loads(sys.argv[1]), int(sys.argv[2]))))")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps([str(p) for p in paths]), str(workers)],
                          capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"the measured relabel failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    m = json.loads(lines[-1][len("RESULT "):])
    hours_of_data = m["control_steps"] * 0.02 / 3600
    return {"hours_of_data": hours_of_data, "seconds": m["seconds"], "messages_per_s": m["messages"] / m["seconds"],
            "peak_rss_mb": max(m["peak_rss_mb_main"], m["peak_rss_mb_worker"]), **m, "bags": len(paths),
            "workers": workers, "method": "analytical", "k": 5}

"""Artifacts on disk as a pair: a data file and a JSON sidecar that says what it is.

Datasets (``.h5``) and models (``.d3``) both follow it. The pair is written under temporary
names and renamed into place, the sidecar last, so an interrupted write leaves no pair that
looks complete; reading refuses a data file without its sidecar or with a foreign one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path


def pair_paths(path: str | Path, suffix: str) -> tuple[Path, Path]:
    """(BASE + suffix, BASE.json) for ``path`` given with either suffix or none; any other dot in
    the name is part of BASE (``ml-f0.02`` -> ``ml-f0.02.h5``, not ``ml-f0.h5``)."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (suffix, ".json") else path
    return base.with_name(base.name + suffix), base.with_name(base.name + ".json")


def write_pair(main: Path, sidecar: Path, write_main: Callable[[Path], None], meta: dict) -> None:
    """``write_main(tmp)`` writes the data file; ``meta`` becomes the sidecar; both renamed into place."""
    main.parent.mkdir(parents=True, exist_ok=True)
    tmp_main = main.with_name(f".{main.name}.tmp{os.getpid()}")
    tmp_side = sidecar.with_name(f".{sidecar.name}.tmp{os.getpid()}")
    try:
        write_main(tmp_main)
        tmp_side.write_text(json.dumps(meta, indent=1))
        os.replace(tmp_main, main)
        os.replace(tmp_side, sidecar)
    finally:
        for t in (tmp_main, tmp_side):
            if t.exists():
                t.unlink()


def read_sidecar(main: Path, sidecar: Path, what: str, fmt: str) -> dict:
    """The sidecar of ``main``; FileNotFoundError without either file, ValueError for another format."""
    if not main.is_file():
        raise FileNotFoundError(f"{what} not found: {main}")
    if not sidecar.is_file():
        raise FileNotFoundError(f"{what} sidecar missing: {sidecar} (incomplete or foreign {what})")
    meta = json.loads(sidecar.read_text())
    if meta.get("format") != fmt:
        raise ValueError(f"{sidecar}: not an OHIO {what} sidecar (format {meta.get('format')!r})")
    return meta

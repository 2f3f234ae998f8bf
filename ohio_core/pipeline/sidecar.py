"""Artifacts on disk as a pair: a data file and a JSON sidecar that says what it is.

Datasets (``.h5``) and models (``.d3``) both follow it. The pair is written under temporary
names and renamed into place, the sidecar last, so an interrupted write leaves no pair that
looks complete; reading refuses a data file without its sidecar or with a foreign one. The
sidecar records the data file's size and SHA-256 (``data_file``), so a truncated or altered
data file is refused by name before any library decodes it (most bit flips decode without an
error into other weights or data). A killed write leaves ``.NAME.tmpPID`` files behind: the next
successful write of NAME into that folder removes those whose process is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CHECK_KEY = "data_file"   # sidecar key: {"bytes": size, "sha256": hex digest} of the data file
#: what decoders raise on a damaged file: pickle, torch's zip reader (RuntimeError), h5py (OSError,
#: KeyError), JSON and UTF-8 (ValueError), a changed class name in a pickle (ImportError, AttributeError)
DECODE_ERRORS = (pickle.UnpicklingError, EOFError, OSError, RuntimeError, ValueError, KeyError, IndexError,
                 TypeError, AttributeError, ImportError)


class InputError(ValueError):
    """A file given to us is damaged, truncated or not what it should be; ``str()`` is ``"FILE: problem"``."""

    def __init__(self, path: str | Path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


def pair_paths(path: str | Path, suffix: str) -> tuple[Path, Path]:
    """(BASE + suffix, BASE.json) for ``path`` given with either suffix or none; any other dot in
    the name is part of BASE (``ml-f0.02`` -> ``ml-f0.02.h5``, not ``ml-f0.h5``)."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (suffix, ".json") else path
    return base.with_name(base.name + suffix), base.with_name(base.name + ".json")


def file_check(path: Path) -> dict:
    """``{"bytes": size, "sha256": hex digest}`` of a file."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"bytes": path.stat().st_size, "sha256": digest}


def write_pair(main: Path, sidecar: Path, write_main: Callable[[Path], None], meta: dict) -> None:
    """``write_main(tmp)`` writes the data file; ``meta`` plus the file's size and SHA-256 (``CHECK_KEY``)
    becomes the sidecar; both renamed into place, then stale temporary files of both names removed."""
    main.parent.mkdir(parents=True, exist_ok=True)
    tmp_main = main.with_name(f".{main.name}.tmp{os.getpid()}")
    tmp_side = sidecar.with_name(f".{sidecar.name}.tmp{os.getpid()}")
    try:
        write_main(tmp_main)
        tmp_side.write_text(json.dumps({**meta, CHECK_KEY: file_check(tmp_main)}, indent=1))
        os.replace(tmp_main, main)
        os.replace(tmp_side, sidecar)
    finally:
        for t in (tmp_main, tmp_side):
            if t.exists():
                t.unlink()
    for target in (main, sidecar):
        remove_stale_temps(target)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's live process
        return True
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove ``.NAME.tmpPID`` beside ``target`` (NAME its name) whose process PID is gone; returns them."""
    prefix = f".{target.name}.tmp"
    stale = [p for p in target.parent.iterdir() if p.name.startswith(prefix)
             and (pid := p.name[len(prefix):]).isdigit() and int(pid) > 0 and not _alive(int(pid))]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def read_sidecar(main: Path, sidecar: Path, what: str, fmt: str) -> dict:
    """The sidecar of ``main``; FileNotFoundError without either file, ``InputError`` for a damaged or
    foreign sidecar or a data file that is not the one it records (size, SHA-256)."""
    if not main.is_file():
        raise FileNotFoundError(f"{what} not found: {main}")
    if not sidecar.is_file():
        raise FileNotFoundError(f"{what} sidecar missing: {sidecar} (incomplete or foreign {what})")
    try:
        meta = json.loads(sidecar.read_bytes())
    except ValueError as exc:   # JSONDecodeError, UnicodeDecodeError
        raise InputError(sidecar, f"damaged {what} sidecar, not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise InputError(sidecar, f"not an OHIO {what} sidecar (format {found!r})")
    check = meta.get(CHECK_KEY)
    if check is not None:   # sidecars written before the check was recorded have none
        if not isinstance(check, dict):
            raise InputError(sidecar, f"damaged {what} sidecar: {CHECK_KEY} is {check!r}")
        size = main.stat().st_size
        if size != check.get("bytes"):
            raise InputError(main, f"damaged {what}: {size} bytes where its sidecar {sidecar.name} records "
                                   f"{check.get('bytes')} (truncated or changed after it was written)")
        if file_check(main)["sha256"] != check.get("sha256"):
            raise InputError(main, f"damaged {what}: its content differs from the SHA-256 its sidecar "
                                   f"{sidecar.name} records (changed after it was written)")
    return meta


def read_data(main: Path, what: str, load: Callable[[], T]) -> T:
    """``load()``, which decodes ``main``; a decoder's failure becomes an ``InputError`` naming ``main``."""
    try:
        return load()
    except InputError:
        raise
    except DECODE_ERRORS as exc:
        raise InputError(main, f"damaged or unreadable {what} ({type(exc).__name__}: {exc})") from exc

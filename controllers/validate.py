"""The one set of config-validation helpers: numbers, vectors, arrays, choices, strings, flags, names and
unknown keys, for the controller configs (``controllers.config``), the ROS node configs
(``ohio_ros.config``) and the routing scenarios (``ohio_core.routing.scenario``).

Each helper takes the label its message names (``OSCConfig.kp``, ``parameter 'k'``,
``Scenario.vehicles``) and the error class to raise (``ConfigError``, ``ParameterError``,
``ScenarioError``), and returns the value converted (float, int, tuple, array). Messages read
``<label> must be <requirement>, got <value>``. A bool is never a number.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np

#: sign requirements of ``vector`` elements
SIGNS = ("any", "positive", "nonnegative")


def is_number(value: Any) -> bool:
    """A real number (Python or NumPy scalar), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def number(label: str, value: Any, error: type[Exception], *, low: float | None = None,
           high: float | None = None, low_open: bool = False, integer: bool = False) -> float | int:
    """``value`` as a float (an int if ``integer``): finite, low <= value (low < value if ``low_open``)
    and value <= high where those are given."""
    if not is_number(value):
        raise error(f"{label} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise error(f"{label} must be finite, got {value!r}")
    if integer and value != int(value):
        raise error(f"{label} must be an integer, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise error(f"{label} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    if high is not None and value > high:
        raise error(f"{label} must be <= {high:g}, got {value!r}")
    return int(value) if integer else float(value)


def _sign_bounds(sign: str) -> dict:
    if sign not in SIGNS:
        raise ValueError(f"sign must be one of {list(SIGNS)}, got {sign!r}")
    return {"any": {}, "positive": {"low": 0, "low_open": True}, "nonnegative": {"low": 0}}[sign]


def signed_number(label: str, value: Any, error: type[Exception], sign: str = "any") -> float:
    """``number`` with a sign requirement of ``SIGNS``."""
    return number(label, value, error, **_sign_bounds(sign))


def _has_text_or_bool(value: Any) -> bool:
    if isinstance(value, (str, bytes, bool, np.bool_)):
        return True
    return np.ndim(value) > 0 and any(isinstance(v, (str, bytes, bool, np.bool_)) for v in value)


def vector(label: str, value: Any, n: int | None, error: type[Exception], sign: str = "any") -> tuple:
    """A scalar (broadcast to n) or n numbers, each finite and of ``sign`` (``SIGNS``), as a tuple of floats.
    ``n`` None: any non-empty list (a scalar is a list of one; the user of the value broadcasts it)."""
    bounds = _sign_bounds(sign)
    if _has_text_or_bool(value):
        raise error(f"{label} must be numeric, got {value!r}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise error(f"{label} must be numeric, got {value!r}") from None
    if arr.ndim == 0:
        arr = np.full(1 if n is None else n, float(arr))
    if n is None and (arr.ndim != 1 or len(arr) == 0):
        raise error(f"{label} must be a scalar or a list of numbers, got shape {arr.shape}")
    if n is not None and arr.shape != (n,):
        raise error(f"{label} must be a scalar or a list of {n} numbers, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise error(f"{label} must be finite, got {arr.tolist()}")
    if "low" in bounds and (np.any(arr <= 0) if bounds.get("low_open") else np.any(arr < 0)):
        raise error(f"{label} must be {'>' if bounds.get('low_open') else '>='} 0, got {arr.tolist()}")
    return tuple(float(x) for x in arr)


def array(label: str, value: Any, ndim: int, error: type[Exception]) -> np.ndarray:
    """A finite float array of ``ndim`` dimensions."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise error(f"{label} must be a numeric array, got {type(value).__name__}") from None
    if a.ndim != ndim:
        raise error(f"{label} must have {ndim} dimensions, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise error(f"{label} must be finite")
    return a


def choice(label: str, value: Any, choices: Collection, error: type[Exception]):
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise error(f"{label} must be one of {list(choices)}, got {value!r}")
    return value


def string(label: str, value: Any, error: type[Exception], *, empty: bool = True) -> str:
    """``value`` if it is a string (non-empty unless ``empty``)."""
    if not isinstance(value, str) or not (empty or value):
        raise error(f"{label} must be a {'' if empty else 'non-empty '}string, got {value!r}")
    return value


def flag(label: str, value: Any, error: type[Exception]) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise error(f"{label} must be true or false, got {value!r}")
    return bool(value)


def names(label: str, value: Any, n: int, error: type[Exception], what: str = "names") -> tuple:
    """n distinct non-empty strings, as a tuple."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise error(f"{label} must be a list of {what}, got {value!r}")
    value = tuple(value)
    if not all(isinstance(v, str) and v for v in value):
        raise error(f"{label} must be a list of {what}, got {list(value)!r}")
    if len(value) != n or len(set(value)) != n:
        raise error(f"{label} must name {n} distinct {what}, got {list(value)}")
    return value


def unknown_keys(keys: Iterable[str], known: Iterable[str], error: type[Exception], what: str = "key",
                 owner: str | None = None) -> None:
    """An error naming every key not in ``known`` (a typo never falls back to a default silently)."""
    known = set(known)
    unknown = sorted(set(keys) - known)
    if unknown:
        where = f" for {owner}" if owner else ""
        raise error(f"unknown {what}(s) {unknown}{where}; known {what}s: {sorted(known)}")

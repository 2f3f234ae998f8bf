"""The inverse methods register themselves: ``ohio_core.inverse.base`` imports none of them, importing
``ohio_core.inverse`` fills ``METHODS`` with every method module's ``@register`` name, and the relabel
pipeline and its command line offer exactly those."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ohio_core.inverse
from ohio_core.cli.main import main
from ohio_core.inverse import METHODS, get_method
from ohio_core.inverse.base import register
from ohio_core.pipeline.bag_relabel import RelabelConfig

INVERSE_DIR = Path(ohio_core.inverse.__file__).parent


def registered_in_source() -> dict[str, str]:
    """method name -> module, from every ``@register("name")`` decorator in ohio_core/inverse/*.py."""
    found = {}
    for path in sorted(INVERSE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    if (isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "register"
                            and isinstance(deco.args[0], ast.Constant)):
                        found[deco.args[0].value] = f"ohio_core.inverse.{path.stem}"
    return found


def test_every_method_module_is_in_the_registry():
    declared = registered_in_source()
    assert set(declared) == {"auto", "analytical", "numerical", "cem", "qp", "naive", "state_matching", "ml"}
    assert {name: fn.__module__ for name, fn in METHODS.items()} == declared


def test_importing_the_package_fills_the_registry_in_a_fresh_interpreter():
    code = "import json, ohio_core.inverse as inv; print(json.dumps(sorted(inv.METHODS)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == sorted(registered_in_source())


def test_base_imports_no_method_module():
    tree = ast.parse((INVERSE_DIR / "base.py").read_text(encoding="utf-8"))
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert imported and not [m for m in imported if m.startswith("ohio_core")], imported


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="'analytical' is already registered by ohio_core.inverse.analytical"):
        register("analytical")(lambda segments, controller: None)
    assert METHODS["analytical"] is get_method("analytical")
    with pytest.raises(ValueError, match="unknown inverse method 'newton'"):
        get_method("newton")


def test_the_relabel_pipeline_offers_the_registered_methods(capsys):
    for name in METHODS:
        config = RelabelConfig(method=name, torque_sigma=1.0 if name == "ml" else None)
        assert config.method == name
    with pytest.raises(ValueError, match="unknown inverse method 'newton'"):
        RelabelConfig(method="newton")
    with pytest.raises(SystemExit) as exc:
        main(["relabel", "bag", "--out", "x", "--method", "newton"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    choices = err.split("choose from ", 1)[1]
    assert sorted(c.strip(" '\n)") for c in choices.split(",")) == sorted(METHODS)

"""Where the project imports: at the top of its modules, and the heavy libraries through ``ohio_core.lazy``.

- No import inside a function in ``ohio_core``, ``controllers`` and the ROS nodes (``ohio_ros``): every
  dependency of a module is stated at its top, where a cycle between modules shows at once. The only
  function-level imports are those of ``ohio_core.lazy``'s wrapper functions (``d3rlpy()``, ``torch()``,
  ``ray()``, ``pyplot()``, ``scipy_signal()``), which load the heavy libraries on first use.
- No module but ``ohio_core/lazy.py`` imports torch, d3rlpy, ray, matplotlib or scipy.signal, anywhere in
  it; the others call its wrappers. Checked statically, and in a fresh interpreter: importing every module
  of the three packages (the ``ohio`` command and every node included) loads none of them.
- ``importlib.import_module``/``__import__`` in a function is an import too. The one the project keeps is
  ``controllers.base.controller_class``, which imports the implementation module of a controller kind on
  first use: ``base`` holds the contract and the factory beside it, and the implementations import ``base``
  to subclass it, so ``base`` cannot import them at its top (``KNOWN_CYCLES``).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the packages held to the rule: name -> source folder
PACKAGES = {"ohio_core": ROOT / "ohio_core", "controllers": ROOT / "controllers",
            "ohio_ros": ROOT / "ros2_ws" / "src" / "ohio_ros" / "ohio_ros"}
LAZY = ROOT / "ohio_core" / "lazy.py"
#: the wrappers of ``ohio_core.lazy`` and the heavy module each imports (matplotlib.pyplot and scipy.signal
#: take seconds to import: loading them at the top made ``ohio --help`` take 3 s)
HEAVY = {"torch": "torch", "d3rlpy": "d3rlpy", "ray": "ray", "pyplot": "matplotlib.pyplot",
         "scipy_signal": "scipy.signal"}
#: what a wrapper imports besides its module: d3rlpy's logger (to quiet it), matplotlib (to pick the backend)
LAZY_ALSO = {"d3rlpy": {"structlog"}, "pyplot": {"matplotlib"}}
#: (file, function) -> why its function-level import stays: an import cycle between the modules
KNOWN_CYCLES = {
    ("controllers/base.py", "controller_class"):
        "the implementations (controllers.osc, controllers.qp) import base to subclass Controller",
}


def source_files() -> list[Path]:
    return sorted(p for folder in PACKAGES.values() for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imports_of(node: ast.AST) -> list[str]:
    """The modules an import statement or an ``import_module``/``__import__`` call names ([] otherwise)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.module is None:     # from . import a, b
            return [("." * node.level) + alias.name for alias in node.names]
        return [("." * node.level) + node.module]
    if isinstance(node, ast.Call) and node.args:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in ("import_module", "__import__"):
            arg = node.args[0]
            return [arg.value if isinstance(arg, ast.Constant) else "<computed name>"]
    return []


def function_level_imports(tree: ast.AST) -> list[tuple[str, int, str]]:
    """(innermost function, line, module) of every import inside a function body (nested ones too)."""
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if function is not None:
                found.extend((function, child.lineno, module) for module in imports_of(child))
            visit(child, inner)

    visit(tree, None)
    return found


def all_imports(tree: ast.AST) -> list[tuple[int, str]]:
    return [(node.lineno, module) for node in ast.walk(tree) for module in imports_of(node)]


def within(module: str, library: str) -> bool:
    """``module`` is ``library`` or one of its submodules."""
    return module == library or module.startswith(library + ".")


def allowed_in_function(path: Path, function: str, module: str) -> bool:
    """An import of the heavy library a wrapper of ``ohio_core.lazy`` is named for (or what it loads with it)."""
    return path == LAZY and function in HEAVY and any(
        within(module, library) for library in {HEAVY[function]} | LAZY_ALSO.get(function, set()))


def test_the_check_covers_every_package():
    files = source_files()
    for name, folder in PACKAGES.items():
        assert (folder / "__init__.py").is_file(), f"{name}: no package at {folder}"
        assert any(p.parent == folder for p in files), f"{name}: no source files found under {folder}"
    assert LAZY in files


def test_no_import_inside_a_function():
    found, kept = [], set()
    for path in source_files():
        for function, line, module in function_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if allowed_in_function(path, function, module):
                continue
            if (rel(path), function) in KNOWN_CYCLES:
                kept.add((rel(path), function))
                continue
            found.append(f"{rel(path)}:{line}: {function}() imports {module}")
    assert not found, ("imports belong at the top of the module (torch, d3rlpy and ray: call ohio_core.lazy); "
                       "a cycle this would create means the module boundaries are wrong:\n" + "\n".join(found))
    assert kept == set(KNOWN_CYCLES), f"KNOWN_CYCLES names functions that import nothing: {set(KNOWN_CYCLES) - kept}"


def test_heavy_libraries_are_imported_by_lazy_alone():
    heavy = set(HEAVY.values()) | set().union(*LAZY_ALSO.values())
    found = [f"{rel(path)}:{line}: imports {module}" for path in source_files() if path != LAZY
             for line, module in all_imports(ast.parse(path.read_text(encoding="utf-8")))
             if any(within(module, library) for library in heavy)]
    assert not found, "the heavy libraries go through ohio_core.lazy (d3rlpy(), torch(), ...):\n" + "\n".join(found)
    wrappers = {node.name: {module for _, module in all_imports(node)}
                for node in ast.parse(LAZY.read_text(encoding="utf-8")).body if isinstance(node, ast.FunctionDef)}
    for name, library in HEAVY.items():
        assert library in wrappers.get(name, set()), f"ohio_core.lazy.{name}() does not import {library}"


def test_the_checks_see_every_import_form():
    tree = ast.parse("\n".join([
        "import os",
        "def f():",
        "    import json",
        "    from . import sibling",
        "    def g():",
        "        from pathlib import Path",
        "    return importlib.import_module('x.y'), __import__(name)",
        "class C:",
        "    def m(self):",
        "        import csv",
        "    import abc",
    ]))
    assert function_level_imports(tree) == [("f", 3, "json"), ("f", 4, ".sibling"), ("g", 6, "pathlib"),
                                            ("f", 7, "x.y"), ("f", 7, "<computed name>"), ("m", 10, "csv")]
    assert allowed_in_function(LAZY, "torch", "torch") and allowed_in_function(LAZY, "d3rlpy", "structlog")
    assert not allowed_in_function(LAZY, "torch", "ray") and not allowed_in_function(ROOT / "x.py", "torch", "torch")


# Import every module of the three packages in a fresh interpreter; report which heavy libraries got loaded.
_PROBE = r"""
import importlib, json, pkgutil, sys
heavy, packages = json.loads(sys.argv[1]), json.loads(sys.argv[2])
loaded_before = [m for m in heavy if m in sys.modules]
names, errors = [], {}
for package in packages:
    module = importlib.import_module(package)
    names += [package] + [m.name for m in pkgutil.walk_packages(module.__path__, package + ".")
                          if not m.name.endswith("__main__")]
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"before": loaded_before, "modules": names, "errors": errors,
                  "loaded": [m for m in heavy if m in sys.modules]}))
"""


def test_importing_every_module_loads_no_heavy_library():
    env = dict(os.environ, MPLBACKEND="Agg")
    heavy = sorted(HEAVY.values())
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(heavy), json.dumps(sorted(PACKAGES))],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["before"] == [] and not report["errors"], report["errors"]
    assert {"ohio_core.cli.main", "ohio_ros.arm.policy_node", "ohio_ros.routing.policy_node"} <= set(report["modules"])
    assert report["loaded"] == [], f"importing the project's modules loaded {report['loaded']} (call ohio_core.lazy)"

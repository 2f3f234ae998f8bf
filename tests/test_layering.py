"""The layering rules of docs/architecture.md, enforced on every module of the two core packages.

- ``ohio_core`` and ``controllers`` never import rclpy (only the ROS 2 nodes in ros2_ws do):
  checked by importing every module in a fresh interpreter and inspecting ``sys.modules``,
  and statically over the source with ``ast`` (which also sees imports inside functions).
- ``controllers`` is the bottom of the stack: it never imports ``ohio_core`` (statically, and no
  module of it loads one of ``ohio_core`` in a fresh interpreter), so the two packages form no cycle.
- ``ohio_core.envs`` and the routing simulation (``ohio_core.routing``'s scenario, scenario_io, sim
  and env modules, ``ROUTING_SIMULATION``) run no controller of their own: the simulators take their
  low level as an argument. From ``controllers`` they, and the routing behavior heuristics, import
  only the robot description, the goal conventions, the validation helpers and the flow arithmetic
  the routing simulator shares with the rebalancing LP (``ENVS_MAY_IMPORT``), directly or through
  another module.
- Inside ``ohio_core``, the offline layers point down: the data, inverse and pipeline packages and
  the routing inverse and datasets never import learning (nor the routing region networks),
  experiments, the benchmarks or the command-line front ends; learning and the region networks never
  import experiments (the routing experiment included), benchmarks or the front ends; the routing
  experiment may import learning, not the benchmarks or the front ends.
- ``controllers``, ``ohio_core.envs`` and the routing simulation import none of data, inverse,
  pipeline, policies, learning, experiments or the front ends (nor the routing heuristics, inverse
  and datasets); the routing heuristics import none of them but the simulation.
- Every module of ``ohio_core.routing`` has its place in these rules (``ROUTING_LAYERS``).
- The 50 Hz controller node loads no simulator, data collection or offline layer.
- Each ROS package's ``package.xml`` (ros2_ws/src/*/) declares exactly what its sources import: the
  project packages and a rosdep key for every third-party module (``DEPENDENCY_KEYS``).

Modules are discovered from the files on disk, so new modules are covered without edits here.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

CORE_PACKAGES = ("ohio_core", "controllers")
ENVS_PACKAGE = "ohio_core.envs"
#: what ``ohio_core.envs`` may take from ``controllers``: no control law
ENVS_MAY_IMPORT = ("controllers.description", "controllers.goals", "controllers.validate", "controllers.rebalancing")
#: what loading those brings in besides them
ENVS_MAY_LOAD = ENVS_MAY_IMPORT + ("controllers", "controllers.config")
ROS_CLIENT = "rclpy"

ROUTING = "ohio_core.routing"
#: the routing domain's modules by layer: the city and its simulator and envs (the part of
#: ``ohio_core.envs``), the behavior heuristics on them, the offline modules (the LP's inverse and the
#: datasets relabeled with it), the region-shared networks (a part of learning: learning builds them),
#: and the front modules (the experiment, which trains with learning, and the benchmark)
ROUTING_LAYERS = {
    "simulation": ("scenario", "scenario_io", "city", "cities", "sim", "env"),
    "policies": ("policies",),
    "offline": ("inverse", "datasets"),
    "learning": ("region_net",),
    "front": ("experiment", "bench"),
}


def routing_modules(layer: str) -> tuple[str, ...]:
    return tuple(f"{ROUTING}.{name}" for name in ROUTING_LAYERS[layer])


ROUTING_SIMULATION = routing_modules("simulation")
#: what may import from ``controllers`` only what ``ohio_core.envs`` may
ENVS_LIKE = (ENVS_PACKAGE, *ROUTING_SIMULATION, *routing_modules("policies"))

# Run in a fresh interpreter: import the given modules one by one and record which of them
# brought in a module matching one of the given prefixes (the module itself or a submodule).
_PROBE = r"""
import importlib, json, sys, traceback

prefixes, modules, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]

def matching():
    return {m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in prefixes)}

report = {"baseline": sorted(matching()), "culprits": {}, "errors": {}, "files": {}}
for name in modules:
    before = matching()
    try:
        module = importlib.import_module(name)
        report["files"][name] = getattr(module, "__file__", None)
    except BaseException:
        report["errors"][name] = traceback.format_exc(limit=-3)
    new = matching() - before
    if new:
        report["culprits"][name] = sorted(new)
with open(out, "w") as f:
    json.dump(report, f)
"""


def package_dir(package: str) -> Path:
    """Directory of an importable package, found the way ``import`` finds it."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, f"{package} is not an importable package"
    (location,) = spec.submodule_search_locations
    return Path(location)


def source_files(package: str) -> list[Path]:
    """The source files of a package, or the file of a plain module."""
    spec = importlib.util.find_spec(package)
    if spec is not None and not spec.submodule_search_locations and spec.origin:
        return [Path(spec.origin)]
    return sorted(p for p in package_dir(package).rglob("*.py") if "__pycache__" not in p.parts)


def module_name(package: str, path: Path) -> str | None:
    """Dotted module name of a source file, or None if it cannot be imported by name."""
    parts = [*package.split("."), *path.relative_to(package_dir(package)).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    if not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def discover_modules(package: str) -> list[str]:
    """Every importable module of the package, parents first. ``__main__`` modules are left
    out: importing one runs its program. Namespace sub-packages (no ``__init__.py``) count too."""
    names = {module_name(package, p) for p in source_files(package)}
    names.discard(None)
    names.add(package)
    return sorted((n for n in names if n.rsplit(".", 1)[-1] != "__main__"), key=lambda n: (n.count("."), n))


def imported_names(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the source, wherever it appears:
    ``import a.b``, ``from a.b import c``, ``importlib.import_module("a.b")``, ``__import__("a.b")``.
    Relative imports are skipped: they stay inside their own package."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            arg = node.args[0]
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.lineno, arg.value))
    return found


def is_within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def static_imports(packages, forbidden: str) -> list[tuple[Path, int, str]]:
    """(file, line, module) of every import of ``forbidden`` (or a submodule) in the packages' sources."""
    return [(path, line, name) for package in packages for path in source_files(package)
            for line, name in imported_names(path.read_text(encoding="utf-8"), str(path))
            if is_within(name, forbidden)]


def static_violations(packages, forbidden: str) -> list[str]:
    return [f"{path}:{line}: imports {name}" for path, line, name in static_imports(packages, forbidden)]


def probe(tmp_path: Path, prefixes: list[str], modules: list[str]) -> dict:
    """Import ``modules`` in a fresh interpreter; see _PROBE for the report."""
    out = tmp_path / "probe.json"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(prefixes), json.dumps(modules), str(out)],
        cwd=package_dir(CORE_PACKAGES[0]).parent, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and out.is_file(), (
        f"probe interpreter failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(out.read_text())


def _format_errors(errors: dict) -> str:
    return "\n".join(f"--- {name}\n{tb}" for name, tb in errors.items())


@pytest.fixture(scope="module")
def core_import_report(tmp_path_factory) -> dict:
    modules = [m for package in CORE_PACKAGES for m in discover_modules(package)]
    report = probe(tmp_path_factory.mktemp("core"), [ROS_CLIENT], modules)
    report["modules"] = modules
    return report


# --- the rules -------------------------------------------------------------------------


def test_every_core_module_imports(core_import_report):
    assert not core_import_report["errors"], (
        "modules of ohio_core/controllers fail to import:\n" + _format_errors(core_import_report["errors"]))


def test_core_modules_do_not_import_rclpy_at_runtime(core_import_report):
    assert not core_import_report["baseline"], (
        f"{ROS_CLIENT} is already loaded by a bare interpreter: {core_import_report['baseline']}; "
        "this check cannot see the project's imports")
    culprits = core_import_report["culprits"]
    assert not culprits, (
        f"ohio_core and controllers must not import {ROS_CLIENT} (only ros2_ws nodes do); "
        "first module to load it, with what it loaded:\n"
        + "\n".join(f"  {name}: {', '.join(new[:5])}" for name, new in culprits.items()))


def test_core_sources_do_not_import_rclpy():
    violations = static_violations(CORE_PACKAGES, ROS_CLIENT)
    assert not violations, f"{ROS_CLIENT} imported in the core packages:\n" + "\n".join(violations)


def test_controllers_sources_do_not_import_ohio_core():
    violations = static_violations(["controllers"], "ohio_core")
    assert not violations, "controllers sits below ohio_core and must not import it:\n" + "\n".join(violations)


def test_controllers_modules_do_not_load_ohio_core(tmp_path):
    """Also through other modules: a fresh interpreter imports every module of controllers."""
    report = probe(tmp_path, ["ohio_core"], discover_modules("controllers"))
    assert report["baseline"] == [], f"ohio_core is loaded by a bare interpreter: {report['baseline']}"
    assert not report["errors"], "controllers modules fail to import:\n" + _format_errors(report["errors"])
    assert not report["culprits"], (
        "controllers sits below ohio_core and must not load it (directly or through another module):\n"
        + "\n".join(f"  {name}: {', '.join(new[:5])}" for name, new in report["culprits"].items()))


@pytest.mark.parametrize("package", ENVS_LIKE)
def test_envs_sources_import_no_controller(package):
    violations = [f"{path}:{line}: imports {name}" for path, line, name in static_imports([package], "controllers")
                  if not any(is_within(name, allowed) for allowed in ENVS_MAY_IMPORT)]
    assert not violations, (f"{package} takes its controller as an argument; from controllers it may "
                            f"import only {list(ENVS_MAY_IMPORT)}:\n" + "\n".join(violations))


#: learning and what it builds (the routing region networks), above the offline layers
LEARNING = ("ohio_core.learning", *routing_modules("learning"))
#: experiments, benchmarks and front ends, above learning
FRONT = ("ohio_core.experiments", "ohio_core.cli", "ohio_core.demo", "ohio_core.bench", *routing_modules("front"))
UPPER = LEARNING + FRONT
ROUTING_EXPERIMENT = f"{ROUTING}.experiment"
#: (lower, upper): the lower never imports the upper
POINTS_DOWN = [
    *[(low, up) for low in ("ohio_core.data", "ohio_core.inverse", "ohio_core.pipeline", *routing_modules("offline"))
      for up in UPPER],
    *[(low, up) for low in LEARNING for up in FRONT],
    (f"{ROUTING}.region_net", "ohio_core.learning"),            # learning builds the region networks
    *[(ROUTING_EXPERIMENT, up) for up in FRONT if up != ROUTING_EXPERIMENT],   # experiments reuse its data
]


@pytest.mark.parametrize("package, forbidden", POINTS_DOWN)
def test_offline_layers_point_down(package, forbidden):
    violations = static_violations([package], forbidden)
    assert not violations, f"{package} sits below {forbidden} and must not import it:\n" + "\n".join(violations)


OFFLINE = ("ohio_core.data", "ohio_core.inverse", "ohio_core.pipeline", "ohio_core.policies",
           *routing_modules("policies"), *routing_modules("offline"))


@pytest.mark.parametrize("package, forbidden", [
    (low, up) for low in ("controllers", ENVS_PACKAGE, *ROUTING_SIMULATION) for up in OFFLINE + UPPER
] + [(policies, up) for policies in routing_modules("policies") for up in OFFLINE + UPPER if up != policies])
def test_controllers_and_envs_sit_below_the_offline_layers(package, forbidden):
    """Controllers and simulators are the bottom of the stack: no data, inverse, pipeline, policies,
    learning or front ends in them (the routing env takes its rebalancing controller as an argument);
    the routing heuristics stand on the simulation alone."""
    violations = static_violations([package], forbidden)
    assert not violations, f"{package} sits below {forbidden} and must not import it:\n" + "\n".join(violations)


def test_every_routing_module_has_a_layer():
    """A new module of ohio_core.routing is placed in ROUTING_LAYERS before the rules above cover it."""
    placed = {m for layer in ROUTING_LAYERS for m in routing_modules(layer)}
    assert set(discover_modules(ROUTING)) - {ROUTING} == placed


def test_envs_modules_do_not_load_controllers(tmp_path):
    """Also through other modules: a fresh interpreter imports all of ohio_core.envs, the routing
    simulation and the routing heuristics."""
    laws = [m for m in discover_modules("controllers") if m not in ENVS_MAY_LOAD]
    assert "controllers.osc" in laws and "controllers.robot" in laws
    report = probe(tmp_path, laws, [*discover_modules(ENVS_PACKAGE), *ENVS_LIKE[1:]])
    assert not report["errors"], "ohio_core.envs modules fail to import:\n" + _format_errors(report["errors"])
    assert not report["culprits"], (
        "ohio_core.envs takes its controller as an argument and must not load a control law (directly or "
        "through another module):\n"
        + "\n".join(f"  {name}: {', '.join(new[:5])}" for name, new in report["culprits"].items()))


#: the 50 Hz controller node's module and what its import chain must not load: a simulator, the
#: data collection (MuJoCo, the bag writer, tqdm) or the offline layers
CONTROLLER_NODE = "ohio_ros.arm.controller_node"
CONTROLLER_NODE_NEVER_LOADS = ["mujoco", "ohio_core.envs", "ohio_core.data.collect", "ohio_core.data.bags",
                               "ohio_core.inverse", "ohio_core.pipeline", "ohio_core.learning", "tqdm"]


def test_controller_node_loads_no_simulator(tmp_path):
    report = probe(tmp_path, CONTROLLER_NODE_NEVER_LOADS, [CONTROLLER_NODE])
    assert not report["errors"], f"{CONTROLLER_NODE} fails to import:\n" + _format_errors(report["errors"])
    assert report["baseline"] == [] and report["files"][CONTROLLER_NODE]
    assert not report["culprits"], (f"{CONTROLLER_NODE} loads what it never uses: "
                                    f"{report['culprits'][CONTROLLER_NODE][:8]}")


# --- package.xml files declare what their packages import ---------------------------------

#: ROS package (ros2_ws/src/<name>/package.xml) -> the folders of its Python sources, from the repository root
ROS_PACKAGES = {"controllers": ["controllers"], "ohio_core": ["ohio_core"],
                "ohio_ros": ["ros2_ws/src/ohio_ros/ohio_ros", "launch"]}
#: third-party module -> the rosdep key of package.xml that provides it
DEPENDENCY_KEYS = {
    "numpy": "python3-numpy", "scipy": "python3-scipy", "yaml": "python3-yaml", "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib", "pinocchio": "pinocchio", "quadprog": "python3-quadprog-pip",
    "mujoco": "python3-mujoco-pip", "gymnasium": "python3-gymnasium-pip", "rosbags": "python3-rosbags-pip",
    "torch": "python3-torch", "d3rlpy": "python3-d3rlpy-pip", "structlog": "python3-structlog",
    "ray": "python3-ray-pip", "PIL": "python3-pil", "imageio_ffmpeg": "python3-imageio-ffmpeg-pip",
    **{ros: ros for ros in ("rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "sensor_msgs",
                            "geometry_msgs", "rosgraph_msgs", "diagnostic_msgs", "ament_index_python", "launch",
                            "launch_ros")},
}


def repo_root() -> Path:
    return package_dir(CORE_PACKAGES[0]).parent


def declared_dependencies(package: str) -> set[str]:
    root = ET.parse(repo_root() / "ros2_ws" / "src" / package / "package.xml").getroot()
    assert root.findtext("name") == package
    return {e.text.strip() for tag in ("depend", "exec_depend") for e in root.iter(tag)}


def imported_top_levels(package: str) -> dict[str, str]:
    """First-level module -> where it is first imported, over the package's sources (stdlib left out)."""
    found = {}
    for folder in ROS_PACKAGES[package]:
        for path in sorted((repo_root() / folder).rglob("*.py")):
            for line, name in imported_names(path.read_text(encoding="utf-8"), str(path)):
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != package:
                    found.setdefault(top, f"{path}:{line}")
    return found


@pytest.mark.parametrize("package", sorted(ROS_PACKAGES))
def test_package_xml_declares_what_the_package_imports(package):
    imports = imported_top_levels(package)
    assert "numpy" in imports
    unknown = {m: where for m, where in imports.items() if m not in ROS_PACKAGES and m not in DEPENDENCY_KEYS}
    assert not unknown, (f"{package} imports modules with no rosdep key (add each to DEPENDENCY_KEYS and to "
                         f"ros2_ws/src/{package}/package.xml): {unknown}")
    key = {m: m if m in ROS_PACKAGES else DEPENDENCY_KEYS[m] for m in imports}
    needed, declared = set(key.values()), declared_dependencies(package)
    missing = {m: where for m, where in imports.items() if key[m] not in declared}
    assert not missing, f"ros2_ws/src/{package}/package.xml does not declare what these import: {missing}"
    assert declared <= needed, f"ros2_ws/src/{package}/package.xml declares what it never imports: {declared - needed}"


def test_controllers_package_depends_on_no_other_project_package():
    assert not declared_dependencies("controllers") & set(ROS_PACKAGES)
    assert "controllers" in declared_dependencies("ohio_core")
    assert {"controllers", "ohio_core"} <= declared_dependencies("ohio_ros")


# --- the checks above see what they claim to see ----------------------------------------


def test_discovery_covers_every_source_file(core_import_report):
    """Discovery is not vacuous: every source file with an importable name was imported,
    from the same tree the static checks read."""
    for package in CORE_PACKAGES:
        named = {module_name(package, p) for p in source_files(package)} - {None}
        named = {n for n in named if not n.endswith(".__main__")}
        assert package in named or not (package_dir(package) / "__init__.py").exists()
        missing = named - set(core_import_report["modules"])
        assert not missing, f"modules not probed: {sorted(missing)}"
    for name, file in core_import_report["files"].items():
        if file is None:  # a namespace package has no file
            continue
        package = next(p for p in CORE_PACKAGES if is_within(name, p))
        root = package_dir(package).resolve()
        assert root in Path(file).resolve().parents, f"{name} was imported from {file}, not from {root}"


def test_static_check_recognises_every_import_form():
    source = "\n".join([
        "import rclpy",
        "import numpy, rclpy.node as rn",
        "from rclpy.qos import QoSProfile",
        "from rclpy import node",
        "def lazy():",
        "    import importlib",
        "    return importlib.import_module('rclpy.executors'), __import__('rclpy')",
        "import rclpyx",             # a different package
        "from .rclpy import thing",  # relative: inside the own package
    ])
    hits = sorted((line, name) for line, name in imported_names(source) if is_within(name, ROS_CLIENT))
    assert hits == [(1, "rclpy"), (2, "rclpy.node"), (3, "rclpy.qos"), (4, "rclpy"),
                    (7, "rclpy"), (7, "rclpy.executors")]


def test_probe_sees_transitive_imports(tmp_path):
    # xml.dom.minidom pulls in xml.dom.minicompat: the probe attributes it to the module imported.
    report = probe(tmp_path, ["xml.dom.minicompat"], ["xml.dom.minidom"])
    assert report["baseline"] == []
    assert report["culprits"] == {"xml.dom.minidom": ["xml.dom.minicompat"]}
    assert not report["errors"]

"""Static reading of the launch files, and the command lines launch_ros would run for them.

``launch``/``launch_ros`` cannot be installed here, so ``ros2 launch`` is not exercised. Instead
the launch files are read with ``ast``: ``generate_launch_description`` may only assign names
and return a ``LaunchDescription`` built from the substitutions and actions listed in
``_CALLS``; anything else is an error (the launch files stay plain declarative lists). Launch
arguments take their declared defaults unless overridden, and each ``Node`` becomes the command
line launch_ros builds for it: ``<executable> [arguments] --ros-args -r __node:=NAME
[-r __ns:=NS] --params-file FILE... -r FROM:=TO...``, a parameter dict becoming a temporary
``/**: ros__parameters`` file as launch_ros writes it. An executable is the console script pip
installed beside this Python; one that is not installed there yet (an entry point added to
setup.py since the environment was built; ``./run.sh`` reinstalls the package) is run as
``python -m <module>`` of its entry point: the same ``main()``, and the same arguments.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
import sys

import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "ros2_ws" / "src" / "ohio_ros"
LAUNCH_DIR = REPO / "launch"
#: FindPackageShare('ohio_ros') in the source tree: the package folder holds config/, and
#: launch/ and urdf/ link to the repository's folders, as share/ohio_ros does once installed
SHARE = {"ohio_ros": PACKAGE}
ALLOWED_MODULES = ("launch", "launch.actions", "launch.conditions", "launch.substitutions",
                   "launch_ros.actions", "launch_ros.parameter_descriptions", "launch_ros.substitutions")


class LaunchReadError(ValueError):
    """The launch file uses something this reader (and the plain-list style) does not allow."""


# -- symbolic values of a launch description -------------------------------------------------


@dataclass(frozen=True)
class Arg:
    name: str
    default: object = None
    description: str = ""
    choices: tuple | None = None


@dataclass(frozen=True)
class Config:      # LaunchConfiguration
    name: str


@dataclass(frozen=True)
class PathJoin:    # PathJoinSubstitution
    parts: tuple


@dataclass(frozen=True)
class Share:       # FindPackageShare
    package: str


@dataclass(frozen=True)
class Value:       # ParameterValue
    value: object
    value_type: object = None


@dataclass(frozen=True)
class If:          # IfCondition
    predicate: object


@dataclass
class NodeDecl:
    """A ``launch_ros.actions.Node`` with its keyword arguments (still symbolic)."""

    kwargs: dict


@dataclass
class Node:
    """A resolved Node action."""

    package: str
    executable: str
    name: str
    namespace: str = ""
    parameters: list = field(default_factory=list)    # Path (params file) or dict
    remappings: list = field(default_factory=list)    # (from, to)
    arguments: list = field(default_factory=list)
    enabled: bool = True


@dataclass
class Launch:
    path: Path
    arguments: dict       # name -> Arg
    values: dict          # name -> value used (defaults + overrides)
    nodes: list           # resolved Node, including disabled ones (enabled False)


_CALLS = {"LaunchDescription", "DeclareLaunchArgument", "LaunchConfiguration", "PathJoinSubstitution",
          "FindPackageShare", "ParameterValue", "IfCondition", "Node"}


#: the value types a ParameterValue may name
_VALUE_TYPES = {"str": str, "float": float, "int": int, "bool": bool}


def _eval(node: ast.AST, env: dict):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, env) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_eval(k, env): _eval(v, env) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Name):
        if node.id in _VALUE_TYPES:
            return _VALUE_TYPES[node.id]
        if node.id not in env:
            raise LaunchReadError(f"line {node.lineno}: unknown name {node.id!r}")
        return env[node.id]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CALLS:
        args = [_eval(a, env) for a in node.args]
        kw = {k.arg: _eval(k.value, env) for k in node.keywords}
        f = node.func.id
        if f == "LaunchDescription":
            return list(args[0]) if args else []
        if f == "DeclareLaunchArgument":
            choices = kw.get("choices")
            return Arg(args[0], kw.get("default_value"), kw.get("description", ""),
                       None if choices is None else tuple(choices))
        if f == "LaunchConfiguration":
            return Config(args[0])
        if f == "PathJoinSubstitution":
            return PathJoin(tuple(args[0]))
        if f == "FindPackageShare":
            return Share(args[0])
        if f == "ParameterValue":
            return Value(args[0], kw.get("value_type"))
        if f == "IfCondition":
            return If(args[0])
        if f == "Node":
            if args:
                raise LaunchReadError(f"line {node.lineno}: Node(...) takes keyword arguments only")
            return NodeDecl(kw)
    raise LaunchReadError(f"line {getattr(node, 'lineno', '?')}: unsupported expression "
                          f"{ast.unparse(node)[:80]!r}")


def _resolve(value, values: dict):
    """A symbolic value -> plain Python (strings for substitutions, as launch performs them)."""
    if isinstance(value, Config):
        if value.name not in values:
            raise LaunchReadError(f"LaunchConfiguration({value.name!r}) is not a declared launch argument")
        return _resolve(values[value.name], values)
    if isinstance(value, PathJoin):
        return str(Path(*[str(_resolve(p, values)) for p in value.parts]))
    if isinstance(value, Share):
        if value.package not in SHARE:
            raise LaunchReadError(f"FindPackageShare({value.package!r}): not a package of this workspace")
        return str(SHARE[value.package])
    if isinstance(value, list):
        return [_resolve(v, values) for v in value]
    return value


def _param_value(value, values: dict):
    """A parameter dict entry as launch_ros evaluates it."""
    if isinstance(value, Value):
        resolved = _resolve(value.value, values)
        return value.value_type(resolved) if value.value_type is not None else yaml.safe_load(str(resolved))
    if isinstance(value, (Config, PathJoin, Share)):
        return yaml.safe_load(str(_resolve(value, values)))   # substitutions: the text is YAML-parsed
    return value


def _condition(cond, values: dict) -> bool:
    if cond is None:
        return True
    if not isinstance(cond, If):
        raise LaunchReadError(f"unsupported condition {cond!r}")
    text = str(_resolve(cond.predicate, values)).strip().lower()
    if text not in ("true", "false", "1", "0"):
        raise LaunchReadError(f"IfCondition expects true/false, got {text!r}")
    return text in ("true", "1")


def read_launch(path: Path, overrides: dict | None = None) -> Launch:
    """Read a launch file; ``overrides`` are launch arguments (``name:=value``)."""
    path = Path(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    env: dict = {}
    func = None
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            if stmt.module not in ALLOWED_MODULES:
                raise LaunchReadError(f"{path.name}: imports from {stmt.module!r}")
            for alias in stmt.names:
                if alias.name not in _CALLS:
                    raise LaunchReadError(f"{path.name}: imports {alias.name!r}, not handled here")
        elif isinstance(stmt, ast.Import):
            raise LaunchReadError(f"{path.name}: plain import {ast.unparse(stmt)!r}")
        elif isinstance(stmt, ast.FunctionDef) and stmt.name == "generate_launch_description":
            func = stmt
        elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
            raise LaunchReadError(f"{path.name}: line {stmt.lineno}: only imports and "
                                  f"generate_launch_description() are expected at module level")
    if func is None:
        raise LaunchReadError(f"{path.name}: no generate_launch_description()")
    result = None
    for stmt in func.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            env[stmt.targets[0].id] = _eval(stmt.value, env)
        elif isinstance(stmt, ast.Return):
            result = _eval(stmt.value, env)
        else:
            raise LaunchReadError(f"{path.name}: line {stmt.lineno}: unsupported statement")
    if not isinstance(result, list):
        raise LaunchReadError(f"{path.name}: generate_launch_description() must return a LaunchDescription")
    arguments = {a.name: a for a in result if isinstance(a, Arg)}
    unknown = sorted(set(overrides or {}) - set(arguments))
    if unknown:
        raise LaunchReadError(f"{path.name}: no launch argument(s) {unknown}; declared: {sorted(arguments)}")
    values = {name: a.default for name, a in arguments.items()}
    values.update(overrides or {})
    missing = [n for n, v in values.items() if v is None]
    if missing:
        raise LaunchReadError(f"{path.name}: launch argument(s) {missing} have no default and no value")
    for name, a in arguments.items():      # as launch does: a value outside the declared choices is refused
        if a.choices is not None and values[name] not in a.choices:
            raise LaunchReadError(f"{path.name}: launch argument {name!r} must be one of {list(a.choices)}, "
                                  f"got {values[name]!r}")
    nodes = []
    for decl in (x for x in result if isinstance(x, NodeDecl)):
        kw = dict(decl.kwargs)
        params = []
        for p in kw.pop("parameters", []):
            if isinstance(p, dict):
                params.append({k: _param_value(v, values) for k, v in p.items()})
            else:
                params.append(Path(_resolve(p, values)))
        nodes.append(Node(
            package=_resolve(kw.pop("package"), values), executable=_resolve(kw.pop("executable"), values),
            name=_resolve(kw.pop("name"), values), namespace=_resolve(kw.pop("namespace", ""), values),
            parameters=params,
            remappings=[tuple(_resolve(list(r), values)) for r in kw.pop("remappings", [])],
            arguments=[str(a) for a in _resolve(kw.pop("arguments", []), values)],
            enabled=_condition(kw.pop("condition", None), values)))
        kw.pop("output", None)
        if kw:
            raise LaunchReadError(f"{path.name}: Node argument(s) {sorted(kw)} not handled here")
    return Launch(path=path, arguments=arguments, values=values, nodes=nodes)


def entry_points() -> dict:
    """console_scripts of ohio_ros's setup.py: executable -> 'module:function'."""
    tree = ast.parse((PACKAGE / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            scripts = ast.literal_eval(node.value)["console_scripts"]
            return dict(s.replace(" ", "").split("=", 1) for s in scripts)
    raise LaunchReadError("setup.py has no entry_points")


def executable_path(executable: str) -> Path:
    """The console script pip installed for an entry point of ohio_ros (beside this Python)."""
    return Path(sys.executable).parent / executable


def executable_command(executable: str) -> list[str]:
    """The console script, or ``python -m MODULE`` of its entry point while it is not installed."""
    path = executable_path(executable)
    if path.is_file():
        return [str(path)]
    scripts = entry_points()
    if executable not in scripts:
        raise LaunchReadError(f"{executable} is not a console script of ohio_ros's setup.py")
    module, func = scripts[executable].split(":")
    if func != "main":
        raise LaunchReadError(f"{executable}: entry point {scripts[executable]} is not a module's main()")
    return [sys.executable, "-m", module]


def command_line(node: Node, tmp_dir: Path) -> list[str]:
    """The command launch_ros runs for ``node`` (parameter dicts written under ``tmp_dir``)."""
    cmd = [*executable_command(node.executable), *node.arguments, "--ros-args", "-r", f"__node:={node.name}"]
    if node.namespace:
        cmd += ["-r", f"__ns:={node.namespace}"]
    for i, p in enumerate(node.parameters):
        if isinstance(p, dict):
            f = Path(tmp_dir) / f"launch_params_{node.name}_{i}.yaml"
            f.write_text(yaml.safe_dump({"/**": {"ros__parameters": p}}))
            p = f
        cmd += ["--params-file", str(p)]
    for src, dst in node.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd

"""README.md and docs/ name only what exists.

What the pages show in code (inline code spans and fenced code blocks) is checked against the
repository and the command line:

- every ``ohio ...`` command exists: ``ohio SUB [SUB2] --help`` exits 0, and every ``--option`` the
  command shows is in that help text;
- every ``./run.sh COMMAND`` is a command of ``run.sh``, and every ``ros2 launch ohio_ros FILE ARG:=...``
  names a launch file of ``launch/`` that declares each argument;
- every repository path exists (relative to the repository root; a bare file name such as
  ``sim_arm.launch.py`` somewhere in the tree; wildcards match at least one file; a name with an
  upper-case stem, ``CONFIG.yaml``, stands for the reader's own file). A token is a
  repository path when it ends in a file suffix of the project (``.py``, ``.yaml``, ``.md``, ...),
  or contains ``/`` and starts with a top-level entry of the repository. Paths git ignores (``out/``,
  ``.venv/``, colcon's ``ros2_ws/install/``) are outputs, not repository paths; ROS topic names
  (``ohio/ee_goal``) start with no top-level entry and are not paths;
- every dotted name of the project's packages (``ohio_core.data.bags.BagWriter``) resolves to a
  module, and a name after the module is defined at its top level;
- every relative link points to an existing file, and a ``#fragment`` to one of its headings.

README.md stays short (at most ``README_MAX_LINES`` lines); longer material goes to docs/.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from ohio_core.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 200
REQUIRED_PAGES = ("docs/architecture.md", "docs/ros.md", "docs/relabeling.md", "docs/routing.md",
                  "docs/benchmarks.md")
#: suffixes that make a token a file path even without a "/" (then it is looked up by name)
FILE_SUFFIXES = (".py", ".yaml", ".yml", ".md", ".sh", ".toml", ".urdf", ".xml")
#: project packages whose dotted names are resolved, and the folder each lives in
PACKAGES = {"ohio_core": ROOT / "ohio_core", "controllers": ROOT / "controllers",
            "ohio_ros": ROOT / "ros2_ws" / "src" / "ohio_ros" / "ohio_ros"}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")
SUBCOMMAND = re.compile(r"^[a-z][a-z0-9-]*$")
OPTION = re.compile(r"^--[a-z0-9][a-z0-9-]*")
DOTTED = re.compile(r"^(?:%s)(?:\.[A-Za-z_]\w*)+" % "|".join(PACKAGES))


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def doc_ids() -> list[str]:
    return [str(p.relative_to(ROOT)) for p in doc_files()]


# --- what a page shows in code ------------------------------------------------------------


def outside_fences(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(numbered lines outside fenced code blocks, numbered lines inside them)."""
    outside, inside, fence = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            else:
                inside.append((number, line))
        elif opening:
            fence = opening.group(1)
        else:
            outside.append((number, line))
    return outside, inside


def paragraphs(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of every run of non-blank lines outside fenced code blocks."""
    found, start, block, last = [], 0, [], -1
    for number, line in outside_fences(text)[0] + [(-1, "")]:
        if block and (not line.strip() or number != last + 1):
            found.append((start, "\n".join(block)))
            block = []
        if line.strip():
            start = start if block else number
            block.append(line)
        last = number
    return found


def code_snippets(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every inline code span (it may run over several lines of a paragraph)
    and of every line of a fenced code block."""
    spans = [(start + block.count("\n", 0, m.start()), " ".join(m.group(2).split()).replace("\\|", "|"))
             for start, block in paragraphs(text) for m in SPAN.finditer(block)]
    # (a code span inside a table cell writes "|" as "\|")
    return sorted(spans + outside_fences(text)[1], key=lambda item: item[0])


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of the paragraphs outside fenced code blocks, code spans removed."""
    return [(start, SPAN.sub("", block)) for start, block in paragraphs(text)]


def shell_words(code: str) -> list[str]:
    code = code.split(" #", 1)[0] if not code.lstrip().startswith("#") else ""
    try:
        return shlex.split(code)
    except ValueError:          # an unbalanced quote in prose-like code: split on blanks
        return code.split()


def commands(code: str, program: str) -> list[list[str]]:
    """The argument lists of every invocation of ``program`` in a line of code (at its start, after
    ``$`` or environment assignments, or after a shell operator)."""
    found, current = [], []

    def end():
        while current and (ENV_ASSIGNMENT.match(current[0]) or current[0] == "$"):
            current.pop(0)
        if current and current[0] == program:
            found.append(current[1:])
        current.clear()

    for word in shell_words(code):
        if word in ("&&", "||", ";", "|", "&", "(", ")"):
            end()
        elif word.endswith(";"):
            current.append(word[:-1])
            end()
        else:
            current.append(word)
    end()
    return found


# --- the ohio command line ----------------------------------------------------------------


def subparsers(parser) -> dict:
    """Subcommand name -> parser of an argparse parser (empty when it has none)."""
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return dict(action.choices)
    return {}


def command_path(args: list[str]) -> tuple[str, ...] | None:
    """The subcommand words an ``ohio`` invocation starts with (``("experiment", "routing")``);
    None when its first word is not a subcommand-like word (a placeholder such as ``CMD``)."""
    path, parser = [], build_parser()
    for word in args:
        children = subparsers(parser)
        if not children:
            break
        if not SUBCOMMAND.match(word):
            return tuple(path) if path else None
        path.append(word)
        parser = children.get(word)
        if parser is None:
            break
    return tuple(path) if path else None


@functools.lru_cache(maxsize=None)
def help_text(path: tuple[str, ...]) -> tuple[int, str]:
    """(exit status, output) of ``ohio PATH... --help``, run through the CLI's own entry point."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            status = main([*path, "--help"])
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
    return int(status or 0), out.getvalue()


def command_problems(code: str) -> list[str]:
    problems = []
    for args in commands(code, "ohio"):
        path = command_path(args)
        if path is None:
            continue
        shown = "ohio " + " ".join(path)
        status, text = help_text(path)
        if status != 0:
            problems.append(f"`{shown} --help` exits {status}: {text.strip().splitlines()[-1:]}")
            continue
        for word in args[len(path):]:
            option = OPTION.match(word)
            if option and not re.search(re.escape(option.group(0)) + r"(?![a-z0-9-])", text):
                problems.append(f"`{shown}` has no option {option.group(0)}")
    for args in commands(code, "ros2"):
        if args[:2] == ["launch", "ohio_ros"] and len(args) > 2:
            problems += launch_problems(args[2], [a.split(":=", 1)[0] for a in args[3:] if ":=" in a])
    for args in commands(code, "./run.sh"):
        if args and args[0] not in run_sh_commands():
            problems.append(f"`./run.sh {args[0]}`: run.sh has no command {args[0]!r} "
                            f"(it has {sorted(run_sh_commands())})")
    return problems


def launch_problems(name: str, arguments: list[str]) -> list[str]:
    """``ros2 launch ohio_ros NAME ARG:=...``: the launch file exists and declares every argument."""
    path = ROOT / "launch" / name
    if not path.is_file():
        return [f"`ros2 launch ohio_ros {name}`: no launch/{name}"]
    declared = set(re.findall(r"DeclareLaunchArgument\(\s*'([^']+)'", path.read_text()))
    return [f"`ros2 launch ohio_ros {name}` declares no argument {a!r}" for a in arguments if a not in declared]


@functools.lru_cache(maxsize=None)
def run_sh_commands() -> frozenset[str]:
    """The words of run.sh's top-level ``case "$cmd"`` patterns."""
    text = (ROOT / "run.sh").read_text()
    block = text[text.index('case "$cmd" in'):]
    return frozenset(w.strip() for pattern in re.findall(r"^\s{4}([-\w |]+)\)\s*$", block, re.M)
                     for w in pattern.split("|"))


# --- repository paths ---------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def top_level_entries() -> frozenset[str]:
    """Names in the repository root that git does not ignore."""
    names = [p.name for p in ROOT.iterdir() if p.name != ".git"]
    return frozenset(set(names) - git_ignored(tuple(names)))


def git_ignored(paths: tuple[str, ...]) -> set[str]:
    """The paths (relative to the root, existing or not) that .gitignore excludes."""
    if not paths:
        return set()
    proc = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT, input="\n".join(paths),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1), f"git check-ignore failed: {proc.stderr.strip()}"
    return set(proc.stdout.splitlines())


@functools.lru_cache(maxsize=None)
def file_names() -> frozenset[str]:
    """Names of the files of the repository (git's tracked and untracked, not ignored)."""
    proc = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"git ls-files failed: {proc.stderr.strip()}"
    return frozenset(Path(line).name for line in proc.stdout.splitlines())


def path_candidates(code: str) -> list[str]:
    """Tokens of a piece of code that name a repository path (see the module docstring)."""
    found = []
    for word in code.split():
        for token in re.split(r":=|=", word):
            token = token.split("::", 1)[0].strip("`'\",;:()[]{}<>")    # a pytest node id names its file
            token = token[2:] if token.startswith("./") else token
            if not token or "://" in token or "..." in token or "\\" in token:
                continue
            first = token.split("/", 1)[0]
            if token.startswith(("/", "~", "$", "-", "*", ".")) and first not in top_level_entries():
                continue
            if "/" in token:
                if first in top_level_entries() or token.endswith(FILE_SUFFIXES):
                    found.append(token)
            elif token.endswith(FILE_SUFFIXES) and re.match(r"^[\w.-]+$", token):
                found.append(token)
    return found


def placeholder(token: str) -> bool:
    """A name that stands for the reader's own file: an upper-case stem (``CONFIG.yaml``, ``DIR/x``)."""
    return any(re.fullmatch(r"[A-Z][A-Z0-9_]+", part.split(".")[0]) for part in token.split("/"))


def path_problem(token: str) -> str | None:
    if placeholder(token) and not (ROOT / token).exists() and token not in file_names():
        return None
    if "/" not in token:
        if token in file_names() or (ROOT / token).exists():
            return None
        return f"{token}: no file of that name in the repository"
    bare = token.rstrip("/")
    if git_ignored((bare, bare + "/")):          # a folder pattern (``build/``) matches the name as a folder
        return None
    if any(c in token for c in "*?["):
        return None if next(ROOT.glob(token.rstrip("/")), None) else f"{token}: matches nothing"
    return None if (ROOT / token).exists() else f"{token}: does not exist"


# --- dotted names of the project's packages -------------------------------------------------


def module_file(parts: list[str]) -> Path | None:
    """The file of a dotted module name (a package's ``__init__.py``, or the folder of a namespace
    package), or None."""
    base = PACKAGES[parts[0]].joinpath(*parts[1:])
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base if base.is_dir() else None


@functools.lru_cache(maxsize=None)
def top_level_names(path: Path) -> frozenset[str]:
    """Names a module binds at its top level (none for a namespace package's folder)."""
    if path.is_dir():
        return frozenset()
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(names)


def dotted_problem(name: str) -> str | None:
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        path = module_file(parts[:n])
        if path is None:
            continue
        rest = parts[n:]
        if not rest:
            return None
        if rest[0] not in top_level_names(path):
            return f"{name}: {'.'.join(parts[:n])} defines no {rest[0]}"
        if len(rest) > 1 and not re.search(r"\b%s\b" % re.escape(rest[1]), path.read_text(encoding="utf-8")):
            return f"{name}: {'.'.join(parts[:n + 1])} has no {rest[1]}"
        return None
    return f"{name}: no such module"


def dotted_names(code: str) -> list[str]:
    return [m.group(0) for word in code.split() for m in [DOTTED.match(word.strip("`'\"(,;:[]"))] if m]


# --- links --------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation removed, blanks to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> frozenset[str]:
    return frozenset(slug(m.group(1)) for _, line in outside_fences(text)[0] for m in [HEADING.match(line)] if m)


def link_problem(page: Path, text: str, target: str) -> str | None:
    """What is wrong with a link of ``page`` (whose text is ``text``), or None."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):     # http:, https:, mailto:
        return None
    file, _, fragment = target.partition("#")
    path = (page.parent / file).resolve() if file else page
    if file and not path.exists():
        return f"link {target}: {file} does not exist"
    if fragment and path.suffix == ".md":
        if fragment not in anchors(text if not file else path.read_text(encoding="utf-8")):
            return f"link {target}: {path.relative_to(ROOT)} has no heading #{fragment}"
    return None


# --- the checks ---------------------------------------------------------------------------


def problems_of(page: Path, text: str | None = None) -> dict[str, list[str]]:
    """Problems of a page (its text read from disk unless given), by kind."""
    text = page.read_text(encoding="utf-8") if text is None else text
    found = {"commands": [], "paths": [], "names": [], "links": []}
    for number, code in code_snippets(text):
        where = f"{page.relative_to(ROOT)}:{number}: "
        found["commands"] += [where + p for p in command_problems(code)]
        found["paths"] += [where + p for p in map(path_problem, path_candidates(code)) if p]
        found["names"] += [where + p for p in map(dotted_problem, dotted_names(code)) if p]
    for number, line in prose_lines(text):
        for target in LINK.findall(line):
            problem = link_problem(page, text, target)
            if problem:
                found["links"].append(f"{page.relative_to(ROOT)}:{number}: {problem}")
    return found


@functools.lru_cache(maxsize=None)
def cached_problems(page: str) -> dict[str, list[str]]:
    return problems_of(ROOT / page)


def test_the_pages_exist():
    missing = [p for p in REQUIRED_PAGES if not (ROOT / p).is_file()]
    assert not missing, f"docs pages missing: {missing}"
    assert list((ROOT / "docs" / "results").glob("*.md")), "docs/results/ holds no result page"


def test_readme_is_short():
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, (f"README.md has {lines} lines, at most {README_MAX_LINES}: "
                                       "move material to docs/")


@pytest.mark.parametrize("page", doc_ids())
def test_commands_exist(page):
    problems = cached_problems(page)["commands"]
    assert not problems, "commands shown that the CLI does not have:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", doc_ids())
def test_paths_exist(page):
    problems = cached_problems(page)["paths"]
    assert not problems, "repository paths named that do not exist:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", doc_ids())
def test_dotted_names_resolve(page):
    problems = cached_problems(page)["names"]
    assert not problems, "module names that do not resolve:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", doc_ids())
def test_links_resolve(page):
    problems = cached_problems(page)["links"]
    assert not problems, "broken links:\n" + "\n".join(problems)


#: a Markdown page named in code or configuration: docs/NAME.md, or an upper-case NAME.md
CITED_PAGE = re.compile(r"(?<![\w/.-])((?:docs/(?:[\w-]+/)*[\w-]+|[A-Z][A-Z_]+)\.md)\b")


def cited_page_problems() -> list[str]:
    """Pages that code, configuration and launch files cite and that do not exist."""
    sources = [*PACKAGES.values(), ROOT / "config", ROOT / "ros2_ws" / "src" / "ohio_ros" / "launch"]
    problems = []
    for folder in sources:
        for path in sorted(folder.rglob("*")):
            if path.suffix not in (".py", ".yaml", ".yml") or "__pycache__" in path.parts:
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for page in CITED_PAGE.findall(line):
                    if not (ROOT / page).is_file():
                        problems.append(f"{path.relative_to(ROOT)}:{n}: {page} does not exist")
    return problems


def test_pages_cited_by_the_code_exist():
    problems = cited_page_problems()
    assert not problems, "pages cited in code or configuration that do not exist:\n" + "\n".join(problems)


def test_a_cited_page_that_is_gone_is_found():
    assert CITED_PAGE.findall('"""Topic names of this stack (DESIGN.md, docs/ros.md)."""') == ["DESIGN.md", "docs/ros.md"]
    assert CITED_PAGE.findall("see docs/results/mismatch.md and ohio_core/README.md") == ["docs/results/mismatch.md"]


def test_the_pages_show_what_is_checked():
    """Not vacuous: the pages show commands (two levels deep among them), paths, links and module names."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in doc_files())
    shown = [command_path(args) for _, code in code_snippets(text) for args in commands(code, "ohio")]
    assert len({p for p in shown if p}) >= 10 and any(p and len(p) == 2 for p in shown)
    assert sum(len(path_candidates(code)) for _, code in code_snippets(text)) >= 50
    assert sum(len(LINK.findall(line)) for _, line in prose_lines(text)) >= 10
    assert sum(len(dotted_names(code)) for _, code in code_snippets(text)) >= 5


# --- the checks see what they claim to see -----------------------------------------------


SAMPLE = """\
Run `ohio relabel BAGS --out DATASET --max-residual 1` or `ohio relabel --no-such-option`.

```bash
$ MUJOCO_GL=egl ohio experiment routing --regions 10 && ohio nonsense --json
./run.sh demo; ./run.sh build
ros2 launch ohio_ros sim_arm.launch.py task:=lift colour:=red; ros2 launch ohio_ros nothing.launch.py
```

| topic | file |
| --- | --- |
| `ohio/ee_goal`, `/joint_states` | `controllers/osc.py`, `controllers/nothing.py`, `out/demo/summary.json` |
| `a \\| b` | `sim_arm.launch.py`, `missing.launch.py`, `CONFIG.yaml`, `MISSING.md` |
| globs | `config/topics/*.yaml`, `config/nothing/*.yaml` |

`ohio CMD: FILE: problem` is the error line. `ohio_core.data.bags.BagWriter`, `controllers.osc.Nothing`,
`ohio_core.no_module`. See [the layout](#layout), [gone](#gone), [design](DESIGN.md).

## Layout
"""


def test_checks_on_a_sample_page():
    found = problems_of(ROOT / "docs" / "sample.md", SAMPLE)
    problems = {kind: [p.split(": ", 1)[1] for p in found[kind]] for kind in found}
    assert problems["commands"][0] == "`ohio relabel` has no option --no-such-option"
    assert problems["commands"][1].startswith("`ohio nonsense --help` exits 2")
    assert problems["commands"][2:] == [
        "`./run.sh build`: run.sh has no command 'build' (it has ['--help', '-h', 'demo', 'help', 'test'])",
        "`ros2 launch ohio_ros sim_arm.launch.py` declares no argument 'colour'",
        "`ros2 launch ohio_ros nothing.launch.py`: no launch/nothing.launch.py"]
    assert problems["paths"] == [
        "nothing.launch.py: no file of that name in the repository",
        "controllers/nothing.py: does not exist",
        "missing.launch.py: no file of that name in the repository",
        "config/nothing/*.yaml: matches nothing",
    ]
    assert problems["names"] == [
        "controllers.osc.Nothing: controllers.osc defines no Nothing",
        "ohio_core.no_module: ohio_core defines no no_module",
    ]
    assert problems["links"] == [
        "link #gone: docs/sample.md has no heading #gone",
        "link DESIGN.md: DESIGN.md does not exist",
    ]


def test_code_extraction():
    snippets = [code for _, code in code_snippets(SAMPLE)]
    assert "a | b" in snippets and "ohio/ee_goal" in snippets
    assert "$ MUJOCO_GL=egl ohio experiment routing --regions 10 && ohio nonsense --json" in snippets
    assert commands(snippets[2], "ohio") == [["experiment", "routing", "--regions", "10"], ["nonsense", "--json"]]
    assert command_path(["experiment", "routing", "--regions", "10"]) == ("experiment", "routing")
    assert command_path(["relabel", "BAGS", "--out", "X"]) == ("relabel",)
    assert command_path(["CMD:", "FILE:"]) is None
    assert path_candidates("ohio/ee_goal /joint_states out/x.json ros2_ws/install/setup.bash x:=launch/a.py") == [
        "ros2_ws/install/setup.bash", "launch/a.py"]
    assert path_problem("ros2_ws/install/setup.bash") is None       # git ignores it: an output
    assert slug("The `ohio` command: errors, --json") == "the-ohio-command-errors---json"

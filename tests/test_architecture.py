"""The code map's rules (README "Layout"), checked on the source with `ast`, and by importing in a subprocess.

The course layer (`course`, `results`, `run`) sits above the library: it may import any library module,
no library module imports it, and only it reads the environment or sets what the library does. Imports
sit at the top of a module, except heavy ones deferred on purpose, each saying why (`# deferred: ...`).
The modules the Lambda package holds, and the handler, never load torch. Imports inside
`if TYPE_CHECKING:` are annotations only and are left out everywhere.
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

import helpers
from conftest import REPO_ROOT

HELPERS = REPO_ROOT / "helpers"
COURSE_LAYER = {"course", "results", "run"}
# Packages worth deferring: slow to import, or absent where part of the course runs (the Lambda, the runner)
HEAVY = {"torch", "onnx", "onnxruntime", "transformers", "huggingface_hub", "spacy", "papermill", "nbformat",
         "traitlets", "pooch", "IPython", "boto3"}
TORCH_FREE = {"bundle", "files", "text", "encoding"}   # what the Lambda package holds of helpers/
NOT_IN_THE_LAMBDA = {"torch", "onnx", "transformers"}
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


@dataclass(frozen=True)
class Import:
    module: str          # "helpers.files" for a helpers module, else the top-level package ("torch")
    line: int
    end_line: int
    local: bool          # inside a function (runs when called), not at import
    commented: bool      # "# deferred" on its lines, or on the line above it or above the run of imports it ends


def helpers_modules() -> list[str]:
    return sorted(path.stem for path in HELPERS.glob("*.py") if path.stem != "__init__")


def is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imported_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    """What an import statement in helpers/ imports: "helpers.<module>" for the package's own modules (relative
    or absolute), else the top-level package name."""
    own = set(helpers_modules())
    if isinstance(node, ast.Import):
        found = []
        for alias in node.names:
            parts = alias.name.split(".")
            found.append(f"helpers.{parts[1]}" if parts[0] == "helpers" and len(parts) > 1 else parts[0])
        return found
    if node.level == 0 and not (node.module or "").startswith("helpers"):
        return [(node.module or "").split(".")[0]]
    if node.level > 1:
        return []   # above the package: nothing here does that
    parts = (node.module or "").split(".")
    if node.level == 1:
        base = parts[0] if node.module else ""
    else:
        base = parts[1] if len(parts) > 1 else ""
    if base:
        return [f"helpers.{base}"]
    # `from . import files, __version__`: the names that are modules
    return [f"helpers.{alias.name}" for alias in node.names if alias.name in own]


@cache
def source_lines(name: str) -> list[str]:
    return (HELPERS / f"{name}.py").read_text(encoding="utf-8").splitlines()


@cache
def tree_of(name: str) -> ast.Module:
    return ast.parse((HELPERS / f"{name}.py").read_text(encoding="utf-8"), filename=f"helpers/{name}.py")


def says_deferred(lines: list[str], first: int, last: int) -> bool:
    return any("# deferred" in lines[number - 1] for number in range(max(first, 1), last + 1))


@cache
def imports_of(name: str) -> tuple[Import, ...]:
    """Every import statement of helpers/<name>.py, outside `if TYPE_CHECKING:` blocks."""
    lines = source_lines(name)
    found = []

    def walk(statements, local):
        run_start = None   # first line of the run of import statements the current one belongs to
        for statement in statements:
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                run_start = statement.lineno if run_start is None else run_start
                commented = (says_deferred(lines, statement.lineno - 1, statement.end_lineno)
                             or says_deferred(lines, run_start - 1, run_start - 1))
                found.extend(Import(module, statement.lineno, statement.end_lineno, local, commented)
                             for module in imported_modules(statement))
                continue
            run_start = None
            if is_type_checking(statement):
                walk(statement.orelse, local)
                continue
            inner = local or isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef))
            for field in ("body", "orelse", "finalbody"):
                walk(getattr(statement, field, []) or [], inner)
            for handler in getattr(statement, "handlers", []) or []:
                walk(handler.body, inner)
            for case in getattr(statement, "cases", []) or []:
                walk(case.body, inner)

    walk(tree_of(name).body, False)
    return tuple(found)


def helpers_edges(name: str, local_too: bool = True) -> set[str]:
    return {item.module.removeprefix("helpers.") for item in imports_of(name)
            if item.module.startswith("helpers.") and (local_too or not item.local)}


def closure(start: set[str], local_too: bool = True) -> tuple[set[str], set[str]]:
    """The helpers modules reachable from `start` and the outside packages they import."""
    seen, packages, todo = set(), set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if not (HELPERS / f"{name}.py").is_file():
            packages.add(f"helpers.{name} (missing)")
            continue
        todo.extend(helpers_edges(name, local_too))
        packages |= {item.module for item in imports_of(name)
                     if not item.module.startswith("helpers.") and (local_too or not item.local)}
    return seen, packages


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of `graph` (node -> successors)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_import_analysis_sees_what_it_must():
    """The checks below are only as good as this: relative, absolute, local and TYPE_CHECKING imports."""
    course = imports_of("course")
    assert any(item.module == "helpers.results" and not item.local for item in course)
    assert any(item.module == "helpers.files" and not item.local for item in course)   # `from . import files`
    assert not any(item.module == "torch" and not item.local for item in course)        # only under TYPE_CHECKING
    assert any(item.module == "helpers.models" and item.local and item.commented for item in course)
    assert any(item.module == "papermill" and item.local for item in imports_of("run"))
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert sorted(map(sorted, strongly_connected(graph))) == [["a", "b", "c"], ["d"], ["e"]]


def test_no_import_cycle_in_helpers():
    graph = {name: helpers_edges(name) & set(helpers_modules()) for name in helpers_modules()}
    cycles = [component for component in strongly_connected(graph)
              if len(component) > 1 or component[0] in graph[component[0]]]
    described = []
    for component in cycles:
        edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in component]
        described.append(f"{{{', '.join(component)}}}: " + ", ".join(edges))
    assert not cycles, "import cycles in helpers/ (top-level and function-local imports): " + "; ".join(described)


def test_library_never_imports_the_course_layer():
    offending = [f"helpers/{name}.py:{item.line} imports {item.module}" for name in helpers_modules()
                 if name not in COURSE_LAYER for item in imports_of(name)
                 if item.module.removeprefix("helpers.") in COURSE_LAYER and item.module.startswith("helpers.")]
    assert not offending, "the library takes values from the course layer, never imports it: " + "; ".join(offending)


def environment_uses(name: str) -> list[str]:
    """Where helpers/<name>.py reads or writes the process environment (os.environ, os.getenv, ...)."""
    uses = []
    for node in ast.walk(tree_of(name)):
        if (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT and isinstance(node.value, ast.Name)
                and node.value.id == "os"):
            uses.append(f"helpers/{name}.py:{node.lineno} os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            uses += [f"helpers/{name}.py:{node.lineno} from os import {alias.name}" for alias in node.names
                     if alias.name in ENVIRONMENT]
    return uses


def test_only_the_course_layer_reads_the_environment():
    assert environment_uses("course"), "the check finds nothing, not even the course layer's own reads"
    offending = [use for name in helpers_modules() if name not in COURSE_LAYER for use in environment_uses(name)]
    assert not offending, ("a library module takes arguments; only course.py, results.py and run.py read "
                           "environment variables: " + "; ".join(offending))


def library_state_writes(name: str) -> list[str]:
    """Assignments (and setattr/delattr) in helpers/<name>.py to an attribute of an imported helpers module."""
    modules = set()   # local names bound to helpers modules
    own = set(helpers_modules())
    for node in ast.walk(tree_of(name)):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 and not node.module or node.module == "helpers"):
            modules |= {alias.asname or alias.name for alias in node.names if alias.name in own}
        elif isinstance(node, ast.Import):
            modules |= {alias.asname for alias in node.names if alias.name.startswith("helpers.") and alias.asname}
            if any(alias.name.startswith("helpers") and not alias.asname for alias in node.names):
                modules.add("helpers")

    def root(target):
        while isinstance(target, (ast.Attribute, ast.Subscript)):
            if isinstance(target.value, ast.Name):
                return target.value.id if isinstance(target, ast.Attribute) else None
            target = target.value
        return None

    writes = []
    for node in ast.walk(tree_of(name)):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("setattr", "delattr") and node.args and isinstance(node.args[0], ast.Name)
              and node.args[0].id in modules):
            writes.append(f"helpers/{name}.py:{node.lineno} {node.func.id}({node.args[0].id}, ...)")
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, (ast.Attribute, ast.Subscript)) and root(part) in modules:
                    writes.append(f"helpers/{name}.py:{node.lineno} {ast.unparse(part)} = ...")
                    break
    return writes


def test_the_course_layer_writes_no_library_state():
    offending = [write for name in sorted(COURSE_LAYER) for write in library_state_writes(name)]
    assert not offending, ("the course layer passes values down (e.g. cache=run.cache_dir) instead of setting "
                           "a library module's variables: " + "; ".join(offending))


def test_the_state_write_check_catches_the_old_back_door(tmp_path, monkeypatch):
    """`files.DEFAULT_CACHE_DIR = ...` (what start_lesson did) and setattr on a module are found."""
    (tmp_path / "probe.py").write_text("from . import files\nfrom .files import atomic_path\n\ndef f(x):\n"
                                       "    files.DEFAULT_CACHE_DIR = x\n    setattr(files, 'Y', x)\n"
                                       "    atomic_path.z = 1\n    local = {}\n    local['a'] = 1\n")
    monkeypatch.setattr(sys.modules[__name__], "HELPERS", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "helpers_modules", lambda: ["files", "probe"])
    tree_of.cache_clear()
    try:
        assert library_state_writes("probe") == ["helpers/probe.py:5 files.DEFAULT_CACHE_DIR = ...",
                                                 "helpers/probe.py:6 setattr(files, ...)"]
    finally:
        tree_of.cache_clear()


def heavy_reason(module: str) -> str | None:
    """Why importing `module` inside a function is worth it: the heavy package it is or (for a helpers module)
    that its top-level imports reach; None when nothing heavy is on its way."""
    if not module.startswith("helpers."):
        return module if module in HEAVY else None
    _, packages = closure({module.removeprefix("helpers.")}, local_too=False)
    heavy = sorted(packages & HEAVY)
    return ", ".join(heavy) if heavy else None


def test_function_local_imports_are_heavy_and_say_why():
    offending = []
    for name in helpers_modules():
        for item in imports_of(name):
            if not item.local:
                continue
            where = f"helpers/{name}.py:{item.line} {item.module}"
            if heavy_reason(item.module) is None:
                offending.append(f"{where}: not heavy (nothing of {sorted(HEAVY)} on its way): import it at the top")
            elif not item.commented:
                offending.append(f"{where}: heavy ({heavy_reason(item.module)}) but no `# deferred: <why>` comment")
    assert not offending, "function-local imports: " + "; ".join(offending)


def test_torch_free_modules_stay_torch_free_statically():
    reached, packages = closure(TORCH_FREE)
    assert reached <= TORCH_FREE, (
        f"the Lambda's helpers modules import other helpers modules: {sorted(reached - TORCH_FREE)}")
    assert not packages & NOT_IN_THE_LAMBDA and not any("missing" in package for package in packages), (
        f"{sorted(TORCH_FREE)} reach {sorted(packages & NOT_IN_THE_LAMBDA | {p for p in packages if 'missing' in p})}")


@pytest.mark.parametrize("statement", ["import helpers.text, helpers.encoding", "from deployment import handler",
                                       "import helpers.run"])
def test_importing_leaves_torch_onnx_and_transformers_unloaded(statement):
    """What the Lambda and the notebook runner import loads none of the heavy frameworks."""
    code = (f"import sys\n{statement}\n"
            f"print(sorted(name for name in {sorted(NOT_IN_THE_LAMBDA)!r} if name in sys.modules))\n")
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            env=environment, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", f"`{statement}` loads {result.stdout.strip()}"


def test_the_lessons_do_not_import_appendix_code():
    """The appendices' saved cells (NB-SVM, the fine-tuning classifier) live in their own modules, off the
    lessons' import path: no module a lesson imports reaches them."""
    lessons_path = {"text", "encoding", "batching", "inference", "vectors", "training", "models", "features",
                    "encoders", "export", "plots", "occlusion", "course"}
    reached, _ = closure(lessons_path)
    assert not reached & {"baselines", "fine_tuning"}, (
        f"the lessons' modules reach appendix code: {sorted(reached & {'baselines', 'fine_tuning'})}")


def test_init_names_every_module():
    docstring = helpers.__doc__ or ""
    missing = [name for name in helpers_modules() if not re.search(rf"\b{name}\b", docstring)]
    assert not missing, f"helpers/__init__.py's docstring does not name {missing}"


def test_readme_code_map_names_every_module():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in helpers_modules() if not re.search(rf"\b{name}\b", layout)]
    assert not missing, f"README's Layout (code map) does not name {missing}"


def notebook_patterns(path: Path) -> list[int]:
    """Lines of `path` that build a regular expression naming notebook files (a string with "ipynb" passed to
    re.compile/match/fullmatch/search)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                and node.func.attr in ("compile", "match", "fullmatch", "search", "findall", "finditer")
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and "ipynb" in node.args[0].value):
            lines.append(node.lineno)
    return lines


def test_one_notebook_name_pattern():
    from helpers import run, sync

    sources = [*HELPERS.glob("*.py"), *(REPO_ROOT / "benchmarks").glob("*.py"), *(REPO_ROOT / "deployment").glob("*.py")]
    found = {path.relative_to(REPO_ROOT).as_posix(): notebook_patterns(path) for path in sources}
    found = {path: lines for path, lines in found.items() if lines}
    assert list(found) == ["helpers/sync.py"] and len(found["helpers/sync.py"]) == 1, found
    assert run.NOTEBOOK_NAME is sync.NOTEBOOK_NAME
    measures = (REPO_ROOT / "benchmarks" / "notebook_measures.py").read_text(encoding="utf-8")
    assert "from helpers.sync import NOTEBOOK_NAME" in measures

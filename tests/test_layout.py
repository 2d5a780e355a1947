"""The layout docs/ARCHITECTURE.md describes, checked from the source (ast; nothing imported).

Steps expose one `run`; the methods library and the models import no step; steps talk
through artifacts, not each other's code; no import cycles, function-level imports
included; benchmarks import nothing from tests.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("components", "pipelines", "models", "datasets", "benchmarks", "tests")
STEP_FOLDERS = ("components/pneumonia", "components/heart")
STEP_PACKAGES = tuple(folder.replace("/", ".") for folder in STEP_FOLDERS)
# Code one pipeline's steps share, beside them in its folder: readers of its artifacts and
# what two of its steps compute alike. Not steps: steps import them, they import no step.
PIPELINE_LIBRARIES = (
    "components.heart.attributions",
    "components.heart.model_files",
    "components.heart.partitions",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }


MODULES = project_modules()


def imported_modules(name: str) -> set[str]:
    """Project modules `name` imports anywhere in its source (inside functions too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from package import module` is an import of the module; of anything else,
            # an import of `base`.
            submodules = {f"{base}.{alias.name}" for alias in node.names} & MODULES.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(base)
    return {module for module in found if module in MODULES and module != name}


IMPORTS = {name: imported_modules(name) for name in MODULES}


def in_package(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def step_modules() -> list[str]:
    return [
        name
        for name in MODULES
        if in_package(name, STEP_PACKAGES)
        and name not in STEP_PACKAGES
        and name not in PIPELINE_LIBRARIES
    ]


def test_the_pipeline_libraries_exist_and_import_no_step():
    assert set(PIPELINE_LIBRARIES) <= MODULES.keys()
    # One pipeline's code sits in its folder; the components/ root is what both share.
    root = [
        name.split(".")[1]
        for name in MODULES
        if name.count(".") == 1 and name.startswith("components.")
    ]
    assert not [n for n in root if n.startswith(("heart_", "pneumonia_"))], root
    steps = set(step_modules())
    assert not {
        name: sorted(IMPORTS[name] & steps) for name in PIPELINE_LIBRARIES if IMPORTS[name] & steps
    }


def test_the_step_folders_hold_steps():
    assert len(step_modules()) >= 14  # eight pneumonia steps, six heart steps


@pytest.mark.parametrize("name", step_modules())
def test_every_step_exposes_one_run_with_the_component_signature(name):
    tree = ast.parse(MODULES[name].read_text())
    runs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "run"]
    assert len(runs) == 1, f"{name} defines no top-level run()"
    arguments = runs[0].args
    assert [a.arg for a in arguments.args] == ["out_dir"], "run(out_dir, *, ...): one positional"
    keywords = {a.arg: d for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults)}
    if "tensorboard_dir" not in keywords:  # the runner passes it to steps that use it
        return
    default = keywords["tensorboard_dir"]
    assert isinstance(default, ast.Constant) and default.value is None
    used = {
        n.id for statement in runs[0].body for n in ast.walk(statement) if isinstance(n, ast.Name)
    }
    assert "tensorboard_dir" in used, f"{name}.run takes tensorboard_dir and never uses it"


def run_keywords(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    (run,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"]
    return {a.arg for a in run.args.kwonlyargs}


def test_the_runner_hands_tensorboard_dir_only_to_steps_that_take_it():
    """A Component without uses_tensorboard=False is handed tensorboard_dir by the runner,
    so its step must take it; a step that takes it is handed it."""
    checked, mismatched = 0, []
    for name in MODULES:
        if not in_package(name, ("pipelines",)):
            continue
        tree = ast.parse(MODULES[name].read_text())
        aliases = {
            alias.asname or alias.name: f"{node.module}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names
        }
        for call in ast.walk(tree):
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "Component"
                and len(call.args) >= 2
                and isinstance(call.args[1], ast.Attribute)
                and isinstance(call.args[1].value, ast.Name)
                and aliases.get(call.args[1].value.id) in MODULES
            ):
                continue
            step = aliases[call.args[1].value.id]
            flag = {k.arg: k.value for k in call.keywords}.get("uses_tensorboard")
            handed = not (isinstance(flag, ast.Constant) and flag.value is False)
            if handed != ("tensorboard_dir" in run_keywords(step)):
                mismatched.append(f"{name}:{call.lineno} {step}")
            checked += 1
    assert not mismatched, mismatched
    assert checked >= 15  # every Component the entry points build


@pytest.mark.parametrize("library", ["components.explain", "models"])
def test_the_methods_library_and_the_models_import_no_step(library):
    offenders = {
        name: sorted(m for m in IMPORTS[name] if in_package(m, STEP_PACKAGES))
        for name in MODULES
        if in_package(name, (library,))
    }
    assert not {name: steps for name, steps in offenders.items() if steps}


def test_steps_talk_through_artifacts_not_each_others_code():
    offenders = {
        name: sorted(
            m
            for m in IMPORTS[name]
            if in_package(m, STEP_PACKAGES)
            and m not in STEP_PACKAGES
            and m not in PIPELINE_LIBRARIES
        )
        for name in step_modules()
    }
    assert not {name: steps for name, steps in offenders.items() if steps}


def test_no_import_cycles_among_the_projects_modules():
    graph = graphlib.TopologicalSorter(IMPORTS)
    try:
        graph.prepare()
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def test_benchmarks_import_nothing_from_tests():
    offenders = {
        name: sorted(m for m in IMPORTS[name] if in_package(m, ("tests",)))
        for name in MODULES
        if in_package(name, ("benchmarks",))
    }
    assert not {name: found for name, found in offenders.items() if found}


DOCUMENTED_PACKAGES = ("components", "models", "pipelines", "datasets")


def undocumented_public_definitions() -> list[str]:
    """Top-level public functions and classes (`run` included) of the documented packages
    without a docstring, as `module.name`; methods and nested functions are not counted."""
    missing = []
    for name, path in MODULES.items():
        if not in_package(name, DOCUMENTED_PACKAGES) or path.name.endswith("_test.py"):
            continue
        for node in ast.parse(path.read_text(), filename=str(path)).body:
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and not node.name.startswith("_")
                and ast.get_docstring(node) is None
            ):
                missing.append(f"{name}.{node.name}")
    return missing


def test_every_public_function_and_class_has_a_docstring():
    missing = undocumented_public_definitions()
    assert not missing, f"{len(missing)} without a docstring: {', '.join(missing)}"

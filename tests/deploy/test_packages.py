"""``aiprod package``: one folder per function, with only what that function needs.

These read the written folders; ``test_packaged_functions.py`` installs and runs them.
"""

from __future__ import annotations

import ast
import filecmp
import re

import pytest

from aiprod import topology
from aiprod_tools import cli, packaging
from aiprod_tools.packaging import REPO_ROOT

# The SDK each backend's render function installs, as the design names them.
PROVIDER_SDKS = {"runway": "runwayml", "veo": "google-genai", "replicate": "replicate"}
# What keeping an output installs: the bucket's SDK, and google-genai, whose Gemini rates the
# output when semantic QA is on (AIPROD_QA_SEMANTIC=gemini), in every function that keeps one
STORAGE_SDKS = ("google-cloud-storage", "google-genai")
NEVER = "google-cloud-aiplatform"  # 1.7 s to import, and it does not expose the Veo calls
FLOOR = ("functions-framework", "google-cloud-pubsub", "google-cloud-firestore", "pydantic")
PIN_LINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.!+_-]+$")
# What a function folder holds at its top: the entry point, its pins, its upload rules, the runtime.
FOLDER_TOP = {"main.py", "requirements.txt", ".gcloudignore", "aiprod"}
TOOLING = "aiprod_tools"
# Tooling modules by file name (the CLI is any cli*.py), as they were named when they lived
# in aiprod, and as they are named in aiprod_tools; none of these names is a runtime module.
TOOLING_FILES = {
    "packaging.py",
    "venvs.py",
    "pyvenv.cfg",
    "embedded.py",
    "demo.py",
    "dev.py",
    "emulators.py",
    "processes.py",
    "provision.py",
    "stack.py",
    "tables.py",
    "status.py",
    "summary.py",
    "ops_views.py",
    "report.py",
    "report_html.py",
}


def _names(package: packaging.Package) -> set[str]:
    return {name.lower().replace("_", "-") for name in package.pins}


def _backend_of(spec: topology.FunctionSpec) -> str | None:
    return next((extra for extra in spec.extras if extra in topology.BACKENDS), None)


def test_every_function_of_the_topology_gets_exactly_one_folder(packages):
    # GIVEN the packages written for the topology
    # THEN there is one per function and no other
    assert set(packages) == {spec.name for spec in topology.FUNCTIONS}
    for name, package in packages.items():
        # AND each holds its own entry point, byte for byte, and the aiprod package
        assert filecmp.cmp(package.path / "main.py", REPO_ROOT / "functions" / name / "main.py")
        assert (package.path / "aiprod" / "__init__.py").is_file()
        assert (package.path / "aiprod" / "data" / "catalog.json").is_file()


def test_the_aiprod_copy_has_no_caches_or_tests(packages):
    for package in packages.values():
        copied = list((package.path / "aiprod").rglob("*"))
        assert not [p for p in copied if p.name == "__pycache__" or p.suffix == ".pyc"]
        assert not [p for p in copied if p.name == "tests" or p.name.startswith("test_")]
        sources = {
            p.relative_to(REPO_ROOT / "shared").as_posix()
            for p in (REPO_ROOT / "shared" / "aiprod").rglob("*.py")
            if "__pycache__" not in p.parts
        }
        assert sources == {
            p.relative_to(package.path).as_posix() for p in copied if p.suffix == ".py"
        }


def _tooling(path: str) -> bool:
    *folders, name = path.split("/")
    return (
        TOOLING in folders
        or "local" in folders
        or "cli" in folders
        or name.startswith("cli")
        or name in TOOLING_FILES
    )


def test_a_packaged_folder_holds_no_tooling(packages):
    # GIVEN every folder aiprod package wrote, file by file
    for package in packages.values():
        written = [
            p.relative_to(package.path).as_posix() for p in package.path.rglob("*") if p.is_file()
        ]

        # THEN it holds the entry point, its pins, its upload rules and the runtime package only
        assert {path.split("/")[0] for path in written} == FOLDER_TOP, package.function
        # AND no tooling module: not aiprod_tools, the CLI, the local stack, the views,
        # packaging or venv building (nor a venv)
        assert not [path for path in written if _tooling(path)], package.function


def test_the_runtime_never_imports_the_tooling():
    # GIVEN every module of the runtime package, parsed
    found = []
    for path in sorted((REPO_ROOT / "shared" / "aiprod").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value]  # importlib.import_module("aiprod_tools...") and the like
            else:
                continue
            if any(name == TOOLING or name.startswith(f"{TOOLING}.") for name in names):
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")

    # THEN none of them imports the tooling (the tooling imports the runtime, never the reverse)
    assert not found


def test_requirements_are_exact_pins_only(packages):
    for package in packages.values():
        lines = [
            line
            for line in package.requirements.read_text().splitlines()
            if line and not line.startswith("#")
        ]
        assert lines, package.function
        assert all(PIN_LINE.match(line) for line in lines), lines
        assert len(lines) == len(package.pins)


@pytest.mark.parametrize("spec", topology.FUNCTIONS, ids=lambda spec: spec.name)
def test_each_function_installs_only_its_own_groups(packages, spec):
    # GIVEN a function's package
    package = packages[spec.name]
    names = _names(package)
    backends = [b for b in spec.extras if b in topology.BACKENDS]

    # THEN it has the floor every function needs
    assert set(FLOOR) <= names
    # AND a provider SDK only when it talks to that provider (a render function to its own,
    # the reconciler to all, to poll stored tasks, and control_job to all, to cancel them),
    # google-genai wherever outputs are kept (semantic QA rates them; route_job and
    # handle_outcome keep none, so install none), never Vertex AI's big SDK
    wanted = {PROVIDER_SDKS[b] for b in backends} | (set(STORAGE_SDKS) if backends else set())
    unwanted = (set(PROVIDER_SDKS.values()) | set(STORAGE_SDKS)) - wanted
    assert wanted <= names, f"{spec.name} lacks {wanted - names}"
    assert not (unwanted & names), f"{spec.name} must not install {unwanted & names}"
    assert NEVER not in names
    # AND its groups say so
    expected = ("gcp", *backends, "storage") if backends else ("gcp",)
    assert package.groups == expected


def test_functions_without_a_provider_share_one_pin_set(packages):
    plain = [p for name, p in packages.items() if not _backend_of(topology.function(name))]
    assert len(plain) >= 2
    assert all(p.pins == plain[0].pins for p in plain)


def test_pins_are_what_is_installed_here(packages):
    from importlib import metadata

    for package in packages.values():
        for name, version in package.pins.items():
            assert metadata.version(name) == version


def test_packaging_again_replaces_the_folder(tmp_path):
    # GIVEN a package folder with a stale file in it
    first = packaging.write_packages(tmp_path, ["route_job"])[0]
    stale = first.path / "aiprod" / "stale.py"
    stale.write_text("raise SystemExit")

    # WHEN it is packaged again
    again = packaging.write_packages(tmp_path, ["route_job"])[0]

    # THEN the stale file is gone and the requirements are identical
    assert not stale.exists()
    assert again.pins == first.pins


def test_cli_package_writes_the_folders(tmp_path, capsys):
    # WHEN aiprod package runs for two functions
    status = cli.main(
        ["package", "--out", str(tmp_path), "--function", "route_job", "--function", "render_veo"]
    )

    # THEN both folders are written and reported
    assert status == 0
    assert {p.name for p in tmp_path.iterdir()} == {"route_job", "render_veo"}
    out = capsys.readouterr().out
    assert "route_job" in out and "[gcp,veo,storage]" in out


def test_cli_package_refuses_an_unknown_function(tmp_path, capsys):
    assert cli.main(["package", "--out", str(tmp_path), "--function", "nope"]) == 1
    assert "nope" in capsys.readouterr().err


def test_a_missing_group_is_a_packaging_error(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = []\n')
    with pytest.raises(packaging.PackagingError, match="no optional-dependency group 'gcp'"):
        packaging.group_requirements(("gcp",), pyproject)


def test_an_installed_version_outside_the_range_is_a_packaging_error():
    with pytest.raises(packaging.PackagingError, match="needs pydantic<1"):
        packaging.resolve(["pydantic<1"], packaging.target_environment())

"""Cold-start budget: how long each packaged function takes to import its ``main`` module.

A script, not a test: ``.venv/bin/python bench/coldstart.py`` (about a minute once the
wheelhouse is filled). Every function is packaged with ``aiprod package`` and installed
alone in a fresh venv of the deployed runtime's Python (3.12 when this machine has it), as
``tests/deploy`` does. Each figure is the median of ``--repeat`` fresh processes (``python
-I``, cwd = the package folder) timing ``import main`` with ``time.perf_counter``, after one
untimed run that writes the bytecode caches (a deployed function runs from compiled files).
The figures are taken in rounds (floor, each function, each SDK, then again), so a load
that comes and goes on the machine weighs on the numerator and the denominator alike.

- floor: functions-framework + google-cloud-pubsub + google-cloud-firestore +
  google-cloud-monitoring imported together, in the venv of a function without a provider;
- a render function's baseline: floor + its provider SDK imported alone (its own venv).

Targets: import / floor <= 1.2 for the functions without a provider SDK, import /
(floor + SDK) <= 1.2 for each render function. Exit status 1 when one is missed.
The last line is one JSON object:
{"floor_s", "python", "repeat", "functions": {name: {"import_s", "ratio", ...}}}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from aiprod import topology
from aiprod_tools import packaging, venvs

TARGET = 1.2
FLOOR_MODULES = (
    "functions_framework",
    "google.cloud.pubsub_v1",
    "google.cloud.firestore",
    "google.cloud.monitoring_v3",
)
SDK_MODULES = {"runway": "runwayml", "veo": "google.genai", "replicate": "replicate"}
# What a function's first message imports on top of main (clients are built lazily): the
# store, bus and metrics adapters, and for a render function its provider adapter and the
# output copier. Reported as ``loaded_s`` / ``loaded_ratio``, for information (no target).
FIRST_MESSAGE = (
    "aiprod.adapters.firestore_store",
    "aiprod.adapters.pubsub_bus",
    "aiprod.adapters.cloud_monitoring",
    "google.cloud.monitoring_v3",
)
RENDER_FIRST_MESSAGE = ("aiprod.adapters.{backend}", "aiprod.adapters.kept_outputs")
TIMER = (
    "import sys, time; sys.path.insert(0, '.'); t = time.perf_counter(); import {modules}; "
    "print(time.perf_counter() - t)"
)


def import_once(python: Path, cwd: Path, modules: str) -> float:
    """Seconds to import ``modules`` in a fresh ``python -I`` process started in ``cwd``."""
    argv = [str(python), "-I", "-c", TIMER.format(modules=modules)]
    done = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, env=venvs.clean_env(), timeout=120
    )
    if done.returncode != 0:
        raise SystemExit(f"importing {modules} in {cwd} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def medians(probes: dict[str, tuple[Path, Path, str]], repeat: int) -> dict[str, float]:
    """Each probe once untimed (bytecode caches), then ``repeat`` rounds of all of them in
    turn: a load that comes and goes on the machine weighs on every figure alike."""
    for python, cwd, modules in probes.values():
        import_once(python, cwd, modules)
    times: dict[str, list[float]] = {label: [] for label in probes}
    for _ in range(repeat):
        for label, (python, cwd, modules) in probes.items():
            times[label].append(import_once(python, cwd, modules))
    return {label: round(statistics.median(values), 4) for label, values in times.items()}


def backend_of(spec: topology.FunctionSpec) -> str | None:
    """The provider a render function calls; None for the others. ``reconcile`` and
    ``control_job`` ship every SDK, imported only when a task is polled or cancelled, so
    their baseline is the floor."""
    backends = [extra for extra in spec.extras if extra in topology.BACKENDS]
    return backends[0] if len(backends) == 1 else None


def measure(repeat: int, work: Path, python: str, version: str, source: Path) -> dict:
    packages = packaging.write_packages(
        work / "functions", source_root=source, python_version=version
    )
    interpreters = venvs.build_venvs(
        {p.function: p.requirements for p in packages},
        python,
        venvs.Wheelhouse(python),
        work / "venvs",
    )
    plain = next(s.name for s in topology.FUNCTIONS if backend_of(s) is None)
    probes = {"floor": (interpreters[plain], work, ", ".join(FLOOR_MODULES))}
    for package in packages:
        python_of, folder = interpreters[package.function], package.path
        backend = backend_of(topology.function(package.function))
        loaded = ["main", *FIRST_MESSAGE]
        if backend:
            loaded += [m.format(backend=backend) for m in RENDER_FIRST_MESSAGE]
            probes[f"sdk:{backend}"] = (python_of, work, SDK_MODULES[backend])
        probes[package.function] = (python_of, folder, "main")
        probes[f"loaded:{package.function}"] = (python_of, folder, ", ".join(loaded))
    seconds = medians(probes, repeat)
    floor = seconds["floor"]
    results: dict[str, dict] = {}
    for spec in topology.FUNCTIONS:
        entry: dict[str, object] = {"import_s": seconds[spec.name]}
        backend, baseline = backend_of(spec), floor
        if backend:
            baseline = round(floor + seconds[f"sdk:{backend}"], 4)
            entry.update(sdk=SDK_MODULES[backend], sdk_s=seconds[f"sdk:{backend}"])
            entry.update(baseline_s=baseline)
        ratio = round(seconds[spec.name] / baseline, 3)
        entry.update(ratio=ratio, ok=ratio <= TARGET)
        loaded = seconds[f"loaded:{spec.name}"]
        entry.update(loaded_s=loaded, loaded_ratio=round(loaded / baseline, 3))
        results[spec.name] = entry
    return {"floor_s": floor, "python": version, "repeat": repeat, "functions": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed processes per figure")
    parser.add_argument("--python", default=packaging.RUNTIME_PYTHON, help="runtime version")
    parser.add_argument("--source", default=str(packaging.REPO_ROOT), help="a source checkout")
    args = parser.parse_args(argv)
    python = venvs.find_python(args.python)
    version = args.python
    if python is None:
        python, version = sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}"
        print(f"no Python {args.python} here: measuring with {version}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="aiprod-coldstart-") as tmp:
        report = measure(args.repeat, Path(tmp), python, version, Path(args.source))
    print(f"floor (framework + pubsub + firestore + monitoring): {report['floor_s']:.3f} s")
    for name, entry in report["functions"].items():
        base = f" (floor + {entry['sdk']} {entry['sdk_s']:.3f} s)" if "sdk" in entry else ""
        mark = "ok" if entry["ok"] else f"OVER {TARGET}x"
        print(
            f"{name:18} {entry['import_s']:.3f} s  ratio {entry['ratio']:.2f}{base}  {mark}"
            f"  | with first-message modules {entry['loaded_s']:.3f} s"
            f" ({entry['loaded_ratio']:.2f})"
        )
    print(json.dumps(report))
    return 0 if all(entry["ok"] for entry in report["functions"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

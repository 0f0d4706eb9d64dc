"""The import layers of docs/architecture: metrics take nothing of latentquant but errors; data/ nothing of the
models or the run machinery; the renderers only the catalog; and reading a file never loads a renderer.

Each check imports in a fresh interpreter and reads ``sys.modules``, so it sees what an import really pulls in,
function-level imports that ran included.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from latentquant.data.dsprites import write_dsprites_npz
from latentquant.data.mpi3d import write_mpi3d_npz
from latentquant.data.nvlabs import write_falcor3d_folder
from latentquant.data.shapes3d import write_shapes3d_h5

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "latentquant"


def modules_after(code: str, empty_packages: tuple[str, ...] = ("latentquant",)) -> set[str]:
    """The latentquant modules loaded once ``code`` has run in a fresh interpreter.

    The ``empty_packages`` are registered as bare package objects (their ``__init__.py`` is not run), so what is
    measured is the closure of the modules ``code`` imports, not what a parent package's face happens to import.
    """
    prelude = ["import sys, types"]
    for name in empty_packages:
        folder = PACKAGE.joinpath(*name.split(".")[1:])
        prelude += [f"package = types.ModuleType({name!r})", f"package.__path__ = [{str(folder)!r}]",
                    f"sys.modules[{name!r}] = package"]
    report = "print('\\n'.join(m for m in sys.modules if m == 'latentquant' or m.startswith('latentquant.')))"
    proc = subprocess.run([sys.executable, "-c", "\n".join([*prelude, code, report])], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def outside(modules: set[str], *allowed: str) -> set[str]:
    """The modules that are neither one of ``allowed`` nor inside one of them."""
    return {m for m in modules if not any(m == a or m.startswith(a + ".") for a in allowed)}


def test_metrics_import_nothing_of_latentquant_but_errors():
    modules = modules_after("import latentquant.metrics, latentquant.metrics.suite")
    assert {"latentquant.metrics.infomec", "latentquant.metrics.usage", "latentquant.metrics.factorvae"} <= modules
    assert outside(modules, "latentquant.metrics", "latentquant.errors") == {"latentquant"}


def test_data_imports_no_models_and_no_run_machinery():
    modules = modules_after("import latentquant.data, latentquant.data.commands")
    assert {"latentquant.data.loading", "latentquant.data.nvlabs", "latentquant.data.commands"} <= modules
    assert outside(modules, "latentquant.data", "latentquant.errors") == {"latentquant"}


def test_renderers_import_only_the_catalog():
    names = ("shapes3d", "dsprites", "mpi3d", "nvlabs")
    modules = modules_after("\n".join(f"import latentquant.data.lookalike.{n}" for n in names),
                            empty_packages=("latentquant", "latentquant.data"))
    assert {f"latentquant.data.lookalike.{n}" for n in names} <= modules
    assert outside(modules, "latentquant.data.lookalike", "latentquant.data.catalog", "latentquant.errors") == {
        "latentquant", "latentquant.data"}


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> dict[str, tuple[Path, int]]:
    """One tiny look-alike per official format: name -> (path, image size to load it at)."""
    folder = tmp_path_factory.mktemp("formats")
    return {
        "shapes3d": (write_shapes3d_h5(folder / "3dshapes.h5", image_size=16, subset=8), 16),
        "dsprites": (write_dsprites_npz(folder / "dsprites.npz", subset=8), 64),
        "mpi3d": (write_mpi3d_npz(folder / "mpi3d_toy.npz", subset=8), 64),
        "falcor3d": (write_falcor3d_folder(folder / "Falcor3D_down128", subset=8), 16),
    }


def test_reading_files_never_imports_a_renderer(tiny_files, tmp_path):
    loads = [f"assert len(latentquant.data.load({name!r}, {str(path)!r}, image_size={size}, "
             f"cache_dir={str(tmp_path)!r})) == 8" for name, (path, size) in tiny_files.items()]
    modules = modules_after("\n".join(["import latentquant.data", *loads]))
    assert "latentquant.data.nvlabs" in modules
    assert not {m for m in modules if m.startswith("latentquant.data.lookalike")}


def test_import_linter_contracts_hold():
    """The layers of pyproject.toml's [tool.importlinter] (the CLI on top, ..., modules at the bottom)."""
    proc = subprocess.run(["lint-imports"], capture_output=True, text=True, cwd=PACKAGE.parents[1], timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "BROKEN" not in proc.stdout and proc.stdout.count("KEPT") >= 5


def test_no_import_cycles_between_modules():
    import grimp

    graph = grimp.build_graph("latentquant")
    modules = sorted(m for m in graph.modules if not m.endswith("__init__"))
    # A package's face (its __init__) imports its own members; a cycle is two modules that reach each other.
    cycles = [(a, b) for i, a in enumerate(modules) for b in modules[i + 1:]
              if not (b.startswith(a + ".") or a.startswith(b + "."))
              and graph.chain_exists(a, b, as_packages=False) and graph.chain_exists(b, a, as_packages=False)]
    assert cycles == []

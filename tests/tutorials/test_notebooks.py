"""Runs every notebook in tutorials/ (sorted by name) with nbclient and fails on any error.

Each notebook runs top to bottom in a fresh "python3" kernel of the interpreter running pytest:
its ipykernel, through a kernelspec written into a temporary directory, so that a "python3"
kernelspec installed for another Python (in ~/.local/share/jupyter, say) cannot take its place.
The kernel starts in the tutorials folder, with KDSL_TUTORIAL_PLOTS pointing at a fresh temporary
directory, where the notebook must save at least one PNG (with KDSL_TUTORIAL_PLOTS set for pytest,
a folder per notebook under it instead, where the plots stay). A notebook asserts its own results, so
a wrong result fails here as an error in the cell that checks it.

A notebook that cannot run without an optional module declares it in its notebook metadata,

    "metadata": {"kdsl": {"requires": ["torch"]}, ...}

and is skipped, with the reason, where that module cannot be imported. Notebooks are committed
without outputs; `test_notebook_is_committed_clean` holds them to that.
"""
import importlib.util
import os
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
CELL_TIMEOUT_S = 300  # a notebook takes well under a minute; a hung cell (a lock never released) fails


def required_modules(nb: nbformat.NotebookNode) -> list[str]:
    """The modules the notebook's metadata says it needs."""
    return list(nb.metadata.get("kdsl", {}).get("requires", []))


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory) -> KernelSpecManager:
    """A kernelspec manager that knows one kernel, "python3": ipykernel on sys.executable."""
    prefix = tmp_path_factory.mktemp("jupyter")
    install_kernelspec(kernel_name="python3", prefix=str(prefix))
    return KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: code cells {dirty} hold outputs or execution counts; clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, kernel_specs):
    nb = nbformat.read(path, as_version=4)
    missing = [name for name in required_modules(nb) if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{path.name} needs {', '.join(missing)}, which cannot be imported here")
    kept = os.environ.get("KDSL_TUTORIAL_PLOTS")
    plots = Path(kept) / path.stem if kept else tmp_path / "plots"
    for stale in plots.glob("*.png"):
        stale.unlink()
    kernel = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=kernel_specs)
    client = NotebookClient(nb, km=kernel, timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(TUTORIALS)}},
                            extra_arguments=["--InteractiveShell.colors=nocolor"])  # plain tracebacks in logs
    client.execute(env={**os.environ, "KDSL_TUTORIAL_PLOTS": str(plots)})
    assert sorted(plots.glob("*.png")), f"{path.name} saved no PNG into KDSL_TUTORIAL_PLOTS"

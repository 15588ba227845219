"""The numbered notebooks run top to bottom on the trained synthetic retailer (nbclient)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from training_fixtures import NOW

from tessera.core.settings import REPO_ROOT, Workspace

pytestmark = pytest.mark.integration
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_notebooks_are_numbered_and_hold_no_outputs() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)]
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        assert all(not c.get("outputs") for c in cells if c.cell_type == "code"), (
            f"{path.name} was committed with outputs"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, trained: tuple[Workspace, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    workspace, _ = trained
    monkeypatch.setenv("TESSERA_WORKSPACE", str(workspace.root))
    monkeypatch.setenv("TESSERA_NOW", NOW.isoformat())
    # Small models, as in the other tests: the notebooks' point is that they run, not how well.
    for name, value in {
        "TRAINING_CUTOFFS": "3",
        "CUTOFF_SPACING_DAYS": "45",
        "LGBM_N_ESTIMATORS": "80",
        "LGBM_MIN_CHILD_SAMPLES": "10",
    }.items():
        monkeypatch.setenv(f"TESSERA_TRAINING_{name}", value)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}
    ).execute()
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]
    assert not errors

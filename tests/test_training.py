"""The training command is deterministic and checks its own ONNX parity."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core import artifacts

pytestmark = pytest.mark.slow   # starts real processes (Ray, PostgreSQL, a browser, Locust or training)


def _train(out: Path) -> dict:
    subprocess.run(
        [sys.executable, "-m", "models.train", "--rows", "20000", "--seed", "3", "--out", str(out), "--no-progress"],
        check=True, cwd=Path(__file__).resolve().parents[1],
    )
    return artifacts.load_card(artifacts.resolve_model_dir(None, out))


def test_same_command_same_model_card(tmp_path: Path) -> None:
    first, second = _train(tmp_path / "a"), _train(tmp_path / "b")
    for card in (first, second):
        card.pop("trained_at")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first["onnx"]["parity_max_abs_diff"] < 1e-5
    folder = tmp_path / "a" / first["version"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*first["artifacts"], artifacts.CARD_FILE])

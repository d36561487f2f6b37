"""The one model loader refuses what must not serve, naming the problem: thresholds, checksums, folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.artifacts import CARD_FILE, ONNX_FILE, resolve_model_dir
from models.loader import ModelRefused, load_model
from tests.support.malformed_models import malformed_folders


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "candidate"
    shutil.copytree(resolve_model_dir(None), copy)
    return copy


def _set_threshold(folder: Path, value: object) -> None:
    card = json.loads((folder / CARD_FILE).read_text())
    card["threshold"]["value"] = value
    (folder / CARD_FILE).write_text(json.dumps(card))


def test_the_committed_model_loads() -> None:
    model = load_model(None)
    assert 0 < model.threshold < 1 and model.reasons is not None


@pytest.mark.parametrize("value", [float("nan"), 0, 1.5, -0.1, "0.3x", None])
def test_a_card_threshold_outside_0_1_is_refused(folder: Path, value: object) -> None:
    _set_threshold(folder, value)
    with pytest.raises(ModelRefused, match="threshold"):
        load_model(folder)


def test_a_replaced_onnx_file_is_refused(folder: Path) -> None:
    data = bytearray((folder / ONNX_FILE).read_bytes())
    data[-1] ^= 1
    (folder / ONNX_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelRefused, match="SHA-256"):
        load_model(folder)


def test_a_missing_folder_or_card_is_refused(folder: Path) -> None:
    with pytest.raises(ModelRefused, match="no model folder"):
        load_model("no-such-model-folder")
    (folder / CARD_FILE).write_text("{")
    with pytest.raises(ModelRefused, match="not a model card"):
        load_model(folder)


def test_a_folder_without_card_needs_a_threshold(folder: Path) -> None:
    (folder / CARD_FILE).unlink()
    with pytest.raises(ModelRefused, match="set a threshold"):
        load_model(folder)
    with pytest.raises(ModelRefused, match="monotonicity"):
        load_model(folder, threshold=0.2)
    assert load_model(folder, threshold=0.2, require_monotonicity=False).version == "candidate"


def test_a_card_without_a_passing_monotonicity_sweep_is_refused_unless_allowed(folder: Path) -> None:
    card = json.loads((folder / CARD_FILE).read_text())
    card["monotonicity"]["passed"] = False
    card["monotonicity"]["features"]["DAYS_BIRTH"]["passed"] = False
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelRefused, match="DAYS_BIRTH"):
        load_model(folder)
    assert load_model(folder, require_monotonicity=False).card["monotonicity"]["passed"] is False


def test_the_served_model_moves_risk_as_policy_expects_and_never_raises_it_for_age_62_plus() -> None:
    """The sweep, run again here on the committed model, and Regulation B's elderly rule on the reference sample."""
    from core.features import AGE_FEATURE, FEATURE_NAMES, is_elderly
    from core.reference import reference_applicants
    from models.monotonicity import sweep

    model = load_model(None)
    rows = reference_applicants().to_numpy(dtype=float)
    assert sweep(model.classifier.predict_proba, rows, model.card["feature_profile"])["passed"]
    elderly = rows[is_elderly(rows[:, FEATURE_NAMES.index(AGE_FEATURE)])]
    assert len(elderly) > 100
    age = model.reasons.contributions(elderly)[:, FEATURE_NAMES.index(AGE_FEATURE)]
    assert float(age.max()) <= 0, "age raises the risk of an applicant aged 62+"


def test_every_malformed_folder_is_a_refusal_naming_the_folder_never_its_path(tmp_path: Path) -> None:
    """Whatever a malformed card or model makes a check raise is a ModelRefused (a replica turns it into a refusal
    and keeps its model), and the message, shown by the public /health, holds no absolute path."""
    for name, folder in malformed_folders(tmp_path).items():
        with pytest.raises(ModelRefused) as refused:
            load_model(folder)
        message = str(refused.value)
        assert folder.name in message and str(tmp_path) not in message, (name, message)

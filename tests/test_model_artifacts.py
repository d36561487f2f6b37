"""The committed model: card consistent with artifacts, quality near Bayes, ONNX parity."""

import hashlib

import lightgbm as lgb
import numpy as np
import onnxmltools
import pandas as pd
import pytest
from onnxmltools.convert.common.data_types import FloatTensorType
from sklearn.metrics import roc_auc_score

from core import artifacts
from core.features import FEATURE_NAMES, N_FEATURES
from models import generator, threshold
from models.onnx_classifier import OnnxBinaryClassifier
from models.train import split


@pytest.fixture(scope="module")
def model_dir():
    return artifacts.resolve_model_dir(None)


@pytest.fixture(scope="module")
def card(model_dir):
    return artifacts.load_card(model_dir)


@pytest.fixture(scope="module")
def holdout(card) -> pd.DataFrame:
    data = generator.generate(card["data"]["rows"], card["data"]["seed"])
    return split(data, card["data"]["seed"])[2]


def test_version_is_content_hash(model_dir, card) -> None:
    onnx_hash = hashlib.sha256((model_dir / artifacts.ONNX_FILE).read_bytes()).hexdigest()
    assert card["version"] == model_dir.name == "lgbm-" + onnx_hash[:12]
    for name, digest in card["artifacts"].items():
        assert hashlib.sha256((model_dir / name).read_bytes()).hexdigest() == digest, name


def test_card_figures_recomputed_from_artifacts(model_dir, card, holdout) -> None:
    x = holdout[list(FEATURE_NAMES)].to_numpy()
    y = holdout["TARGET"].to_numpy()
    p = OnnxBinaryClassifier(model_dir / artifacts.ONNX_FILE).predict_proba(x)
    h = card["holdout"]
    assert len(holdout) == card["data"]["split"]["holdout"]
    assert roc_auc_score(y, p) == pytest.approx(h["auc"], abs=1e-6)
    assert roc_auc_score(y, holdout["TRUE_PD"]) == pytest.approx(h["bayes_auc"], abs=1e-12)
    assert threshold.business_cost(y, p, card["threshold"]["value"]) == h["cost"]
    denied = p >= card["threshold"]["value"]
    assert int(np.sum(denied & (y == 1))) == h["confusion"]["tp"]
    assert int(np.sum(~denied & (y == 1))) == h["confusion"]["fn"]


def test_model_quality_near_bayes(card) -> None:
    h = card["holdout"]
    assert 0.75 <= h["bayes_auc"] <= 0.80
    assert h["auc"] >= h["bayes_auc"] - 0.01
    assert h["cost"] <= 1.02 * h["bayes_cost"]
    assert card["lightgbm"]["n_estimators"] == 462


def card_trees(model_dir) -> int:  # type: ignore[no-untyped-def]
    return artifacts.load_card(model_dir)["lightgbm"]["trees"]


def test_onnx_matches_lightgbm_text_model(model_dir, holdout) -> None:
    x = holdout[list(FEATURE_NAMES)].to_numpy()[:20000]
    booster = lgb.Booster(model_file=str(model_dir / artifacts.LIGHTGBM_FILE))
    onnx_p = OnnxBinaryClassifier(model_dir / artifacts.ONNX_FILE).predict_proba(x)
    assert booster.num_trees() == card_trees(model_dir) >= 450
    assert np.max(np.abs(booster.predict(x) - onnx_p)) < 1e-5


def test_reference_sample_has_features_and_scores(model_dir) -> None:
    ref = pd.read_csv(model_dir / artifacts.REFERENCE_FILE)
    assert list(ref.columns[:N_FEATURES]) == list(FEATURE_NAMES)
    assert len(ref) == 5000 and ref["probability_default"].between(0, 1).all()


def test_classifier_reads_zipmap_output(tmp_path, holdout) -> None:
    x = holdout[list(FEATURE_NAMES)].to_numpy()[:2000]
    model = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, holdout["TARGET"].to_numpy()[:2000])
    for zipmap in (True, False):
        onx = onnxmltools.convert_lightgbm(
            model, initial_types=[("any_input_name", FloatTensorType([None, N_FEATURES]))], zipmap=zipmap)
        path = tmp_path / f"zipmap_{zipmap}.onnx"
        path.write_bytes(onx.SerializeToString())
        got = OnnxBinaryClassifier(path).predict_proba(x)
        assert np.max(np.abs(got - model.predict_proba(x)[:, 1])) < 1e-5

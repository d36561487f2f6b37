"""Deterministic training pipeline: generate → split → LightGBM → threshold → ONNX → model card.

    python -m models.train [--rows 307511] [--seed 42] [--out models]

Writes ``<out>/<version>/`` (model.onnx, model.txt, model_card.json, cost_curve.csv,
reference_sample.csv.gz) and records the version in ``<out>/LATEST``.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score
from tqdm import tqdm

from core.artifacts import CARD_FILE, LIGHTGBM_FILE, MODELS_DIR, ONNX_FILE, REFERENCE_FILE
from core.decision import is_denied
from core.features import FEATURE_NAMES
from models import generator, monotonicity, threshold
from models.export_onnx import export, float32_thresholds, parity
from models.onnx_classifier import OnnxBinaryClassifier

LGBM_PARAMS: dict[str, object] = {
    "n_estimators": 462,
    "max_depth": 3,
    "num_leaves": 8,
    "learning_rate": 0.075,
    "min_child_samples": 100,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "reg_lambda": 1.0,
    "deterministic": True,
    "force_row_wise": True,
    "n_jobs": 2,
    "verbose": -1,
}
SPLIT = (0.6, 0.2, 0.2)  # train, validation, holdout
REFERENCE_ROWS = 5000
PARITY_LIMIT = 1e-5


def split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train / validation / holdout, reproducible from the seed."""
    order = np.random.default_rng(seed + 1).permutation(len(frame))
    n_train = int(SPLIT[0] * len(frame))
    n_valid = int(SPLIT[1] * len(frame))
    parts = np.split(order, [n_train, n_train + n_valid])
    train, valid, hold = (frame.iloc[p].reset_index(drop=True) for p in parts)
    return train, valid, hold


def _scores(model: lgb.Booster, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x))


def _fit(train: pd.DataFrame, seed: int, progress: bool, monotone: bool = True) -> lgb.Booster:
    """LightGBM with the credit policy's directions as monotone constraints (``core.features``)."""
    extra = {"monotone_constraints": monotonicity.constraints(), "monotone_constraints_method": "advanced"} \
        if monotone else {}
    params: dict[str, Any] = {**LGBM_PARAMS, **extra}
    model = lgb.LGBMClassifier(random_state=seed, **params)
    bar = tqdm(total=LGBM_PARAMS["n_estimators"], desc="trees", disable=not progress)

    def tick(_env: lgb.callback.CallbackEnv) -> None:
        bar.update(1)

    model.fit(train[list(FEATURE_NAMES)].to_numpy(), train["TARGET"].to_numpy(), callbacks=[tick])
    bar.close()
    return float32_thresholds(model.booster_)


def _feature_profile(train: pd.DataFrame) -> dict[str, dict[str, float]]:
    qs = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    return {
        name: {"min": float(train[name].min()), "max": float(train[name].max()),
               **{f"q{int(q * 100):02d}": float(train[name].quantile(q)) for q in qs}}
        for name in FEATURE_NAMES
    }


def _confusion(y: np.ndarray, p: np.ndarray, t: float) -> dict[str, int]:
    denied = is_denied(p, t)
    return {"tp": int(np.sum(denied & (y == 1))), "fp": int(np.sum(denied & (y == 0))),
            "tn": int(np.sum(~denied & (y == 0))), "fn": int(np.sum(~denied & (y == 1)))}


def _unconstrained(train_set: pd.DataFrame, valid: pd.DataFrame, seed: int, x_hold: np.ndarray,
                   y_hold: np.ndarray) -> dict[str, float]:
    """The same training without the monotone constraints (its own cost-optimal threshold), on the same holdout:
    what the constraints cost."""
    model = _fit(train_set, seed, progress=False, monotone=False)
    t = threshold.cost_curve(valid["TARGET"].to_numpy(), _scores(model, valid[list(FEATURE_NAMES)].to_numpy()))
    p = _scores(model, x_hold)
    return {"auc": float(roc_auc_score(y_hold, p)), "cost": threshold.business_cost(y_hold, p, t.best_threshold)}


def train(rows: int, seed: int, out: Path, progress: bool = True, dropped: tuple[str, ...] = (),
          trained_by: str | None = None) -> Path:
    """Run the whole pipeline; returns the version folder. ``dropped`` features are held at their median in the
    training and validation data (the model cannot use them: a challenger without them); ``trained_by`` is
    recorded on the card (the OS user by default), so a validation can be seen to be someone else's."""
    steps = tqdm(total=6, desc="pipeline", disable=not progress)
    data = generator.generate(rows, seed)
    train_set, valid, hold = split(data, seed)
    for name in dropped:
        median = float(train_set[name].median())
        train_set, valid = train_set.assign(**{name: median}), valid.assign(**{name: median})
    steps.update(1)

    model = _fit(train_set, seed, progress)
    steps.update(1)

    x_valid, x_hold = valid[list(FEATURE_NAMES)].to_numpy(), hold[list(FEATURE_NAMES)].to_numpy()
    p_valid = _scores(model, x_valid)
    p_hold = _scores(model, x_hold)
    curve = threshold.cost_curve(valid["TARGET"].to_numpy(), p_valid)
    t = curve.best_threshold
    steps.update(1)

    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    staging.chmod(0o755)
    export(model, staging / ONNX_FILE)
    max_delta = parity(model, staging / ONNX_FILE, x_hold)
    if max_delta >= PARITY_LIMIT:
        shutil.rmtree(staging)
        raise RuntimeError(f"ONNX parity failed: max |dp| = {max_delta:.2e} >= {PARITY_LIMIT:g}")
    model.save_model(str(staging / LIGHTGBM_FILE))
    steps.update(1)

    y_hold, true_hold = hold["TARGET"].to_numpy(), hold["TRUE_PD"].to_numpy()
    bayes_t = threshold.bayes_optimal_threshold()
    model_cost = threshold.business_cost(y_hold, p_hold, t)
    bayes_cost = threshold.business_cost(y_hold, true_hold, bayes_t)
    version = "lgbm-" + hashlib.sha256((staging / ONNX_FILE).read_bytes()).hexdigest()[:12]
    gains = model.feature_importance("gain")
    card = {
        "version": version,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "trained_by": trained_by or getpass.getuser(),
        "features": list(FEATURE_NAMES),
        "features_held_constant": list(dropped),
        "data": {"generator": "models.generator", "seed": seed, "rows": rows,
                 "split": dict(zip(("train", "validation", "holdout"), map(len, (train_set, valid, hold)))),
                 "default_rate": float(data["TARGET"].mean())},
        "lightgbm": {k: v for k, v in LGBM_PARAMS.items() if k not in ("n_jobs", "verbose")}
        | {"random_state": seed, "trees": model.num_trees()},   # rounds that found no split add no tree
        "holdout": {
            "auc": float(roc_auc_score(y_hold, p_hold)),
            "brier": float(brier_score_loss(y_hold, p_hold)),
            "bayes_auc": float(roc_auc_score(y_hold, true_hold)),
            "bayes_brier": float(brier_score_loss(y_hold, true_hold)),
            "cost": model_cost,
            "bayes_cost": bayes_cost,
            "bayes_threshold": bayes_t,
            "cost_ratio_to_bayes": model_cost / bayes_cost,
            "confusion": _confusion(y_hold, p_hold, t),
        },
        "threshold": {"value": t, "validation_cost": curve.best_cost,
                      "cost_weights": {"false_negative": threshold.FN_COST, "false_positive": threshold.FP_COST},
                      "search": "exact over every distinct validation score"},
        "onnx": {"file": ONNX_FILE, "opset": 15, "parity_max_abs_diff": max_delta, "parity_rows": len(hold)},
        "monotonicity": {"constraints": dict(zip(FEATURE_NAMES, monotonicity.constraints())),
                         **monotonicity.sweep(OnnxBinaryClassifier(staging / ONNX_FILE).predict_proba, x_hold,
                                              _feature_profile(train_set)),
                         "unconstrained_holdout": _unconstrained(train_set, valid, seed, x_hold, y_hold)},
        "feature_importance_gain_share": {n: float(g / gains.sum()) for n, g in zip(FEATURE_NAMES, gains)},
        "feature_profile": _feature_profile(train_set),
    }
    pd.DataFrame(threshold.gridded(curve)).to_csv(staging / "cost_curve.csv", index=False)
    reference = train_set.sample(n=min(REFERENCE_ROWS, len(train_set)), random_state=seed)
    reference = reference[list(FEATURE_NAMES) + ["TARGET"]].assign(
        probability_default=_scores(model, reference[list(FEATURE_NAMES)].to_numpy()))
    reference.to_csv(staging / REFERENCE_FILE, index=False, float_format="%.9g",
                     compression={"method": "gzip", "mtime": 0})  # no timestamp in the bytes
    card["artifacts"] = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
                         for f in sorted(staging.iterdir())}
    (staging / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    steps.update(1)

    final = out / version
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    (out / "LATEST").write_text(version + "\n")
    steps.update(1)
    steps.close()
    return final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=307_511, help="applicants to generate")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="folder for version folders")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--trained-by", help="who trained it, on the card (default: the OS user)")
    parser.add_argument("--drop-feature", action="append", default=[], choices=FEATURE_NAMES,
                        help="hold this feature at its median in training (repeat for several)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    folder = train(args.rows, args.seed, args.out, progress=not args.no_progress, dropped=tuple(args.drop_feature),
                   trained_by=args.trained_by)
    card = json.loads((folder / CARD_FILE).read_text())
    h = card["holdout"]
    print(f"{card['version']}: AUC {h['auc']:.4f} (Bayes {h['bayes_auc']:.4f}), "
          f"cost {h['cost']:.0f} vs Bayes {h['bayes_cost']:.0f} (x{h['cost_ratio_to_bayes']:.4f}), "
          f"threshold {card['threshold']['value']:.6f}, ONNX parity {card['onnx']['parity_max_abs_diff']:.1e}")
    print(f"wrote {folder}")


if __name__ == "__main__":
    main()

"""Deterministic training pipeline: data → split → LightGBM → threshold → ONNX → model card.

    python -m models.train [--rows 307511] [--seed 42] [--out models]           # the project's generator
    python -m models.train --data applicants.csv --target defaulted [--declarations schema.json] [--ignore id]

Writes ``<out>/<version>/`` (model.onnx, model.txt, model_card.json, cost_curve.csv,
reference_sample.csv.gz) and records the version in ``<out>/LATEST``. The card's ``schema`` block is the model's
contract (``core.schema``): the default model's ten features for the generator, else the lender's declarations with
every other column inferred (listed in ``schema_review``). A lender's table is checked against its schema before
any training (``models.table``).
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
from core.schema import DEFAULT_SCHEMA, ModelSchema, SchemaError
from models import generator, monotonicity, table, threshold
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
SMALL_TABLE_ROWS = 100_000
"""Training rows below which the parameters are sized to the table (``params_for``)."""
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


def params_for(train_rows: int) -> dict[str, object]:
    """LightGBM's parameters for a table of ``train_rows``: the default model's at scale; for a small table fewer,
    slower trees and leaves (and category groups) of about 1 % of the rows, so a thousand rows train without
    memorising them."""
    if train_rows >= SMALL_TABLE_ROWS:
        return LGBM_PARAMS
    leaf = max(10, train_rows // 100)
    return {**LGBM_PARAMS, "n_estimators": 200, "learning_rate": 0.03, "min_child_samples": leaf,
            "min_data_per_group": leaf, "cat_smooth": 10.0, "colsample_bytree": 1.0}


def _scores(model: lgb.Booster, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x))


def _fit(train: pd.DataFrame, schema: ModelSchema, params: dict[str, object], seed: int, progress: bool,
         monotone: bool = True) -> lgb.Booster:
    """LightGBM with the credit policy's directions as monotone constraints (the schema's), categories as
    LightGBM's own categorical splits over the levels' indices."""
    extra = {"monotone_constraints": monotonicity.constraints(schema), "monotone_constraints_method": "advanced"} \
        if monotone else {}
    settings: dict[str, Any] = {**params, **extra}
    model = lgb.LGBMClassifier(random_state=seed, **settings)
    bar = tqdm(total=params["n_estimators"], desc="trees", disable=not progress)

    def tick(_env: lgb.callback.CallbackEnv) -> None:
        bar.update(1)

    model.fit(schema.encode(train), train["TARGET"].to_numpy(), callbacks=[tick],
              categorical_feature=list(schema.categorical) or "auto")
    bar.close()
    return float32_thresholds(model.booster_)


def _feature_profile(train: pd.DataFrame, schema: ModelSchema) -> dict[str, dict[str, float]]:
    """Quantiles of each number, the share of each level of a category (in the training rows)."""
    qs = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    profile: dict[str, dict[str, float]] = {}
    for f in schema.features:
        column = train[f.name]
        if f.kind == "category":
            codes = f.encode(column.to_numpy())
            profile[f.name] = {level: float(np.mean(codes == i)) for i, level in enumerate(f.levels)}
            continue
        profile[f.name] = {"min": float(column.min()), "max": float(column.max()),
                           **{f"q{int(q * 100):02d}": float(column.quantile(q)) for q in qs}}
    return profile


def _confusion(y: np.ndarray, p: np.ndarray, t: float) -> dict[str, int]:
    denied = is_denied(p, t)
    return {"tp": int(np.sum(denied & (y == 1))), "fp": int(np.sum(denied & (y == 0))),
            "tn": int(np.sum(~denied & (y == 0))), "fn": int(np.sum(~denied & (y == 1)))}


def _unconstrained(train_set: pd.DataFrame, valid: pd.DataFrame, schema: ModelSchema, params: dict[str, object],
                   seed: int, x_hold: np.ndarray, y_hold: np.ndarray) -> dict[str, float]:
    """The same training without the monotone constraints (its own cost-optimal threshold), on the same holdout:
    what the constraints cost."""
    model = _fit(train_set, schema, params, seed, progress=False, monotone=False)
    t = threshold.cost_curve(valid["TARGET"].to_numpy(), _scores(model, schema.encode(valid)))
    p = _scores(model, x_hold)
    return {"auc": float(roc_auc_score(y_hold, p)), "cost": threshold.business_cost(y_hold, p, t.best_threshold)}


def train(rows: int, seed: int, out: Path, progress: bool = True, dropped: tuple[str, ...] = (),
          trained_by: str | None = None) -> Path:
    """The default model from the project's generator; returns the version folder. ``dropped`` features are held
    at their median in the training and validation data (the model cannot use them: a challenger without them);
    ``trained_by`` is recorded on the card (the OS user by default), so a validation can be seen to be someone
    else's."""
    data = generator.generate(rows, seed)
    source = {"generator": "models.generator", "seed": seed, "rows": rows}
    return _build(data, DEFAULT_SCHEMA, source, seed, out, progress, dropped, trained_by)


def train_table(path: Path, target: str, out: Path, declarations: dict[str, Any] | None = None,
                ignore: tuple[str, ...] = (), seed: int = 42, progress: bool = True,
                trained_by: str | None = None) -> Path:
    """A model from a lender's table: declared (the rest inferred), checked, then the same pipeline."""
    frame = table.read_table(path)
    schema, inferred = table.declare(frame, target, declarations, ignore)
    table.check(frame, schema, target)
    if target != "TARGET" and "TARGET" in frame.columns:
        frame = frame.drop(columns="TARGET")
    frame = frame.rename(columns={target: "TARGET"})
    frame["TARGET"] = frame["TARGET"].astype(np.int64)
    source = {"table": path.name, "sha256": table.file_digest(path), "target": target, "rows": len(frame),
              "ignored": list(ignore)}
    return _build(frame, schema, source, seed, out, progress, (), trained_by, inferred)


def _build(data: pd.DataFrame, schema: ModelSchema, source: dict[str, Any], seed: int, out: Path, progress: bool,
           dropped: tuple[str, ...], trained_by: str | None, inferred: list[str] | None = None) -> Path:
    """split → LightGBM → threshold → ONNX (parity checked) → card; ``TRUE_PD`` (the generator's) adds the Bayes
    figures."""
    steps = tqdm(total=6, desc="pipeline", disable=not progress)
    train_set, valid, hold = split(data, seed)
    for name in dropped:
        median = float(train_set[name].median())
        train_set, valid = train_set.assign(**{name: median}), valid.assign(**{name: median})
    params = params_for(len(train_set))
    steps.update(1)

    model = _fit(train_set, schema, params, seed, progress)
    steps.update(1)

    x_valid, x_hold = schema.encode(valid), schema.encode(hold)
    p_valid = _scores(model, x_valid)
    p_hold = _scores(model, x_hold)
    curve = threshold.cost_curve(valid["TARGET"].to_numpy(), p_valid)
    t = curve.best_threshold
    steps.update(1)

    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    staging.chmod(0o755)
    export(model, staging / ONNX_FILE, len(schema))
    max_delta = parity(model, staging / ONNX_FILE, x_hold)
    if max_delta >= PARITY_LIMIT:
        shutil.rmtree(staging)
        raise RuntimeError(f"ONNX parity failed: max |dp| = {max_delta:.2e} >= {PARITY_LIMIT:g}")
    model.save_model(str(staging / LIGHTGBM_FILE))
    steps.update(1)

    y_hold = hold["TARGET"].to_numpy()
    model_cost = threshold.business_cost(y_hold, p_hold, t)
    holdout: dict[str, Any] = {"auc": float(roc_auc_score(y_hold, p_hold)),
                               "brier": float(brier_score_loss(y_hold, p_hold))}
    if "TRUE_PD" in hold.columns:   # the generator knows each applicant's true probability
        true_hold = hold["TRUE_PD"].to_numpy()
        bayes_t = threshold.bayes_optimal_threshold()
        bayes_cost = threshold.business_cost(y_hold, true_hold, bayes_t)
        holdout |= {"bayes_auc": float(roc_auc_score(y_hold, true_hold)),
                    "bayes_brier": float(brier_score_loss(y_hold, true_hold)),
                    "cost": model_cost, "bayes_cost": bayes_cost, "bayes_threshold": bayes_t,
                    "cost_ratio_to_bayes": model_cost / bayes_cost}
    else:
        holdout["cost"] = model_cost
    holdout["confusion"] = _confusion(y_hold, p_hold, t)
    version = "lgbm-" + hashlib.sha256((staging / ONNX_FILE).read_bytes()).hexdigest()[:12]
    gains = model.feature_importance("gain")
    names = list(schema.names)
    profile = _feature_profile(train_set, schema)
    card = {
        "version": version,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "trained_by": trained_by or getpass.getuser(),
        "features": names,
        "features_held_constant": list(dropped),
        "data": {**source,
                 "split": dict(zip(("train", "validation", "holdout"), map(len, (train_set, valid, hold)))),
                 "default_rate": float(data["TARGET"].mean())},
        "lightgbm": {k: v for k, v in params.items() if k not in ("n_jobs", "verbose")}
        | {"random_state": seed, "trees": model.num_trees()}   # rounds that found no split add no tree
        | ({} if params is LGBM_PARAMS else {"sized_for_rows": len(train_set)}),
        "holdout": holdout,
        "threshold": {"value": t, "validation_cost": curve.best_cost,
                      "cost_weights": {"false_negative": threshold.FN_COST, "false_positive": threshold.FP_COST},
                      "search": "exact over every distinct validation score"},
        "onnx": {"file": ONNX_FILE, "opset": 15, "parity_max_abs_diff": max_delta, "parity_rows": len(hold)},
        "monotonicity": {"constraints": dict(zip(names, monotonicity.constraints(schema))),
                         **monotonicity.sweep(OnnxBinaryClassifier(staging / ONNX_FILE, n_features=len(schema))
                                              .predict_proba, x_hold, profile, schema),
                         "unconstrained_holdout": _unconstrained(train_set, valid, schema, params, seed, x_hold,
                                                                 y_hold)},
        "feature_importance_gain_share": {n: float(g / gains.sum()) for n, g in zip(names, gains)},
        "feature_profile": profile,
        "schema": schema.to_card(),
        "schema_digest": schema.digest,
    }
    if inferred:
        card["schema_review"] = {"inferred": inferred, "note": "declarations guessed from the table: check each "
                                 "range, level list and reason text, then record a validation block"}
    pd.DataFrame(threshold.gridded(curve)).to_csv(staging / "cost_curve.csv", index=False)
    reference = train_set.sample(n=min(REFERENCE_ROWS, len(train_set)), random_state=seed)
    columns = names + [p.name for p in schema.protected]
    reference = reference[columns + ["TARGET"]].assign(probability_default=_scores(model, schema.encode(reference)))
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
    parser.add_argument("--drop-feature", action="append", default=[], choices=DEFAULT_SCHEMA.names,
                        help="hold this feature at its median in training (repeat for several; generator only)")
    table_args = parser.add_argument_group("a lender's table instead of the generator")
    table_args.add_argument("--data", type=Path, help="applicants table: .csv (any compression) or .parquet")
    table_args.add_argument("--target", help="its 0/1 column, 1 = defaulted")
    table_args.add_argument("--declarations", type=Path,
                            help="JSON like the card's schema block: features declared (the rest inferred), "
                                 "age rule, protected attributes")
    table_args.add_argument("--ignore", action="append", default=[], help="a column not to use (repeat)")
    args = parser.parse_args()
    if (args.data is None) != (args.target is None):
        parser.error("--data and --target go together")
    if args.data is None and (args.declarations or args.ignore):
        parser.error("--declarations and --ignore describe a --data table")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.data is None:
        folder = train(args.rows, args.seed, args.out, progress=not args.no_progress,
                       dropped=tuple(args.drop_feature), trained_by=args.trained_by)
    else:
        try:
            declarations = json.loads(args.declarations.read_text()) if args.declarations else None
            folder = train_table(args.data, args.target, args.out, declarations, tuple(args.ignore), args.seed,
                                 progress=not args.no_progress, trained_by=args.trained_by)
        except (table.TableRefused, SchemaError, json.JSONDecodeError, OSError) as exc:
            raise SystemExit(f"refused, nothing trained: {exc}") from None
    card = json.loads((folder / CARD_FILE).read_text())
    h = card["holdout"]
    bayes = (f" (Bayes {h['bayes_auc']:.4f}), cost {h['cost']:.0f} vs Bayes {h['bayes_cost']:.0f} "
             f"(x{h['cost_ratio_to_bayes']:.4f})") if "bayes_auc" in h else f", cost {h['cost']:.0f}"
    print(f"{card['version']}: AUC {h['auc']:.4f}{bayes}, threshold {card['threshold']['value']:.6f}, "
          f"ONNX parity {card['onnx']['parity_max_abs_diff']:.1e}")
    if card.get("schema_review"):
        print(f"inferred, review on the card: {', '.join(card['schema_review']['inferred'])}")
    print(f"wrote {folder}")


if __name__ == "__main__":
    main()

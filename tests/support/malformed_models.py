"""Model folders an operator could deploy by mistake: copies of the served model with one thing wrong each (a card field
of the wrong type, a listed artifact missing or a folder, a model of another width or output type, a file that is no
model, a reference sample without a column). Each must be refused by the loader, and deployed under load, leave the
old model answering."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
import onnxmltools
from onnxmltools.convert.common.data_types import FloatTensorType

from core.artifacts import CARD_FILE, LIGHTGBM_FILE, ONNX_FILE, REFERENCE_FILE, resolve_model_dir
from models.loader import sha256_of


def _edit_card(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    card = json.loads((folder / CARD_FILE).read_text())
    edit(card)
    (folder / CARD_FILE).write_text(json.dumps(card))


def _relist(folder: Path, name: str) -> None:
    """Record the SHA-256 of a replaced artifact, so the check under test is the one after the checksum."""
    _edit_card(folder, lambda card: card["artifacts"].__setitem__(name, sha256_of(folder / name)))


def _five_wide(folder: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 5))
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 4}, lgb.Dataset(x, (x[:, 0] > 0) * 1), num_boost_round=3
    )
    onx = onnxmltools.convert_lightgbm(
        booster, initial_types=[("input", FloatTensorType([None, 5]))], target_opset=15, zipmap=False
    )
    (folder / ONNX_FILE).write_bytes(onx.SerializeToString())
    (folder / LIGHTGBM_FILE).unlink()
    _edit_card(folder, lambda card: card["artifacts"].pop(LIGHTGBM_FILE))
    _relist(folder, ONNX_FILE)


def _zipmap_with_string_labels(folder: Path) -> None:
    """The served model's ONNX with its output a zipmap keyed by strings ("0", "1"), not the class integers."""
    onx = onnx.load(str(folder / ONNX_FILE))
    zipmaps = [node for node in onx.graph.node if node.op_type == "ZipMap"]
    if not zipmaps:  # the project exports without a zipmap: add one over the probabilities
        probabilities = onx.graph.output[-1]
        zipped = onnx.helper.make_node(
            "ZipMap", [probabilities.name], ["zipped"], domain="ai.onnx.ml", classlabels_strings=["0", "1"]
        )
        onx.graph.node.append(zipped)
        onx.graph.output.remove(probabilities)
        onx.graph.output.append(
            onnx.helper.make_value_info(
                "zipped",
                onnx.helper.make_sequence_type_proto(
                    onnx.helper.make_map_type_proto(
                        onnx.TensorProto.STRING, onnx.helper.make_tensor_type_proto(onnx.TensorProto.FLOAT, [])
                    )
                ),
            )
        )
    else:
        for node in zipmaps:
            del node.attribute[:]
            node.attribute.append(onnx.helper.make_attribute("classlabels_strings", ["0", "1"]))
    (folder / ONNX_FILE).write_bytes(onx.SerializeToString())
    _relist(folder, ONNX_FILE)


def _onnx_not_a_model(folder: Path) -> None:
    (folder / ONNX_FILE).write_bytes(b"not an ONNX model\n")
    _relist(folder, ONNX_FILE)


def _reference_without_a_column(folder: Path) -> None:
    path = folder / REFERENCE_FILE
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress("\n".join(",".join(line.split(",")[1:]) for line in lines).encode() + b"\n"))
    _relist(folder, REFERENCE_FILE)


def _model_txt_a_folder(folder: Path) -> None:
    (folder / LIGHTGBM_FILE).unlink()
    (folder / LIGHTGBM_FILE).mkdir()


MALFORMED: dict[str, Callable[[Path], None]] = {
    "monotonicity a list": lambda f: _edit_card(f, lambda c: c.__setitem__("monotonicity", ["passed"])),
    "artifacts a list": lambda f: _edit_card(f, lambda c: c.__setitem__("artifacts", [ONNX_FILE])),
    "threshold a mapping": lambda f: _edit_card(f, lambda c: c["threshold"].__setitem__("value", {"v": 0.3})),
    "card a list": lambda f: (f / CARD_FILE).write_text("[1, 2]"),
    "listed model.txt missing": lambda f: (f / LIGHTGBM_FILE).unlink(),
    "model.txt a folder": _model_txt_a_folder,
    "ONNX model 5 features wide": _five_wide,
    "ONNX zipmap keyed by strings": _zipmap_with_string_labels,
    "model.onnx not a model": _onnx_not_a_model,
    "reference sample without a column": _reference_without_a_column,
}


def malformed_folders(root: Path) -> dict[str, Path]:
    """name → a copy of the served model folder with that fault."""
    folders = {}
    for name, spoil in MALFORMED.items():
        folder = root / name.replace(" ", "-")
        shutil.copytree(resolve_model_dir(None), folder)
        spoil(folder)
        folders[name] = folder
    return folders

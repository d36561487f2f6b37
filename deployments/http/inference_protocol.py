"""The Open Inference Protocol (KServe's v2 predict protocol, which Triton and MLServer serve) beside our own routes,
so a client written for those servers scores here: health, server and model metadata, and ``infer``.

``infer`` is ``/predict/batch`` with tensors for bodies: the same admission, key, scorer, decision rule, log and
reasons for every denial (``decided``), recorded with the endpoint ``infer``. Its columns are read as arrays, not
objects (``deployments.http.tensors``), and its answer is built from the decision block's columns. Outputs, one
``[n]`` tensor each: ``request_id``, ``probability_default`` (rounded as every answer is), ``prediction``,
``credit_decision`` and ``explanation`` (the decision's explanation as JSON text, as ``/decisions/{id}`` gives it: a
denial's principal reasons; empty for an approval unless the request's parameter ``explain`` is true). Tensor data
is JSON (binary tensors are refused). Errors are ``{"error": …}`` as the protocol says (``create_app``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from deployments.decisions import answered_probabilities
from deployments.http.admission import read_body
from deployments.http.backend import Backend
from deployments.http.deps import BackendDep, json_response, require, unavailable
from deployments.http.schemas import example_applicant
from deployments.http.scoring_routes import ApplicantKey, ScoringKey, decided
from deployments.http.tensors import NUMBER_DATATYPES, TensorError, TensorReader, parse_request
from prediction_log.records import Block

PREFIX = "/v2"
ENDPOINT = "infer"
OUTPUTS: dict[str, tuple[str, Callable[[Block], list[Any]]]] = {
    "request_id": ("BYTES", lambda b: b.column("request_id").to_pylist()),
    "probability_default": ("FP64", lambda b: answered_probabilities(b).tolist()),
    "prediction": ("INT32", lambda b: b.column("prediction").to_numpy().tolist()),
    "credit_decision": ("BYTES", lambda b: b.column("credit_decision").to_pylist()),
    "explanation": ("BYTES", lambda b: b.column("explanation").fill_null("").to_pylist()),
}
"""Each output: its datatype and how it is read off the decision block."""

class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1: any size")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="The version in force")
    platform: str
    inputs: list[TensorMetadata] = Field(description="One [n, features] tensor, or one [n] tensor per feature")
    outputs: list[TensorMetadata]


class OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class InferAnswer(BaseModel):
    model_name: str
    model_version: str = Field(description="The version that decided")
    id: str | None = Field(None, description="The request's id, when it gave one")
    parameters: dict[str, float] = Field(description="threshold: denied when probability_default >= threshold")
    outputs: list[OutputTensor]


BinaryHeader = Annotated[str | None, Header(alias="inference-header-content-length", include_in_schema=False)]


def _wanted(request: dict[str, Any]) -> tuple[list[str], bool]:
    """The outputs asked for (all when none are named, as the protocol says) and whether every row is explained."""
    outputs = request.get("outputs")
    if outputs is None:
        names = list(OUTPUTS)
    elif type(outputs) is list and all(type(o) is dict for o in outputs):
        names = [o.get("name") for o in outputs]
        for i, name in enumerate(names):
            if name not in OUTPUTS:
                raise TensorError.one(["outputs", i, "name"], f"unknown output {name!r}: the outputs are "
                                                              f"{', '.join(OUTPUTS)}", "outputs")
    else:
        raise TensorError.one(["outputs"], "outputs must be a list of {name}", "outputs")
    parameters = request.get("parameters") or {}
    explain = parameters.get("explain", False) if type(parameters) is dict else None
    if type(explain) is not bool:
        raise TensorError.one(["parameters", "explain"], "parameter explain must be true or false", "parameters")
    return names, explain


def _answer(name: str, block: Block, outputs: list[str], request_id: Any) -> dict[str, Any]:
    n = len(block)
    answer: dict[str, Any] = {
        "model_name": name,
        "model_version": block.column("model_version")[0].as_py(),
        "parameters": {"threshold": block.column("threshold")[0].as_py()},
        "outputs": [{"name": o, "datatype": OUTPUTS[o][0], "shape": [n], "data": OUTPUTS[o][1](block)}
                    for o in outputs],
    }
    if type(request_id) is str:
        answer["id"] = request_id
    return answer


def _request_doc(inputs: list[dict[str, Any]], example: list[float] | None) -> dict[str, Any]:
    """The ``infer`` body in the OpenAPI document (read as tensors, not through a pydantic model)."""
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string", "enum": [i["name"] for i in inputs]},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": sorted({"BYTES", *NUMBER_DATATYPES})},
        "data": {"type": "array", "description": "row-major, flat or nested"}}}
    schema = {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object", "properties": {"explain": {"type": "boolean", "description": (
            "explain every row (else only denials carry their reasons)")}}},
        "inputs": {"type": "array", "minItems": 1, "items": tensor},
        "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "enum": list(OUTPUTS)}}}}}}
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = {"inputs": [inputs[0] | {"shape": [1, len(example)], "data": [example]}]}
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


def _json_body_type(request: Request) -> None:
    """JSON, or no Content-Type at all (Triton's client sends none) from a client that is not a browser: a browser
    always sends ``Origin`` with a cross-site post, so a page cannot score through this route (415)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json" or (not media_type and "origin" not in request.headers):
        return
    raise HTTPException(415, "Content-Type must be application/json")


def router(tensors: TensorReader, model_name: str) -> APIRouter:
    """The protocol's routes for the model this application serves, named ``model_name``."""
    routes = APIRouter(prefix=PREFIX, tags=["open inference protocol"])
    def name_param() -> Any:
        return Path(description="The model's name: the Serve application's", json_schema_extra={"enum": [model_name]})
    example = example_applicant(tensors.schema)
    body_doc = _request_doc(tensors.metadata_inputs(), [float(example[n]) for n in tensors.schema.names]
                            if tensors.matrix_form else None)

    def known(name: str, version: str | None = None, card: dict[str, Any] | None = None) -> None:
        if name != model_name:
            raise HTTPException(404, f"unknown model {name!r}: this application serves {model_name!r}")
        if version is not None and card is not None and version != card["version"]:
            raise HTTPException(404, f"model {name!r} has no version {version!r}: it serves {card['version']!r}")

    async def card_of(b: Backend) -> dict[str, Any]:
        try:
            return await b.model_card()
        except Exception as exc:
            raise unavailable("scorer") from exc

    @routes.get("", response_model=ServerMetadata, summary="Server metadata")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "credit-scoring-serve", "version": "1.0", "extensions": []}

    @routes.get("/health/live", response_model=Live, summary="Live: the HTTP server answers")
    async def live() -> dict[str, Any]:
        return {"live": True}

    @routes.get("/health/ready", response_model=Ready, summary="Ready: the model answers (503 until then)")
    async def ready(b: BackendDep) -> dict[str, Any]:
        await card_of(b)
        return {"ready": True}

    async def metadata(b: Backend, name: str, version: str | None) -> dict[str, Any]:
        known(name)
        card = await card_of(b)
        known(name, version, card)
        return {"name": model_name, "versions": [card["version"]], "platform": "onnxruntime_onnx",
                "inputs": tensors.metadata_inputs(),
                "outputs": [{"name": o, "datatype": t, "shape": [-1]} for o, (t, _) in OUTPUTS.items()]}

    @routes.get("/models/{name}", response_model=ModelMetadata, summary="Model metadata: its inputs and outputs")
    async def model_metadata(b: BackendDep, name: str = name_param()) -> dict[str, Any]:
        return await metadata(b, name, None)

    @routes.get("/models/{name}/versions/{version}", response_model=ModelMetadata, include_in_schema=False)
    async def version_metadata(b: BackendDep, name: str, version: str) -> dict[str, Any]:
        return await metadata(b, name, version)

    @routes.get("/models/{name}/ready", response_model=ModelReady, summary="Ready: the model answers")
    async def model_ready(b: BackendDep, name: str = name_param()) -> dict[str, Any]:
        known(name)
        await card_of(b)
        return {"name": model_name, "ready": True}

    async def infer(request: Request, b: Backend, name: str, version: str | None, key: str | None,
                    x_api_key: str | None, binary: str | None) -> Response:
        started = time.perf_counter()
        known(name)
        if b.scoring_requires_key:
            require(b, x_api_key, "score")
        _json_body_type(request)
        if binary is not None:
            raise TensorError.one([], "binary tensor data is not served: send JSON tensors (binary_data=False)",
                                  "binary_data")
        with b.admitted() as slot:
            body = parse_request(await read_body(request, slot, b.body_timeout_s))
            rows = tensors.rows(body)
            outputs, explain = _wanted(body)
            if version is not None:
                known(name, version, await card_of(b))
            block, _ = await decided(b, rows, started, ENDPOINT, explain, key)
        return json_response(_answer(model_name, block, outputs, body.get("id")))

    @routes.post("/models/{name}/infer", response_model=InferAnswer, summary="Score applicants given as tensors",
                 openapi_extra=body_doc)
    async def model_infer(request: Request, b: BackendDep, name: str = name_param(),
                          x_applicant_key: ApplicantKey = None, x_api_key: ScoringKey = None,
                          binary: BinaryHeader = None) -> Response:
        return await infer(request, b, name, None, x_applicant_key, x_api_key, binary)

    @routes.post("/models/{name}/versions/{version}/infer", response_model=InferAnswer, include_in_schema=False)
    async def version_infer(request: Request, b: BackendDep, name: str, version: str,
                            x_applicant_key: ApplicantKey = None, x_api_key: ScoringKey = None,
                            binary: BinaryHeader = None) -> Response:
        return await infer(request, b, name, version, x_applicant_key, x_api_key, binary)

    return routes

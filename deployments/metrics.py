"""Prometheus metrics of the credit app, exported through Ray's metrics agent next to Ray Serve's own.

Ray prefixes every name with ``ray_`` and adds ``deployment``, ``replica`` and ``application``
tags (counters also get ``_total``). Each node's agent serves them on its metrics export port;
see docs/operations.md (Metrics) for where to scrape. Every metric costs O(1) per block of
decisions, never per row: each observation is a message to the metrics agent (one
``Histogram.observe`` per row cost that agent half a core at 50k rows/s), so the probability
distribution is counted with NumPy per block and recorded as one counter increment per bucket.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.serve.metrics import Counter, Gauge, Histogram

PROBABILITY_BUCKETS = [0.01, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0]
_EDGES = np.array(PROBABILITY_BUCKETS)
_LABELS = [f"{b:g}" for b in PROBABILITY_BUCKETS]
ROW_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 10000, 100000]


class IngressMetrics:
    """Decisions answered, their default probabilities, rows per scorer call, records awaiting shipment."""

    def __init__(self) -> None:
        self.decisions = Counter("credit_decisions", description="Decisions answered with 200.",
                                 tag_keys=("decision", "endpoint", "model_version"))
        self.probability = Counter("credit_probability_default_bucket", tag_keys=("le",),
                                   description="Decisions answered, by default-probability bucket (upper bound "
                                               "le, not cumulative; counted per block with NumPy).")
        self.batch_rows = Histogram("credit_ingress_batch_rows", boundaries=ROW_BUCKETS, tag_keys=("source",),
                                    description="Rows per scorer call (source: micro_batch of /predict "
                                                "requests, or one /predict/batch request).")
        self.shed = Counter("credit_requests_shed", tag_keys=("reason",),
                            description="Scoring requests refused with 503, by reason: overload (in-flight requests "
                                        "or body bytes at their bound), log_refusing (nowhere to record decisions).")
        self.rejections = Counter("credit_rejections", tag_keys=("pace",),
                                  description="Rejected keyless requests (401, 403, 415, 422) by how their answer "
                                              "was paced: free (within rejections_per_s), delayed (waited "
                                              "rejection_delay_s), crowded (too many waiting: answered at once).")
        self.challenger_rows = Counter(
            "credit_challenger_rows", tag_keys=("result",),
            description="Rows by what the challenger did: shadow (scored beside the champion), missing (failed or "
                        "too slow: logged without it), skipped (shadow calls at their bound), canary (answered), "
                        "fallback (canary call failed: the champion answered).")
        self.log_buffer = Gauge("credit_log_buffer_records",
                                description="Decisions buffered on this ingress replica, not yet shipped to the "
                                            "log writer.")

    def decided(self, probabilities: np.ndarray, denied: int, endpoint: str, version: str) -> None:
        """Count one block of decisions and its probabilities per bucket (a few calls per block)."""
        total = len(probabilities)
        if denied:
            self.decisions.inc(denied, {"decision": "denied", "endpoint": endpoint, "model_version": version})
        if total - denied:
            self.decisions.inc(total - denied,
                               {"decision": "approved", "endpoint": endpoint, "model_version": version})
        counts = np.bincount(np.searchsorted(_EDGES, probabilities, side="left"), minlength=len(_EDGES))
        for label, count in zip(_LABELS, counts.tolist()):
            if count:
                self.probability.inc(count, {"le": label})

    def scorer_call(self, rows: int, source: str) -> None:
        self.batch_rows.observe(rows, {"source": source})


class ScorerMetrics:
    """What each ONNX run carried."""

    def __init__(self) -> None:
        self.scored = Counter("credit_scorer_rows", description="Rows scored by ONNX Runtime.")
        self.rows = Histogram("credit_scorer_batch_rows", boundaries=ROW_BUCKETS,
                              description="Rows per ONNX Runtime run.")
        self.calls = Histogram("credit_scorer_batch_calls", boundaries=ROW_BUCKETS[:9],
                               description="Caller blocks (scorer calls) merged into one ONNX run.")

        self.change_refused = Gauge("credit_model_change_refused",
                                    description="1 while the last model or scorer change was refused (the model in "
                                                "force kept answering; GET /health says why), else 0.")
        self.reasons_fallback = Gauge("credit_reasons_fallback",
                                      description="1 while the active model's reasons come from LightGBM's "
                                                  "pred_contrib because its trees cannot be tabulated, else 0.")

    def run(self, rows: int, calls: int) -> None:
        self.scored.inc(rows)
        self.rows.observe(rows)
        self.calls.observe(calls)


class LogWriterMetrics:
    """Records by outcome, records in flight in the writer, records waiting in the spool."""

    def __init__(self) -> None:
        self.records = Counter("credit_log_records", tag_keys=("outcome",),
                               description="Log records by outcome: written, spooled (store down), "
                                           "replayed (from the spool), rejected (refused by the database).")
        self.queue = Gauge("credit_log_writer_queue_records",
                           description="Records received by the log writer and not yet stored or spooled.")
        self.spool = Gauge("credit_log_spool_records", description="Records waiting in the spool for replay.")
        self.feature_psi = Gauge("credit_feature_psi", tag_keys=("feature",),
                                 description="PSI of each feature over the last monitoring window against the "
                                             "model's reference sample (monitoring runs; > 0.2: significant shift).")
        self.realized_auc = Gauge("credit_realized_auc", description="AUC of the decisions of the last "
                                                                     "realized_window_days that have an outcome.")
        self.expected_auc = Gauge("credit_expected_auc", description="The model card's holdout AUC of the version "
                                                                     "that made most of those decisions.")
        self.estimated_auc = Gauge("credit_estimated_auc", description="AUC estimated before outcomes (CBPE) of the "
                                                                       "last monitoring window's decisions.")
        self.estimated_auc_drop = Gauge("credit_estimated_auc_drop",
                                        description="The card's holdout AUC minus the estimated AUC, of the version "
                                                    "that made most of the window's decisions.")
        self.monitored_decisions = Gauge("credit_monitored_decisions",
                                         description="Decisions in the last monitoring window.")

    def count(self, outcome: str, records: int) -> None:
        if records:
            self.records.inc(records, {"outcome": outcome})

    def queued(self, records: int) -> None:
        self.queue.set(records)

    def spool_waiting(self, records: int) -> None:
        self.spool.set(records)

    def monitored(self, run: dict[str, Any]) -> None:
        """A monitoring run's figures as gauges (what it could not compute keeps its last value)."""
        self.monitored_decisions.set(run["window_decisions"])
        for feature, value in (run["psi"] or {}).items():
            self.feature_psi.set(value, {"feature": feature})
        if run["realized_auc"] is not None:
            self.realized_auc.set(run["realized_auc"])
        if run["expected_auc"] is not None:
            self.expected_auc.set(run["expected_auc"])
        if run.get("estimated_auc") is not None:
            self.estimated_auc.set(run["estimated_auc"])
            if run.get("estimated_expected_auc") is not None:
                self.estimated_auc_drop.set(run["estimated_expected_auc"] - run["estimated_auc"])

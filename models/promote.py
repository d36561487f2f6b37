"""Promote a candidate model through named gates, or roll back, on the running server (controlled change: SR 11-7).

    uv run python -m models.promote models/lgbm-…       # gates; when every one passes, apply it and wait
    uv run python -m models.promote CANDIDATE --dry-run  # gates and the evidence report only
    uv run python -m models.promote CANDIDATE --override-by "A. Risk" --override-reason "ticket 123: ..."
    uv run python -m models.promote --rollback           # back to the version the last promotion replaced

The candidate is a model folder that has been shadowing the champion (the Challenger deployment in ``shadow``
mode). The command checks the folder with the server's own loader, reads the evidence from the running server with
the full API key (``GET /health``, ``/challenger`` and ``/fairness`` over the last ``PROMOTION_WINDOW_DAYS``), and
checks the gates of ``models.promotion_gates`` against ``core.settings.PromotionGates``. It writes the evidence
report (JSON and HTML, under REPORTS_DIR/promotions) and its SHA-256. Only when every gate passes — or an override
names who and why — does it set the Scorer's ``model`` in ``serve_config.yaml`` (the challenger stood down), with a
``change_note`` holding the evidence digest (so the model-change audit record carries it), run ``serve deploy``
and wait until ``/health`` answers with the new version; a deploy that fails or is refused puts the file back.
Each applied change is appended to DATA_DIR/promotions.jsonl, which ``--rollback`` reads.

Exit status: 0 applied (or, with --dry-run, every gate passed); 1 refused by a gate; 2 the change failed to apply
(the old model answers); 3 the candidate folder is not a servable model.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import html
import json
import os
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from core.api_keys import resolve_api_key
from core.polling import GiveUp, wait_until
from core.private_files import open_private
from core.serve_cli import serve_cli
from core.settings import PROJECT_ROOT, PromotionGates, Settings, get_settings
from models.loader import ModelRefused, load_model
from models.promotion_gates import Evidence, check
from models.serve_config_edit import set_user_config, user_config

EXIT_APPLIED, EXIT_REFUSED, EXIT_NOT_APPLIED, EXIT_NOT_SERVABLE = 0, 1, 2, 3
HISTORY_FILE = "promotions.jsonl"
APPLY_TIMEOUT_S = 180.0
"""How long the new version may take to answer after ``serve deploy`` (a generous bound: a model loads and is
checked on every scorer replica, on a loaded machine)."""


def gather(client: httpx.Client, candidate: str, gates: PromotionGates, now: datetime) -> Evidence:
    """The running server's evidence about ``candidate`` shadowing the champion over the window."""
    champion = client.get("/health").raise_for_status().json()["model_version"]
    since = now - timedelta(days=gates.window_days)
    window = {"since": since.isoformat(), "until": now.isoformat()}
    pairs = client.get("/challenger", params=window).raise_for_status().json()["pairs"]
    pair = next((p for p in pairs if p["champion"] == champion and p["challenger"] == candidate), None)
    fairness = client.get("/fairness", params={**window, "min_ratio": gates.min_adverse_impact_ratio,
                                               "min_decisions": gates.min_group_decisions}).raise_for_status().json()
    return Evidence(champion, candidate, pair, fairness)


def evidence_report(card: dict[str, Any], evidence: Evidence, gates: PromotionGates, results: list[dict[str, Any]],
                    override: dict[str, str] | None, now: datetime) -> dict[str, Any]:
    failed = [g["name"] for g in results if not g["passed"]]
    return {"at": now.isoformat(), "by": getpass.getuser(), "candidate": evidence.candidate,
            "champion": evidence.champion, "window_days": gates.window_days, "settings": gates.model_dump(),
            "card": {k: card.get(k) for k in ("version", "trained_at", "trained_by", "holdout", "threshold",
                                              "validation", "features_held_constant")},
            "gates": results, "failed": failed, "passed": not failed, "override": override,
            "evidence": asdict(evidence)}


def digest_of(report: dict[str, Any]) -> str:
    """SHA-256 of the report's canonical JSON (what the audit record carries)."""
    return hashlib.sha256(json.dumps(report, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def to_html(report: dict[str, Any], digest: str) -> str:
    rows = "".join(f"<tr><td>{html.escape(g['name'])}</td><td>{'passed' if g['passed'] else 'FAILED'}</td>"
                   f"<td>{html.escape(g['detail'])}</td></tr>" for g in report["gates"])
    override = report["override"]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Promotion of {html.escape(report['candidate'])}"
            "</title></head><body>"
            f"<h1>Promotion of {html.escape(report['candidate'])} over {html.escape(report['champion'])}</h1>"
            f"<p>{html.escape(report['at'])}, by {html.escape(report['by'])}; evidence over the last "
            f"{report['window_days']} days. Evidence digest (SHA-256 of the JSON report): <code>{digest}</code></p>"
            f"<table border='1'><tr><th>gate</th><th>result</th><th>detail</th></tr>{rows}</table>"
            + (f"<p>Override by {html.escape(override['by'])}: {html.escape(override['reason'])}</p>" if override
               else "") + "</body></html>")


def write_report(report: dict[str, Any], digest: str, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{report['candidate']}-{report['at'].replace(':', '').replace('+0000', 'Z')[:17]}"
    stem.with_suffix(".json").write_text(json.dumps({**report, "digest": digest}, indent=2) + "\n")
    stem.with_suffix(".html").write_text(to_html(report, digest))
    return stem.with_suffix(".json")


def serve_deploy(config: Path, address: str) -> subprocess.CompletedProcess[str]:
    return serve_cli("deploy", str(config), address=address, env=os.environ, timeout_s=300)


def apply(client: httpx.Client, config: Path, address: str, model: str, version: str, note: str) -> str | None:
    """Point the Scorer at ``model`` (the challenger stood down when it is that model), deploy and wait until
    ``/health`` answers with ``version``; None when it does, else why not (the file put back)."""
    before = config.read_text()
    refused_before = client.get("/health").json().get("change_refused")
    challenger = user_config(config, "Challenger")
    try:
        set_user_config(config, "Scorer", {"model": model, "change_note": note})
        if challenger.get("model") and Path(str(challenger["model"])).name == version:
            set_user_config(config, "Challenger", {"mode": None, "model": None, "change_note": None})
        done = serve_deploy(config, address)
        if done.returncode != 0:
            raise RuntimeError(f"serve deploy failed: {(done.stderr or done.stdout).strip()[-500:]}")

        def answering() -> bool:
            health = client.get("/health").json()
            if health.get("change_refused") not in (None, refused_before):   # wait_until retries other errors
                raise GiveUp(f"the server refused the change: {health['change_refused']}")
            return bool(health.get("model_version") == version)

        wait_until(answering, APPLY_TIMEOUT_S, f"{version} to answer")
        return None
    except Exception as exc:
        config.write_text(before)
        serve_deploy(config, address)   # the file as it was, so the next deploy does not retry the change
        return str(exc)


def history(settings: Settings) -> list[dict[str, Any]]:
    path = settings.data_dir / HISTORY_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def remember(settings: Settings, entry: dict[str, Any]) -> None:
    with open_private(settings.data_dir / HISTORY_FILE, "a") as f:
        f.write(json.dumps(entry) + "\n")


def promote(args: argparse.Namespace, settings: Settings, client: httpx.Client) -> int:
    gates = PromotionGates()
    try:
        candidate = load_model(args.candidate)
    except ModelRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_NOT_SERVABLE
    now = datetime.now(UTC)
    evidence = gather(client, candidate.version, gates, now)
    results = check(candidate.card, evidence, gates)
    override = {"by": args.override_by, "reason": args.override_reason} if args.override_by else None
    report = evidence_report(candidate.card, evidence, gates, results, override, now)
    digest = digest_of(report)
    path = write_report(report, digest, args.reports or settings.reports_dir / "promotions")
    for gate in results:
        print(f"{'passed' if gate['passed'] else 'FAILED'}  {gate['name']}: {gate['detail']}")
    print(f"evidence report {path} (sha256 {digest})")
    if report["failed"] and override is None:
        print(f"refused: failed gates {', '.join(report['failed'])}; nothing applied", file=sys.stderr)
        return EXIT_REFUSED
    if args.dry_run:
        return EXIT_APPLIED
    previous = str(user_config(args.config, "Scorer").get("model") or "latest")
    previous = evidence.champion if previous == "latest" else previous   # "latest" may mean another model later
    note = f"promote {candidate.version} by {report['by']}: evidence sha256:{digest}"
    if override:
        note += f"; override of {', '.join(report['failed'])} by {override['by']}: {override['reason']}"
    problem = apply(client, args.config, args.address, str(args.candidate), candidate.version, note[:500])
    if problem is not None:
        print(f"not applied, {evidence.champion} keeps answering: {problem}", file=sys.stderr)
        return EXIT_NOT_APPLIED
    remember(settings, {"at": now.isoformat(), "from_version": evidence.champion, "from_model": previous,
                        "to_version": candidate.version,
                        "to_model": str(args.candidate), "digest": digest, "report": str(path), "rollback": False})
    print(f"applied: {candidate.version} answers (was {evidence.champion})")
    return EXIT_APPLIED


def rollback(args: argparse.Namespace, settings: Settings, client: httpx.Client) -> int:
    current = client.get("/health").raise_for_status().json()["model_version"]
    last = next((e for e in reversed(history(settings)) if e["to_version"] == current), None)
    if last is None:
        print(f"refused: no promotion to {current} in {settings.data_dir / HISTORY_FILE}", file=sys.stderr)
        return EXIT_REFUSED
    note = f"rollback of {current} to {last['from_version']} by {getpass.getuser()} (promotion {last['digest']})"
    problem = apply(client, args.config, args.address, last["from_model"], last["from_version"], note)
    if problem is not None:
        print(f"not applied, {current} keeps answering: {problem}", file=sys.stderr)
        return EXIT_NOT_APPLIED
    remember(settings, {"at": datetime.now(UTC).isoformat(), "from_version": current, "from_model": last["to_model"],
                        "to_version": last["from_version"], "to_model": last["from_model"], "digest": last["digest"],
                        "rollback": True})
    print(f"rolled back: {last['from_version']} answers (was {current})")
    return EXIT_APPLIED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidate", nargs="?", help="the candidate's model folder (or version under models/)")
    parser.add_argument("--rollback", action="store_true", help="back to the version the last promotion replaced")
    parser.add_argument("--dry-run", action="store_true", help="gates and report only")
    parser.add_argument("--override-by", help="who overrides failed gates (with --override-reason)")
    parser.add_argument("--override-reason", help="why (a ticket, the finding)")
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "serve_config.yaml")
    parser.add_argument("--address", default="http://127.0.0.1:8265", help="Ray dashboard for serve deploy")
    parser.add_argument("--reports", type=Path, help="report folder (default REPORTS_DIR/promotions)")
    args = parser.parse_args(argv)
    if args.rollback == bool(args.candidate):
        parser.error("name a CANDIDATE, or --rollback")
    if bool(args.override_by) != bool(args.override_reason) or (args.override_by and
                                                                len(args.override_reason.strip()) < 10):
        parser.error("an override needs --override-by and --override-reason (at least 10 characters)")
    settings = get_settings()
    with httpx.Client(base_url=settings.api_url, timeout=120,
                      headers={"X-API-Key": resolve_api_key(settings)}) as client:
        return rollback(args, settings, client) if args.rollback else promote(args, settings, client)


if __name__ == "__main__":
    sys.exit(main())

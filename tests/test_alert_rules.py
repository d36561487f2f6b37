"""The Prometheus alert rules (``deploy/prometheus/alerts.yml``): valid, and each fires on its scenario and stays
silent on a healthy server (``promtool test rules``, synthetic series). That the metrics they name are exported
by the README's run is checked in ``tests/test_operate.py``."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from core.settings import PROJECT_ROOT

RULES_DIR = PROJECT_ROOT / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")



def rule_metrics() -> set[str]:
    """Every ``ray_credit_*`` metric the rules name."""
    return set(re.findall(r"\b(ray_credit_[a-z_]+)", (RULES_DIR / "alerts.yml").read_text()))


def declared_metrics() -> set[str]:
    """The names Ray exports for the app's metrics (``deployments/metrics.py``): ``ray_`` + name, ``_total`` for
    counters."""
    source = (PROJECT_ROOT / "deployments" / "metrics.py").read_text()
    return {f"ray_{name}{'_total' if kind == 'Counter' else ''}"
            for kind, name in re.findall(r'\b(Counter|Gauge|Histogram)\(\s*"(credit_[a-z_]+)"', source)}


def test_the_rules_name_only_metrics_the_server_declares() -> None:
    assert rule_metrics() and rule_metrics() <= declared_metrics(), rule_metrics() - declared_metrics()


@pytest.mark.skipif(PROMTOOL is None, reason="no promtool (apt-get install prometheus)")
@pytest.mark.parametrize("command", [["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]])
def test_promtool_accepts_the_rules_and_their_tests_pass(command: list[str]) -> None:
    done = subprocess.run([str(PROMTOOL), *command], cwd=RULES_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout

"""Run a report command's ``run(argv)`` in this process with a given environment (no interpreter start,
no Evidently import per call), as the fast tier does for the CLI commands."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Callable

from core.settings import get_settings


def run_cli(run: Callable[[list[str]], int], env: dict[str, str], argv: list[str]) -> subprocess.CompletedProcess:
    stdout, stderr = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = run(argv)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())

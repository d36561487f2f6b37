"""Ray Serve's command line of this environment, as an operator runs it against the README's server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from core.settings import PROJECT_ROOT


def serve_cli(*args: str, address: str, env: Mapping[str, str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """``serve <args> --address=<address>`` with Ray's token authentication (``RAY_AUTH_MODE=token``, as serve.env
    sets it; the token from the server user's ``~/.ray/auth_token`` unless ``env`` names another)."""
    return subprocess.run([str(Path(sys.executable).with_name("serve")), *args, f"--address={address}"],
                          cwd=PROJECT_ROOT, env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True,
                          timeout=timeout_s)

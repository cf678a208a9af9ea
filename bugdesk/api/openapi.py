"""The OpenAPI document of the agent API, as committed in ``docs/openapi.json``.

    python -m bugdesk.api.openapi > docs/openapi.json

``tests/api/test_api_openapi.py`` fails when the committed file is stale.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bugdesk.api.app import create_app
from bugdesk.config import Settings


def document() -> dict[str, Any]:
    """The schema of an app built from default settings (nothing machine-specific leaks in)."""
    return create_app(Settings()).openapi()


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())

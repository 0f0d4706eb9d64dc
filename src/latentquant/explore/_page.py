"""The explorer's HTML: one page whose style, script and data are inline, so it works offline and as a file."""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any


def _asset(name: str) -> str:
    return resources.files("latentquant.explore").joinpath("static", name).read_text(encoding="utf-8")


def _json_for_script(data: Any) -> str:
    # Inside <script> only "</" can end the element early; escaping every "<" also keeps "<!--" inert.
    return json.dumps(data, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")


def render(data: dict[str, Any], title: str) -> str:
    """The page for ``data`` (mode "live" or "static", the runs, ...): everything it needs is in the file."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<style>{_asset('explore.css')}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><div id=\"app\"></div>"
        f"<script type=\"application/json\" id=\"lq-data\">{_json_for_script(data)}</script>"
        f"<script>{_asset('explore.js')}</script></body></html>\n"
    )


def live_page(state: dict[str, Any]) -> str:
    names = ", ".join(run["name"] for run in state["runs"])
    return render({"mode": "live", **state}, f"latentquant explore: {names}")


def static_page(data: dict[str, Any]) -> str:
    names = ", ".join(run["name"] for run in data["runs"])
    return render({"mode": "static", **data}, f"latentquant explore (exported): {names}")

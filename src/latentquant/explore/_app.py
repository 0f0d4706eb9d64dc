"""The explorer's routes (Flask). Every bad request gets a 4xx JSON answer naming the problem, never a 500.

    GET  /                          the page (its script and style are inline: nothing is fetched from outside)
    GET  /api/state                 every run's latents (controls, NMI labels, usage), NMI matrix and scores
    GET  /api/runs/<r>/latents/<j>  one latent's control
    GET  /api/image/<k>.png         the k-th image of the starting strip (the first run's evaluation set)
    POST /api/encode                {"image": k} -> {"codes": [code of run 0, code of run 1, ...]}
    GET  /api/decode.png?run=r&z=.. the decoder's image for a code (comma-separated, one number per latent)
    GET  /api/sample?run=r&seed=s   a GAN's prior draw as a code
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ._page import live_page
from ._state import STRIP, BadRequest, RunView, png_bytes

MAX_QUERY = 20_000  # characters of a code in a URL: far above any model's, far below what would cost anything


def create_app(views: list[RunView]) -> Flask:
    """The WSGI app serving ``views`` (one or more loaded runs sharing a dataset)."""
    app = Flask("latentquant.explore")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # an encode request is a few bytes
    strip = views[0].indices[:STRIP]
    strip_png = [png_bytes(views[0].data.images[int(row)]) for row in strip]
    state = {"runs": [v.summary() for v in views], "strip": len(strip)}
    page = live_page(state)

    def run_of(raw: Any) -> RunView:
        try:
            r = int(raw)
        except (TypeError, ValueError):
            raise BadRequest(f"run must be a run number, got {str(raw)[:40]!r}") from None
        if not 0 <= r < len(views):
            raise BadRequest(f"no run {r}: this explorer shows {len(views)} run(s), numbered from 0", status=404)
        return views[r]

    @app.errorhandler(BadRequest)
    def bad_request(e: BadRequest) -> tuple[Response, int]:
        return jsonify(error=str(e)), e.status

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> tuple[Response, int]:
        # Flask's own refusals (unknown route, wrong method, oversized or unparsable body) as JSON too.
        return jsonify(error=e.description or e.name), e.code or 400

    @app.get("/")
    def index() -> Response:
        return Response(page, mimetype="text/html")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status=204)  # browsers ask; answering keeps a 404 out of the page's console

    @app.get("/api/state")
    def api_state() -> Response:
        return jsonify(state)

    @app.get("/api/runs/<r>/latents/<j>")
    def api_latent(r: str, j: str) -> Response:
        view = run_of(r)
        if not j.isdigit() or int(j) >= view.num_latents:
            raise BadRequest(f"run {r} has no latent {j[:40]!r}: its latents are 0 to {view.num_latents - 1}",
                             status=404)
        return jsonify(view.controls[int(j)].as_json())

    @app.get("/api/image/<k>.png")
    def api_image(k: str) -> Response:
        if not k.isdigit() or int(k) >= len(strip_png):
            raise BadRequest(f"no strip image {k[:40]!r}: there are {len(strip_png)}", status=404)
        return Response(strip_png[int(k)], mimetype="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/encode")
    def api_encode() -> Response:
        body = request.get_json(silent=True)  # None for a body that is not JSON (or not declared as JSON)
        if not isinstance(body, dict) or "image" not in body:
            raise BadRequest('expected a JSON object {"image": k}')
        k = body["image"]
        if isinstance(k, bool) or not isinstance(k, int):
            raise BadRequest(f"image must be an integer, got {str(k)[:40]!r}")
        if not 0 <= k < len(strip):
            raise BadRequest(f"no strip image {k}: there are {len(strip)}", status=404)
        return jsonify(codes=[v.encode_rows(strip[k : k + 1])[0] for v in views])

    @app.get("/api/decode.png")
    def api_decode() -> Response:
        view = run_of(request.args.get("run"))
        raw = request.args.get("z")
        if raw is None:
            raise BadRequest("missing z: the code, one comma-separated number per latent")
        if len(raw) > MAX_QUERY:
            raise BadRequest("z is too long", status=414)
        code = view.check_code(raw.split(",") if raw else [])
        t0 = time.perf_counter()
        png = view.decode_png(code)
        took = (time.perf_counter() - t0) * 1e3
        # A code names one image for good (the weights never change while serving): let the browser keep it.
        # Server-Timing lets the page (and docs/explore.md's measurement) split a slider's latency.
        return Response(png, mimetype="image/png", headers={"Cache-Control": "max-age=3600",
                                                            "Server-Timing": f"decode;dur={took:.2f}"})

    @app.get("/api/sample")
    def api_sample() -> Response:
        view = run_of(request.args.get("run"))
        seed = request.args.get("seed", "0")
        if not seed.isdigit() or len(seed) > 18:
            raise BadRequest(f"seed must be a non-negative integer, got {seed[:40]!r}")
        return jsonify(z=view.prior_sample(int(seed)))

    return app

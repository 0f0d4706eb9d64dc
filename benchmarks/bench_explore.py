"""`latentquant explore`: how long a slider move takes, for the CPU preset's model (untrained weights).

Two numbers, measured in one run on the same model:

- server: one GET /api/decode.png through the app (parse and check the code, decode, sigmoid, PNG), timed
  with Flask's test client, so no network or browser is in it;
- browser: from a slider's release (its `change` event) to the new image's `load` in headless Chromium, over
  a real local socket (the page records it in the image's `data-latency-ms`), and the server's share of each
  (decode + PNG, from the answer's Server-Timing header, `data-server-ms`).

Untrained weights cost what trained ones do; the data are random 32x32 images with Shapes3D's factor sizes,
so no dataset is rendered.

    python benchmarks/bench_explore.py                # 200 server decodes, 40 slider releases
    python benchmarks/bench_explore.py --threads 1    # torch threads (default: all cores, as the explorer)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch

from latentquant import config
from latentquant.build import make_model, set_threads
from latentquant.data import GroundTruthData
from latentquant.explore import create_app, make_server, view_of

SIZES = (10, 10, 10, 8, 4, 15)  # Shapes3D's factors


def fake_data(n: int, image_size: int, seed: int = 0) -> GroundTruthData:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, image_size, image_size, 3), dtype=np.uint8)
    factors = np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)
    return GroundTruthData("shapes3d", images, factors, [f"f{k}" for k in range(len(SIZES))], list(SIZES),
                           [np.arange(s, dtype=float) for s in SIZES])


def percentiles(times_ms: list[float]) -> str:
    q = np.percentile(times_ms, [50, 90, 99])
    return f"median {q[0]:.1f} ms, p90 {q[1]:.1f} ms, p99 {q[2]:.1f} ms, max {max(times_ms):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qlae")
    parser.add_argument("--decodes", type=int, default=200)
    parser.add_argument("--releases", type=int, default=40)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = parser.parse_args()

    set_threads(args.threads)
    cfg = config.resolve([f"model={args.model}", "data.num_eval=1000"])  # the CPU preset (the default)
    data = fake_data(2000, cfg.data.image_size)
    torch.manual_seed(0)
    model = make_model(cfg, data).eval()
    params = sum(p.numel() for p in model.parameters())
    view = view_of(model, data, cfg, np.arange(1000), path=Path("untrained"), step=0, scores={})
    print(f"{cfg.model.name}, preset={cfg.preset}: {params:,} parameters, {cfg.data.image_size}px, "
          f"{view.num_latents} latents, {torch.get_num_threads()} torch thread(s)")

    app = create_app([view])
    client = app.test_client()
    rng = np.random.default_rng(1)

    def random_code() -> str:
        return ",".join(repr(float(rng.choice(c.values)) if c.values else float(rng.uniform(c.low, c.high)))
                        for c in view.controls)

    for _ in range(10):  # warm-up: first calls allocate
        client.get(f"/api/decode.png?run=0&z={random_code()}")
    server = []
    for _ in range(args.decodes):
        url = f"/api/decode.png?run=0&z={random_code()}"
        t0 = time.perf_counter()
        answer = client.get(url)
        server.append((time.perf_counter() - t0) * 1e3)
        assert answer.status_code == 200
    print(f"server decode (GET /api/decode.png, test client): {percentiles(server)}")

    chromium = shutil.which("chromium")
    if chromium is None:
        print("browser: skipped (no chromium)")
        return
    from playwright.sync_api import sync_playwright

    srv = make_server([view], "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    releases, served = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{srv.server_port}/")
            page.wait_for_function("document.getElementById('img-0').dataset.code")
            for i in range(args.releases + 3):
                j = i % view.num_latents
                control = view.controls[j]
                old = page.get_attribute("#img-0", "data-code")
                current = int(page.input_value(f"#lat-0-{j}")) if control.values else None
                value = (str((current + 1) % len(control.values)) if control.values
                         else repr(control.low + (i % 7 + 1) / 8 * (control.high - control.low)))
                page.fill(f"#lat-0-{j}", value)
                page.wait_for_function("old => document.getElementById('img-0').dataset.code !== old", arg=old)
                if i >= 3:  # the first releases warm the browser's and the server's caches up
                    releases.append(float(page.get_attribute("#img-0", "data-latency-ms")))
                    served.append(float(page.get_attribute("#img-0", "data-server-ms")))
            browser.close()
    finally:
        srv.shutdown()
        srv.server_close()
    print(f"browser, slider release -> new image (headless Chromium): {percentiles(releases)} "
          f"(mean {statistics.mean(releases):.1f} ms)")
    print(f"  of which the server's decode + PNG (Server-Timing of the same requests): {percentiles(served)}")


if __name__ == "__main__":
    main()

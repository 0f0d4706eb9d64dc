"""docs/explore.png and docs/explore-compare.png: the explorer's page, taken in headless Chromium.

Without run directories it first trains the two runs it shows (CPU preset, Shapes3D look-alike, 300 steps
each: under a minute apiece on an idle 2-core machine, plus rendering the look-alike once):

    latentquant train train.steps=300 train.eval_every=300 data.num_eval=2000 run_dir=/tmp/explore-demo/qlae
    latentquant train model=ae train.steps=300 train.eval_every=300 data.num_eval=2000 run_dir=/tmp/explore-demo/ae

    python scripts/explore_screenshot.py                       # train both (if missing), then the screenshots
    python scripts/explore_screenshot.py --qlae RUN --ae RUN   # screenshots of existing runs
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from latentquant.explore import make_server, open_runs

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["train.steps=300", "train.eval_every=300", "data.num_eval=2000"]


def ensure_run(path: Path, model: str) -> Path:
    if (path / "checkpoints").is_dir() and any((path / "checkpoints").glob("step_*.json")):
        return path
    command = [sys.executable, "-m", "latentquant.cli", "train", f"model={model}", *TRAIN, f"run_dir={path}"]
    print("$", " ".join(command[2:]), flush=True)
    subprocess.run(command, check=True)
    return path


def screenshot(views, out: Path, pick: int, move: tuple[int, int] | None, width: int) -> None:
    from playwright.sync_api import sync_playwright

    server = make_server(views, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True)
            page = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1)
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            page.wait_for_function("document.getElementById('img-0').dataset.code")
            page.click(f"#strip-{pick}")
            page.wait_for_function(f"document.getElementById('strip').dataset.picked === '{pick}'")
            page.wait_for_timeout(500)
            if move is not None:
                old = page.get_attribute("#img-0", "data-code")
                page.fill(f"#lat-0-{move[0]}", str(move[1]))
                page.wait_for_function("old => document.getElementById('img-0').dataset.code !== old", arg=old)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qlae", type=Path, default=Path("/tmp/explore-demo/qlae"))
    parser.add_argument("--ae", type=Path, default=Path("/tmp/explore-demo/ae"))
    parser.add_argument("--pick", type=int, default=2, help="the strip image to start from")
    args = parser.parse_args()
    qlae, ae = ensure_run(args.qlae, "qlae"), ensure_run(args.ae, "ae")
    (one,) = open_runs([qlae])
    # Show a move of the latent that is labelled with the highest NMI: the one whose effect is clearest.
    best = max(one.controls, key=lambda c: c.nmi if c.nmi == c.nmi else -1)
    screenshot([one], ROOT / "docs" / "explore.png", args.pick, (best.index, 0), width=1100)
    screenshot(open_runs([qlae, ae]), ROOT / "docs" / "explore-compare.png", args.pick, None, width=1400)


if __name__ == "__main__":
    main()

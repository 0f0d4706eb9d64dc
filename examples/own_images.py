"""Your own folder of images, with the command line: export, train, encode, report.

The folder here is the dSprites look-alike written as PNGs with a factors.csv (`latentquant data export`), so
that the supervised metrics have labels to check against; point --images at any folder of PNG, JPEG or WebP
files instead (a factors.csv is optional). docs/your-data.md shows what this writes.

    python examples/own_images.py --work runs/own-images                     # the worked example (minutes)
    python examples/own_images.py --work /tmp/x --subset 64 --steps 4 --set model.widths=[8,16]   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path


def latentquant(*args: str) -> None:
    """Run one `latentquant` command, shown as you would type it."""
    print("$ latentquant " + " ".join(shlex.quote(a) for a in args), flush=True)
    subprocess.run([sys.executable, "-m", "latentquant.cli", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="a folder for the images, the run and the latents")
    parser.add_argument("--images", default=None, help="your folder of images (default: export the dSprites "
                        "look-alike into <work>/dsprites-pngs)")
    parser.add_argument("--subset", type=int, default=4000, help="look-alike images to export")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more config overrides")
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    images = Path(args.images) if args.images else work / "dsprites-pngs"
    if args.images is None and not images.exists():
        latentquant("data", "export", "dsprites", "--subset", str(args.subset), "--out", str(images))
    run = work / "run"
    # A fifth of the images is held out: training never sees them and every evaluation is made on them.
    latentquant("train", "data=images", f"data.path={images}", "data.eval_fraction=0.2", f"train.steps={args.steps}",
                f"train.eval_every={max(args.steps // 2, 1)}", f"train.checkpoint_every={max(args.steps // 2, 1)}",
                "progress=false", f"run_dir={run}", *args.set)
    latentquant("encode", str(run), str(images), "--out", str(work / "latents.npz"), "--quiet")
    latentquant("report", str(run))
    final = json.loads((run / "eval" / f"step_{args.steps}" / "metrics.json").read_text())
    shown = {k: round(v, 3) for k, v in final.items() if k in ("infom", "infoe", "infoc", "psnr")}
    print(f"held-out evaluation at step {args.steps}: {shown}")


if __name__ == "__main__":
    main()

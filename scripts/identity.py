"""Record or check that a tiny run of every registered model is bit-identical to a recorded baseline.

    python scripts/identity.py record tests/data/identity.json   # before a refactor
    python scripts/identity.py check  tests/data/identity.json   # after it: exit 1 on any difference

Each model trains 24 steps (checkpoints at 12 and 24, evaluations at 0, 10, 20, 24) through the command line,
one thread, on a 256-image Shapes3D-format file made by `latentquant data make`. What is compared: every record
of metrics.jsonl's train and eval records without their timing (`images_per_s`) and every tensor of the final
checkpoint, as SHA-256 digests.
Floating point differs between processor families, so the baseline also records torch's version and CPU
capability; `check` on another machine says so instead of comparing.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.numpy import load_file

MODELS = ["ae", "beta_tcvae", "beta_vae", "bio_ae", "infowgan_gp", "qlae", "qlae_fixed", "qlae_global",
          "qlae_no_wd", "qlinfowgan_gp", "qlinfowgan_gp_no_wd", "vqvae", "vqvae_wd"]
TINY = ["model.widths=[8,16,16]", "model.blocks_per_stage=1", "model.dense=[32]", "data.image_size=32",
        "train.batch_size=16", "data.num_eval=64", "eval.batch_size=32", "progress=false", "train.threads=1",
        "train.steps=24", "train.checkpoint_every=12", "train.log_every=4", "train.eval_every=10", "train.lr=2e-3",
        "eval.figures=false"]


def machine() -> dict[str, str]:
    return {"torch": torch.__version__, "cpu": torch.backends.cpu.get_cpu_capability()}


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "latentquant.cli", *args], check=True, capture_output=True)


def digest_run(run: Path) -> dict[str, object]:
    records = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("split") not in ("train", "eval"):  # a session's time and environment records: not results
            continue
        rec.pop("images_per_s", None)
        records.append(rec)
    log = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
    tensors = load_file(str(run / "checkpoints" / "step_24.safetensors"))
    weights = {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in sorted(tensors.items())
               if k.startswith("model.")}
    return {"metrics_jsonl": log, "records": len(records), "weights": weights}


def run_all(models: list[str]) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "3dshapes.h5"
        _cli("data", "make", "shapes3d", "--out", str(data), "--subset", "256", "--image-size", "32")
        out = {}
        for name in models:
            run = Path(tmp) / name
            _cli("train", *TINY, f"data.path={data}", f"model={name}", f"run_dir={run}")
            out[name] = digest_run(run)
            print(f"{name}: {out[name]['metrics_jsonl'][:12]}", file=sys.stderr)
        return out


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("record", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    action, path = argv[0], Path(argv[1])
    models = argv[2:] or MODELS
    if action == "record":
        path.write_text(json.dumps({"machine": machine(), "runs": run_all(models)}, indent=1) + "\n")
        return 0
    baseline = json.loads(path.read_text())
    if baseline["machine"] != machine():
        print(f"baseline recorded on {baseline['machine']}, this is {machine()}: not comparable", file=sys.stderr)
        return 3
    now = run_all(models)
    bad = [name for name in models if now[name] != baseline["runs"][name]]
    for name in models:
        print(f"{name:<22} {'DIFFERS' if name in bad else 'identical'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

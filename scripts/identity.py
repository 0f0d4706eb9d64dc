"""Record or check that a tiny run of every registered model is bit-identical to a recorded baseline.

    python scripts/identity.py record tests/data/identity.json   # before a refactor
    python scripts/identity.py check  tests/data/identity.json   # after it: exit 1 on any difference

Each model trains 24 steps (checkpoints at 12 and 24, evaluations at 0, 10, 20, 24) through the command line,
one thread, on a 256-image Shapes3D-format file made by `latentquant data make`. What is compared: every record
of metrics.jsonl's train and eval records without their timing (`images_per_s`) and every tensor of the final
checkpoint, as SHA-256 digests.
Floating point differs between processor families, so the file holds one baseline per machine (torch's version
and CPU capability): `record` adds or replaces this machine's, `check` compares against it and, where the file
has none for this machine, says so instead of comparing (exit 3). Models registered after a baseline was
recorded are listed as not in it.
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

from latentquant import list_models

TINY = ["model.widths=[8,16,16]", "model.blocks_per_stage=1", "model.dense=[32]", "data.image_size=32",
        "train.batch_size=16", "data.num_eval=64", "eval.batch_size=32", "progress=false", "train.threads=1",
        "train.steps=24", "train.checkpoint_every=12", "train.log_every=4", "train.eval_every=10", "train.lr=2e-3",
        "train.cooldown=0", "eval.figures=false"]  # the rate the baselines had


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


def baselines(path: Path) -> list[dict[str, object]]:
    """The file's baselines; a file of the first format held a single one."""
    if not path.exists():
        return []
    stored = json.loads(path.read_text())
    return stored["baselines"] if "baselines" in stored else [stored]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("record", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    action, path = argv[0], Path(argv[1])
    models = argv[2:] or list_models()
    here = machine()
    known = baselines(path)
    if action == "record":
        kept = [b for b in known if b["machine"] != here]
        path.write_text(json.dumps({"baselines": [*kept, {"machine": here, "runs": run_all(models)}]}, indent=1)
                        + "\n")
        return 0
    baseline = next((b for b in known if b["machine"] == here), None)
    if baseline is None:
        print(f"no baseline for this machine ({here}); the file has {[b['machine'] for b in known]}: not "
              "comparable", file=sys.stderr)
        return 3
    recorded = baseline["runs"]
    missing = [name for name in models if name not in recorded]
    compared = [name for name in models if name in recorded]
    now = run_all(compared)
    bad = [name for name in compared if now[name] != recorded[name]]
    for name in models:
        print(f"{name:<22} {'not in the baseline' if name in missing else 'DIFFERS' if name in bad else 'identical'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

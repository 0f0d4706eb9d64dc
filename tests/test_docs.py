"""The code in the README and in docs/models.md runs as written (vector-quantize-pytorch's test_readme idea)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TINY

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_library_snippet_runs():
    (block,) = python_blocks(ROOT / "README.md")
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert 0.95 <= scope["scores"]["infom"] <= 1.0  # the sources scored against themselves
    assert scope["cfg"].model.name == "ae" and "qlae" in scope["lq"].list_models()


@pytest.mark.slow
def test_adding_a_model_as_models_md_says_trains_it(tiny_h5, tmp_path):
    blocks = [b for b in python_blocks(ROOT / "docs" / "models.md") if "register(" in b]
    assert len(blocks) == 1
    overrides = [*TINY, f"data.path={tiny_h5}", f"run_dir={tmp_path / 'run'}", "train.steps=4", "model=sparse_ae",
                 "model.lambda_activity=1", "eval.figures=false"]
    script = blocks[0] + f"\nimport latentquant as lq\nprint(lq.fit(lq.load_config({overrides!r}))['infom'])\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert 0.0 <= float(proc.stdout.strip().splitlines()[-1]) <= 1.0
    assert "lambda_activity: 1" in (tmp_path / "run" / "config.yaml").read_text()

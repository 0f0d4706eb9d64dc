"""`latentquant metrics <file.npz>`: table and JSON output, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latentquant.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"


def run_metrics(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # Put this checkout's package first, whatever copy is installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "latentquant.cli", "metrics", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    sources = rng.integers(0, 4, size=(240, 3))
    return sources, sources + 0.1 * rng.standard_normal(sources.shape)


def test_json_output_has_every_metric_and_matches_the_library(tmp_path: Path, arrays) -> None:
    from latentquant.metrics import infomec, mig

    sources, latents = arrays
    np.savez(tmp_path / "codes.npz", sources=sources, latents=latents)
    result = run_metrics("codes.npz", "--json", "--dci-predictor", "forest", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_samples"] == 240 and report["dci_predictor"] == "forest"
    scores = report["metrics"]
    assert set(scores) == {"infom", "infoe", "infoc", "infom_gap", "infoc_gap", "active_latents", "dci_d", "dci_c",
                           "dci_i", "mig", "sap", "dci_es_explicitness", "dci_es_size", "mig_sup", "dcimig",
                           "modularity", "explicitness", "irs", "gaussian_total_correlation",
                           "gaussian_wasserstein_correlation_norm", "mutual_info_score"}
    assert report["protocol"] == "qlae" and report["nmi_floor"] == "none"
    assert scores["infom"] == pytest.approx(infomec(sources, latents)["infom"])
    assert scores["mig"] == pytest.approx(mig(sources, latents))
    assert scores["dci_i"] > 0.9  # a clean representation


def test_table_output_and_discrete_flag(tmp_path: Path, arrays) -> None:
    sources, latents = arrays
    np.savez(tmp_path / "codes.npz", sources=sources, latents=np.round(latents), discrete_latents=np.array(True))
    result = run_metrics("codes.npz", "--dci-predictor", "forest", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 latents (discrete)" in result.stdout
    lines = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:] if line.startswith("  ") and
             not line.strip().startswith("(")}
    assert float(lines["infoc"]) > 0.9 and lines["active_latents"] == "3"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ({"sources": np.zeros((5, 2))}, "missing array(s) 'latents'"),
        ({"sources": np.zeros((5, 2)), "latents": np.zeros(5)}, "'latents' must be 2-D"),
        ({"sources": np.zeros((5, 2)), "latents": np.zeros((4, 2))}, "has 5 rows but 'latents' has 4"),
        ({"sources": np.eye(5), "latents": np.eye(5), "discrete_latents": np.array([1, 2])}, "single boolean"),
        ({"sources": np.eye(5)[:, :1] * np.nan, "latents": np.eye(5)}, "NaN or inf"),
    ],
)
def test_bad_files_give_one_line_and_exit_2(tmp_path: Path, capsys, content, message: str) -> None:
    # In-process (a subprocess per case costs seconds of imports); the subprocess path is checked below.
    if content is not None:
        np.savez(tmp_path / "bad.npz", **content)
    assert main(["metrics", str(tmp_path / "bad.npz")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and message in err


def test_file_that_is_not_an_npz_exits_2_from_the_shell(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_text("not a zip")
    result = run_metrics("junk.npz", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("latentquant: error: ") and "not a readable .npz" in result.stderr

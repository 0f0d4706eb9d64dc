"""`latentquant report`: one self-contained HTML page per run, for quantized, continuous, VQ and GAN models."""

import json
import re
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from helpers import TINY

from latentquant import config, runs
from latentquant import train as train_mod
from latentquant.cli import main
from latentquant.evaluate import eval_indices, latent_usage, load_run_model, to_input
from latentquant.experiments.report import metric_series, write_report

SECTIONS = ["Summary", "Training curves", "NMI heatmap", "Reconstructions", "Codebook usage", "Config"]
IMAGE = "data:image/png;base64,"


def train_run(tiny_h5, run_dir, *extra):
    cfg = config.resolve([*TINY, f"data.path={tiny_h5}", f"run_dir={run_dir}", "train.steps=4",
                          "train.eval_every=100", *extra])
    train_mod.train(cfg)
    return run_dir


@pytest.fixture(scope="module")
def qlae_run(tiny_h5, tmp_path_factory):
    """A finished 4-step QLAE run, shared: tests that change it work on a copy."""
    return train_run(tiny_h5, tmp_path_factory.mktemp("qlae") / "run")


def headings(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def assert_self_contained(page: str) -> None:
    for outside in ("http://", "https://", "<script", "<link", "href=", "url("):
        assert outside not in page.lower(), outside
    sources = re.findall(r'src="([^"]{0,40})', page)
    assert sources and all(s.startswith(IMAGE) for s in sources)


def usage_table(page: str) -> dict[int, list[int]]:
    """latent -> counts per codebook value, as the page's usage table states them."""
    rows = re.findall(r"<tr><td>z(\d+)</td><td class=num>\d+ / \d+</td>.*?<td class=num>([\d ]+)</td></tr>", page)
    return {int(j): [int(c) for c in counts.split()] for j, counts in rows}


def test_report_has_every_section_and_embeds_everything(qlae_run):
    out = write_report(qlae_run)
    assert out == qlae_run / "report.html"
    page = out.read_text()
    assert headings(page) == ["Summary", "Training curves", "NMI heatmap", "Traversals", "Reconstructions",
                              "Codebook usage", "Config"]
    assert_self_contained(page)
    # curves (train losses, val losses, eval metrics, throughput), NMI, traversals, reconstructions, usage
    assert page.count(IMAGE) >= 8
    groups = metric_series(runs.read_log(qlae_run))
    assert re.findall(r"<h3>(.*?)</h3>", page)[1:] == list(groups) == ["Training losses", "Validation losses",
                                                                        "Evaluation metrics", "Throughput"]
    logged = {k for r in runs.read_log(qlae_run) if r["split"] not in ("time", "environment") for k in r
              if k not in ("split", "step", "protocol")}
    stack = rf"<td>ran on</td><td>cpu [^<]*, cpu_capability [^<]*, device cpu, torch {re.escape(torch.__version__)}, "
    assert re.search(stack, page)
    assert re.search(r"<td>wall time</td><td>0 min \d+ s, [\d.]+ ms per training step</td>", page)
    assert {k for series in groups.values() for k in series} == logged  # a panel for every logged metric
    assert "Evaluation protocol: qlae." in page
    assert groups["Training losses"]["bce"][0] == [2, 4] and len(groups["Evaluation metrics"]["infom"][0]) == 2
    final = runs.final_metrics(qlae_run)
    assert f"{final['infom']:.4g}" in page and "qlae" in page and "4 / 4" in page
    assert "num_values: 10" in page  # the config, verbatim
    assert "step 4, from the evaluation written during training" in page


def test_usage_counts_match_the_models_own_indices(qlae_run, tmp_path):
    page = write_report(qlae_run, out=tmp_path / "r.html").read_text()
    cfg = runs.read_config(qlae_run)
    data, model, _ = load_run_model(qlae_run, cfg, 4)
    indices = eval_indices(len(data), cfg.data.num_eval, cfg.data.seed)
    with torch.no_grad():
        codes = model.encode(to_input(data.images[indices])).indices.numpy()
    n, d = codes.shape
    assert n == cfg.data.num_eval == 64
    usage = latent_usage(model, data, indices, batch_size=7)  # batching must not change the counts
    assert usage.kind == "scalar" and usage.counts.shape == (d, 10)
    assert (usage.counts.sum(axis=1) == n).all()
    table = usage_table(page)
    assert sorted(table) == list(range(d))
    for j in range(d):
        direct = Counter(codes[:, j].tolist())
        expected = [direct.get(k, 0) for k in range(10)]
        assert usage.counts[j].tolist() == expected
        assert table[j] == expected
    assert np.allclose(usage.codebooks[0], model.latent.codebook(0).detach().numpy())


def test_step_without_saved_figures_is_evaluated_for_the_report(qlae_run, tmp_path):
    run = shutil.copytree(qlae_run, tmp_path / "run")
    shutil.rmtree(run / "eval" / "step_4")
    page = write_report(run).read_text()
    logged = [r for r in runs.read_log(run) if r["split"] == "eval" and r["step"] == 4][0]
    # evaluated again from the checkpoint, on the same evaluation set: the same scores as during training
    assert f"step 4, evaluated for this report (it has no saved figures): InfoM {logged['infom']:.3f}" in page
    assert "Traversals" in headings(page) and page.count(IMAGE) >= 8
    assert not (run / "eval" / "step_4").exists()  # the report writes nothing into the run but itself


def test_run_without_checkpoints_gets_a_report_from_its_logs(qlae_run, tmp_path):
    run = shutil.copytree(qlae_run, tmp_path / "run")
    shutil.rmtree(run / "checkpoints")
    saved = run / "eval" / "step_4" / "metrics.json"  # as if `latentquant eval` had added suite metrics
    saved.write_text(json.dumps({**json.loads(saved.read_text()), "dci_d": 0.123456, "mig": 0.0421}))
    page = write_report(run).read_text()
    assert "<td>dci_d</td><td class=num>0.1235</td>" in page and "<td>mig</td>" in page
    assert headings(page) == ["Summary", "Training curves", "NMI heatmap", "Traversals", "Reconstructions",
                              "Codebook usage", "Config"]
    assert "No checkpoint has been saved yet" in page
    assert "from the evaluation at step 4" in page  # the last saved figures are still shown
    assert not usage_table(page)
    assert_self_contained(page)


@pytest.mark.parametrize("model, shows", [("ae", 'alt="latent histograms"'), ("vqvae", 'alt="sorted code usage"')])
def test_continuous_and_vq_models_get_their_usage_section(model, shows, tiny_h5, tmp_path):
    run = train_run(tiny_h5, tmp_path / "run", f"model={model}")
    page = write_report(run).read_text()
    assert set(SECTIONS) <= set(headings(page))
    assert shows in page and page.count(IMAGE) >= 6
    assert_self_contained(page)
    if model == "vqvae":  # 512 shared codes: pooled usage and one row per slot
        used = int(re.search(r"(\d+) codes used, perplexity", page).group(1))
        assert 1 <= used <= min(512, 64 * 12)
        assert len(re.findall(r"<td>slot \d+</td>", page)) == 12
        assert "no scalar axis to sweep" in page
    else:
        assert "there is no codebook" in page


def test_gan_report_shows_samples_prior_traversals_and_usage(tiny_h5, tmp_path):
    run = train_run(tiny_h5, tmp_path / "run", "model=qlinfowgan_gp", "train.steps=5")
    page = write_report(run).read_text()
    assert headings(page) == ["Summary", "Training curves", "NMI heatmap", "Samples", "Traversals",
                              "Reconstructions", "Codebook usage", "Config"]
    assert page.count(IMAGE) >= 8 and "critic/gradient_penalty" not in headings(page)
    table = usage_table(page)
    assert len(table) == 12 and all(sum(c) == 64 for c in table.values())
    assert_self_contained(page)


def test_cli_writes_the_report_and_prints_its_path(qlae_run, tmp_path, capsys):
    out = tmp_path / "deep" / "page.html"
    assert main(["report", str(qlae_run), "--out", str(out), "--step", "4"]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.is_file()
    assert "Codebook usage" in out.read_text()


@pytest.mark.parametrize("case, message", [
    ("no_config", "is not a run directory"),
    ("missing_step", "no checkpoint for step 3; saved: 4"),
    ("no_checkpoints", "no checkpoint for step 4; saved: none"),
])
def test_bad_input_is_one_line_exit_2(case, message, qlae_run, tmp_path, capsys):
    run = tmp_path / "run"
    if case == "no_config":
        run.mkdir()
        args = ["report", str(run)]
    elif case == "missing_step":
        run, args = qlae_run, ["report", str(qlae_run), "--step", "3"]
    else:
        shutil.copytree(qlae_run, run)
        shutil.rmtree(run / "checkpoints")
        args = ["report", str(run), "--step", "4", "--out", str(tmp_path / "never.html")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("latentquant: error:")
    assert not (tmp_path / "never.html").exists()

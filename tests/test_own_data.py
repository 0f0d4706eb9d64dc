"""Your own data and networks (issue 14): folders of images, array files, labels or none, a held-out split,
user encoders/decoders through the one loop, `encode`, `data export`, load_run, the safetensors snippet, the
examples. Runs go through `cli.main` in this process (no interpreter start) on 16x16 images, a few steps."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import latentquant as lq
from latentquant import cli
from latentquant.data import load
from latentquant.data.own import load_arrays, load_images
from latentquant.evaluate import data_split

ROOT = Path(__file__).resolve().parents[1]
NET = ["model.widths=[8,16]", "model.blocks_per_stage=1", "model.dense=[32]", "data.image_size=16",
       "train.batch_size=8", "data.num_eval=32", "eval.batch_size=32", "progress=false", "train.threads=1",
       "train.log_every=2", "model.num_latents=4"]


def write_folder(root: Path, n: int = 24, labels: bool = True) -> Path:
    """Blobs as mixed PNG / JPEG / WebP files of mixed sizes and modes, in a subfolder too, with factors.csv."""
    rng = np.random.default_rng(0)
    (root / "sub").mkdir(parents=True)
    rows = ["file,x,kind"]
    for i in range(n):
        h, w = 20 + 4 * (i % 3), 16 + 8 * (i % 2)
        yy, xx = np.mgrid[:h, :w]
        blob = np.exp(-((xx - (i % 4) * w / 4) ** 2 + (yy - h / 2) ** 2) / 20.0)
        rgb = (np.stack([blob, 1 - blob, rng.random((h, w))], axis=-1) * 255).astype(np.uint8)
        name = ["a{}.png", "sub/b{}.jpg", "c{}.webp"][i % 3].format(i)
        img = Image.fromarray(rgb) if i % 2 else Image.fromarray(rgb[..., 0]).convert("LA")
        img.save(root / name) if name.endswith(".png") else img.convert("RGB").save(root / name)
        rows.append(f"{name},{i % 4 * 0.5},{'ab'[i % 2]}")
    if labels:
        (root / "factors.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("LATENTQUANT_CACHE")
    os.environ["LATENTQUANT_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("LATENTQUANT_CACHE")
    else:
        os.environ["LATENTQUANT_CACHE"] = old


@pytest.fixture(scope="module")
def folder(tmp_path_factory, cache) -> Path:
    return write_folder(tmp_path_factory.mktemp("own") / "pics")


def one_error(err: str) -> str:
    """The one `latentquant: error:` line of stderr (progress lines such as `decoding ...` may precede it)."""
    lines = [line for line in err.splitlines() if line.startswith("latentquant:")]
    assert len(lines) == 1 and lines[0].startswith("latentquant: error: "), err
    return lines[0]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def labelled_run(folder, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "labelled"
    assert cli.main(["train", "data=images", f"data.path={folder}", "data.eval_fraction=0.25", "train.steps=4",
                     f"run_dir={run}", *NET]) == 0
    return run


def test_folder_decodes_once_into_a_cache_with_labels_by_file_name(folder, cache, tmp_path, capfd):
    data = load("images", str(folder), image_size=16, progress=False)
    assert data.images.shape == (24, 16, 16, 3) and isinstance(data.images, np.memmap)
    assert data.factor_names == ["x", "kind"] and data.factor_sizes == [4, 2]
    row = data.files.index("sub/b4.jpg")
    assert data.values(np.array([row])).tolist() == [[0.0, 0.0]]  # x = 4 % 4 * 0.5; kind 'a' is class 0
    assert "decoding 24 images" in capfd.readouterr().err
    again = load("images", str(folder), image_size=16, progress=False)
    assert "decoding" not in capfd.readouterr().err and np.array_equal(again.images, data.images)
    gray = load("images", str(folder), image_size=16, channels=1, progress=False)  # converted, same cache
    assert gray.images.shape == (24, 16, 16, 1) and "decoding" not in capfd.readouterr().err


def test_grayscale_folder_is_one_channel_and_a_changed_file_is_decoded_again(tmp_path, cache, capfd):
    root = tmp_path / "gray"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 12), 40 * i, np.uint8)).save(root / f"{i}.png")
    first = load_images(root, image_size=8, progress=False)
    assert first.images.shape == (3, 8, 8, 1) and not first.labelled and first.images[2].max() == 80
    Image.fromarray(np.full((8, 12), 200, np.uint8)).save(root / "2.png")  # same name, new content
    capfd.readouterr()
    second = load_images(root, image_size=8, progress=False)
    assert "decoding 3 images" in capfd.readouterr().err and second.images[2].max() == 200
    assert len(list(cache.glob("images-*.npy"))) >= 1 and not list(cache.glob(".*scratch*"))


def test_unreadable_files_are_skipped_by_name_and_all_unreadable_is_one_error(tmp_path, cache, capsys):
    root = write_folder(tmp_path / "some", n=6, labels=False)
    (root / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match=r"skipped 1 of 7 image files .*broken\.png"):
        data = load_images(root, image_size=16, progress=False)
    assert len(data) == 6 and "broken.png" not in data.files
    with pytest.warns(UserWarning, match="broken.png"):  # the cache remembers it, so the warning comes again
        load_images(root, image_size=16, progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(2):
        (bad / f"{i}.jpg").write_bytes(b"\xff\xd8junk")
    code, _, err = run_cli(capsys, "train", "data=images", f"data.path={bad}", f"run_dir={tmp_path / 'r'}", *NET)
    assert code == 2 and "none of the 2 image files can be read" in one_error(err)
    assert not (tmp_path / "r").exists() and not list(cache.glob("*scratch*"))


@pytest.mark.parametrize("case, message", [
    ("empty", "no PNG, JPEG or WebP files"),
    ("missing row", "no row for image"),
    ("unknown file", "not an image in the folder"),
    ("nan", "labels must be finite"),
    ("empty cell", "is empty"),
    ("no file column", "no 'file' column"),
])
def test_bad_folders_are_one_line_and_exit_2_before_anything_is_written(case, message, tmp_path, cache, capsys):
    root = tmp_path / "pics"
    if case == "empty":
        root.mkdir()
        (root / "notes.txt").write_text("no images here")
    else:
        write_folder(root, n=4)
        lines = (root / "factors.csv").read_text().splitlines()
        edit = {"missing row": lines[:-1], "unknown file": [*lines, "ghost.png,1,a"],
                "nan": [lines[0], lines[1].rsplit(",", 2)[0] + ",nan,a", *lines[2:]],
                "empty cell": [lines[0], lines[1].rsplit(",", 1)[0] + ",", *lines[2:]],
                "no file column": [lines[0].replace("file", "name"), *lines[1:]]}[case]
        (root / "factors.csv").write_text("\n".join(edit) + "\n")
    code, _, err = run_cli(capsys, "train", "data=images", f"data.path={root}", f"run_dir={tmp_path / 'run'}", *NET)
    assert code == 2 and message in one_error(err)
    assert not (tmp_path / "run").exists()


def test_arrays_npz_h5_npy_with_labels_and_bad_arrays(tmp_path, capsys):
    import h5py

    from latentquant.errors import UserError

    rng = np.random.default_rng(0)
    floats = rng.random((10, 20, 20))
    labels = np.stack([np.arange(10) % 2, np.arange(10) % 5], axis=1)
    np.savez(tmp_path / "a.npz", images=floats, y=labels)
    data = load("arrays", str(tmp_path / "a.npz"), image_size=16, key="images", factors_key="y")
    assert data.images.shape == (10, 16, 16, 1) and data.images.dtype == np.uint8 and data.factor_sizes == [2, 5]
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["pics"] = (floats[..., None].repeat(3, -1) * 255).astype(np.uint8)
    assert load_arrays(tmp_path / "a.h5", image_size=20).images.shape == (10, 20, 20, 3)  # the only array
    np.save(tmp_path / "a.npy", (floats * 255).astype(np.uint8)[:, :16, :16, None])
    (tmp_path / "y.csv").write_text("size,colour\n" + "".join(f"{i % 3},{'rg'[i % 2]}\n" for i in range(10)))
    npy = load_arrays(tmp_path / "a.npy", image_size=16, labels=tmp_path / "y.csv")
    assert isinstance(npy.images, np.memmap) and npy.factor_names == ["size", "colour"]
    np.savez(tmp_path / "bad.npz", images=floats[0], over=floats * 2, y=labels[:9])
    for extra, message in [(["data.key=images"], "expected (N, H, W) or (N, H, W, C)"),
                           (["data.key=over"], "within [0, 1]"),
                           (["data.key=over", "data.factors_key=y"], "within [0, 1]"),
                           ([], "holds 3 arrays"), (["data.key=nope"], "no array 'nope'")]:
        code, _, err = run_cli(capsys, "train", "data=arrays", f"data.path={tmp_path / 'bad.npz'}", *extra,
                               f"run_dir={tmp_path / 'run'}", *NET)
        assert code == 2 and message in one_error(err)
    np.savez(tmp_path / "short.npz", images=floats, y=labels[:9])
    with pytest.raises(UserError, match=r"expected \(10, K\)"):
        load_arrays(tmp_path / "short.npz", image_size=16, key="images", factors_key="y")
    assert not (tmp_path / "run").exists()


def test_config_checks_own_data_keys():
    from latentquant.errors import UserError

    with pytest.raises(UserError, match="needs data.path"):
        lq.load_config(["data=images"])
    with pytest.raises(UserError, match="data.key applies to your own data"):
        lq.load_config(["data.key=x"])
    with pytest.raises(UserError, match="eval_fraction must be in"):
        lq.load_config(["data.eval_fraction=1.0"])
    assert lq.load_config(["data=images", "data.path=x"]).model.num_latents == 10


def test_held_out_split_and_training_batches_come_from_the_train_rows_only(tmp_path, monkeypatch):
    cfg = lq.load_config(["data=arrays", "data.path=x", "data.eval_fraction=0.3", "data.num_eval=5"])
    train_rows, evals = data_split(40, cfg.data)
    assert len(train_rows) == 28 and len(evals) == 5 and not set(train_rows) & set(evals)
    # Image i is the constant i: what the training loop sees says which rows it drew.
    images = np.broadcast_to(np.arange(40, dtype=np.uint8)[:, None, None], (40, 16, 16)).copy()
    np.save(tmp_path / "rows.npy", images)
    import latentquant.train as train_mod

    seen: set[int] = set()
    real = train_mod.to_input

    def spy(batch, *args, **kwargs):
        seen.update(np.unique(batch).tolist())
        return real(batch, *args, **kwargs)

    monkeypatch.setattr(train_mod, "to_input", spy)
    run = tmp_path / "run"
    lq.fit(lq.load_config(["data=arrays", f"data.path={tmp_path / 'rows.npy'}", "data.eval_fraction=0.3",
                           "train.steps=6", "eval.figures=false", f"run_dir={run}", *NET]))
    held = set(range(40)) - set(data_split(40, lq.resume_config(run).data)[0].tolist())
    assert seen and not seen & held and len(seen) > 20


def test_labelled_folder_run_has_every_metric_report_table_and_encode(labelled_run, folder, tmp_path, capsys):
    final = json.loads((labelled_run / "eval" / "step_4" / "metrics.json").read_text())
    assert {"infom", "infoc", "psnr"} <= set(final)
    assert {"nmi.png", "reconstructions.png", "traversals.png"} <= {p.name for p in (labelled_run / "eval" /
                                                                                     "step_4").iterdir()}
    code, out, _ = run_cli(capsys, "encode", str(labelled_run), str(folder), "--out", str(tmp_path / "z.npz"),
                           "--quiet")
    assert code == 0 and "codes 24x4" in out
    z = np.load(tmp_path / "z.npz")
    assert z["representation"].shape == (24, 4) and z["codes"].dtype == np.int64 and len(z["files"]) == 24
    assert z["factors"].shape == (24, 2) and list(z["factor_names"]) == ["x", "kind"]
    code, _, err = run_cli(capsys, "encode", str(labelled_run), str(folder), "--out", str(tmp_path / "z.txt"))
    assert code == 2 and ".npz" in err and not (tmp_path / "z.txt").exists()
    code, _, err = run_cli(capsys, "encode", str(labelled_run), "nowhere", "--out", str(tmp_path / "w.npz"))
    assert code == 2 and "no such folder or file" in err and not (tmp_path / "w.npz").exists()


def test_unlabelled_run_skips_supervised_metrics_with_a_note(tmp_path, cache, capsys):
    root = write_folder(tmp_path / "pics", n=12, labels=False)
    run = tmp_path / "run"
    code, out, _ = run_cli(capsys, "train", "data=images", f"data.path={root}", "train.steps=2", f"run_dir={run}",
                           "eval.suite=true", "eval.factorvae_votes=10", *NET)
    assert code == 0 and "no factor labels" in out and "PSNR" in out
    final = json.loads((run / "eval" / "step_2" / "metrics.json").read_text())
    assert "infom" not in final and "mutual_info_score" in final and "dci_d" not in final
    assert not (run / "eval" / "step_2" / "nmi.png").exists() and (run / "eval" / "step_2" / "traversals.png").exists()
    code, out, _ = run_cli(capsys, "table", str(run))
    assert code == 0 and "PSNR" in out and "InfoM" not in out
    code, out, _ = run_cli(capsys, "report", str(run))
    assert code == 0 and "no factor labels" in (run / "report.html").read_text()
    code, out, _ = run_cli(capsys, "eval", str(run), "--factorvae-votes", "0")
    assert code == 0 and "no factor labels" in out


class Encoder(nn.Module):
    def __init__(self, out: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, latents: int = 4) -> None:
        super().__init__()
        self.net = nn.Linear(latents, 3 * 16 * 16)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), 3, 16, 16)


def test_own_networks_train_resume_and_load_through_the_same_machinery(folder, tmp_path):
    from latentquant.errors import UserError

    run = tmp_path / "run"
    cfg = lq.load_config(["data=images", f"data.path={folder}", "train.steps=2", f"run_dir={run}",
                          "eval.figures=false", *NET])
    lq.fit(cfg, encoder=Encoder, decoder=Decoder)
    saved = lq.resume_config(run)
    assert saved.model.encoder.endswith("test_own_data.Encoder") and saved.data.channels == 3
    with pytest.raises(UserError, match="trained with your own encoder"):
        lq.fit(lq.resume_config(run, ["train.steps=4"]))
    with pytest.raises(UserError, match="but this run's decoder is"):
        lq.fit(lq.resume_config(run, ["train.steps=4"]), encoder=Encoder, decoder=Encoder)
    lq.fit(lq.resume_config(run, ["train.steps=4"]), encoder=Encoder(), decoder=Decoder())
    loaded = lq.load_run(run, encoder=Encoder, decoder=Decoder)
    assert loaded.step == 4 and isinstance(loaded.model.encoder, Encoder) and loaded.encode()["codes"].shape[1] == 4
    code = cli.main(["eval", str(run)])
    assert code == 2  # the command line cannot make your networks: one line says how to pass them


def test_shape_contract_is_checked_with_a_clear_error(folder):
    from latentquant.errors import UserError

    cfg = lq.load_config(["data=images", f"data.path={folder}", *NET])
    with pytest.raises(UserError, match=r"encoder maps \(B, 3, 16, 16\) to \(B, 7\); this model needs \(B, 4\)"):
        lq.fit(cfg, encoder=Encoder(7), decoder=Decoder())
    with pytest.raises(UserError, match=r"decoder fails on a \(B, 4\) batch"):
        lq.fit(cfg, encoder=Encoder(), decoder=Decoder(5))
    vae = lq.load_config(["data=images", f"data.path={folder}", "model=beta_vae", *NET])
    with pytest.raises(UserError, match=r"needs \(B, 8\)"):  # a Gaussian latent takes a mean and a scale per latent
        lq.fit(vae, encoder=Encoder(4), decoder=Decoder())


def test_safetensors_snippet_in_your_data_md_rebuilds_the_model(labelled_run):
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "your-data.md").read_text(), re.S)
                if "load_file" in b]
    scope = {"run": str(labelled_run), "step": 4}
    exec(compile(block, "your-data.md", "exec"), scope)
    reference = lq.load_run(labelled_run).model
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(scope["model"].eval().encode(x).z_hat, reference.encode(x).z_hat)


def test_data_export_writes_an_image_folder_that_trains(tmp_path, cache, capsys):
    out = tmp_path / "dsprites-pngs"
    code, printed, _ = run_cli(capsys, "data", "export", "dsprites", "--subset", "12", "--out", str(out))
    assert code == 0 and "data=images" in printed
    data = load("images", str(out), image_size=16, progress=False)
    assert data.image_shape == (16, 16, 1) and data.factor_names == ["shape", "scale", "orientation", "posX", "posY"]
    code, printed, _ = run_cli(capsys, "data", "check", str(out))
    assert code == 0 and "N = 12 images" in printed
    code, _, err = run_cli(capsys, "data", "export", "dsprites", "--out", str(out))
    assert code == 2 and "already exists" in err


@pytest.mark.parametrize("script, args", [
    ("own_images.py", ["--subset", "24", "--steps", "2", "--set", "model.widths=[8,16]", "--set",
                       "model.blocks_per_stage=1", "--set", "model.dense=[16]", "--set", "data.image_size=16",
                       "--set", "train.threads=1", "--set", "eval.figures=false", "--set", "train.batch_size=8"]),
    ("own_networks.py", ["--steps", "2", "--size", "16", "--images", "64"]),
])
def test_examples_run(script, args, tmp_path, cache):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--work", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("held-out evaluation at step 2" if script == "own_images.py" else "checkpoint step 2") in proc.stdout

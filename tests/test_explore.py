"""`latentquant explore` without a browser: the routes through Flask's test client (every bad request a 4xx,
never a 500), the command line's refusals (exit 2, one line) and the static export's precomputed images."""

import base64
import io
import json
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import train_tiny_run
from PIL import Image

from latentquant import viz
from latentquant.cli import main
from latentquant.evaluate import to_input

pytest.importorskip("flask", reason="the explorer's server needs Flask (pip install 'latentquant[explore]')")

from latentquant.explore import create_app, export, open_runs  # noqa: E402
from latentquant.explore._page import _json_for_script  # noqa: E402


@pytest.fixture(scope="module")
def run_dirs(tiny_h5, tmp_path_factory):
    """A QLAE (scalar codebooks), an AE (continuous) and a QLInfoWGAN-GP (a prior) on one tiny dataset."""
    root = tmp_path_factory.mktemp("explore")
    return {name: train_tiny_run(tiny_h5, root / name, f"model={name}") for name in ("qlae", "ae", "qlinfowgan_gp")}


@pytest.fixture(scope="module")
def views(run_dirs):
    return open_runs([run_dirs["qlae"], run_dirs["ae"]])


@pytest.fixture(scope="module")
def client(views):
    return create_app(views).test_client()


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@torch.no_grad()
def decoded(view, code) -> np.ndarray:
    """The decoder's own image for ``code``, without the explorer's code path."""
    z = torch.tensor([code], dtype=torch.float32)
    return viz.to_uint8(torch.sigmoid(view.model.decode(z)).numpy())[0]


def url(run: int, code) -> str:
    return f"/api/decode.png?run={run}&z={','.join(map(repr, code))}"


def test_decoded_png_is_the_decoders_image_for_the_code(client, views):
    for r, view in enumerate(views):
        code = list(view.start)
        j = view.num_latents - 1
        code[j] = view.traversal_values(j)[0]
        answer = client.get(url(r, code))
        assert answer.status_code == 200 and answer.mimetype == "image/png"
        assert float(answer.headers["Server-Timing"].removeprefix("decode;dur=")) > 0
        assert np.array_equal(png_pixels(answer.data), decoded(view, code))


def test_state_labels_each_latent_with_its_most_informative_factor(client, views):
    state = client.get("/api/state").get_json()
    assert [run["model"] for run in state["runs"]] == ["qlae", "ae"] and state["strip"] == 12
    for run, view in zip(state["runs"], views, strict=True):
        nmi = np.array(run["nmi"], dtype=float)
        assert nmi.shape == (len(run["factors"]), len(run["latents"]))
        for latent in run["latents"]:
            column = nmi[:, latent["index"]]
            assert latent["factor"] == run["factors"][int(np.argmax(column))]
            assert latent["nmi"] == pytest.approx(column.max())
        assert run["scores"]["step"] == 4 and {"infom", "infoe", "infoc", "psnr"} <= set(run["scores"])
        assert run["scores"]["infom"] == pytest.approx(view.scores["infom"])
    quantized, continuous = state["runs"][0]["latents"], state["runs"][1]["latents"]
    codebook = views[0].model.latent.codebook_values()
    for latent, values in zip(quantized, codebook, strict=True):
        assert latent["kind"] == "codebook" and latent["values"] == sorted(values.tolist())
        assert sum(latent["usage"]) == len(views[0].indices)  # every evaluation image counted once per latent
    reps = views[1].model.encode(to_input(views[1].data.images[np.sort(views[1].indices)])).z_hat.detach().numpy()
    for latent in continuous:
        assert latent["kind"] == "range" and latent["values"] is None
        assert latent["low"] == pytest.approx(reps[:, latent["index"]].min(), abs=1e-6)
        assert latent["high"] == pytest.approx(reps[:, latent["index"]].max(), abs=1e-6)


def test_encoding_a_strip_image_gives_each_runs_code_of_it(client, views):
    answer = client.post("/api/encode", json={"image": 3})
    assert answer.status_code == 200
    codes = answer.get_json()["codes"]
    row = views[0].indices[3]
    image = client.get("/api/image/3.png")
    assert np.array_equal(png_pixels(image.data), views[0].data.images[row])
    for r, (view, code) in enumerate(zip(views, codes, strict=True)):
        with torch.no_grad():
            out = view.model(to_input(views[0].data.images[row : row + 1]))
        reconstruction = viz.to_uint8(torch.sigmoid(out.logits).numpy())[0]
        # The explorer's image of the code is the model's reconstruction of the image (straight-through rounding).
        shown = png_pixels(client.get(url(r, code)).data)
        assert np.abs(shown.astype(int) - reconstruction).max() <= 1
    assert codes[0] != client.post("/api/encode", json={"image": 4}).get_json()["codes"][0]


def test_gan_prior_samples_are_its_traversal_starts(run_dirs):
    (gan,) = open_runs([run_dirs["qlinfowgan_gp"]])
    client = create_app([gan]).test_client()
    first, again = (client.get("/api/sample?run=0&seed=7").get_json()["z"] for _ in range(2))
    with torch.no_grad():
        expected = gan.model.traversal_start(None, torch.Generator().manual_seed(7))[0].tolist()
    assert first == again == pytest.approx(expected)
    assert client.get("/api/sample?run=0&seed=8").get_json()["z"] != first
    assert client.get(url(0, first)).status_code == 200
    assert gan.family == "gan" and client.get("/api/state").get_json()["runs"][0]["family"] == "gan"


BAD_REQUESTS = [
    ("get", "/api/runs/0/latents/99", None, 404),            # unknown latent
    ("get", "/api/runs/0/latents/z1", None, 404),
    ("get", "/api/runs/7/latents/0", None, 404),             # unknown run
    ("get", "/api/decode.png?run=2&z=0", None, 404),
    ("get", "/api/decode.png?run=-1&z=0", None, 404),
    ("get", "/api/decode.png?run=one&z=0", None, 400),
    ("get", "/api/decode.png?z=0", None, 400),
    ("get", "/api/decode.png?run=0", None, 400),              # no code
    ("get", "/api/decode.png?run=0&z=", None, 400),
    ("get", "/api/decode.png?run=0&z=0,1", None, 400),        # too few values
    ("get", "/api/decode.png?run=0&z=" + ",".join(["0.5"] * 13), None, 400),
    ("get", "/api/decode.png?run=0&z=" + ",".join(["a"] * 12), None, 400),   # non-numeric
    ("get", "/api/decode.png?run=0&z=" + ",".join(["nan"] * 12), None, 400),
    ("get", "/api/decode.png?run=1&z=" + ",".join(["inf"] * 12), None, 400),
    ("get", "/api/decode.png?run=0&z=" + ",".join(["0.0123"] * 12), None, 422),  # not a codebook value
    ("get", "/api/decode.png?run=1&z=" + ",".join(["1e9"] * 12), None, 422),     # out of range
    ("get", "/api/decode.png?run=0&z=" + "1" * 30_000, None, 414),
    ("get", "/api/image/12.png", None, 404),
    ("get", "/api/image/x.png", None, 404),
    ("get", "/api/sample?run=0", None, 400),                 # a QLAE has no prior
    ("get", "/api/sample?run=0&seed=-3", None, 400),
    ("post", "/api/encode", b"{not json", 400),              # malformed JSON
    ("post", "/api/encode", b"[1, 2]", 400),
    ("post", "/api/encode", b'{"image": "3"}', 400),
    ("post", "/api/encode", b'{"image": true}', 400),
    ("post", "/api/encode", b'{"image": 3.5}', 400),
    ("post", "/api/encode", b'{"image": 12}', 404),
    ("post", "/api/encode", b'{"picture": 1}', 400),
    ("post", "/api/encode", b"x" * 100_000, 413),
    ("get", "/api/encode", None, 405),
    ("get", "/no/such/page", None, 404),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_REQUESTS, ids=[f"{m} {p[:40]}" for m, p, _, _ in
                                                                                  BAD_REQUESTS])
def test_bad_requests_get_a_4xx_answer_naming_the_problem(client, method, path, body, status):
    kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
    answer = getattr(client, method)(path, **kwargs)
    assert answer.status_code == status, answer.data[:200]
    assert answer.is_json and answer.get_json()["error"]


def test_code_values_arrive_in_any_decimal_spelling(client, views):
    # The page sends JavaScript's shortest round-trip decimals; a codebook value written with fewer digits
    # (within float32 rounding) still names it.
    code = [round(v, 7) for v in views[0].start]
    assert client.get(url(0, code)).status_code == 200


def test_page_is_offline_and_its_data_cannot_close_the_script(client):
    page = client.get("/").get_data(as_text=True)
    assert "<script src" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    assert _json_for_script({"name": "</script><script>alert(1)</script>"}).count("<") == 0


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_command_line_refusals_are_one_line_and_exit_2(run_dirs, tmp_path, capsys):
    assert main(["explore", str(tmp_path / "nowhere")]) == 2
    assert "no run directory" in one_line_error(capsys)
    empty = tmp_path / "untrained"
    empty.mkdir()
    shutil.copy(run_dirs["qlae"] / "config.yaml", empty / "config.yaml")
    assert main(["explore", str(empty)]) == 2
    assert "no checkpoint" in one_line_error(capsys)
    other = tmp_path / "other-size"
    shutil.copytree(run_dirs["ae"], other)
    config = other / "config.yaml"
    config.write_text(re.sub(r"image_size: 32", "image_size: 64", config.read_text()))
    assert main(["explore", str(run_dirs["qlae"]), str(other)]) == 2
    assert "must share a dataset and image size" in one_line_error(capsys)
    assert main(["explore", str(run_dirs["qlae"]), str(run_dirs["ae"]), "--export", str(tmp_path / "x.html")]) == 2
    assert "one run" in one_line_error(capsys)
    assert main(["explore", str(run_dirs["qlae"]), "--step", "3"]) == 2
    assert "no checkpoint for step 3" in one_line_error(capsys)


def test_a_port_in_use_is_one_line_and_exit_2(run_dirs, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["explore", str(run_dirs["qlae"]), "--port", str(port), "--num-eval", "32"]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in one_line_error(capsys)


def test_export_holds_every_traversal_image(run_dirs, views, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["explore", str(run_dirs["qlae"]), "--export", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]  # written atomically: no temporary left
    page = out.read_text()
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script src" not in page
    data = json.loads(re.search(r'<script type="application/json" id="lq-data">(.*?)</script>', page, re.S)[1])
    (run,) = data["runs"]
    view = views[0]
    assert run["start"] == view.start_code()
    assert len(run["traversals"]) == view.num_latents
    for j in (0, view.num_latents - 1):
        assert run["traversal_values"][j] == run["latents"][j]["values"]  # a codebook latent: every value
        assert len(run["traversals"][j]) == len(run["traversal_values"][j])
        for k in (0, len(run["traversals"][j]) - 1):
            code = list(run["start"])
            code[j] = run["traversal_values"][j][k]
            png = run["traversals"][j][k].removeprefix("data:image/png;base64,")
            assert np.array_equal(png_pixels(base64.b64decode(png)), decoded(view, code))


def test_export_of_a_continuous_run_spans_its_range(run_dirs, views, tmp_path):
    out = export(run_dirs["ae"], tmp_path / "ae.html")
    data = json.loads(re.search(r'id="lq-data">(.*?)</script>', out.read_text(), re.S)[1])
    (run,) = data["runs"]
    latent = run["latents"][0]
    values = run["traversal_values"][0]
    assert len(values) == views[1].cfg.eval.traversal_values
    assert values[0] == pytest.approx(latent["low"]) and values[-1] == pytest.approx(latent["high"])


def test_help_does_not_import_the_explorer():
    code = ("import sys\nfrom latentquant import cli\ncli.build_parser()\n"
            "print(sorted(m for m in sys.modules if m.startswith(('latentquant.explore', 'flask', 'torch'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"

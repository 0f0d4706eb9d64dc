"""`latentquant explore` in a real browser: Debian's Chromium, headless, driven by Playwright.

The server runs in a thread of this process on a free port, so the tests can decode the code a page shows
with the model itself and compare it with the pixels the browser drew. Playwright is pointed at the system
browser (never one it downloads); without Chromium or Playwright the tests skip and say why.
"""

import shutil
import threading

import numpy as np
import pytest
import torch
from helpers import train_tiny_run

from latentquant import viz

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install -y chromium)")
pytest.importorskip("flask", reason="the explorer's server needs Flask (pip install 'latentquant[explore]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (pip install playwright)")

from latentquant.explore import export, make_server, open_runs  # noqa: E402

# Draws an image element at its natural size onto a canvas and reads its RGBA bytes back.
PIXELS = """id => { const img = document.getElementById(id); const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight; const g = c.getContext('2d');
  g.drawImage(img, 0, 0); return Array.from(g.getImageData(0, 0, c.width, c.height).data); }"""


@pytest.fixture(scope="module")
def runs(tiny_h5, tmp_path_factory):
    root = tmp_path_factory.mktemp("explore-browser")
    return [train_tiny_run(tiny_h5, root / name, f"model={name}") for name in ("qlae", "ae")]


@pytest.fixture(scope="module")
def served(runs):
    """A QLAE and an AE side by side, served on a free local port: (base URL, the loaded runs)."""
    views = open_runs(runs)
    server = make_server(views, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", views
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        # The system Chromium: Playwright's own browser download is never used (nor reachable offline).
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert errors == []


@torch.no_grad()
def decoded(view, code) -> np.ndarray:
    z = torch.tensor([code], dtype=torch.float32)
    return viz.to_uint8(torch.sigmoid(view.model.decode(z)).numpy())[0]


def shown(page, image_id: str) -> tuple[list[float], np.ndarray]:
    """(the code the page says an image shows, the image's RGB pixels as the browser drew them)."""
    code = [float(v) for v in page.get_attribute(f"#{image_id}", "data-code").split(",")]
    rgba = np.array(page.evaluate(PIXELS, image_id), dtype=np.uint8)
    size = int(round((len(rgba) // 4) ** 0.5))
    return code, rgba.reshape(size, size, 4)[..., :3]


def wait_for_code(page, image_id: str, not_code: str | None = None) -> str:
    page.wait_for_function("([id, old]) => { const c = document.getElementById(id).dataset.code;"
                           " return c && c !== old; }", arg=[image_id, not_code], timeout=20_000)
    return page.get_attribute(f"#{image_id}", "data-code")


def most_visible_move(view, code) -> tuple[int, int]:
    """The latent and codebook position whose change from ``code`` changes the decoded image the most."""
    base = decoded(view, code).astype(int)
    best, where = -1, (0, 0)
    for control in view.controls:
        for k, value in enumerate(control.values):
            moved = list(code)
            moved[control.index] = value
            change = np.abs(decoded(view, moved).astype(int) - base).sum()
            if change > best:
                best, where = change, (control.index, k)
    return where


def test_moving_a_slider_shows_the_decoders_image_of_the_new_code(served, page):
    url, (qlae, _) = served
    page.goto(url)
    before = wait_for_code(page, "img-0")
    code, pixels = shown(page, "img-0")
    j, k = most_visible_move(qlae, code)
    page.fill(f"#lat-0-{j}", str(k))  # sets the value and fires input, then change: a drag and its release
    after = wait_for_code(page, "img-0", before)
    new_code, new_pixels = shown(page, "img-0")
    expected = list(code)
    expected[j] = qlae.controls[j].values[k]  # the slider snapped to latent j's k-th codebook value
    assert new_code == pytest.approx(expected, abs=0) and after != before
    assert not np.array_equal(new_pixels, pixels)
    assert np.abs(new_pixels.astype(int) - decoded(qlae, new_code)).max() <= 1
    assert page.text_content(f"#val-0-{j}") == f"{qlae.controls[j].values[k]:.3f}"
    latency = float(page.get_attribute("#img-0", "data-latency-ms"))
    assert 0 < latency < 2000, latency  # release -> new image; docs/explore.md has the CPU preset's number
    assert 0 < float(page.get_attribute("#img-0", "data-server-ms")) < latency


def test_a_continuous_slider_decodes_the_value_it_is_set_to(served, page):
    url, (_, ae) = served
    page.goto(url)
    before = wait_for_code(page, "img-1")
    control = ae.controls[2]
    value = control.low + 0.8 * (control.high - control.low)
    page.fill("#lat-1-2", repr(value))
    wait_for_code(page, "img-1", before)
    code, pixels = shown(page, "img-1")
    assert code[2] == pytest.approx(value, rel=1e-12)
    assert np.abs(pixels.astype(int) - decoded(ae, code)).max() <= 1


def test_clicking_a_dataset_image_moves_every_runs_sliders_to_its_code(served, page):
    url, views = served
    page.goto(url)
    before = [wait_for_code(page, f"img-{r}") for r in range(2)]
    # A strip image whose code differs from the first one's (the page opens on it) in both runs.
    rows = views[0].indices[:12]
    codes = [view.encode_rows(rows) for view in views]
    k = next(k for k in range(1, 12) if all(c[k] != c[0] for c in codes))
    page.click(f"#strip-{k}")
    page.wait_for_function(f"document.getElementById('strip').dataset.picked === '{k}'")
    for r, view in enumerate(views):
        wait_for_code(page, f"img-{r}", before[r])
        (expected,) = view.encode_rows(rows[k : k + 1])  # as the server does: one image at a time
        code, pixels = shown(page, f"img-{r}")
        assert code == pytest.approx(expected, abs=0)
        assert np.abs(pixels.astype(int) - decoded(view, code)).max() <= 1
        for control in view.controls:
            slider = page.input_value(f"#lat-{r}-{control.index}")
            if control.values is not None:  # the slider's position names the code's codebook value
                assert control.values[int(slider)] == expected[control.index]
            else:
                assert float(slider) == pytest.approx(expected[control.index], rel=1e-9, abs=1e-12)


def test_exported_page_switches_to_the_precomputed_traversal(runs, served, page, tmp_path):
    _, (qlae, _) = served
    out = export(runs[0], tmp_path / "explore.html")
    page.goto(out.as_uri())
    page.wait_for_function("document.getElementById('img-0').complete && "
                           "document.getElementById('img-0').dataset.shown === 'start'")
    start = page.get_attribute("#img-0", "src")
    code = qlae.start_code()
    j, k = most_visible_move(qlae, code)
    page.fill(f"#lat-0-{j}", str(k))
    page.wait_for_function(f"document.getElementById('img-0').dataset.shown === '{j}:{k}' && "
                           "document.getElementById('img-0').complete")
    src = page.get_attribute("#img-0", "src")
    data = page.evaluate("JSON.parse(document.getElementById('lq-data').textContent)")
    assert src == data["runs"][0]["traversals"][j][k] != start
    moved = list(code)
    moved[j] = qlae.controls[j].values[k]
    rgba = np.array(page.evaluate(PIXELS, "img-0"), dtype=np.uint8)
    pixels = rgba.reshape(qlae.image_size, qlae.image_size, 4)[..., :3]
    assert np.array_equal(pixels, decoded(qlae, moved))
    page.click("#reset-0")
    assert page.get_attribute("#img-0", "src") == start

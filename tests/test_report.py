"""`specc report`: the page of a run holds every section, loads nothing, and renders in a real browser."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, run_cli

from specc import api, report

SECTIONS = report.SECTIONS


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("runs") / "two"
    r = run_cli("train", ROOT / "models" / "two_layer_net.net", "--epochs", "2", "--out", folder)
    assert r.code == 0, r.err
    return folder


def test_the_page_holds_every_section_and_loads_nothing(run):
    r = run_cli("report", run)
    assert r.code == 0, r.err
    page = (run / "report.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert not re.search(r'(src|href)="(?!data:)', page)  # every image inline, nothing fetched
    assert page.count('src="data:image/png;base64,') >= 1 and 'src="data:image/svg+xml;base64,' in page
    assert "<title>test accuracy, epoch 2" in page  # the curves' hover values
    assert "Affine(50" in page or "Affine(784, 50)" in page


def test_the_digits_are_valid_pngs(run, tmp_path):
    import base64

    page = report.render([api.run_report(run)])
    first = re.search(r'data:image/png;base64,([^"]+)', page).group(1)
    (tmp_path / "d.png").write_bytes(base64.b64decode(first))
    from matplotlib import image as mpimg  # an independent PNG decoder

    image = mpimg.imread(tmp_path / "d.png")
    assert image.shape[:2] == (28, 28) and image.max() > 0


def test_two_runs_side_by_side(run, tmp_path):
    out = tmp_path / "both.html"
    r = run_cli("report", run, run, "-o", out)
    assert r.code == 0, r.err
    page = out.read_text(encoding="utf-8")
    assert page.count('<div class="cell"><h1>two</h1>') == 2 and "repeat(2, minmax(0, 1fr))" in page


def test_not_a_run_folder(tmp_path):
    r = run_cli("report", tmp_path)
    assert r.code == 2 and "not a run folder" in r.err and "Traceback" not in r.err


_CHECK = """<script>
window.onerror = (m) => { document.body.setAttribute('data-errors', (document.body.getAttribute('data-errors') || '')
  + m + ';'); };
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt);
  const r = document.createElement('div'); r.id = 'specc-check';
  r.textContent = JSON.stringify({images: imgs.length, undecoded: bad,
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    svgs: document.querySelectorAll('svg.chart').length});
  document.body.appendChild(r);
});
</script>"""


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium on PATH (apt-get install chromium; "
                                               ".ci/run installs it)")
def test_the_page_renders_in_headless_chromium(run, tmp_path):
    import json

    browser = _browser()
    assert run_cli("report", run, "-o", tmp_path / "r.html").code == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", _CHECK + "</body>"), encoding="utf-8")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
             "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<div id="specc-check">(.*?)</div>', dom.stdout)
    assert found, dom.stderr[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"'))
    assert result["sections"] == list(SECTIONS)
    assert result["images"] > 2 and result["undecoded"] == [] and result["svgs"] == 2
    assert '<body data-errors' not in dom.stdout  # (set by window.onerror)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,1600", (tmp_path / "r.html").as_uri()],
                   capture_output=True, timeout=120)
    from matplotlib import image

    pixels = image.imread(shot)
    assert pixels.shape[:2] == (1600, 1280) and float(np.std(pixels)) > 0.05  # not a blank page

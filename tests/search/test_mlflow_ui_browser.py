"""The MLflow UI in a real browser (Debian's headless Chromium driven by playwright): the link
`gatesearch run` prints opens the parent run, whose description is the front with a link to
every front trial's run, and the interactive front figure is among its artifacts. Screenshots
are saved next to the test's output. Skipped, with the reason, where no browser is installed
(`make browser` installs it)."""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

import pytest

from gatesearch.search.front.report import run_link
from gatesearch.search.lifecycle.runner import run_search
from gatesearch.spaces import parse_space_file
from tests import harness

CHROMIUM = os.environ.get("GATESEARCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SPACE = ("name: ui\nobjective: moe_digits\nsearch: {num_samples: 4, max_concurrent: 2, seed: 3}\n"
         "fixed: {epochs: 2}\nparams:\n  gate: {type: categorical, choices: [topk, hash, comet]}\n"
         "  n_experts: {type: int, low: 4, high: 8}\n")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: run `make browser`")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: run `make browser` (Debian's chromium package)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def _wait_healthy(url: str, proc, log) -> None:
    def ok():
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    harness.wait_for(ok, 90, "mlflow ui", proc=proc, log=log)


@pytest.mark.slow  # over 30 s; `make test-all` and CI (make test-slow) run it
def test_front_table_figure_and_trial_links_in_the_mlflow_ui(browser, ray_session, tmp_path):
    result = run_search(parse_space_file(SPACE, str(tmp_path / "ui.yaml")), output_dir=tmp_path / "runs")
    port = harness.free_port()
    log = tmp_path / "ui.log"
    proc = harness.spawn([str(harness.BIN / "mlflow"), "ui", "--backend-store-uri", result.tracking_uri,
                          "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], log)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, proc, log)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(f"{base}/{run_link(result.experiment_id, result.parent_run_id)}")  # the printed link
        page.get_by_text("Pareto front", exact=False).first.wait_for(timeout=60_000)
        # the model-training view (MLflow 3.x opens runs in its GenAI "Evaluations" view otherwise)
        assert page.get_by_text("Evaluation runs", exact=True).count() == 0
        assert page.get_by_text("Evaluations", exact=True).count() == 0
        for row in result.front:  # the description: every front trial, linked to its run
            page.get_by_text(row["trial"], exact=False).first.wait_for(timeout=30_000)
            assert page.locator(f'a[href*="{row["run_id"]}"]').count() >= 1, row
        page.screenshot(path=str(tmp_path / "parent_run.png"), full_page=True)
        # the interactive figure is an artifact the viewer shows
        page.get_by_text("Artifacts", exact=True).first.click()
        page.get_by_text("pareto_front.html", exact=True).first.click()
        frame = page.locator("iframe").first
        frame.wait_for(timeout=60_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(tmp_path / "front_html.png"), full_page=True)
        assert page.frame_locator("iframe").first.locator(".plotly").count() >= 1
    finally:
        harness.kill_group(proc, 15)

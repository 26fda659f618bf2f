"""Real browser test: `python app.py` (= make app) on a free localhost port, every page in headless Chromium.

Asserts no exception element and a rendered plotly chart on each chart page. With
IWSI_SCREENSHOTS=DIR (or `python tests/screenshots.py`) it saves one PNG per page to DIR.

    PYTHONPATH=. .venv/bin/python -m pytest -m browser tests/test_browser.py
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks.fixtures import make_ablation_dir, make_run_dir
from iwsi.probe import make_probe_dir

REPO = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# url path → number of plotly charts it draws (fixture runs)
PAGES = {"": 0, "ds_weights": 1, "percentiles": 2, "correctness": 2, "distributions": 2, "rationales": 0,
         "explorer": 0, "queue": 0, "compare": 1, "ablations": 2, "probe": 6}
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1400,1000"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
                                 reason=f"needs {CHROMIUM} and {DRIVER} (apt-get install chromium chromium-driver)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(cache: Path, launch: tuple[str, ...] = ("app.py",)):
    """`python app.py` (as `make app` starts it: the pages' libraries imported before the first tab, views/_serve.py;
    `launch=("-m", "streamlit", "run", "app.py")` for plain `streamlit run`) bound to 127.0.0.1:<free port>,
    stopped (by pid) on exit."""
    port = free_port()
    cmd = [sys.executable, *launch, "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    env = {**os.environ, "IWSI_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.25)
        else:
            raise RuntimeError("streamlit did not start: " + proc.stdout.read1(4000).decode(errors="replace"))
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def chromium(profile: Path, width: int = 1400, height: int = 1000):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--window-size={width},{height}")
    opts.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def wait_rendered(driver, charts: int | bool, timeout: float = 40, settle: float = 0.5) -> None:
    """Until the page has its title, the script looks idle (no running widget, no stale elements)
    and at least `charts` plotly charts have drawn; then `settle` s for plotly's layout."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    drawn_js = ("return [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
                ".filter(e => e.querySelector('.main-svg')).length")
    tables_js = ("return [...document.querySelectorAll('[data-testid=\"stDataFrame\"]')]"
                 ".every(e => !e.checkVisibility() || e.querySelector('canvas'))")  # hidden: a closed expander
    end = time.time() + timeout
    while time.time() < end:
        titled = driver.find_elements(By.CSS_SELECTOR, "h1")
        try:
            running = [w for w in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
                       if "Running" in w.text or "Stop" in w.text]
        except StaleElementReferenceException:  # the status widget went away while read: still changing
            continue
        running = running or driver.find_elements(By.CSS_SELECTOR, '[data-stale="true"]')
        # a widget whose code is still loading is drawn as a grey skeleton
        running = running or driver.find_elements(By.CSS_SELECTOR, '[data-testid^="stSkeleton"]')
        running = running or not driver.execute_script(tables_js)  # a table is drawn once its code is loaded
        if titled and not running and driver.execute_script(drawn_js) >= int(charts):
            time.sleep(settle)
            return
        time.sleep(0.02)
    raise AssertionError(f"page did not render within {timeout}s: {driver.current_url}")


def make_cache(root: Path) -> Path:
    make_run_dir(root / "runs" / "fixture-gsm8k-scale", num_questions=300, num_samples=8, seed=0)
    make_run_dir(root / "runs" / "fixture-svamp", num_questions=150, num_samples=8, seed=1, dataset="svamp")
    make_ablation_dir(root / "ablations" / "fig2")
    make_probe_dir(root / "probes" / "fixture-probe", n=40)
    return root


def visit_all(driver, url: str, shots: Path | None, query: str = "") -> dict[str, str]:
    """Open every page (with `query`, e.g. "?run=NAME"); return page → problem (empty when all are fine)."""
    from selenium.webdriver.common.by import By

    problems = {}
    for page, charts in PAGES.items():
        driver.get(f"{url}/{page}{query}")
        wait_rendered(driver, charts)
        if driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'):
            error = driver.find_element(By.CSS_SELECTOR, '[data-testid="stException"]')
            problems[page] = "exception: " + error.text[:300]
        if charts and not driver.find_elements(By.CSS_SELECTOR, '.js-plotly-plot, [data-testid="stPlotlyChart"]'):
            problems[page] = "no chart"
        if shots is not None:
            # Streamlit shows its "Running" badge only after a delay, so a slow last section (Compare's
            # bootstrap on a fresh server) can still be computing when the charts above it are drawn: wait for a
            # stable height
            height_js = "return document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1000"
            full, since, end = -1, time.time(), time.time() + 40
            while time.time() < end and time.time() - since < 8:  # 8 s without a change
                if full != (full := driver.execute_script(height_js)):
                    since = time.time()
                time.sleep(1)
            shots.mkdir(parents=True, exist_ok=True)
            driver.set_window_size(1400, min(max(1000, int(full) + 120), 3200))
            wait_rendered(driver, charts)
            driver.save_screenshot(str(shots / f"{page or 'runs'}.png"))
            driver.set_window_size(1400, 1000)
    return problems


def test_every_page_in_chromium(tmp_path):
    cache = make_cache(tmp_path / "cache")
    shots = Path(os.environ["IWSI_SCREENSHOTS"]) if os.environ.get("IWSI_SCREENSHOTS") else None
    with streamlit_server(cache) as url, chromium(tmp_path / "profile") as driver:
        problems = visit_all(driver, url, shots)
        k_after_navigation, ds_weights_text = move_k_and_navigate(driver, url)
    assert not problems, problems
    assert k_after_navigation == "79"
    # the DS weights page's centre and its cut's stability under other D_v draws, recomputed at the new k
    assert "L̄_v = mean of the" in ds_weights_text and "Stability under other draws of D_v" in ds_weights_text
    shown = ds_weights_text.split("kept-set Jaccard, median of 50", 1)[1].split()[0]
    assert shown in {stability_at(run, 79) for run in (cache / "runs").iterdir()}


def stability_at(run: Path, k: float) -> str:
    """The Jaccard median the DS weights page shows for `run` at k (the library's own computation)."""
    import pandas as pd

    from iwsi.dsweight import dv_stability

    out = dv_stability(pd.read_parquet(run / "samples.parquet"), pd.read_parquet(run / "valid_pool.parquet"), k)
    return f"{out['jaccard_median']:.3f}"


def slider_key(driver, key) -> None:
    """Press `key` on the sidebar's k slider. Its <input type="range"> is visually hidden (react-aria), which
    ChromeDriver 150 refuses to type into: focus it by script, then send the key to the focused element."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    thumb = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSlider"] input')
    driver.execute_script("arguments[0].focus()", thumb)
    ActionChains(driver).send_keys(key).perform()


def move_k_and_navigate(driver, url: str) -> tuple[str, str]:
    """Move k one step on DS weights, follow the sidebar link to another page: (k there, the DS weights page's
    text after the step)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{url}/ds_weights")
    wait_rendered(driver, 1)
    slider_key(driver, Keys.ARROW_LEFT)
    for _ in range(200):
        if "kept at k=79" in driver.find_element(By.CSS_SELECTOR, "body").text:
            break
        time.sleep(0.05)
    wait_rendered(driver, 1)
    ds_weights_text = driver.find_element(By.CSS_SELECTOR, "body").text
    link = [a for a in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
            if a.text.endswith("Correctness vs DSE")]
    link[0].click()
    for _ in range(200):
        if driver.find_elements(By.XPATH, "//h1[contains(., 'Correctness vs DSE')]"):
            break
        time.sleep(0.05)
    wait_rendered(driver, 2)
    thumb = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSliderThumbValue"]')
    return thumb.text, ds_weights_text


def wait_for_text(driver, text: str, timeout: float = 30) -> bool:
    from selenium.webdriver.common.by import By

    end = time.time() + timeout
    while time.time() < end:
        if text in driver.find_element(By.CSS_SELECTOR, "body").text:
            return True
        time.sleep(0.1)
    return False


def test_keys_label_and_a_bar_click_opens_the_explorer(tmp_path):
    """In a real browser: key 1 labels the focused sample (human) and moves on, n / Shift+N and p / Shift+P move
    (the buttons' badges show "N" and "P"), the main menu offers the theme (System / Light / Dark); a click on a
    DS-weight bar opens the Samples explorer filtered to that bar, at the k the page was at."""
    import pandas as pd
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    cache = tmp_path / "cache"
    run = make_run_dir(cache / "runs" / "r", num_questions=40, num_samples=4, seed=2)
    with streamlit_server(cache) as url, chromium(tmp_path / "profile") as driver:
        driver.get(f"{url}/rationales")
        wait_rendered(driver, 0)
        assert wait_for_text(driver, "Sample 1 of 4")
        time.sleep(2)  # the first URL update can rerun the page once: press after it, not during it
        wait_rendered(driver, 0)
        driver.find_element(By.CSS_SELECTOR, "h1").click()  # focus the page, not a widget
        ActionChains(driver).send_keys("1").perform()
        assert wait_for_text(driver, "Sample 2 of 4"), driver.find_element(By.CSS_SELECTOR, "body").text[:2000]
        labels = pd.read_parquet(run / "labels.parquet")
        assert labels[["label", "source"]].values.tolist() == [["redundant", "human"]]
        ActionChains(driver).key_down(Keys.SHIFT).send_keys("n").key_up(Keys.SHIFT).perform()  # the badge says "N"
        assert wait_for_text(driver, "Sample 3 of 4"), driver.find_element(By.CSS_SELECTOR, "body").text[:2000]
        ActionChains(driver).send_keys("p").perform()
        assert wait_for_text(driver, "Sample 2 of 4")
        ActionChains(driver).key_down(Keys.SHIFT).send_keys("p").key_up(Keys.SHIFT).perform()
        assert wait_for_text(driver, "Sample 1 of 4")
        driver.find_element(By.CSS_SELECTOR, '[data-testid="stMainMenu"] button').click()  # the README's theme menu
        assert wait_for_text(driver, "dark_mode\nDark"), driver.find_element(By.CSS_SELECTOR, "body").text[-1000:]
        driver.find_element(By.CSS_SELECTOR, "body").send_keys(Keys.ESCAPE)

        driver.get(f"{url}/ds_weights")
        wait_rendered(driver, 1, settle=1.0)
        slider_key(driver, Keys.ARROW_LEFT)  # k 80 → 79: the explorer must open at 79, not at the run's 80
        assert wait_for_text(driver, "kept at k=79")
        wait_rendered(driver, 1, settle=1.0)
        chart = driver.find_element(By.CSS_SELECTOR, '[data-testid="stPlotlyChart"]')
        bars = chart.find_elements(By.CSS_SELECTOR, ".subplot.xy .barlayer .point path")  # the w_DS panel's
        tallest = max(bars, key=lambda b: b.size["height"])
        ActionChains(driver).move_to_element(tallest).click().perform()
        assert wait_for_text(driver, "samples picked on 1 bar(s) of the w_DS histogram"), driver.current_url
        assert "/explorer" in driver.current_url
        assert wait_for_text(driver, "Kept at k=79"), driver.find_element(By.CSS_SELECTOR, "body").text[:2000]
        thumb = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSliderThumbValue"]')
        assert thumb.text == "79" and "k=79" in driver.current_url
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')


def test_the_runs_page_follows_a_live_run_without_reloading(tmp_path):
    """A Runs tab left open shows the stage, the counts and the base accuracy as the run writes
    them, without a reload; once the run's process is gone it says so, and the page stops polling."""
    import json
    import textwrap

    import numpy as np
    import yaml
    from selenium.webdriver.common.by import By

    from benchmarks.fixtures import make_eval
    from iwsi.rundir import claim_dir

    cache = tmp_path / "cache"
    run = cache / "runs" / "live"
    claim_dir(run, "run")
    # the run's process: holds the run's lock and says it is generating, until its stdin closes
    script = textwrap.dedent(f"""
        import sys
        from iwsi.rundir import RunDir
        run = RunDir({str(run)!r})
        with run.lock():
            run.set_status("running", "generate")
            print("ready", flush=True)
            sys.stdin.readline()
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "ready"
        with streamlit_server(cache) as url, chromium(tmp_path / "profile") as driver:
            driver.get(url)
            wait_rendered(driver, 0)
            assert wait_for_text(driver, "state: running, stage: generate")
            # the run goes on: generate, vote and score done, evaluate-base written, evaluate-base's marker not yet
            (run / "config.yaml").write_text(yaml.safe_dump({"dataset": "synthetic-arith", "model": "embedded",
                                                             "method": "iwsi", "k": 80}))
            base = make_eval(np.random.default_rng(0), 100).query("model == 'base'")
            base.to_parquet(run / "eval_base.parquet", index=False)
            (run / "metrics.json").write_text(json.dumps({"method": "iwsi", "k": 80, "num_candidates": 400,
                                                          "num_majority": 134, "num_questions": 100}))
            (run / "stages").mkdir()
            for stage in ("generate", "vote", "score"):
                (run / "stages" / f"{stage}.json").write_text(json.dumps({"stage": stage, "seconds": 1.0}))
            status = json.loads((run / "status.json").read_text())
            (run / "status.json").write_text(json.dumps({**status, "stage": "evaluate-base"}))
            assert wait_for_text(driver, "state: running, stage: evaluate-base", timeout=20)
            body = driver.find_element(By.CSS_SELECTOR, "body").text
            assert "400" in body and "134" in body and f"{base['is_correct'].mean():.3f}" in body, body[:3000]
            holder.stdin.close()  # the process ends without a final status (killed)
            holder.wait(10)
            assert wait_for_text(driver, "state: failed", timeout=20)
            time.sleep(3)  # the page then runs in full once (the table's poll sees no live run) and polls no more
            wait_rendered(driver, 0)
            (run / "metrics.json").write_text(json.dumps({"num_candidates": 98765}))
            time.sleep(6)  # three polls' worth: none comes, no run is live
            assert "98,765" not in driver.find_element(By.CSS_SELECTOR, "body").text
            assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    finally:
        holder.kill()
        holder.wait(5)


TINY = ("num_questions=10 num_samples=2 valid_size=2 valid_pool=0 test_size=12 max_new_tokens=32 epochs=1 "
        "batch_size=4 embed=false")  # a real run of the embedded model that finishes in about a minute here


@pytest.mark.slow
def test_a_run_launched_from_the_runs_page_is_followed_to_the_end_without_reloading(tmp_path):
    """Launch a tiny real run from the Runs page's form and watch that one tab, never reloaded: the stage moves
    through the run, the counts and the base accuracy appear as their files are written, the training loss curve
    is drawn, and the run ends done with the numbers of its metrics.json."""
    import json

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from iwsi.contract import STAGES, cache_root

    cache = tmp_path / "cache"
    cache.mkdir()
    if (cache_root() / "models").is_dir():  # the embedded model, converted once (iwsi/models.py)
        (cache / "models").symlink_to(cache_root() / "models", target_is_directory=True)
    with streamlit_server(cache) as url, chromium(tmp_path / "profile") as driver:
        driver.get(url)
        wait_rendered(driver, 0)
        driver.execute_script("window.iwsiSameTab = true")  # gone if the page were ever reloaded
        name = driver.find_element(By.CSS_SELECTOR, 'input[aria-label="Run name"]')
        name.send_keys(Keys.CONTROL, "a")  # replace the default name (clear() leaves React's value in place)
        name.send_keys("tiny", Keys.TAB)
        driver.find_element(By.CSS_SELECTOR, 'input[aria-label^="More overrides"]').send_keys(TINY)
        next(b for b in driver.find_elements(By.CSS_SELECTOR, "button") if b.text.endswith("Launch")).click()
        seen, base_shown_before_done, end = [], False, time.time() + 420
        while time.time() < end:
            body = driver.find_element(By.CSS_SELECTOR, "body").text
            stage = next((s for s in STAGES if f"tiny — state: running, stage: {s}" in body), None)
            if stage and stage not in seen:
                seen.append(stage)
            if "tiny — state: done" in body:
                break
            base_shown_before_done |= (cache / "runs" / "tiny" / "eval_base.parquet").exists() and "0." in body
            time.sleep(0.2)
        run = cache / "runs" / "tiny"
        assert "tiny — state: done" in body, (seen, (run / "log.txt").read_text()[-2000:])
        assert len(seen) >= 3 and seen == sorted(seen, key=STAGES.index), seen  # followed, in run order
        assert driver.execute_script("return window.iwsiSameTab === true")
        metrics = json.loads((run / "metrics.json").read_text())
        wait_rendered(driver, 1, settle=1.0)
        body = driver.find_element(By.CSS_SELECTOR, "body").text
        for count in ("num_candidates", "num_majority", "num_kept"):
            assert str(metrics[count]) in body, (count, metrics[count])
        assert f"{metrics['accuracy']['base']:.3f}" in body and f"{metrics['accuracy']['trained']:.3f}" in body
        assert base_shown_before_done
        assert "optimizer steps logged" in body and "Training loss per optimizer step" in body
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')

def test_empty_cache_in_chromium(tmp_path):
    (tmp_path / "cache").mkdir()
    from selenium.webdriver.common.by import By

    with streamlit_server(tmp_path / "cache") as url, chromium(tmp_path / "profile") as driver:
        driver.get(url)
        wait_rendered(driver, charts=False)
        # the sidebar writes k into the URL on the first run, which can rerun the page once: wait for the body
        end = time.time() + 30
        while "Run embedded demo" not in driver.page_source and time.time() < end:
            time.sleep(0.25)
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        assert "Run embedded demo" in driver.page_source


def test_hostile_text_fetches_nothing(tmp_path):
    """Questions, rationales, answers, suggestion reasons, probe examples and a run's status that
    hold `![x](http://127.0.0.1:PORT/…)`, `<img src=…>` and links are shown as text: the browser that opens
    the Runs, Rationales, Samples explorer and Probe pages sends no request to PORT."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from selenium.webdriver.common.by import By

    from tests.test_untrusted_text import make_hostile_probe, make_hostile_run

    asked = []

    class Listener(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            asked.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    listener = ThreadingHTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    port = listener.server_address[1]
    cache = tmp_path / "cache"
    make_hostile_run(cache / "runs" / "hostile", port)
    make_hostile_probe(cache / "probes" / "hostile-probe", port)
    shown = f"![x](http://127.0.0.1:{port}/image.png)"  # the payload as characters on the page
    try:
        with streamlit_server(cache) as url, chromium(tmp_path / "profile") as driver:
            for page in ("", "rationales", "explorer", "probe"):
                driver.get(f"{url}/{page}")
                wait_rendered(driver, 0)
                if page != "explorer":  # the explorer shows texts in its table (a canvas) until a row is picked
                    assert wait_for_text(driver, shown), page
                time.sleep(1.5)  # time for an image the page drew to be fetched
            assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    finally:
        listener.shutdown()
        listener.server_close()
    assert not asked, asked

"""The path a person takes in the Airflow UI, in a real headless Chromium against `make up`'s Airflow.

Log in, open the trigger form of aria_text_tuning, read every param, pick a model from the dropdown, trigger a
dry run (typing an out-of-range number) and a real run with the form's default logical date, watch them
succeed, open the task details and their console links, and the quality gate's log. Each problem the
"person at the Airflow UI" issue found fails one assertion here. Screenshots go to the test's tmp folder.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.processes import free_port
from tests.support.airflow import REPO

pytestmark = pytest.mark.slow

DAG_ID = "aria_text_tuning"
PASSWORD = "browser-test-password"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The newest of the sample versions `make up` publishes: what a manual run without dataset_uri trains.
NEWEST_SAMPLE = "v=2025-06-15"
#: Settings of the pytest process's own Airflow (tests/support/airflow.py) that `make up` must not inherit.
_TEST_ONLY = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "ARIA_", "AIRFLOW_HOME", "STORAGE_EMULATOR_HOST")


@dataclass
class MadeUp:
    """The Airflow `make up` started: its UI, its run directory, the login."""

    url: str
    run_dir: Path
    env: dict[str, str]
    _token: str = ""

    def api(self, path: str, body: Any = None, method: str | None = None) -> Any:
        if not self._token:
            self._token = _json(f"{self.url}/auth/token", {"username": "admin", "password": PASSWORD})[
                "access_token"
            ]
        return _json(f"{self.url}{path}", body, method, self._token)

    def runs(self) -> list[dict[str, Any]]:
        return list(self.api(f"/api/v2/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=50")["dag_runs"])

    def run_path(self, run_id: str) -> str:
        return f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    def task_states(self, run_id: str) -> dict[str, str | None]:
        tis = self.api(f"{self.run_path(run_id)}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

    def xcom(self, run_id: str, task_id: str) -> Any:
        return self.api(f"{self.run_path(run_id)}/taskInstances/{task_id}/xcomEntries/return_value")["value"]

    def log(self, run_id: str, task_id: str, try_number: int = 1) -> str:
        path = f"{self.run_path(run_id)}/taskInstances/{task_id}/logs/{try_number}?full_content=true"
        content = self.api(path)["content"]
        return "\n".join(e if isinstance(e, str) else str(e.get("event", "")) for e in content)

    def wait_run(self, run_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.api(self.run_path(run_id))["state"]
            if state in ("success", "failed"):
                return str(state)
            time.sleep(2)
        raise TimeoutError(f"{run_id} not finished within {timeout:.0f}s: {self.task_states(run_id)}")


def _json(url: str, body: Any = None, method: str | None = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def _make_up_env(extra: dict[str, str]) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(_TEST_ONLY)}
    return {**env, **extra}


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium (Playwright cannot download browsers here), installed when missing."""
    if not CHROMIUM.exists():
        install = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"
        done = subprocess.run(["bash", "-c", install], capture_output=True, text=True)
        if done.returncode != 0 or not CHROMIUM.exists():
            pytest.fail(f"{CHROMIUM} is missing and `{install}` failed: {done.stderr[-2000:]}")
    return CHROMIUM


@pytest.fixture(scope="module")
def made_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadeUp]:
    """`make up` (scripts/local_airflow.py up) in a temp run dir on free ports; `down` afterwards."""
    run_dir = tmp_path_factory.mktemp("make-up")
    api, gcs, vertex, grpc_port, worker_logs, trigger_logs = (free_port() for _ in range(6))
    env = _make_up_env(
        {
            "ARIA_AIRFLOW_PASSWORD": PASSWORD,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_logs),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(trigger_logs),
            # Quicker hand-offs than a person needs: the run is the same, its waits shorter.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "ARIA_SENSOR_POKE_SECONDS": "1",
            "ARIA_VERTEX_POLL_SECONDS": "1",
            # Each canary share soaks this long before its error check (the DAG's default is 30 min).
            "ARIA_CANARY_SOAK_SECONDS": "5",
        }
    )
    up = [sys.executable, "-m", "scripts.local_airflow", "up", "--run-dir", str(run_dir), "--port", str(api)]
    up += ["--gcs-port", str(gcs), "--vertex-port", str(vertex), "--vertex-grpc-port", str(grpc_port)]
    down = [sys.executable, "-m", "scripts.local_airflow", "down", "--run-dir", str(run_dir)]
    try:
        started = subprocess.run(up, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        made = MadeUp(f"http://127.0.0.1:{api}", run_dir, env)
        # Shorter emulated tuning phases (the tuning job's two phases; deploys stay at make up's 10 s,
        # long enough for the LocalExecutor to see a deferral before it resumes).
        _json(f"http://127.0.0.1:{vertex}/_emulator/settings", {"phaseSeconds": 8}, "PATCH")
        _wait(lambda: made.api(f"/api/v2/dags/{DAG_ID}"), 240, "the dag-processor to parse the DAG")
        yield made
    finally:
        subprocess.run(down, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := predicate():
                return value
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        time.sleep(1)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def browser(chromium: Path, made_up: MadeUp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A logged-in browser context on `make up`'s UI."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chrome = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        context = chrome.new_context(viewport={"width": 1400, "height": 1100})
        # The UI renders in seconds, but on a shared 2-core machine running other suites it can take a minute.
        context.set_default_timeout(120_000)
        page = context.new_page()
        page.goto(f"{made_up.url}/auth/login", wait_until="networkidle")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{made_up.url}/", timeout=60_000)
        page.close()
        try:
            yield context
        finally:
            context.close()
            chrome.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go (the test's tmp output folder)."""
    return tmp_path_factory.mktemp("screenshots")


def _trigger_form(browser: Any, made_up: MadeUp) -> Any:
    page = browser.new_page()
    page.goto(f"{made_up.url}/dags/{DAG_ID}", wait_until="networkidle")
    page.get_by_role("button", name="Trigger").first.click()
    page.get_by_role("dialog").wait_for()
    page.get_by_text("Run Parameters").wait_for()
    return page


def _number_input(page: Any, param: str) -> Any:
    """The spin button of a number param (its id is generated; the increment button names it)."""
    return page.locator(
        "#" + page.locator(f"[id='number-input:element_{param}:inc']").get_attribute("aria-controls")
    )


def _choose(page: Any, param: str, option: str) -> None:
    """Pick `option` in the dropdown of an enum param."""
    page.locator(f"input[name=element_{param}]").locator("xpath=..").click()
    page.get_by_text(option, exact=True).click()


def _submit(page: Any, made_up: MadeUp) -> str:
    """Trigger from the open form; the run the UI navigates to."""
    before = {run["dag_run_id"] for run in made_up.runs()}
    page.get_by_test_id("trigger-dag-submit").click()
    new = _wait(
        lambda: [r["dag_run_id"] for r in made_up.runs() if r["dag_run_id"] not in before], 60, "the run"
    )
    page.close()
    return str(new[0])


def test_the_trigger_form_titles_and_describes_every_param_and_offers_backfill(
    browser: Any, made_up: MadeUp, shots: Path
) -> None:
    page = _trigger_form(browser, made_up)
    params = made_up.api(f"/api/v2/dags/{DAG_ID}/details")["params"]
    text = page.get_by_role("dialog").inner_text()
    for name, param in params.items():
        title, description = param["schema"]["title"], param["description"]
        assert title in text, f"{name}: title {title!r} not in the form"
        assert description and re.search(r"for example \S", description, re.I), f"{name}: {description!r}"
        assert description.split(". ")[0] in text, f"{name}: description not shown"
    # Backfill is offered (ARIA_TUNING_SCHEDULE=backfill), not greyed out as with schedule=None.
    assert page.locator("input[value=backfill]").is_enabled()
    page.screenshot(path=str(shots / "trigger-form.png"), full_page=True)
    page.close()


@pytest.fixture(scope="module")
def dry_run(browser: Any, made_up: MadeUp) -> str:
    """A dry run from the form: a model from the dropdown, epochs typed as 50, dry_run on."""
    page = _trigger_form(browser, made_up)
    _choose(page, "base_model", "gemini-3.5-flash-lite")
    epochs = _number_input(page, "epochs")
    epochs.fill("50")
    epochs.blur()
    page.locator("input[name=element_dry_run]").locator("xpath=..").click()
    run_id = _submit(page, made_up)
    assert made_up.wait_run(run_id, 300) == "success", made_up.task_states(run_id)
    return run_id


def test_a_dry_run_says_what_the_form_changed_and_what_a_real_run_would_cost(
    dry_run: str, made_up: MadeUp
) -> None:
    conf = made_up.api(made_up.run_path(dry_run))["conf"]
    assert conf["base_model"] == "gemini-3.5-flash-lite" and conf["dry_run"] is True
    assert conf["epochs"] == 20  # the form clamped the typed 50
    prepare = made_up.log(dry_run, "prepare_dataset")
    assert "Runs with epochs = 20 (set for this run): exactly the form's maximum (20)" in prepare
    report = made_up.log(dry_run, "dry_run_report")
    assert re.search(r"takes 1\.0 h to 4\.0 h .*costs \$\d+\.\d\d \(training tokens x \$1\.50 per 1M", report)


@pytest.fixture(scope="module")
def real_run(browser: Any, made_up: MadeUp, dry_run: str) -> str:
    """A real run from the form, everything as the form proposes (logical date: now)."""
    page = _trigger_form(browser, made_up)
    run_id = _submit(page, made_up)
    assert made_up.wait_run(run_id, 900) == "success", made_up.task_states(run_id)
    return run_id


def test_a_run_with_the_default_date_trains_the_newest_version_and_its_note_says_so(
    real_run: str, made_up: MadeUp
) -> None:
    run = made_up.api(made_up.run_path(real_run))
    assert run["run_type"] == "manual" and run["note"].startswith(f"Dataset {NEWEST_SAMPLE} (")
    assert made_up.xcom(real_run, "resolve_dataset_version")["version"] == NEWEST_SAMPLE


def test_the_tune_log_shows_progress_and_nothing_that_looks_like_a_failure(
    real_run: str, made_up: MadeUp
) -> None:
    log = made_up.log(real_run, "tune")
    assert "XCom not found" not in log and "[error]" not in log.lower()
    assert re.search(r"running \d+ s; the plan expects 60 min to 4\.0 h: ends between", log), log[-2000:]
    console = re.search(r"Tuning run in the Vertex AI console: (https://\S+)$", log, re.M)
    assert console and not console.group(1).endswith(("'", '"', "}", ",")), log[-2000:]
    assert not re.search(r"Tuning finished: \{", log)
    # No wall-clock check of the triggerer's loop here: its watchdog's "async thread was blocked" lines
    # measure the whole machine too (0.55 s under a soak beside this test, make test-random, seed
    # 3922690919). tests/aria_tuning/test_trigger_loop.py pins what our triggers control: no blocking
    # I/O on the loop and no step over 0.1 s of CPU, in a fresh interpreter per trigger.


def _links(browser: Any, made_up: MadeUp, run_id: str, task_id: str, shots: Path) -> dict[str, str]:
    page = browser.new_page()
    quoted = urllib.parse.quote(run_id, safe="")
    page.goto(f"{made_up.url}/dags/{DAG_ID}/runs/{quoted}/tasks/{task_id}", wait_until="networkidle")
    page.get_by_role("link", name="Details", exact=True).click()
    page.get_by_text("Extra Links").wait_for()
    links = {
        link.inner_text().strip(): str(link.get_attribute("href"))
        for link in page.locator("a[href^='https://console.cloud.google.com/']").all()
    }
    page.screenshot(path=str(shots / f"links-{task_id}.png"), full_page=True)
    page.close()
    return links


def test_the_console_links_point_at_the_resources_the_run_kept(
    browser: Any, made_up: MadeUp, real_run: str, shots: Path
) -> None:
    from aria_tuning.resources import endpoint_console_url, job_console_url, model_console_url

    tuned, registered = made_up.xcom(real_run, "tune"), made_up.xcom(real_run, "register_model")
    deployed = made_up.xcom(real_run, "deploy_model")
    expected = {
        "tune": {"Vertex AI tuning run": job_console_url(tuned["job"], tuned["method"])},
        "register_model": {"Vertex AI Model Registry": model_console_url(registered["model_version"])},
        "deploy_model": {"Vertex AI endpoint": endpoint_console_url(deployed["endpoint"])},
    }
    for task_id, links in expected.items():
        assert _links(browser, made_up, real_run, task_id, shots) == links, task_id
    page = browser.new_page()
    page.goto(
        f"{made_up.url}/dags/{DAG_ID}/runs/{urllib.parse.quote(real_run, safe='')}", wait_until="networkidle"
    )
    # The graph view: its button, or its keyboard shortcut "g" (the UI remembers the last view, and the
    # run page keeps polling, so a click that waits for the page to settle can time out).
    nodes = page.locator(".react-flow__node").first
    graph = page.get_by_role("button", name=re.compile("Show Graph"))
    if graph.count():
        graph.dispatch_event("click")
    elif not nodes.is_visible():
        page.keyboard.press("g")
    nodes.wait_for(timeout=90_000)
    page.screenshot(path=str(shots / "graph.png"), full_page=True)
    page.close()


def _scroll_until_shown(page: Any, pattern: re.Pattern[str], timeout: float = 60) -> None:
    """Wheel down the log under the mouse until a line matches: the log view may render only the lines
    near its viewport (a virtualised list), so a line further down is not in the page until scrolled to."""
    line = page.get_by_text(pattern).first
    deadline = time.monotonic() + timeout
    while not line.is_visible():
        assert time.monotonic() < deadline, f"no line of the log matches {pattern.pattern!r}"
        page.mouse.wheel(0, 300)
        page.wait_for_timeout(250)  # lets the list render the lines scrolled to; the loop checks the page


def test_the_quality_gate_log_shows_the_score(
    browser: Any, made_up: MadeUp, real_run: str, shots: Path
) -> None:
    page = browser.new_page()
    quoted = urllib.parse.quote(real_run, safe="")
    page.goto(f"{made_up.url}/dags/{DAG_ID}/runs/{quoted}/tasks/quality_gate", wait_until="networkidle")
    # Each prompt's line (its primary metric for candidate and champion), the means, the rule: plain text.
    first = page.get_by_text(
        re.compile(r"prompt 1/\d+ \(line \d+\): rouge_l candidate \d\.\d{3}, champion \d\.\d{3} \| \S")
    ).first
    first.wait_for(timeout=60_000)
    page.screenshot(path=str(shots / "quality-gate-log.png"), full_page=True)
    box = first.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # over the log, for the wheel
    for later in (
        r"mean over \d+ prompts: .*rouge_l candidate \d\.\d{3}, champion \d\.\d{3}",
        r"rule on rouge_l: .* the floor 0\.850 \(met\)\. PROMOTE",
    ):
        _scroll_until_shown(page, re.compile(later))
    page.close()
    # Every prompt the gate scored has its line in the log, numbered 1..count.
    count = made_up.xcom(real_run, "quality_gate")["count"]
    numbered = re.findall(
        r"prompt (\d+)/(\d+) \(line \d+\): rouge_l candidate", made_up.log(real_run, "quality_gate")
    )
    assert numbered == [(str(i), str(count)) for i in range(1, count + 1)], numbered


def test_the_readme_backfill_command_works_against_make_ups_airflow(made_up: MadeUp) -> None:
    """README: `eval "$(python -m scripts.local_airflow env)"`, then `airflow backfill create ...`."""
    readme = (REPO / "README.md").read_text()
    command = re.search(r"airflow backfill create(?:[^\n\\]|\\\n)*", readme)
    assert command, "the README shows no `airflow backfill create` command"
    assert 'eval "$(.venv/bin/python -m scripts.local_airflow env)"' in readme
    backfill = command.group(0).replace("\\\n", " ") + " --dry-run"
    script = (
        f'eval "$({sys.executable} -m scripts.local_airflow env --run-dir {made_up.run_dir})" && {backfill}'
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=REPO, env=made_up.env, capture_output=True, text=True, timeout=300
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    for week in ("2025-06-01", "2025-06-08", "2025-06-15"):
        assert week in out, out[-3000:]

"""The local server (python -m deployment.local) over HTTP, and the website driven in Chromium."""
from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deploy_support import REPO_ROOT, bundles_for_tests

pytest.importorskip("onnxruntime")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# The README's picture of the page. Tests leave the checkout as it was, so they only
# refresh it when asked: SENTIMENT_UPDATE_SNAPSHOT=1 pytest tests/test_website.py
SNAPSHOT = REPO_ROOT / "results" / "website_snapshot.png"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The local server on a free port of 127.0.0.1, serving the test bundles; yields its base URL."""
    models = bundles_for_tests(tmp_path_factory.mktemp("bundles"))
    previous = os.environ.get("MODELS_DIR")
    os.environ["MODELS_DIR"] = str(models)
    from deployment import handler
    from deployment.local import make_server

    handler._models.clear()
    httpd = make_server("127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        handler._models.clear()
        if previous is None:
            os.environ.pop("MODELS_DIR", None)
        else:
            os.environ["MODELS_DIR"] = previous


def request(url, method="GET", body: bytes | None = None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_local_api_routes(server):
    status, headers, body = request(f"{server}/sentiment", "POST", json.dumps({"text": "Loved it"}).encode(),
                                    {"Content-Type": "application/json"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(body)["prediction"]["label"] in ("positive", "negative")
    status, _, body = request(f"{server}/question-type", "POST", json.dumps({"texts": ["Who?", "Where?"]}).encode())
    assert status == 200 and len(json.loads(body)["predictions"]) == 2
    status, _, body = request(f"{server}/question-type")
    assert status == 200 and json.loads(body)["model"]["name"] == "question-type"


def test_local_api_errors(server):
    status, headers, body = request(f"{server}/sentiment", "POST", b"{bad json")
    assert status == 400 and "not valid JSON" in json.loads(body)["error"]
    assert headers["Access-Control-Allow-Origin"] == "*"
    status, _, body = request(f"{server}/sentiment", "POST", b"")
    assert status == 400 and "empty" in json.loads(body)["error"]
    status, _, body = request(f"{server}/sentiment", "DELETE")
    assert status == 405 and json.loads(body)["error"]
    status, _, body = request(f"{server}/sentiment", "POST", b"{\"text\": \"" + b"a" * 2_100_000 + b"\"}")
    assert status == 413 and json.loads(body)["error"]
    status, headers, _ = request(f"{server}/sentiment", "OPTIONS", None, {"Origin": "http://example.org",
                                                                         "Access-Control-Request-Method": "POST"})
    assert status == 204 and "POST" in headers["Access-Control-Allow-Methods"]


def test_static_site(server):
    status, headers, body = request(f"{server}/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"app.js" in body
    for name in ("app.js", "config.js", "style.css"):
        assert request(f"{server}/{name}")[0] == 200
    assert request(f"{server}/../handler.py")[0] == 404
    assert request(f"{server}/%2e%2e/handler.py")[0] == 404
    assert request(f"{server}/nope.html")[0] == 404


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-extensions", "--no-first-run",
                  "--disable-component-update", "--disable-sync"])
        try:
            yield browser
        finally:
            browser.close()


def test_website_predicts_a_review_and_a_question(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 900, "height": 900})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{server}/")
    page.wait_for_selector("#model-info:has-text('Model: sentiment')")
    page.fill("#text", "This film is great! The acting is superb and I loved the story.")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    label = page.inner_text("#label")
    assert label in ("positive", "negative")
    assert "with probability" in page.inner_text("#probability") and "%" in page.inner_text("#probability")
    assert page.locator("#bars .bar").count() == 2
    snapshot = SNAPSHOT if os.environ.get("SENTIMENT_UPDATE_SNAPSHOT") == "1" else tmp_path / SNAPSHOT.name
    page.screenshot(path=str(snapshot), full_page=True)
    assert snapshot.read_bytes().startswith(b"\x89PNG") and snapshot.stat().st_size > 10_000

    page.click("#tab-question-type")
    page.locator("#examples button.example").first.click()  # an example fills in and predicts
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.inner_text("#label").split()[0] in {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    assert page.locator("#bars .bar").count() == 6
    assert errors == []
    page.close()


def test_website_shows_readable_errors(server, browser):
    page = browser.new_page()
    page.goto(f"{server}/")
    page.fill("#text", "   ")
    page.click("#submit")
    assert "Please type a review" in page.inner_text("#status")
    # an API error (here: a text over the limit, sent by removing the page's own check) reads as a sentence
    page.evaluate("document.getElementById('text').removeAttribute('maxlength')")
    page.route("**/sentiment", lambda route: route.fulfill(
        status=400, content_type="application/json", headers={"Access-Control-Allow-Origin": "*"},
        body=json.dumps({"error": "\"text\" is empty or only whitespace"})) if route.request.method == "POST"
        else route.continue_())
    page.fill("#text", "fine")
    page.click("#submit")
    page.wait_for_selector("#status.error")
    assert "Sorry, that did not work" in page.inner_text("#status") and "whitespace" in page.inner_text("#status")
    # while waiting, the button says so and is disabled
    page.unroute("**/sentiment")
    page.route("**/sentiment", lambda route: None if route.request.method == "POST" else route.continue_())
    page.fill("#text", "waiting")
    page.click("#submit")
    assert page.is_disabled("#submit") and "Asking the model" in page.inner_text("#status")
    page.close()

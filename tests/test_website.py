"""The local server (python -m deployment.local) over HTTP and raw sockets, and the website driven in Chromium.

Raw-socket tests send malformed and hostile requests to 127.0.0.1 only; every loop is bounded.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import mimetypes
import os
import select
import selectors
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from deploy_support import REPO_ROOT, bundles_for_tests

pytest.importorskip("onnxruntime")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# The README's picture of the page. Tests leave the checkout as it was, so they only
# refresh it when asked: SENTIMENT_UPDATE_SNAPSHOT=1 pytest tests/test_website.py
SNAPSHOT = REPO_ROOT / "results" / "website_snapshot.png"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return bundles_for_tests(tmp_path_factory.mktemp("bundles"))


@contextlib.contextmanager
def running_server(models_dir, **options):
    """deployment.local's server in a thread of this process, on a free port of 127.0.0.1, serving the bundles
    in `models_dir` (`options` go to make_server); yields the server."""
    previous = os.environ.get("MODELS_DIR")
    os.environ["MODELS_DIR"] = str(models_dir)
    from deployment import handler
    from deployment.local import make_server

    handler._models.clear()
    httpd = make_server("127.0.0.1", 0, quiet=True, **options)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        handler._models.clear()
        if previous is None:
            os.environ.pop("MODELS_DIR", None)
        else:
            os.environ["MODELS_DIR"] = previous


@pytest.fixture(scope="module")
def server(models_dir):
    """The local server on a free port of 127.0.0.1, serving the test bundles; yields its base URL."""
    with running_server(models_dir) as httpd:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"


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
    # the page's policy is also sent as a header, with what only a header can say
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    for name in ("app.js", "config.js", "style.css"):
        assert request(f"{server}/{name}")[0] == 200
    assert request(f"{server}/../handler.py")[0] == 404
    assert request(f"{server}/%2e%2e/handler.py")[0] == 404
    assert request(f"{server}/nope.html")[0] == 404


@pytest.mark.parametrize("method,path,status", [("GET", "/nope.html", 404), ("GET", "/sentiment/extra", 404),
                                                ("POST", "/", 405), ("DELETE", "/app.js", 405),
                                                ("PUT", "/nope", 405), ("DELETE", "/sentiment", 405)])
def test_every_error_is_json_with_cors(server, method, path, status):
    """Errors of the website's files and of unknown paths too: the handler's JSON error, CORS headers included."""
    got, headers, body = request(f"{server}{path}", method, b"{}" if method in ("POST", "PUT") else None)
    assert got == status
    assert headers["Content-Type"].startswith("application/json") and headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(body)["error"] and headers["X-Content-Type-Options"] == "nosniff"
    if status == 405:
        assert method in json.loads(body)["error"] and "GET" in headers["Allow"]


# ---------------------------------------------------------------- malformed and hostile requests, raw

CLI_TIMEOUT_S = 2  # the CLI server's --timeout: small, so the slow-client tests end soon


@pytest.fixture(scope="module")
def cli_server(models_dir, tmp_path_factory):
    """`python -m deployment.local --port 0 --timeout 2` in a subprocess; yields (port, its stderr file)."""
    stderr_path = tmp_path_factory.mktemp("cli-server") / "stderr.txt"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "deployment.local", "--port", "0", "--timeout", str(CLI_TIMEOUT_S),
             "--models-dir", str(models_dir)],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        first_line = process.stdout.readline()  # "website: http://127.0.0.1:PORT/ ..." once it listens
        assert first_line.startswith("website: http://127.0.0.1:"), (first_line, stderr_path.read_text())
        port = int(first_line.split("http://127.0.0.1:")[1].split("/")[0])
        yield port, stderr_path
    finally:
        process.terminate()
        process.wait(timeout=30)


def exchange(port: int, data: bytes) -> tuple[int, dict, bytes, bool]:
    """Send raw bytes on a new connection to 127.0.0.1:port and read one response.

    Returns (status, headers, body, whether the server then closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        try:
            closed = sock.recv(1) == b""
        except ConnectionError:
            closed = True
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body, closed


def assert_still_serving(port: int, stderr_path: Path) -> None:
    """The server answers a normal request, and has printed no traceback."""
    status, _, body, _ = exchange(port, b"GET /sentiment HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert "Traceback" not in stderr_path.read_text(errors="replace")


POST_HEAD = b"POST /sentiment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
MALFORMED = {  # name: (raw request, expected status, a word of the error)
    "content-length not a number": (POST_HEAD + b"Content-Length: abc\r\n\r\n", 400, "Content-Length"),
    "content-length negative": (POST_HEAD + b"Content-Length: -5\r\n\r\n{}", 400, "Content-Length"),
    "content-length with a sign": (POST_HEAD + b"Content-Length: +2\r\n\r\n{}", 400, "Content-Length"),
    "two content-lengths": (POST_HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x", 400, "Content-Length"),
    "chunked and content-length": (POST_HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"2\r\n{}\r\n0\r\n\r\n", 400, "Transfer-Encoding"),
    "chunk size not hexadecimal": (POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
                                   400, "chunk"),
    "chunk longer than its size": (POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}}}}\r\n0\r\n\r\n",
                                   400, "chunk"),
    "unknown transfer coding": (POST_HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "gzip"),
    "NUL byte in the path": (b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "control character"),
    "encoded NUL in the path": (b"GET /index.html%00.js HTTP/1.1\r\nHost: x\r\n\r\n", 400, "control character"),
    "256-character path segment": (b"GET /" + b"a" * 256 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, "255"),
    "long segment under an API route": (b"GET /sentiment/" + b"b" * 300 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                                        400, "255"),
    "bad percent-encoding": (b"GET /app%zz.js HTTP/1.1\r\nHost: x\r\n\r\n", 400, "hex digits"),
    "cut percent-encoding": (b"GET /app.js% HTTP/1.1\r\nHost: x\r\n\r\n", 400, "hex digits"),
    "percent-encoding not UTF-8": (b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", 400, "UTF-8"),
    "request line too long": (b"GET /" + b"a/" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request line"),
    "headers too large": (b"GET / HTTP/1.1\r\n" + b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 8000)
                                                            for i in range(9)) + b"\r\n", 431, "head"),
    "too many headers": (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n",
                         431, "headers"),
    "not HTTP": (b"HELLO\r\n\r\n", 400, "request"),
    "HTTP/2 request line": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "version"),
    # a header that does not parse must not be ignored: here it would say how the body is framed
    "space before a colon": (POST_HEAD + b"Transfer-Encoding : chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400,
                             "malformed header line 'Transfer-Encoding : chunked'"),
    "space in a header name": (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, "malformed header line"),
    "header name not a token": (b"GET / HTTP/1.1\r\nHost: x\r\nX(y): v\r\n\r\n", 400, "not a valid token"),
    "folded header": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  more\r\n\r\n", 400, "line folding"),
    "HTTP/1.1 without Host": (b"GET /sentiment HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, "exactly one Host header"),
    "two Host headers": (b"GET /sentiment HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "exactly one Host"),
    "two Host headers in HTTP/1.0": (b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, "has 2"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_requests_get_a_json_4xx(cli_server, name):
    port, stderr_path = cli_server
    data, expected_status, word = MALFORMED[name]
    status, headers, body, closed = exchange(port, data)
    assert status == expected_status
    assert word.lower() in json.loads(body)["error"].lower()
    assert headers["access-control-allow-origin"] == "*" and headers["content-type"].startswith("application/json")
    assert headers["x-content-type-options"] == "nosniff"
    assert closed  # whatever followed the malformed part is not taken for a next request
    assert_still_serving(port, stderr_path)


def test_http_1_0_needs_no_host(cli_server):
    port, stderr_path = cli_server
    status, _, body, _ = exchange(port, b"GET /sentiment HTTP/1.0\r\n\r\n")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert_still_serving(port, stderr_path)


def run_cli(*args, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deployment.local", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_cli_says_in_one_line_what_is_wrong(tmp_path):
    """A missing models folder or a port in use: one line on stderr, a non-zero exit, no traceback, and no
    server that would answer every request with a 503."""
    missing = run_cli("--port", "0", "--models-dir", str(tmp_path / "no-such-folder"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == (f"python -m deployment.local: error: no models folder at "
                                      f"{tmp_path / 'no-such-folder'} (--models-dir); export bundles there "
                                      f"(lessons 3-5) or name another with --models-dir")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli("--port", str(port))
    assert busy.returncode == 1 and "Traceback" not in busy.stderr and len(busy.stderr.strip().splitlines()) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr and "choose another --port" in busy.stderr
    assert busy.stdout == ""


def test_connections_are_capped(models_dir):
    """300 idle connections start at most --max-connections threads (8 here); the others get a JSON 503 with
    CORS and Retry-After at once, and once the idle clients go, the server answers again."""
    with running_server(models_dir, timeout=30, max_connections=8) as httpd, contextlib.ExitStack() as sockets:
        port, before, idle = httpd.server_address[1], threading.active_count(), []
        for _ in range(300):
            idle.append(sockets.enter_context(socket.create_connection(("127.0.0.1", port), timeout=30)))
        answered, waiting = [], selectors.DefaultSelector()
        for sock in idle:
            waiting.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + 20
        while len(answered) < 292 and time.monotonic() < deadline:  # those past the cap are answered at once
            for key, _ in waiting.select(timeout=1):
                waiting.unregister(key.fileobj)
                answered.append(key.fileobj)
        waiting.close()
        assert len(answered) == 292  # and the 8 served ones wait for a request (for up to 30 s)
        assert threading.active_count() <= before + 8
        response = http.client.HTTPResponse(answered[-1])
        response.begin()
        assert response.status == 503 and response.getheader("Access-Control-Allow-Origin") == "*"
        assert response.getheader("Retry-After") == "1" and "8 connections" in json.loads(response.read())["error"]
        sockets.close()  # the 8 served connections end when their clients close: at most a few seconds
        for _ in range(100):
            status, _, _ = request(f"http://127.0.0.1:{port}/sentiment")
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200


def test_odd_paths_are_404s_without_traceback(cli_server):
    port, stderr_path = cli_server
    for path in (b"/" + b"/".join([b"c" * 250] * 20),   # 5,000 characters: too long for the file system
                 b"/%2e%2e/%2e%2e/etc/passwd", b"/..%2fhandler.py", b"*", b"/website/../../local.py"):
        status, _, _, _ = exchange(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status in (400, 404), path
    status, _, body, _ = exchange(port, b"GET /app%2Ejs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200 and b"API_TIMEOUT_MS" in body  # percent-encoded names are decoded
    assert_still_serving(port, stderr_path)


def test_chunked_bodies_are_decoded(cli_server):
    port, stderr_path = cli_server
    chunked = POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" \
        b"9;ext=1\r\n{\"text\": \r\n" b"C\r\n\"Loved it!\"}\r\n" b"0\r\nX-Trailer: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for _ in range(2):  # the second request on the same connection: the body was not taken for a request
            sock.sendall(chunked)
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = json.loads(response.read())
            assert response.status == 200 and body["prediction"]["label"] in ("positive", "negative")
    # over the size limit: 413, the body read and thrown away first (a client still sending sees the answer)
    piece = b"a" * 65_536
    large = POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"10000\r\n" + piece + b"\r\n"
    status, headers, body, closed = exchange(port, large + (b"10000\r\n" + piece + b"\r\n") * 31 + b"0\r\n\r\n")
    assert status == 413 and "larger than" in json.loads(body)["error"] and closed
    assert headers["access-control-allow-origin"] == "*"
    assert_still_serving(port, stderr_path)


def test_refused_bodies_are_drained_up_to_a_bound(cli_server):
    port, stderr_path = cli_server
    # 3 MB announced and sent: drained, then 413 (not a broken pipe)
    status, _, body, _ = exchange(port, POST_HEAD + b"Content-Length: 3000000\r\n\r\n" + b"a" * 3_000_000)
    assert status == 413 and "larger than" in json.loads(body)["error"]
    # 1 GB announced: the 413 comes at once, without reading a byte of it
    status, _, body, closed = exchange(port, POST_HEAD + b"Content-Length: 1000000000\r\n\r\n" + b"a" * 1000)
    assert status == 413 and closed
    assert_still_serving(port, stderr_path)


def wait_closed_by_server(sock: socket.socket, keep_sending: list[bytes], pause_s: float = 0.25) -> bool:
    """Send `keep_sending` one piece per pause; True as soon as the server closes the connection."""
    for piece in keep_sending:
        readable, _, _ = select.select([sock], [], [], pause_s)
        try:
            if readable:
                return sock.recv(65_536) == b""
            sock.sendall(piece)
        except ConnectionError:
            return True
    return False


def test_slow_clients_cannot_hold_the_server(cli_server):
    """Slowloris: idle connections, headers or a body sent a few bytes at a time. Each connection is
    closed after the timeout (2 s here) while a normal request is still answered."""
    port, stderr_path = cli_server
    idle = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(50)]
    slow = []
    try:
        assert_still_serving(port, stderr_path)
        status, _, _ = request(f"http://127.0.0.1:{port}/")
        assert status == 200
        # a header line every 0.25 s (60 lines, 15 s, well under the head's size cap): cut off by the deadline
        slow.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        slow[-1].sendall(b"GET / HTTP/1.1\r\n")
        assert wait_closed_by_server(slow[-1], [b"X-Slow-%d: y\r\n" % i for i in range(60)])
        # the same for a body, a byte every 0.25 s
        slow.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        slow[-1].sendall(POST_HEAD + b"Content-Length: 1000\r\n\r\n")
        assert wait_closed_by_server(slow[-1], [b"a"] * 60)
        for sock in idle:  # each recv waits at most the socket's own 30 s timeout: bounded
            try:
                assert sock.recv(1) == b""
            except ConnectionError:
                pass
        assert_still_serving(port, stderr_path)
    finally:
        for sock in [*idle, *slow]:
            sock.close()


# ----------------------------------------------------------------------------- the site for S3 hosting

class _InlineFinder(HTMLParser):
    """Collects what a strict Content-Security-Policy refuses: inline scripts, styles and event handlers."""

    def __init__(self):
        super().__init__()
        self.inline, self.policy = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src") or tag == "style":
            self.inline.append(tag)
        self.inline += [name for name in attrs if name.startswith("on") or name == "style"]
        self.inline += [value for value in attrs.values() if value and value.strip().lower().startswith("javascript:")]
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "content-security-policy":
            self.policy = attrs.get("content")


def page_policy(html: str) -> tuple[str | None, list]:
    finder = _InlineFinder()
    finder.feed(html)
    return finder.policy, finder.inline


def test_page_has_a_strict_policy_and_nothing_inline():
    from deployment.local import WEBSITE_DIR

    policy, inline = page_policy((WEBSITE_DIR / "index.html").read_text(encoding="utf-8"))
    assert inline == []
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'" and directives["connect-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["object-src"] == "'none'"
    assert "unsafe" not in policy


def test_build_site_puts_the_api_in_config_and_policy(tmp_path):
    from deployment.local import WEBSITE_DIR, build_site, main

    before = {path.name: path.read_bytes() for path in WEBSITE_DIR.iterdir()}
    site = build_site(tmp_path / "site", "https://abc123.execute-api.eu-west-1.amazonaws.com/")
    policy, inline = page_policy((site / "index.html").read_text(encoding="utf-8"))
    assert inline == [] and "connect-src https://abc123.execute-api.eu-west-1.amazonaws.com;" in policy
    assert "default-src 'self'" in policy and policy.count("connect-src") == 1
    config = (site / "config.js").read_text(encoding="utf-8")
    assert 'window.API_BASE_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com";' in config
    assert (site / "app.js").read_bytes() == before["app.js"]
    assert {path.name: path.read_bytes() for path in WEBSITE_DIR.iterdir()} == before  # the source is untouched
    for bad in ("ftp://example.org", "https://example.org/?q=1", 'https://x.org/"; alert(1); "',
                "javascript:alert(1)", "https://user@example.org", "example.org"):
        with pytest.raises(SystemExit) as raised:
            main(["--build-site", str(tmp_path / "bad"), "--api-url", bad])
        assert raised.value.code == 2
    assert not (tmp_path / "bad").exists()
    assert build_site(site, "http://127.0.0.1:8000") == site  # a previous build is overwritten
    assert "connect-src http://127.0.0.1:8000;" in page_policy((site / "index.html").read_text())[0]
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="notes.txt"):  # a folder with other files is not written into
        build_site(tmp_path / "elsewhere", "https://api.example.org")
    assert not (tmp_path / "elsewhere" / "index.html").exists()


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


def csp_messages(page) -> list:
    """The page's console messages about its Content-Security-Policy (violations), collected from now on."""
    found = []
    page.on("console", lambda message: found.append(message.text) if "Content Security Policy" in message.text
            else None)
    return found


def refused_by_policy(page, url: str) -> str:
    """The directive of the page's policy that refuses a fetch of `url`, or "none" (after at most 5 s)."""
    return page.evaluate("""(url) => new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (e) => resolve(e.effectiveDirective), { once: true });
        setTimeout(() => resolve("none"), 5000);
        fetch(url).catch(() => {});
    })""", url)


def wait_for(page, condition, tries: int = 200) -> None:
    """Let the page run (and Playwright deliver route callbacks) until condition() is true; at most ~10 s."""
    for _ in range(tries):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError("the condition did not come true")


SENTIMENT_ANSWER = {"model": "sentiment", "version": "v", "task": "sentiment",
                    "prediction": {"label": "positive", "probability": 0.9,
                                   "probabilities": {"negative": 0.1, "positive": 0.9}}}


def test_website_runs_under_its_policy(server, browser):
    page = browser.new_page()
    violations = csp_messages(page)
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{server}/")
    policy = page.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute("content")
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    page.wait_for_selector("#model-info:has-text('Model: sentiment')")
    page.fill("#text", "Wonderful.")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert violations == [] and errors == []
    # the policy is in force: a connection to another origin is refused by the browser
    assert refused_by_policy(page, "http://elsewhere.example.test/steal") == "connect-src"
    page.close()


def test_website_shows_each_answer_under_the_model_asked(server, browser):
    page = browser.new_page()
    held = []  # sentiment predictions, answered only when the test says so
    page.route("**/sentiment", lambda route: held.append(route) if route.request.method == "POST"
               else route.continue_())
    page.goto(f"{server}/")
    page.wait_for_selector("#model-info:has-text('Model: sentiment')")
    page.fill("#text", "A review whose answer comes late.")
    page.click("#submit")
    wait_for(page, lambda: held)
    assert page.is_disabled("#submit")
    page.click("#tab-question-type")  # the pending sentiment request no longer has a place on screen
    assert not page.is_disabled("#submit") and page.inner_text("#submit") == "Predict"
    assert page.is_hidden("#status") and page.is_hidden("#result")
    page.fill("#text", "Who wrote Hamlet?")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    question_label = page.inner_text("#label")
    assert question_label.split()[0] in {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    try:  # now the late sentiment answer arrives (if the browser still listens for it)
        held[0].fulfill(status=200, content_type="application/json", headers={"Access-Control-Allow-Origin": "*"},
                        body=json.dumps(SENTIMENT_ANSWER))
    except Exception:  # noqa: BLE001 (the page cancelled that request: nothing to deliver)
        pass
    page.wait_for_timeout(300)
    assert page.inner_text("#label") == question_label and page.locator("#bars .bar").count() == 6
    assert "positive" not in page.inner_text("#result")
    page.close()


def test_website_times_out_with_a_readable_message(server, browser):
    page = browser.new_page()
    # config.js as a deployment would write it, with a short timeout so the test stays fast
    page.route("**/config.js", lambda route: route.fulfill(
        status=200, content_type="text/javascript", body='window.API_BASE_URL = ""; window.API_TIMEOUT_MS = 300;'))
    page.route("**/sentiment", lambda route: None if route.request.method == "POST" else route.continue_())
    page.goto(f"{server}/")
    page.fill("#text", "An answer that never comes.")
    page.click("#submit")
    page.wait_for_selector("#status.error", timeout=10_000)
    assert "did not answer within 0.3 seconds" in page.inner_text("#status")
    assert not page.is_disabled("#submit") and page.inner_text("#submit") == "Predict"
    page.close()


def test_website_never_shows_raw_javascript_errors(server, browser):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    answer = {}
    page.route("**/sentiment", lambda route: route.fulfill(
        status=answer["status"], content_type=answer["type"], headers={"Access-Control-Allow-Origin": "*"},
        body=answer["body"]))
    cases = [  # (status, content type, body, what the reader is told)
        (200, "application/json", "{}", "does not understand"),
        (200, "application/json", "[]", "not JSON"),
        (200, "application/json", "null", "not JSON"),
        (200, "text/html", "<html>oops</html>", "not JSON"),
        (200, "application/json", json.dumps({"prediction": {"label": 5}}), "does not understand"),
        (200, "application/json", json.dumps({**SENTIMENT_ANSWER, "task": "question-type"}), "does not understand"),
        (502, "text/html", "<html>Bad gateway</html>", "the API answered 502"),
        (500, "application/json", json.dumps({"error": {"nested": True}}), "the API answered 500"),
    ]
    for status, kind, body, told in cases:
        answer.update(status=status, type=kind, body=body)
        page.goto(f"{server}/")
        page.wait_for_selector("#model-info:not(:has-text('Checking'))")
        info = page.inner_text("#model-info")  # the GET answer, for the footer
        assert told in info, (body, info)
        page.fill("#text", "Anything.")
        page.click("#submit")
        page.wait_for_selector("#status.error")
        message = page.inner_text("#status")
        assert told in message, (body, message)
        assert not any(word in message + info for word in ("TypeError", "undefined", "Cannot read", "null"))
        assert page.is_hidden("#result") and not page.is_disabled("#submit")
    assert errors == []
    page.close()


def test_built_site_works_from_static_hosting(server, browser, tmp_path):
    """The site written by --build-site, served as S3 serves it (no custom headers, another origin than
    the API's): it reaches the API under its own policy, and nothing else."""
    from deployment.local import build_site

    site = build_site(tmp_path / "site", "https://api.example.test")
    page = browser.new_page()
    violations = csp_messages(page)

    def serve_like_s3(route):
        target = site / (urlsplit(route.request.url).path.lstrip("/") or "index.html")
        if target.is_file():
            route.fulfill(status=200, body=target.read_bytes(), content_type=mimetypes.guess_type(target.name)[0])
        else:
            route.fulfill(status=404, body="not found")

    page.route("http://site.example.test/**", serve_like_s3)
    page.route("https://api.example.test/**", lambda route: route.fulfill(
        response=route.fetch(url=server + urlsplit(route.request.url).path)))
    page.goto("http://site.example.test/")
    page.wait_for_selector("#model-info:has-text('Model: sentiment')")
    page.fill("#text", "A fine film.")
    page.click("#submit")
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert page.inner_text("#label") in ("positive", "negative")
    assert violations == []
    # the local server is not the API this site was built for
    assert refused_by_policy(page, f"{server}/sentiment") == "connect-src"
    page.close()

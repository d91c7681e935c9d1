"""Serve the website and both API routes locally, through the Lambda handlers; build the site for S3.

    python -m deployment.local [--port 8000] [--host 127.0.0.1] [--models-dir DIR] [--timeout 10]
                               [--max-connections 64]
    python -m deployment.local --build-site DIR --api-url https://abc123.execute-api.eu-west-1.amazonaws.com

`GET|POST|OPTIONS /sentiment` and `/question-type` are turned into API Gateway HTTP API
events (payload format 2.0) and passed to `deployment.handler`, exactly as on AWS;
everything else is a file from `deployment/website/`. Only for local use: it binds to
127.0.0.1 by default and is no production server, but a hostile client cannot hold it:
each request must arrive within `--timeout` seconds, its head is capped in size, at most
`--max-connections` connections are served at once (more get a 503 at once, not a thread),
and every error, malformed requests included, is the handler's JSON error with CORS headers.

`--build-site` writes a copy of the website for static hosting, with the API's URL in
`config.js` and the API's origin in the page's Content-Security-Policy (`connect-src`).
"""
from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import mimetypes
import os
import re
import shutil
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

HERE = Path(__file__).resolve().parent
WEBSITE_DIR = HERE / "website"
MAX_REQUEST_BYTES = 2_000_000  # larger bodies are refused here, as API Gateway would (its limit is 10 MB)
# A refused body up to this size is read and thrown away before the 413 goes out: a client still
# sending into a closed socket sees a broken pipe instead of the error message. Never more.
MAX_DRAINED_BYTES = 32_000_000
MAX_REQUEST_LINE_BYTES = 8_192     # method, path and version (the stdlib allows 64 KiB)
MAX_HEAD_BYTES = 65_536            # request line and all headers together (the stdlib allows 100 x 64 KiB)
MAX_CHUNK_LINE_BYTES = 1_024       # one chunk-size line (with extensions) or trailer line of a chunked body
MAX_TRAILER_LINES = 32
MAX_SEGMENT_CHARS = 255            # a path segment longer than this cannot name a file (NAME_MAX)
# After an error answer the connection is closed with the client maybe still sending: closing a socket
# with unread input sends a reset, which can destroy the answer before the client reads it. So the
# server first stops writing and reads what is still coming, at most this much for at most this long.
LINGER_BYTES = 1_000_000
LINGER_S = 1.0
DEFAULT_TIMEOUT_S = 10.0
# Connections served at once, each by its own thread; more get a 503 from the accepting thread. Each one is
# closed within --timeout seconds of silence, so idle or slow clients hold a slot for a bounded time.
DEFAULT_MAX_CONNECTIONS = 64
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")   # a header name (RFC 9110, 5.6.2)
# Sent with everything the server answers. The website's own policy is the <meta> in index.html
# (S3 static hosting sends no custom headers); the header repeats it, adding what a <meta> cannot say.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
_CSP_META = re.compile(r'(<meta http-equiv="Content-Security-Policy" content=")([^"]*)(">)')
_CONNECT_SRC = re.compile(r"connect-src [^;]*")
_API_BASE_URL = re.compile(r'window\.API_BASE_URL = "[^"\n]*";')


def _routes():
    from deployment import handler

    return {"/sentiment": handler.sentiment, "/question-type": handler.question_type}


def _json_error(status: int, message: str) -> dict:
    """The handler's own error response (JSON body, CORS headers), so local errors look like Lambda's."""
    from deployment import handler

    return handler.error(status, message)


def site_policy(website_dir: Path = WEBSITE_DIR) -> str:
    """The Content-Security-Policy of the page: the content of the <meta> in index.html."""
    match = _CSP_META.search((website_dir / "index.html").read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{website_dir / 'index.html'} has no Content-Security-Policy <meta>")
    return match.group(2)


def make_event(method: str, raw_path: str, headers: dict, body: bytes | None, source_ip: str = "127.0.0.1") -> dict:
    """An API Gateway HTTP API (payload format 2.0) event for this request."""
    parts = urlsplit(raw_path)
    text_body, encoded = None, False
    if body:
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text_body, encoded = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": f"{method} {parts.path}",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "queryStringParameters": dict(parse_qsl(parts.query)) or None,
        "headers": {key.lower(): value for key, value in headers.items()},
        "requestContext": {
            "accountId": "local", "apiId": "local", "domainName": "127.0.0.1", "stage": "$default",
            "requestId": f"local-{now:.6f}-{threading.get_ident()}", "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
            "http": {"method": method, "path": parts.path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": headers.get("User-Agent", "")},
        },
        "body": text_body,
        "isBase64Encoded": encoded,
    }


class Refused(Exception):
    """A request the server will not serve: answered with `status` and the handler's JSON error."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def request_path(target: str) -> str:
    """The percent-decoded path of a request target; Refused (400) when it is malformed.

    Malformed: a `%` not followed by two hex digits, bytes that are not UTF-8 once decoded, a
    control character (NUL included) or a path segment over MAX_SEGMENT_CHARS characters.
    """
    if re.search(r"%(?![0-9A-Fa-f]{2})", target):
        raise Refused(400, "the request path has a '%' that is not followed by two hex digits")
    try:
        decoded = unquote_to_bytes(target).decode("utf-8")  # the whole target: the query too
    except UnicodeDecodeError:
        raise Refused(400, "the request path is not UTF-8 once percent-decoded") from None
    if re.search(r"[\x00-\x1f\x7f]", decoded):
        raise Refused(400, "the request path contains a control character (such as NUL)")
    path = unquote_to_bytes(urlsplit(target).path).decode("utf-8")
    if any(len(segment) > MAX_SEGMENT_CHARS for segment in path.split("/")):
        raise Refused(400, f"a segment of the request path is longer than {MAX_SEGMENT_CHARS} characters")
    return path


def header_problem(headers, version: str) -> str | None:
    """Why a request's parsed head (`http.client.HTTPMessage`) must be refused with a 400, or None.

    The stdlib stops reading headers at the first line that is not `Name: value` and keeps the rest as a
    "payload" that nobody reads, so `Transfer-Encoding : chunked` (a space before the colon) would be
    ignored, not refused: which header frames the body must never be a guess (RFC 9112, 5.1). Also refused:
    a name that is not a token, a value continued on the next line (obsolete folding), and an HTTP/1.1
    request without exactly one Host header (RFC 9112, 3.2), or any request with two."""
    rest = headers.get_payload()
    if headers.defects or rest:
        line = (rest.splitlines() or [""])[0]
        return (f"the request has a malformed header line {line[:80]!r}: a header is 'Name: value', "
                f"with no space before the colon")
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            return f"the header name {name[:80]!r} is not a valid token"
        if "\n" in value or "\r" in value:
            return f"the header {name[:80]!r} continues on another line (obsolete line folding is not accepted)"
    hosts = headers.get_all("Host") or []
    if len(hosts) > 1 or (version == "HTTP/1.1" and len(hosts) != 1):
        return f"an HTTP/1.1 request needs exactly one Host header; this one has {len(hosts)}"
    return None


class _DeadlineSocket(io.RawIOBase):
    """The connection's input as a raw stream whose every read ends by `deadline` (time.monotonic()).

    A socket timeout alone bounds each recv, so a client dribbling a byte every few seconds would
    hold its thread forever; the deadline bounds the whole request. Writes keep `idle_timeout`.
    """

    def __init__(self, sock: socket.socket, idle_timeout: float):
        super().__init__()
        self._sock, self.idle_timeout = sock, idle_timeout
        self.deadline = time.monotonic() + idle_timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._sock.settimeout(min(self.idle_timeout, remaining))
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self.idle_timeout)


class _RequestReader:
    """What the handler reads from: buffered, deadline-bound, and a byte budget for the request head."""

    def __init__(self, sock: socket.socket, idle_timeout: float):
        self._raw = _DeadlineSocket(sock, idle_timeout)
        self._buffered = io.BufferedReader(self._raw)
        self._head_budget: int | None = None

    def start(self, head_budget: int | None) -> None:
        """A new deadline `idle_timeout` from now; `head_budget` bytes for the head (None: no budget)."""
        self._raw.deadline = time.monotonic() + self._raw.idle_timeout
        self._head_budget = head_budget

    def readline(self, limit: int = -1) -> bytes:
        if self._head_budget is None:
            return self._buffered.readline(limit)
        allowed = self._head_budget + 1 if limit < 0 else min(limit, self._head_budget + 1)
        line = self._buffered.readline(allowed)
        self._head_budget -= len(line)
        if self._head_budget < 0:  # the stdlib's parse_request answers this with 431
            raise http.client.LineTooLong(f"the request's head is larger than {MAX_HEAD_BYTES:,} bytes")
        return line

    def read(self, size: int = -1) -> bytes:
        return self._buffered.read(size)

    def close(self) -> None:
        self._buffered.close()


class Handler(BaseHTTPRequestHandler):
    server_version = "sentiment-local/1"
    protocol_version = "HTTP/1.1"
    # A request line without a version is HTTP/0.9 to the stdlib, which then answers without a status
    # line or headers: answer it as HTTP/1.0 instead, so even the error for "HELLO" is a JSON 400.
    default_request_version = "HTTP/1.0"
    routes: dict = {}
    quiet = False
    timeout = DEFAULT_TIMEOUT_S    # seconds a connection may stay silent, and to send each request in full
    security_headers: dict = SECURITY_HEADERS

    def setup(self) -> None:
        super().setup()  # sets the socket timeout, makes wfile (and an rfile replaced here)
        self.rfile.close()
        self.rfile = _RequestReader(self.connection, self.timeout)
        self._linger = False

    def finish(self) -> None:
        super().finish()
        if self._linger:
            self._lingering_close()

    def _lingering_close(self) -> None:
        """Half-close, then read and drop what the client still sends (bounded), so the answer arrives."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline, received = time.monotonic() + LINGER_S, 0
            while received < LINGER_BYTES and (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                chunk = self.connection.recv(65_536)
                if not chunk:
                    break
                received += len(chunk)
        except OSError:  # the client went away, or the time is up: close anyway
            pass

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if not self.quiet:
            super().log_message(format, *args)

    def handle_one_request(self) -> None:
        """One request: the stdlib's, with a size-capped head, a deadline, and no traceback for any input.

        The request line must arrive within `timeout` seconds of the connection being ready for it;
        the headers and the body within `timeout` seconds of the request line.
        """
        self._responded = False
        try:
            self.rfile.start(head_budget=MAX_HEAD_BYTES)
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE_BYTES + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > MAX_REQUEST_LINE_BYTES:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414, f"the request line is longer than {MAX_REQUEST_LINE_BYTES:,} bytes")
                return
            self.rfile.start(head_budget=MAX_HEAD_BYTES - len(self.raw_requestline))
            if not self.parse_request():  # it has answered (400, 431, 505...)
                return
            self.rfile.start(head_budget=None)
            self._dispatch()
            self.wfile.flush()
        except (TimeoutError, ConnectionError):  # a slow or vanished client: nobody to answer
            self.close_connection = True
        except Exception as err:  # a bug: one line in the log, a JSON 500 to the client, never a traceback
            self.close_connection = True
            sys.stderr.write("local server: internal error: " + "".join(traceback.format_exception_only(err)))
            if not self._responded:
                try:
                    self._send_result(_json_error(500, "internal error in the local server"))
                except OSError:
                    pass

    def send_response(self, code, message=None):
        self._responded = True
        super().send_response(code, message)

    def send_error(self, code, message=None, explain=None):
        """The stdlib's error answers (bad request line, header limits...) as the handler's JSON error."""
        self.close_connection = self._linger = True
        reason = explain or message or self.responses.get(code, ("error",))[0]
        self.log_error("code %d, message %s", code, reason)
        self._send_result(_json_error(code, reason), {"Connection": "close"})

    def parse_request(self) -> bool:
        """The stdlib's parsing of the request line and headers, then `header_problem`: a 400 if any."""
        if not super().parse_request():
            return False
        problem = header_problem(self.headers, self.request_version)
        if problem:
            self.send_error(400, problem)
            return False
        return True

    def _send(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for key, value in {**self.security_headers, **headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_result(self, result: dict, extra_headers: dict | None = None) -> None:
        """Send a Lambda proxy result (statusCode, headers, body, isBase64Encoded)."""
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
        self._send(result["statusCode"], {**(result.get("headers") or {}), **(extra_headers or {})}, data)

    def _discard(self, size: int) -> None:
        while size > 0:
            chunk = self.rfile.read(min(size, 1 << 16))
            if not chunk:
                break
            size -= len(chunk)

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise ConnectionResetError("the client closed the connection before sending the whole body")
        return data

    def _too_large(self) -> Refused:
        return Refused(413, f"the request body is larger than {MAX_REQUEST_BYTES:,} bytes")

    def _read_body(self) -> bytes:
        """The request body, sent with Content-Length or chunked, at most MAX_REQUEST_BYTES; else Refused."""
        codings = [part.strip().lower() for value in self.headers.get_all("Transfer-Encoding") or []
                   for part in value.split(",")]
        lengths = [value.strip() for value in self.headers.get_all("Content-Length") or []]
        if codings:
            if lengths:  # which one frames the body is how requests get smuggled: refuse both
                raise Refused(400, "the request has both Transfer-Encoding and Content-Length")
            if codings != ["chunked"]:
                raise Refused(501, f"Transfer-Encoding {', '.join(codings)!r} is not supported: "
                                   "send the body with Content-Length, or chunked")
            return self._read_chunked()
        if not lengths:
            return b""
        if len(set(lengths)) > 1:
            raise Refused(400, "the request has several different Content-Length headers")
        if not re.fullmatch(r"[0-9]+", lengths[0]):
            raise Refused(400, f"Content-Length {lengths[0][:40]!r} is not a number of bytes")
        size = int(lengths[0]) if len(lengths[0]) <= 12 else MAX_DRAINED_BYTES + 1
        if size > MAX_REQUEST_BYTES:
            if size <= MAX_DRAINED_BYTES:
                self._discard(size)
            raise self._too_large()
        return self._read_exactly(size)

    def _read_chunked(self) -> bytes:
        """A chunked body (RFC 9112 7.1): kept up to MAX_REQUEST_BYTES, drained up to MAX_DRAINED_BYTES."""
        body, received = bytearray(), 0
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
            if not line:
                raise ConnectionResetError("the client closed the connection inside a chunked body")
            size_text = line.split(b";", 1)[0].strip()
            if len(line) > MAX_CHUNK_LINE_BYTES or not line.endswith(b"\n") \
                    or not re.fullmatch(rb"[0-9A-Fa-f]{1,8}", size_text):
                raise Refused(400, "the chunked request body is malformed (a chunk size line is not hexadecimal)")
            size = int(size_text, 16)
            if size == 0:
                break
            received += size
            if received > MAX_DRAINED_BYTES:
                raise self._too_large()
            if received > MAX_REQUEST_BYTES:
                self._discard(size)
            else:
                body += self._read_exactly(size)
            if self.rfile.readline(3).rstrip(b"\r\n") != b"":
                raise Refused(400, "the chunked request body is malformed (a chunk is longer than its size)")
        for _ in range(MAX_TRAILER_LINES):
            line = self.rfile.readline(MAX_CHUNK_LINE_BYTES + 1)
            if line in (b"\r\n", b"\n"):
                if received > MAX_REQUEST_BYTES:
                    raise self._too_large()
                return bytes(body)
            if not line.endswith(b"\n"):
                raise Refused(400, "the chunked request body is malformed (a trailer line is too long or cut)")
        raise Refused(400, f"the chunked request body has more than {MAX_TRAILER_LINES} trailer lines")

    def _api(self, function, body: bytes) -> None:
        event = make_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        self._send_result(function(event, None))

    def _static(self, path: str) -> None:
        if self.command not in ("GET", "HEAD"):
            self._send_result(_json_error(405, f"method {self.command} is not allowed for the website's files: "
                                               f"use GET or HEAD"), {"Allow": "GET, HEAD"})
            return
        relative = "index.html" if path in ("", "/") else path.lstrip("/")
        target = (WEBSITE_DIR / relative).resolve()
        try:
            found = WEBSITE_DIR.resolve() in target.parents and target.is_file()
        except OSError:  # e.g. a name too long for the file system: no such file either
            found = False
        if not found:
            self._send_result(_json_error(404, f"no such file or route: {path[:200]}"))
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        self._send(200, {"Content-Type": kind, "Cache-Control": "no-cache"}, target.read_bytes())

    def _dispatch(self) -> None:
        try:
            path = request_path(self.path)
            body = self._read_body()  # read for every route: left unread, it would be taken for the next request
        except Refused as refused:
            self.close_connection = self._linger = True
            self._send_result(_json_error(refused.status, refused.message), {"Connection": "close"})
            return
        function = self.routes.get(path.rstrip("/") or "/")
        if function is not None:
            self._api(function, body)
        else:
            self._static(path)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _dispatch


class Server(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` at once; past that, each new connection gets a JSON
    503 (with CORS and `Retry-After`) from the accepting thread and is closed, so no client can make the
    server start threads without end (300 idle sockets: 300 threads before)."""

    daemon_threads = True
    request_queue_size = 128  # the default listen backlog (5) resets connections when many clients connect at once

    def __init__(self, address, handler_class, max_connections: int = DEFAULT_MAX_CONNECTIONS):
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler_class)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse_busy(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: its slot is free again
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse_busy(self, request: socket.socket) -> None:
        """A JSON 503 written at once (a few hundred bytes: the socket's buffer takes them without waiting)."""
        result = _json_error(503, f"the local server is serving {self.max_connections} connections already: "
                                  "try again in a moment")
        body = result["body"].encode("utf-8")
        headers = {**self.RequestHandlerClass.security_headers, **result["headers"], "Retry-After": "1",
                   "Connection": "close", "Content-Length": str(len(body))}
        head = "HTTP/1.1 503 Service Unavailable\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        try:
            request.settimeout(1.0)
            request.sendall(head.encode("latin-1") + b"\r\n" + body)
            request.setblocking(False)
            request.recv(65_536)  # what the client already sent: unread, closing would reset the connection
        except OSError:  # gone, or nothing to read: close anyway
            pass
        finally:
            self.shutdown_request(request)


def make_server(host: str = "127.0.0.1", port: int = 8000, quiet: bool = False,
                timeout: float = DEFAULT_TIMEOUT_S, max_connections: int = DEFAULT_MAX_CONNECTIONS) -> Server:
    """A threaded server for the site and the API (port 0: any free port). Call serve_forever().

    `timeout`: seconds a connection may stay idle, and to send a request line, then its headers and body.
    `max_connections`: connections served at once (more get a 503). OSError when the address cannot be bound.
    """
    security = {**SECURITY_HEADERS, "Content-Security-Policy": site_policy() + "; frame-ancestors 'none'"}
    handler_class = type("LocalHandler", (Handler,), {"routes": _routes(), "quiet": quiet, "timeout": timeout,
                                                      "security_headers": security})
    return Server((host, port), handler_class, max_connections)


def api_origin(api_url: str) -> str:
    """The origin (scheme://host[:port]) of the API's base URL; ValueError when it is not a plain http(s) URL."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?", parts.netloc) \
            or parts.query or parts.fragment or not re.fullmatch(r"[A-Za-z0-9._~/-]*", parts.path):
        raise ValueError(f"the API URL {api_url!r} is not like https://abc123.execute-api.eu-west-1.amazonaws.com")
    return f"{parts.scheme}://{parts.netloc}".lower()


def build_site(out_dir: Path, api_url: str, website_dir: Path = WEBSITE_DIR) -> Path:
    """Copy the website into `out_dir` for static hosting; returns out_dir.

    config.js gets `api_url` and the page's Content-Security-Policy allows connecting to its origin
    only (connect-src), the one place S3 static hosting lets a policy live. `out_dir` is made, or
    may hold a previous build (overwritten); anything else in it is refused (ValueError), since the
    whole folder is meant to be uploaded.
    """
    origin = api_origin(api_url)
    out_dir = Path(out_dir)
    names = sorted(source.name for source in website_dir.iterdir() if source.is_file())
    if out_dir.exists():
        strangers = sorted(path.name for path in out_dir.iterdir() if path.name not in names or not path.is_file())
        if strangers:
            raise ValueError(f"{out_dir} holds other things than a built site ({', '.join(strangers[:5])}): "
                             "choose a new or empty folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(website_dir / name, out_dir / name)
    config = (out_dir / "config.js").read_text(encoding="utf-8")
    config, count = _API_BASE_URL.subn(lambda _: f"window.API_BASE_URL = {json.dumps(api_url.rstrip('/'))};", config)
    if count != 1:
        raise ValueError(f"{website_dir / 'config.js'} must set window.API_BASE_URL exactly once")
    (out_dir / "config.js").write_text(config, encoding="utf-8")
    policy = _CONNECT_SRC.sub(f"connect-src {origin}", site_policy(website_dir))
    page = (out_dir / "index.html").read_text(encoding="utf-8")
    (out_dir / "index.html").write_text(_CSP_META.sub(lambda m: m.group(1) + policy + m.group(3), page),
                                        encoding="utf-8")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployment.local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--models-dir", help="folder with the bundles (default: deployment/models, or $MODELS_DIR)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds a connection may stay idle, and to send each request (default: %(default)s)")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS,
                        help="connections served at once; more get a 503 (default: %(default)s)")
    parser.add_argument("--build-site", metavar="DIR", type=Path,
                        help="write the website for static hosting into DIR (needs --api-url) instead of serving")
    parser.add_argument("--api-url", help="with --build-site: the API's base URL (HttpApiUrl from serverless deploy)")
    args = parser.parse_args(argv)
    if args.build_site or args.api_url:
        if not (args.build_site and args.api_url):
            parser.error("--build-site and --api-url go together")
        try:
            out = build_site(args.build_site, args.api_url)
        except ValueError as err:
            parser.error(str(err))
        print(f"website for {api_origin(args.api_url)} written to {out} (upload: aws s3 sync {out}/ s3://BUCKET/)")
        return 0
    if not args.timeout > 0:
        parser.error("--timeout must be a positive number of seconds")
    if args.max_connections < 1:
        parser.error("--max-connections must be at least 1")
    if args.models_dir:
        os.environ["MODELS_DIR"] = str(Path(args.models_dir).resolve())
    from deployment import handler

    if handler.models_s3_uri() is None and not handler.models_dir().is_dir():
        where = "--models-dir" if args.models_dir else "MODELS_DIR" if os.environ.get("MODELS_DIR") else "the default"
        print(f"python -m deployment.local: error: no models folder at {handler.models_dir()} ({where}); "
              f"export bundles there (lessons 3-5) or name another with --models-dir", file=sys.stderr)
        return 2
    try:
        server = make_server(args.host, args.port, args.quiet, args.timeout, args.max_connections)
    except OSError as err:  # the port is taken, not ours to use, or the host is unknown
        print(f"python -m deployment.local: error: cannot listen on {args.host}:{args.port}: "
              f"{err.strerror or err} (another server there? choose another --port)", file=sys.stderr)
        return 1
    host, port = server.server_address[:2]
    print(f"website: http://{host}:{port}/   API: http://{host}:{port}/sentiment, "
          f"http://{host}:{port}/question-type   (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

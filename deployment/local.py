"""Serve the website and both API routes locally, through the Lambda handlers.

    python -m deployment.local [--port 8000] [--host 127.0.0.1] [--models-dir DIR]

`GET|POST|OPTIONS /sentiment` and `/question-type` are turned into API Gateway HTTP API
events (payload format 2.0) and passed to `deployment.handler`, exactly as on AWS;
everything else is a file from `deployment/website/`. Only for local use: it binds to
127.0.0.1 by default and is no production server.
"""
from __future__ import annotations

import argparse
import base64
import json
import mimetypes
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

HERE = Path(__file__).resolve().parent
WEBSITE_DIR = HERE / "website"
MAX_REQUEST_BYTES = 2_000_000  # larger bodies are refused here, as API Gateway would (its limit is 10 MB)
# A refused body up to this size is read and thrown away before the 413 goes out: a client still
# sending into a closed socket sees a broken pipe instead of the error message.
MAX_DRAINED_BYTES = 32_000_000


def _routes():
    from deployment import handler

    return {"/sentiment": handler.sentiment, "/question-type": handler.question_type}


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


class Handler(BaseHTTPRequestHandler):
    server_version = "sentiment-local/1"
    protocol_version = "HTTP/1.1"
    routes: dict = {}
    quiet = False

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        if not self.quiet:
            super().log_message(format, *args)

    def _send(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _discard(self, size: int) -> None:
        while size > 0:
            chunk = self.rfile.read(min(size, 1 << 16))
            if not chunk:
                break
            size -= len(chunk)

    def _api(self, function) -> None:
        length = self.headers.get("Content-Length")
        body = b""
        if length:
            try:
                size = int(length)
            except ValueError:
                size = -1
            if size < 0 or size > MAX_REQUEST_BYTES:
                self.close_connection = True
                if 0 < size <= MAX_DRAINED_BYTES:
                    self._discard(size)
                self._send(413, {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"},
                           json.dumps({"error": f"the request body is larger than {MAX_REQUEST_BYTES:,} bytes"}).encode())
                return
            body = self.rfile.read(size)
        event = make_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        result = function(event, None)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
        self._send(result["statusCode"], result.get("headers") or {}, data)

    def _static(self) -> None:
        path = urlsplit(self.path).path
        if self.command not in ("GET", "HEAD"):
            self._send(405, {"Allow": "GET, HEAD", "Content-Type": "text/plain"}, b"method not allowed\n")
            return
        relative = "index.html" if path in ("", "/") else path.lstrip("/")
        target = (WEBSITE_DIR / relative).resolve()
        if WEBSITE_DIR.resolve() not in target.parents or not target.is_file():
            self._send(404, {"Content-Type": "text/plain"}, b"not found\n")
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "application/json"):
            kind += "; charset=utf-8"
        self._send(200, {"Content-Type": kind, "Cache-Control": "no-cache"}, target.read_bytes())

    def _dispatch(self) -> None:
        function = self.routes.get(urlsplit(self.path).path.rstrip("/") or "/")
        try:
            if function is not None:
                self._api(function)
            else:
                self._static()
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _dispatch


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog (5) resets connections when many clients connect at once


def make_server(host: str = "127.0.0.1", port: int = 8000, quiet: bool = False) -> ThreadingHTTPServer:
    """A threaded server for the site and the API (port 0: any free port). Call serve_forever()."""
    handler_class = type("LocalHandler", (Handler,), {"routes": _routes(), "quiet": quiet})
    server = Server((host, port), handler_class)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployment.local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--models-dir", help="folder with the bundles (default: deployment/models, or $MODELS_DIR)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    if args.models_dir:
        os.environ["MODELS_DIR"] = str(Path(args.models_dir).resolve())
    server = make_server(args.host, args.port, args.quiet)
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

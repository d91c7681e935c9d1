"""API Gateway proxy events as AWS hands them to a Lambda function, to call the handlers without AWS.

    http_event("POST", {"text": "Great film"})                 HTTP API, payload format 2.0
    http_event("POST", {"text": "Great film"}, version="1.0")  REST API, payload format 1.0

Only the fields the handler and a reader look at are filled in (method, path, headers, body, the
base64 flag, a small requestContext); AWS adds more (request id, time, account), which nothing here
reads. The tests, the benchmarks and lesson 7 build their events here; `deployment.local.make_event`
builds the 2.0 event of a real HTTP request for the local server.
"""
from __future__ import annotations

import base64
import json

PAYLOAD_VERSIONS = ("2.0", "1.0")


def http_event(method: str, body=None, version: str = "2.0", base64_body: bool = False,
               path: str = "/sentiment") -> dict:
    """An API Gateway proxy event for `method` on `path`.

    `body`: None, a str or bytes (sent as given), or a dict / list (sent as its JSON text).
    `version`: "2.0" (HTTP API) or "1.0" (REST API). `base64_body`: send the body base64-encoded,
    as API Gateway does for binary bodies (the event then says `isBase64Encoded: true`).
    """
    if version not in PAYLOAD_VERSIONS:
        raise ValueError(f"unknown payload format version {version!r}: choose one of {', '.join(PAYLOAD_VERSIONS)}")
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    if base64_body and body is not None:
        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        body = base64.b64encode(raw).decode("ascii")
    if version == "2.0":
        return {"version": "2.0", "routeKey": f"{method} {path}", "rawPath": path, "rawQueryString": "",
                "headers": {"content-type": "application/json"},
                "requestContext": {"http": {"method": method, "path": path, "sourceIp": "127.0.0.1"},
                                   "stage": "$default"},
                "body": body, "isBase64Encoded": base64_body}
    return {"resource": path, "path": path, "httpMethod": method, "headers": {"Content-Type": "application/json"},
            "multiValueHeaders": {}, "queryStringParameters": None, "requestContext": {"httpMethod": method,
                                                                                      "stage": "prod"},
            "body": body, "isBase64Encoded": base64_body}

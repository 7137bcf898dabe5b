"""The credential endpoints the emulator serves beside Vertex AI: OAuth2 `POST /token` and IAM Credentials
`generateAccessToken`, so google-auth's service-account and impersonated credentials refresh against it.

Neither is subject to injected faults: on Google they are other services (oauth2.googleapis.com,
iamcredentials.googleapis.com) than the Vertex API the faults stand for.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vertex_emulator.auth import IAM_SCOPES, TokenAuthority
from vertex_emulator.exceptions import InvalidArgument, NotFound, OAuthError

TOKEN_PATH = "/token"
#: IAM Credentials v1 (google/auth/iam.py `_IAM_ENDPOINT`): projects/-/serviceAccounts/EMAIL:verb.
_IAM = re.compile(r"^/v1/(?P<name>projects/[^/]+/serviceAccounts/[^/:]+):(?P<verb>[A-Za-z]+)$")


def serves(path: str) -> bool:
    return path == TOKEN_PATH or _IAM.match(path) is not None


async def handle(request: Request, authority: TokenAuthority) -> Response:
    """Serve a path `serves()` claimed; errors other than OAuth2's are raised as EmulatorError."""
    if request.url.path == TOKEN_PATH:
        return await _token(request, authority)
    return await _iam(request, authority)


async def _token(request: Request, authority: TokenAuthority) -> Response:
    # google-auth posts application/x-www-form-urlencoded (google/oauth2/_client.py); accept JSON too.
    try:
        if request.method != "POST":
            raise OAuthError("invalid_request", f"the token endpoint takes POST, not {request.method}")
        form = _form(request.headers.get("content-type", ""), await request.body())
        answer = authority.exchange(form, str(request.url.replace(query="")))
    except OAuthError as error:
        return JSONResponse(error.to_json(), status_code=error.http_status)
    # RFC 6749 section 5.1: token responses must not be cached.
    return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _form(content_type: str, raw: bytes) -> dict[str, str]:
    text = raw.decode(errors="replace")
    if not content_type.startswith("application/json"):
        return dict(urllib.parse.parse_qsl(text))
    try:
        body = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise OAuthError("invalid_request", f"token request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise OAuthError("invalid_request", "token request body must be a JSON object")
    return {str(k): str(v) for k, v in body.items()}


async def _iam(request: Request, authority: TokenAuthority) -> Response:
    matched = _IAM.match(request.url.path)
    assert matched is not None  # serves() said so
    if request.method != "POST" or matched["verb"] != "generateAccessToken":
        raise NotFound(f"IAM Credentials {request.method} :{matched['verb']} is not emulated")
    caller = authority.verify(request.headers.get("authorization"), IAM_SCOPES)
    authority.record("iam", request.method, request.url.path, caller)
    body = await _object(request)
    return JSONResponse(authority.impersonate(caller, matched["name"], body))


async def _object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"Invalid JSON payload received. {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(body, dict):
        raise InvalidArgument("generateAccessToken takes a JSON object")
    return body

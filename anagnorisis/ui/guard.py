"""The app answers its owner only (SPEC §8): a Host check, the owner's token, and headers that keep the page local.

`OwnerGuard` is ASGI middleware placed around Gradio's whole app (through `launch(app_kwargs=...)`), so every route
passes through it: the page, `/config`, the named endpoints, the queue, uploads, the file route and the CLI route.

- **Host.** A request whose `Host` is not an address this app serves is refused, token or not: a web page on
  another site that rebinds its DNS name to 127.0.0.1 would otherwise be same-origin with the app.
- **Token.** As Jupyter does it: a random token, kept in `<data-dir>/token` (0600) and `app.json`, is printed with
  the address at start (`http://127.0.0.1:7860/?token=…`). Opening that address trades the token for an HttpOnly,
  SameSite=Strict cookie and redirects to the bare address; scripts send the header `X-Anagnorisis-Token` (or
  `Authorization: Bearer …`). A request with neither gets 403 and a page saying where the token is printed. With a
  password login (another bind, `--share`), Gradio's own login guards the app instead.
- **Headers.** A Content-Security-Policy that lets the page load nothing from outside the app, `nosniff`, and no
  referrer.
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import parse_qsl, urlencode

TOKEN_FILE = "token"
TOKEN_HEADER = "x-anagnorisis-token"
QUERY_KEY = "token"

# Gradio's page config is an inline script and the app's own `js=` is evaluated, so scripts need 'unsafe-inline' and
# 'unsafe-eval'; escaping is what keeps library text from being markup, and this policy is what keeps the page from
# loading anything from elsewhere.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "media-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "frame-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)
# What Gradio's launch() asks of its own server before it returns (it gives up unless they answer)
LAUNCH_PROBES = {("GET", "/gradio_api/startup-events"), ("HEAD", "/")}

REFUSED_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Anagnorisis: locked</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto; line-height: 1.5">
<h1>This Anagnorisis is locked to its owner</h1>
<p>Open the address that was printed when the app started: it ends with <code>/?token=…</code>. The same token is
in the file <code>token</code> of the app's data folder, readable only by the account that runs the app.</p>
<p>Scripts send it in the header <code>X-Anagnorisis-Token</code>.</p>
</body></html>"""
UNKNOWN_HOST_PAGE = "<!doctype html><title>Refused</title><p>Refused: this app does not answer to that host name.</p>"


def load_or_create_token(data_dir: Path) -> str:
    """The owner's token, kept in `<data-dir>/token` (0600) so an open page survives a restart; deleting the file
    revokes it at the next start."""
    path = Path(data_dir) / TOKEN_FILE
    try:
        token = path.read_text().strip()
        if len(token) >= 32:
            os.chmod(path, 0o600)
            return token
    except OSError:
        pass
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(TOKEN_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    os.replace(tmp, path)
    return token


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """A bind address that stays on this machine ("" is Gradio's default, loopback)."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_name(name: str) -> bool:
    """A host name or client address of this machine (never the empty name of a request without a Host)."""
    return bool(name) and (is_loopback(name) or name.endswith(".localhost"))


def host_rule(bind: str, extra: Iterable[str] = (), share: bool = False) -> Callable[[str], bool]:
    """Which `Host` names this app answers to, for the address it binds.

    A loopback bind: localhost, 127.0.0.1, ::1. A wildcard bind (0.0.0.0, ::; the Docker image): any IP literal
    and this machine's names. A named bind: that name (and what it stands for). Always the names in `extra`
    (setting ANAGNORISIS_ALLOWED_HOSTS); `--share`: Gradio's share domain.
    """
    allowed = {name.strip().lower().strip("[]") for name in extra if name.strip()}
    wildcard = bind in ("0.0.0.0", "::", "")
    if not wildcard and not is_loopback_name(bind):
        allowed.add(bind.lower().strip("[]"))
    if wildcard:
        for name in (socket.gethostname(), socket.getfqdn()):
            allowed.add(name.lower())

    def accepts(name: str) -> bool:
        name = name.lower().rstrip(".").strip("[]")
        if name in allowed or is_loopback_name(name):
            return True
        if wildcard and _is_ip(name):
            return True
        return share and name.endswith(".gradio.live")

    return accepts


def split_host(header: str) -> str:
    """The name part of a Host header (`[::1]:7860` → `::1`, `example.org:80` → `example.org`)."""
    header = header.strip()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


@dataclass
class GuardPolicy:
    """What the guard checks; `starting` is true while Gradio's launch() probes its own server."""

    token: str
    port: int
    accepts_host: Callable[[str], bool]
    password_login: bool = False
    starting: bool = True
    refused: int = field(default=0)

    @property
    def cookie_name(self) -> str:
        # cookies are not kept apart by port: two apps, two names
        return f"anagnorisis-token-{self.port:d}"

    def token_matches(self, candidate: str | None) -> bool:
        if not candidate:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "replace"), self.token.encode())


Send = Callable[[dict[str, Any]], Awaitable[None]]


class OwnerGuard:
    """ASGI middleware: Host check, owner token, security headers (see the module's docstring)."""

    def __init__(self, app: Any, policy: GuardPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        policy = self.policy
        if not policy.accepts_host(split_host(headers.get("host", ""))):
            policy.refused += 1
            await _refuse(scope, send, 403, UNKNOWN_HOST_PAGE)
            return
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if not policy.password_login and not (policy.starting and (method, path) in LAUNCH_PROBES
                                              and _from_loopback(scope)):
            offered = query.get(QUERY_KEY)
            if offered is not None and policy.token_matches(offered) and method == "GET" \
                    and scope["type"] == "http" and not path.startswith("/gradio_api/"):
                await self._trade_for_cookie(scope, send, query)
                return
            if not (policy.token_matches(offered) or policy.token_matches(headers.get(TOKEN_HEADER))
                    or policy.token_matches(_bearer(headers.get("authorization", "")))
                    or policy.token_matches(_cookie(headers.get("cookie", ""), policy.cookie_name))):
                policy.refused += 1
                await _refuse(scope, send, 403, REFUSED_PAGE)
                return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _SECURITY_HEADER_NAMES]
                message = {**message, "headers": kept + SECURITY_HEADERS}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _trade_for_cookie(self, scope: dict[str, Any], send: Send, query: dict[str, str]) -> None:
        """`/?token=…`: set the cookie and send the browser to the same address without the token."""
        rest = {key: value for key, value in query.items() if key != QUERY_KEY}
        query = f"?{urlencode(rest)}" if rest else ""  # plain text: an HTTP header
        location = scope.get("root_path", "") + scope.get("path", "/") + query
        cookie = (f"{self.policy.cookie_name}={self.policy.token}; "  # plain text: an HTTP header
                  f"Path=/; HttpOnly; SameSite=Strict; Max-Age={400 * 24 * 3600:d}")
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode()),
                                (b"cache-control", b"no-store"), *SECURITY_HEADERS]})
        await send({"type": "http.response.body", "body": b""})


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    """The request's headers by lower-case name: the first of each, except that several Cookie headers join."""
    found: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        name, text = key.decode("latin-1").lower(), value.decode("latin-1")
        if name not in found:
            found[name] = text
        elif name == "cookie":
            found[name] += "; " + text
    return found


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _from_loopback(scope: dict[str, Any]) -> bool:
    client = scope.get("client") or ("", 0)
    return is_loopback_name(str(client[0]))


async def _refuse(scope: dict[str, Any], send: Send, status: int, page: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = page.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/html; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store"),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})

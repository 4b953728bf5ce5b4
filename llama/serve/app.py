"""The Flask application of the status page and the server that runs it.

Pages (HTML) and the JSON API behind each (the same dicts, llama.serve.data)::

    /                                   /api/                    events of the live run
    /runs/<run>/                        /api/runs/<run>/         events of a run (?offset=&limit=)
    /runs/<run>/<eventid>/              /api/runs/<run>/<eventid>/   one event
    /runs/<run>/<eventid>/files/<path>                            a file of the event directory
    /health                             /api/health              daemon/listener health, logs

Read-only: GET and HEAD only. With credentials every request needs HTTP Basic auth (compared
with hmac.compare_digest); a bind to anything but loopback refuses to start without them.
Templates are autoescaped; every response forbids scripts, framing and content sniffing, and
event files are served with a sandboxing policy and never as HTML.
"""

from __future__ import annotations

import hmac
import ipaddress
import netrc
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, render_template, request, send_file
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, make_server

from llama.errors import ConfigurationError
from llama.science.searches import SEARCHES
from llama.serve.data import CURRENT, PAGE_SIZE, SIGNIFICANCE_KEYS, NotFound, Site

#: Content types of the files an event page links to; anything else is a download.
FILE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
    ".xml": "text/plain; charset=utf-8",
}
PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
FILE_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def create_app(site: Site, credentials: Mapping[str, str] | None = None) -> Flask:
    """The status page of ``site``; ``credentials`` (login -> password) require Basic auth."""
    app = Flask(__name__)
    app.url_map.merge_slashes = False  # ".../files//etc/passwd" is a 404, not a redirect
    app.jinja_env.filters["num"] = number
    app.jinja_env.globals.update(searches=list(SEARCHES), significance_keys=SIGNIFICANCE_KEYS)
    rows: dict[tuple[str, str], tuple[dict[str, Any], Markup]] = {}

    @app.template_global()
    def row_html(row: dict[str, Any]) -> Markup:
        """An index row rendered once while Site hands out the same (cached) row."""
        key = (row["run"], row["eventid"])
        cached = rows.get(key)
        if cached is None or cached[0] is not row:
            cached = rows[key] = (row, Markup(render_template("_row.html", row=row)))
        return cached[1]

    users = {login.encode(): password.encode() for login, password in (credentials or {}).items()}

    @app.before_request
    def authenticate() -> Any:
        if users and not _authorised(users):
            response = app.make_response(("authentication required\n", 401))
            response.headers["WWW-Authenticate"] = 'Basic realm="llama", charset="UTF-8"'
            return response
        return None

    @app.after_request
    def harden(response: Any) -> Any:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(NotFound)
    def not_found(err: NotFound) -> Any:
        return _error(404, str(err))

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Any:
        return _error(err.code or 500, err.description or err.name)

    @app.get("/")
    @app.get("/runs/<run>/")
    def index(run: str = CURRENT) -> Any:
        return render_template("index.html", page=site.index(run, *_window()))

    @app.get("/api/")
    @app.get("/api/runs/<run>/")
    def index_api(run: str = CURRENT) -> Any:
        return jsonify(site.index(run, *_window()))

    @app.get("/runs/<run>/<eventid>/")
    def event(run: str, eventid: str) -> Any:
        return render_template("event.html", page=site.event(run, eventid))

    @app.get("/api/runs/<run>/<eventid>/")
    def event_api(run: str, eventid: str) -> Any:
        return jsonify(site.event(run, eventid))

    @app.get("/runs/<run>/<eventid>/files/<path:relpath>")
    def event_file(run: str, eventid: str, relpath: str) -> Any:
        path = site.file(run, eventid, relpath)
        kind = FILE_TYPES.get(path.suffix.lower(), "application/octet-stream")
        response = send_file(path, mimetype=kind, as_attachment=kind.endswith("octet-stream"),
                             max_age=0, conditional=True)
        response.headers["Content-Security-Policy"] = FILE_POLICY
        return response

    @app.get("/health")
    def health_page() -> Any:
        return render_template("health.html", page=site.health())

    @app.get("/api/health")
    def health_api() -> Any:
        return jsonify(site.health())

    return app


def number(value: Any, spec: str = ".4g") -> str:
    """A number for a table cell: floats formatted with ``spec``, lists joined, None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, spec)
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _window() -> tuple[int, int]:
    """``offset`` and ``limit`` of an index request; 400 when they are not integers >= 0."""
    try:
        offset = int(request.args.get("offset", 0))
        limit = int(request.args.get("limit", PAGE_SIZE))
    except ValueError:
        abort(400, "offset and limit must be integers")
    if offset < 0 or limit < 1:
        abort(400, "offset must be >= 0 and limit >= 1")
    return offset, limit


def _authorised(users: Mapping[bytes, bytes]) -> bool:
    """True when the request's Basic credentials match a user; every entry is compared."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username is None:
        return False
    login, password = auth.username.encode(), (auth.password or "").encode()
    match = False
    for known_login, known_password in users.items():
        same = hmac.compare_digest(login, known_login) & hmac.compare_digest(password, known_password)
        match |= same
    return match


def _error(code: int, message: str) -> Any:
    """An error as JSON under /api/, else as an (escaped) HTML page."""
    if request.path.startswith("/api/"):
        response = jsonify({"error": message, "status": code})
    else:
        response = render_template("error.html", code=code, message=message)
    return response, code


# ---------------------------------------------------------------------------------- server


def is_loopback(host: str) -> bool:
    """True for a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_credentials(path: str | os.PathLike) -> dict[str, str]:
    """login -> password of every entry of a netrc-format file (``machine H login U password
    P``); ConfigurationError when it is missing, readable by others, malformed or empty."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        entries = netrc.netrc(str(path))
    except FileNotFoundError:
        raise ConfigurationError(f"credentials file {path} does not exist") from None
    except (OSError, netrc.NetrcParseError) as err:
        raise ConfigurationError(f"credentials file {path}: {err}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"credentials file {path} is readable by others: chmod 600 {path}"
        )
    users = {login: password for login, _, password in entries.hosts.values()
             if login and password}
    if not users:
        raise ConfigurationError(f"credentials file {path} has no entry with login and password")
    return users


def check_exposure(host: str, credentials: Mapping[str, str] | None) -> None:
    """Refuse (ConfigurationError) a bind to a non-loopback ``host`` without credentials."""
    if not is_loopback(host) and not credentials:
        raise ConfigurationError(
            f"refusing to serve on {host} without credentials: pass --credentials FILE "
            "(netrc format), or bind 127.0.0.1"
        )


def make_http_server(app: Flask, host: str, port: int) -> BaseWSGIServer:
    """A threaded HTTP server for ``app`` on ``host:port`` (port 0: any free port)."""
    try:
        return make_server(host, port, app, threaded=True)
    except OSError as err:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {err.strerror}") from None

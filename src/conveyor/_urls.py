"""Server URLs made safe to show: credentials never reach logs, reprs or error messages."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit


def safe_url(url: str) -> str:
    """`url` with any user and password replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scrub(text: str, url: str) -> str:
    """`text` (a driver's error message) with the URL's password blanked wherever it appears,
    raw or percent-decoded, and the URL itself replaced by its safe form."""
    password = urlsplit(url).password
    text = text.replace(url, safe_url(url))
    for secret in {password, unquote(password or "")}:
        if secret:
            text = text.replace(secret, "***")
    return text

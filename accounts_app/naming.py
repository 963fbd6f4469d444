"""Deterministic, ASCII role names derived from project and OS user."""

import hashlib
import re
import unicodedata

_NOT_NAME = re.compile(r"[^a-z0-9]+")


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_NAME.sub("-", folded.lower()).strip("-")


def derive_role_name(
    project: str, os_user: str, *, path: str = "/", salt: str = ""
) -> str:
    """`<project slug>-<os user>`, within 64 characters with the path (the
    console's Switch Role limit). A short hash of the exact project name is
    added when the slug loses information (other scripts, symbols, truncation)
    or when `salt` asks for a second choice after a case-insensitive clash."""
    limit = min(64, 64 - len(path) + 1)
    slug = _ascii_slug(project) or "project"
    faithful = slug == project.lower().replace(" ", "-") and not salt
    digest = hashlib.sha256(f"{project}\0{os_user}\0{salt}".encode()).hexdigest()[:6]
    suffix = f"-{os_user}" if faithful else f"-{os_user}-{digest}"
    room = limit - len(suffix)
    if len(slug) > room:
        suffix = f"-{os_user}-{digest}"
        room = limit - len(suffix)
    return f"{slug[:room].rstrip('-')}{suffix}"

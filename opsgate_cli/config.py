"""Where the CLI keeps the server URL and its token: $XDG_CONFIG_HOME/opsgate
(~/.config/opsgate by default), readable by the owner only."""

import json
import os
from pathlib import Path


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "opsgate"


def config_file() -> Path:
    return config_dir() / "config.json"


def load() -> dict:
    """The saved config; OPSGATE_URL and OPSGATE_TOKEN override it (scripts)."""
    data: dict = {}
    path = config_file()
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
    for key in ("url", "token"):
        value = os.environ.get(f"OPSGATE_{key.upper()}")
        if value:
            data[key] = value
    return data


def save(data: dict) -> Path:
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    path = config_file()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def forget() -> bool:
    path = config_file()
    if not path.exists():
        return False
    data = load()
    data.pop("token", None)
    save({k: v for k, v in data.items() if k == "url"})
    return True

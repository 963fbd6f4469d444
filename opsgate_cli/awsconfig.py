"""Edit ~/.aws/config line by line: replace or add opsgate's own sections and
leave every other byte (comments, spacing, order, line ends, other profiles)
exactly as it was. The file is rewritten through a temporary file and a
rename, under a lock, so a crash or a second `opsgate` never leaves half a
file; values from the server are checked first, so none can add a line (a
newline in a value could smuggle in `credential_process`)."""

import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; the rename still is atomic
    fcntl = None  # type: ignore[assignment]

_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(?:[#;].*)?$")
# Profile names: what IAM allows in a role name (opsgate's profile names are
# built from them), never brackets, spaces or line ends.
_SAFE_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,200}")
_SAFE_KEY = re.compile(r"[a-z_]{1,64}")
# C0 and C1 controls, DEL and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class UnsafeValue(ValueError):
    """A section name or value that could change the file's structure."""


def config_path() -> Path:
    return Path(
        os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config"
    ).expanduser()


def check_sections(sections: dict[str, dict[str, str]]) -> None:
    """Refuse anything that is not a plain `profile <name>` with one-line
    values (raises UnsafeValue naming what is wrong)."""
    for section, values in sections.items():
        name = section.removeprefix("profile ")
        if not section.startswith("profile ") or not _SAFE_NAME.fullmatch(name):
            raise UnsafeValue(f"unsafe profile name {section!r}")
        for key, value in values.items():
            if not _SAFE_KEY.fullmatch(key):
                raise UnsafeValue(f"unsafe key {key!r} in [{section}]")
            if not isinstance(value, str) or _CONTROL.search(value):
                raise UnsafeValue(f"unsafe value for {key} in [{section}]: {value!r}")
            if value != value.strip():
                raise UnsafeValue(f"value for {key} in [{section}] has edge spaces")


def _lines(text: str) -> list[str]:
    """Lines split on "\\n" only, ends kept (str.splitlines would also split
    on characters the AWS CLI does not treat as line ends)."""
    return re.findall(r"[^\n]*\n|[^\n]+", text)


def _section_name(raw: str) -> str:
    # `[profile   x]` and `[ profile x ]` are the AWS CLI's `profile x` too.
    return " ".join(raw.split())


def _split(text: str) -> list[tuple[str | None, list[str]]]:
    """[(section name or None for the preamble, its lines)]."""
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in _lines(text):
        match = _HEADER.match(line)
        if match:
            blocks.append((_section_name(match.group(1)), [line]))
        else:
            blocks[-1][1].append(line)
    return blocks


def _render(section: str, values: dict[str, str], eol: str) -> list[str]:
    return [f"[{section}]{eol}"] + [f"{k} = {v}{eol}" for k, v in values.items()]


def upsert_sections(
    text: str, sections: dict[str, dict[str, str]], *, only_if_missing=()
) -> str:
    """`text` with each section of `sections` replaced (or appended). Sections
    named in `only_if_missing` are added but never rewritten."""
    eol = "\r\n" if "\r\n" in text.split("\n", 1)[0] + "\n" else "\n"
    blocks = _split(text)
    seen = set()
    out: list[str] = []
    for index, (name, lines) in enumerate(blocks):
        if name in sections and name not in seen:
            seen.add(name)
            if name in only_if_missing:
                out.extend(lines)
                continue
            trailing = _trailing_blank(lines, last=index == len(blocks) - 1, eol=eol)
            out.extend(_render(name, sections[name], eol) + trailing)
        else:
            out.extend(lines)
    result = "".join(out)
    for name, values in sections.items():
        if name in seen:
            continue
        if result and not result.endswith("\n"):
            result += eol
        if result and not result.endswith(eol + eol):
            result += eol
        result += "".join(_render(name, values, eol))
    return result


def _trailing_blank(lines: list[str], *, last: bool, eol: str) -> list[str]:
    """The blank and comment lines closing a block: they usually belong to
    the next section (its comment), so a rewrite keeps them."""
    trailing: list[str] = []
    for line in reversed(lines[1:]):
        if line.strip() and not line.lstrip().startswith(("#", ";")):
            break
        trailing.insert(0, line)
    return trailing or ([] if last else [eol])


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One `opsgate` at a time edits the file (a lock file next to it: the
    config itself is replaced, so it cannot hold the lock)."""
    fd = os.open(
        path.with_name(f".{path.name}.opsgate-lock"), os.O_RDWR | os.O_CREAT, 0o600
    )
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _replace(path: Path, text: str, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_profiles(
    sections: dict[str, dict[str, str]], *, source: dict[str, str]
) -> Path:
    """Write opsgate's profiles; add the source profile only if it is missing
    (it holds the person's own access keys: never rewritten). A symlinked
    config stays a symlink: its target is the file rewritten."""
    wanted = {"profile opsgate": source, **sections}
    check_sections(wanted)
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = Path(os.path.realpath(path))
    with _locked(target):
        try:
            raw = target.read_bytes()
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            raw, mode = b"", 0o600
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsafeValue(f"{path} is not UTF-8: left as it is") from None
        new = upsert_sections(text, wanted, only_if_missing={"profile opsgate"})
        if new != text:
            _replace(target, new, mode)
    return path

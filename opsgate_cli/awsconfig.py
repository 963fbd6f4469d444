"""Edit ~/.aws/config line by line: replace or add opsgate's own sections and
leave every other line (comments, order, other profiles) exactly as it was."""

import os
import re
from pathlib import Path

_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(?:[#;].*)?$")


def config_path() -> Path:
    return Path(
        os.environ.get("AWS_CONFIG_FILE") or Path.home() / ".aws" / "config"
    ).expanduser()


def profile_name(project: str, os_user: str, *, role_name: str = "") -> str:
    """opsgate-<project>-<osuser>, with what a profile name cannot hold as -.
    A project name with no ASCII letter or digit (決済) uses the role's name,
    which is ASCII and unique in its account."""
    part = re.sub(r"[^a-z0-9_.]+", "-", project.lower()).strip("-")
    if not re.search(r"[a-z0-9]", part):
        return f"opsgate-{role_name}" if role_name else f"opsgate-{os_user}"
    return f"opsgate-{part}-{os_user}"


def _split(text: str) -> list[tuple[str | None, list[str]]]:
    """[(section name or None for the preamble, its lines)]."""
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines(keepends=True):
        match = _HEADER.match(line)
        if match:
            blocks.append((match.group(1), [line]))
        else:
            blocks[-1][1].append(line)
    return blocks


def _render(section: str, values: dict[str, str]) -> list[str]:
    return [f"[{section}]\n"] + [f"{k} = {v}\n" for k, v in values.items()]


def upsert_sections(
    text: str, sections: dict[str, dict[str, str]], *, only_if_missing=()
) -> str:
    """`text` with each section of `sections` replaced (or appended). Sections
    named in `only_if_missing` are added but never rewritten."""
    blocks = _split(text)
    seen = set()
    out: list[str] = []
    for index, (name, lines) in enumerate(blocks):
        if name in sections and name not in seen:
            seen.add(name)
            if name in only_if_missing:
                out.extend(lines)
                continue
            trailing = _trailing_blank(lines, last=index == len(blocks) - 1)
            out.extend(_render(name, sections[name]) + trailing)
        else:
            out.extend(lines)
    result = "".join(out)
    for name, values in sections.items():
        if name in seen:
            continue
        if result and not result.endswith("\n"):
            result += "\n"
        if result and not result.endswith("\n\n"):
            result += "\n"
        result += "".join(_render(name, values))
    return result


def _trailing_blank(lines: list[str], *, last: bool) -> list[str]:
    """The blank and comment lines closing a block: they usually belong to
    the next section (its comment), so a rewrite keeps them."""
    trailing: list[str] = []
    for line in reversed(lines[1:]):
        if line.strip() and not line.lstrip().startswith(("#", ";")):
            break
        trailing.insert(0, line)
    return trailing or ([] if last else ["\n"])


def write_profiles(
    sections: dict[str, dict[str, str]], *, source: dict[str, str]
) -> Path:
    """Write opsgate's profiles; add the source profile only if it is missing
    (it holds the person's own access keys: never rewritten)."""
    path = config_path()
    text = path.read_text() if path.exists() else ""
    wanted = {"profile opsgate": source, **sections}
    new = upsert_sections(text, wanted, only_if_missing={"profile opsgate"})
    if new != text:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new)
    return path

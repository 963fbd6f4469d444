"""The documentation stays true to the code: the generated API and CLI pages
match what generates them, the settings reference names every variable the
settings read, the administration page every management command, and the
README stays two screens long while naming every dependency and why."""

import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_reference_page_is_generated_from_the_committed_openapi_document():
    docs_api = _script("docs_api")
    import json

    expected = docs_api.render(json.loads((DOCS / "openapi.json").read_text()))
    assert (DOCS / "api-reference.md").read_text() == expected, (
        "docs/api-reference.md is stale: python scripts/docs_api.py"
    )


def test_the_cli_reference_page_is_generated_from_the_commands_help():
    assert (DOCS / "cli-reference.md").read_text() == _script("docs_cli").render(), (
        "docs/cli-reference.md is stale: python scripts/docs_cli.py"
    )


def test_the_cli_reference_names_every_command_and_option():
    page = (DOCS / "cli-reference.md").read_text()
    for command in ("login", "logout", "request", "status", "done", "approvals",
                    "approve", "reject", "profile", "ssh"):
        assert f"## `opsgate {command}`" in page
    for option in ("--break-glass", "--account", "--ticket", "--start", "--totp",
                   "--dry-run", "--insecure"):
        assert f"`{option}`" in page


def test_the_settings_reference_names_every_variable_the_settings_read():
    code = (ROOT / "portal" / "settings.py").read_text()
    pattern = r'env(?:str|int|bool|list|cache)\(\s*"([A-Z][A-Z0-9_]+)"'
    read = set(re.findall(pattern, code))
    assert {"OPSGATE_PRODUCTION", "CACHE_URL", "OPSGATE_METRICS_TOKEN"} <= read
    page = (DOCS / "settings.md").read_text()
    missing = sorted(name for name in read if f"`{name}`" not in page)
    assert missing == [], f"docs/settings.md does not describe {missing}"


def test_the_administration_page_names_every_management_command():
    commands = {
        path.stem
        for path in ROOT.glob("*/management/commands/*.py")
        if not path.stem.startswith("_")
    }
    assert {"opsgate_setup", "account_add", "demo_totp", "reconcile"} <= commands
    page = (DOCS / "administration.md").read_text()
    missing = sorted(c for c in commands if f"`{c}" not in page)
    assert missing == [], f"docs/administration.md does not describe {missing}"


def test_the_readme_fits_on_two_screens_and_says_why_of_every_dependency():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 100
    for needed in ("scripts/demo.sh", "scripts/test.sh", "/demo/mail/", "demo_totp",
                   "docs/screenshots/my-access.png"):
        assert needed in readme
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [
        spec for extra in project["optional-dependencies"].values() for spec in extra
    ]
    names = {re.match(r"[A-Za-z0-9_.-]+", spec).group(0).lower() for spec in specs}
    lines = [line.lower() for line in readme.splitlines() if line.startswith("* ")]
    missing = sorted(n for n in names if not any(f"`{n}" in line for line in lines))
    assert missing == [], f"README.md gives no reason for {missing}"


def test_the_docs_site_loads_nothing_from_elsewhere_and_builds_strict():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["theme"]["name"] == "material"
    assert config["theme"]["font"] is False
    assert config["strict"] is True
    assert not config.get("extra_javascript") and not config.get("extra_css")
    nav_pages = re.findall(r"[\w-]+\.md", (ROOT / "mkdocs.yml").read_text())
    assert sorted(nav_pages) == sorted(p.name for p in DOCS.glob("*.md"))


def test_the_site_builds_strict_and_loads_no_script_style_or_font_from_afar(tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )
    html = "".join(page.read_text() for page in site.rglob("*.html"))
    assert "Ending live sessions" in html and "API reference" in html
    tag = r'<(?:script|link|img)[^>]*(?:src|href)="(?:https?:)?//[^"]*"'
    external = re.findall(tag, html)
    assert external == []
    assert "fonts.googleapis" not in html and "fonts.gstatic" not in html

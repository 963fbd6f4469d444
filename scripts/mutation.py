"""Mutation testing of the core modules, each with the tests that target it.

Runs mutmut (3.x) on one scratch copy of the repository per module, so the
work tree is never touched, and prints the kill rate per module. Survivors
that only change the wording of a message (a string with spaces in it) are
listed apart and left out of the adjusted rate, as the testing section of the
README explains; every other survivor is printed by name with its diff.

    scripts/mutation.sh                      # every module below
    scripts/mutation.sh validation policies  # some of them

Too slow for CI (modules with database tests run one mutant at a time).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module key: (file to mutate, targeted tests, needs the database)
MODULES = {
    "policies": (
        "provisioning/policies.py",
        [
            "tests/test_policies.py",
            "tests/test_policy_lint.py",
            "tests/test_documents_pinned.py",
            "tests/test_policy_files.py",
        ],
        False,
    ),
    "service_policy": (
        "provisioning/service_policy.py",
        ["tests/test_policy_files.py", "tests/test_documents_pinned.py"],
        False,
    ),
    "validation": (
        "accounts_app/validation.py",
        ["tests/test_validation.py", "tests/test_rules_pinned.py"],
        False,
    ),
    "access_requests": (
        "accounts_app/services/access_requests.py",
        ["tests/test_services.py", "tests/test_service_rules.py"],
        True,
    ),
    "sync": (
        "provisioning/sync.py",
        ["tests/test_import_and_sync.py", "tests/test_aws_faults.py"],
        True,
    ),
}

STRING = re.compile(r"""(?P<q>["'])(?:\\.|(?!(?P=q)).)*(?P=q)""")


def _message_only(diff: str) -> bool:
    """True when the mutant only rewrites a human message: the changed lines
    are equal once their string literals are blanked, and the changed string
    is a sentence (has a space), not a key, an action or a code."""
    minus = [
        line[1:]
        for line in diff.splitlines()
        if line.startswith("-") and not line.startswith("---")
    ]
    plus = [
        line[1:]
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    if not minus or len(minus) != len(plus):
        return False
    for a, b in zip(minus, plus, strict=True):
        if STRING.sub('""', a) != STRING.sub('""', b):
            return False
        olds = [m.group(0) for m in STRING.finditer(a)]
        news = [m.group(0) for m in STRING.finditer(b)]
        changed = [o for o, n in zip(olds, news, strict=False) if o != n]
        if not changed or not all(" " in o.strip("\"'") for o in changed):
            return False
    return True


def _mutmut(work: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "mutmut"), *args],
        cwd=work,
        text=True,
        capture_output=True,
        **kwargs,
    )


def run_module(key: str, scratch: Path) -> dict:
    target, tests, needs_db = MODULES[key]
    work = scratch / key
    shutil.copytree(
        ROOT,
        work,
        ignore=shutil.ignore_patterns(
            ".venv",
            "var",
            "mutants",
            ".git",
            "__pycache__",
            "node_modules",
            ".pytest_cache",
            ".ruff_cache",
        ),
    )
    package = target.split("/")[0]
    also_copy = [
        p
        for p in ("portal", "accounts_app", "provisioning", "templates", "manage.py")
        if p != package
    ]
    pytest_args = ["-p", "no:cacheprovider", "-q", "-x", "-p", "no:randomly"]
    if needs_db:
        pytest_args += ["--reuse-db"]
    config = (
        "\n[tool.mutmut]\n"
        f"source_paths = [{json.dumps(package)}]\n"
        f"only_mutate = [{json.dumps(target)}]\n"
        f"also_copy = {json.dumps(also_copy)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        f"pytest_add_cli_args = {json.dumps(pytest_args)}\n"
    )
    with open(work / "pyproject.toml", "a") as f:
        f.write(config)
    env = dict(os.environ)
    env["OPSGATE_VAR_DIR"] = str(work / "var")
    children = "1" if needs_db else str(os.cpu_count() or 2)
    run = _mutmut(work, "run", "--max-children", children, env=env)
    if run.returncode != 0 and not (work / "mutants").exists():
        sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
        raise SystemExit(f"mutmut failed on {key}")
    _mutmut(work, "export-cicd-stats", env=env)
    stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
    results = _mutmut(work, "results", env=env).stdout
    survivors = re.findall(r"^\s*(\S+): (survived|no tests)$", results, re.M)
    wording, real = [], []
    for name, state in survivors:
        diff = _mutmut(work, "show", name, env=env).stdout
        (wording if state == "survived" and _message_only(diff) else real).append(
            (name, state, diff)
        )
    return {"stats": stats, "wording": wording, "real": real}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(MODULES)}")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument("--diffs", action="store_true", help="print survivors' diffs")
    args = parser.parse_args()
    keys = args.modules or list(MODULES)
    unknown = set(keys) - set(MODULES)
    if unknown:
        parser.error(
            f"unknown module(s) {sorted(unknown)}; choose from {list(MODULES)}"
        )
    scratch = Path(tempfile.mkdtemp(prefix="opsgate-mutation-"))
    rows = []
    try:
        for key in keys:
            print(f"==> {key}: mutating {MODULES[key][0]}", flush=True)
            outcome = run_module(key, scratch)
            s = outcome["stats"]
            detected = s["killed"] + s["timeout"]
            total = s["total"] - s["skipped"]
            adjusted_total = total - len(outcome["wording"])
            rows.append(
                (
                    key,
                    total,
                    detected,
                    len(outcome["wording"]),
                    100 * detected / max(total, 1),
                    100 * detected / max(adjusted_total, 1),
                )
            )
            for name, state, diff in outcome["real"]:
                print(f"   survivor ({state}): {name}")
                if args.diffs:
                    print("      " + "\n      ".join(diff.splitlines()[2:]))
            if outcome["wording"]:
                print(
                    "   wording only: " + ", ".join(n for n, _, _ in outcome["wording"])
                )
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"scratch copies kept in {scratch}")
    print()
    print(
        f"{'module':<12} {'mutants':>8} {'killed':>7} {'wording':>8} "
        f"{'kill rate':>10} {'excl. wording':>14}"
    )
    for key, total, detected, wording, rate, adjusted in rows:
        print(
            f"{key:<12} {total:>8} {detected:>7} {wording:>8} "
            f"{rate:>9.1f}% {adjusted:>13.1f}%"
        )


if __name__ == "__main__":
    main()

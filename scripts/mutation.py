"""Mutation testing of the core modules, each with the tests that target it.

Runs mutmut (3.x) on one scratch copy of the repository per module, so the
work tree is never touched, and prints the kill rate per module. Survivors
that only change the wording of a message (a string with spaces in it) are
listed apart and left out of the adjusted rate, as the testing section of the
docs/development.md explains; every other survivor is printed by name with its diff.

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

# module key: (file(s) or package to mutate, targeted tests, needs the database)
MODULES = {
    "policies": (
        "provisioning/policies",
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
        [
            "accounts_app/services/access_requests.py",
            "accounts_app/services/request_decisions.py",
            "accounts_app/services/request_ending.py",
        ],
        [
            "tests/test_services.py",
            "tests/test_service_rules.py",
            "tests/test_access_request_outcomes.py",
        ],
        True,
    ),
    "sync": (
        "provisioning/sync",
        [
            "tests/test_import_and_sync.py",
            "tests/test_aws_faults.py",
            "tests/test_revocation.py",
            "tests/test_recovery.py",
            "tests/test_offboarding.py",
            "tests/test_sync_rules.py",
        ],
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


def _files(target: str) -> list[str]:
    """The files to mutate: the one named, or every module of a package."""
    if not (ROOT / target).is_dir():
        return [target]
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / target).glob("*.py"))


def run_module(key: str, scratch: Path, sample: int = 1) -> dict:
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
    targets = [target] if isinstance(target, str) else target
    package = targets[0].split("/")[0]
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
        f"only_mutate = {json.dumps([f for t in targets for f in _files(t)])}\n"
        f"also_copy = {json.dumps(also_copy)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        f"pytest_add_cli_args = {json.dumps(pytest_args)}\n"
    )
    with open(work / "pyproject.toml", "a") as f:
        f.write(config)
    env = dict(os.environ)
    env["OPSGATE_VAR_DIR"] = str(work / "var")
    children = "1" if needs_db else str(os.cpu_count() or 2)
    names: list[str] = []
    if sample > 1:
        # Generate the mutants (and the test map) without running any: no
        # mutant matches this name, so mutmut stops once they exist.
        _mutmut(
            work, "run", "--max-children", children, "opsgate-no-such-mutant", env=env
        )
        every = sorted(_statuses(work, env), key=_natural)
        names = every[sample - 1 :: sample]
        print(
            f"   sample: every {sample}th of {len(every)} mutants = {len(names)}",
            flush=True,
        )
    run = _mutmut(work, "run", "--max-children", children, *names, env=env)
    if run.returncode != 0 and not (work / "mutants").exists():
        sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
        raise SystemExit(f"mutmut failed on {key}")
    statuses = _statuses(work, env)
    if names:
        statuses = {n: statuses[n] for n in names}
    counts: dict[str, int] = {}
    for state in statuses.values():
        counts[state] = counts.get(state, 0) + 1
    wording, real = [], []
    for name, state in sorted(statuses.items(), key=lambda kv: _natural(kv[0])):
        if state not in ("survived", "no tests"):
            continue
        diff = _mutmut(work, "show", name, env=env).stdout
        (wording if state == "survived" and _message_only(diff) else real).append(
            (name, state, diff)
        )
    return {"counts": counts, "wording": wording, "real": real, "sampled": bool(names)}


def _statuses(work: Path, env: dict) -> dict[str, str]:
    out = _mutmut(work, "results", "--all", "true", env=env).stdout
    return dict(re.findall(r"^\s*(\S+): (.+?)\s*$", out, re.M))


def _natural(name: str) -> tuple:
    head, _, number = name.rpartition("_")
    return (head, int(number) if number.isdigit() else 0)


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n, in percent."""
    if n == 0:
        return (0.0, 100.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(MODULES)}")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument(
        "--sample",
        type=int,
        default=1,
        metavar="K",
        help="run every K-th mutant only (in mutmut's order) and give a 95 %% interval",
    )
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
            outcome = run_module(key, scratch, args.sample)
            c = outcome["counts"]
            detected = c.get("killed", 0) + c.get("timeout", 0)
            total = sum(
                n for state, n in c.items() if state not in ("skipped", "not checked")
            )
            adjusted_total = total - len(outcome["wording"])
            low, high = _wilson(detected, adjusted_total)
            rows.append(
                (
                    key,
                    total,
                    detected,
                    len(outcome["wording"]),
                    100 * detected / max(total, 1),
                    100 * detected / max(adjusted_total, 1),
                    f"{low:.1f}-{high:.1f}%" if outcome["sampled"] else "",
                )
            )
            print(f"   outcomes: {dict(sorted(c.items()))}", flush=True)
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
        f"{'module':<16} {'mutants':>8} {'killed':>7} {'wording':>8} "
        f"{'kill rate':>10} {'excl. wording':>14} {'95% interval (sample)':>22}"
    )
    for key, total, detected, wording, rate, adjusted, interval in rows:
        print(
            f"{key:<16} {total:>8} {detected:>7} {wording:>8} "
            f"{rate:>9.1f}% {adjusted:>13.1f}% {interval:>22}"
        )


if __name__ == "__main__":
    main()

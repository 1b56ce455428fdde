"""Mutation score of the guarantee modules: which small breakages of a promise the tests catch.

Runs mutmut with one worker on the modules listed in pyproject.toml ([tool.mutmut] only_mutate,
with the tests it names), then prints each module's score - killed / mutants - and every
mutant that survived. A survivor is either a missing test or a change that breaks no promise;
docs/mutation.md names each one with the reason, and a survivor it does not name makes this
exit 1. Not part of CI: a full run takes about 20 minutes on two cores.
Run: .venv/bin/python bench/mutation.py [--fresh | --survivors] [--diff] [MODULE ...]
(MODULE: a module listed there, e.g. `approval` or `bot.domain.approval`; default all.)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
EXPLAINED = ROOT / "docs" / "mutation.md"
MUTMUT = Path(sys.executable).parent / "mutmut"


def mutated_modules() -> dict[str, Path]:
    """The dotted name of each module mutmut mutates, with its source path."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return {
        path.removesuffix(".py").replace("/", "."): Path(path) for path in config["only_mutate"]
    }


def chosen(names: list[str], modules: dict[str, Path]) -> list[str]:
    """The modules named on the command line, by dotted name or its last part."""
    if not names:
        return list(modules)
    picked = []
    for name in names:
        matches = [m for m in modules if m == name or m.endswith(f".{name}")]
        if len(matches) != 1:
            sys.exit(f"mutation: {name!r} is not one module of {', '.join(modules)}")
        picked.append(matches[0])
    return picked


def statuses(path: Path) -> dict[str, str]:
    """Each mutant of the module at `path` with mutmut's verdict (from its .meta file)."""
    meta = MUTANTS / f"{path}.meta"
    if not meta.exists():
        return {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: status_by_exit_code[code] for name, code in codes.items()}


def to_test(picked: list[str], modules: dict[str, Path], survivors: bool) -> list[str]:
    """The mutants to test (mutmut tests a named one again even when it has a verdict): all
    of each module, or with `survivors` only those the last run did not catch."""
    if not survivors:
        return [f"{module}.*" for module in picked]
    return [
        name
        for module in picked
        for name, status in statuses(modules[module]).items()
        if status not in {"killed", "timeout"}
    ]


def report(picked: list[str], modules: dict[str, Path], diff: bool) -> int:
    """Print the scores and the survivors; the number of survivors docs/mutation.md lacks."""
    explained = EXPLAINED.read_text() if EXPLAINED.exists() else ""
    unexplained = 0
    print(f"\n{'module':<28} {'killed':>7} {'mutants':>8} {'score':>6}  other")
    survivors: list[str] = []
    for module in picked:
        verdicts = statuses(modules[module])
        counts = Counter(verdicts.values())
        caught = counts["killed"] + counts["timeout"]
        other = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "killed")
        score = f"{100 * caught / len(verdicts):.0f}%" if verdicts else "-"
        print(f"{module:<28} {caught:>7} {len(verdicts):>8} {score:>6}  {other}")
        survivors += [n for n, s in verdicts.items() if s in {"survived", "no tests"}]
    for name in survivors:
        known = re.search(re.escape(name) + r"(?!\d)", explained) is not None
        unexplained += not known
        print(f"  {name}{'' if known else '  (not in docs/mutation.md)'}")
        if diff:
            shown = subprocess.run(
                [MUTMUT, "show", name], cwd=ROOT, capture_output=True, text=True, check=False
            )
            print("    " + shown.stdout.strip().replace("\n", "\n    "))
    return unexplained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all listed)")
    parser.add_argument("--fresh", action="store_true", help="start from an empty mutants/")
    parser.add_argument("--diff", action="store_true", help="show each survivor's change")
    parser.add_argument(
        "--survivors", action="store_true", help="test only what the last run did not catch"
    )
    parser.add_argument("--report", action="store_true", help="only print the last run's scores")
    parser.add_argument("--max-children", type=int, default=1, help="worker processes (1)")
    args = parser.parse_args()
    modules = mutated_modules()
    picked = chosen(args.modules, modules)
    if not args.report:
        if args.fresh:
            shutil.rmtree(MUTANTS, ignore_errors=True)
        names = to_test(picked, modules, args.survivors)
        run = [MUTMUT, "run", "--max-children", str(args.max_children), *names]
        if names and subprocess.run(run, cwd=ROOT, check=False).returncode != 0:
            sys.exit("mutation: mutmut run failed (see above)")
    sys.exit(1 if report(picked, modules, args.diff) else 0)


if __name__ == "__main__":
    main()

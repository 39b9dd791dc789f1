"""Time the guard and the codemod against ``git grep`` on one generated tree, in one run.

    python benchmarks/bench_tooling.py [--files N] [--rounds N] [--tree DIR] [--keep] [--current]

Builds (or reuses) a tree from ``benchmarks/gen_tree.py`` as a git repository,
installs this checkout the way a user gets it (``pip install .[migrate]`` into
a temporary virtual environment: a regular install, not the editable one of
development, whose import hook costs every run some 20 ms), then times its
``resilient`` round-robin, so machine noise lands on every command alike:

- ``git grep -l MockCircuitBreaker``  (the floor: a plain text search)
- ``resilient check``                 (the guard; target: within 3x of git grep)
- ``resilient check --no-git``        (the same, prefiltering in Python instead of git grep)
- ``resilient migrate``               (dry run; target: under 5x of check)

Each command runs as a fresh process, the way pre-commit and CI run it, after
one untimed warm-up (page cache and bytecode cache filled).  Python bytecode is
cached under a temporary ``PYTHONPYCACHEPREFIX`` so the source tree stays
clean even when ``PYTHONDONTWRITEBYTECODE`` is set.  Prints the median and the
best wall-clock time of each, the CPU time (user + system, children included),
the ratios (of the medians, of the bests, and the median of the ratios within
each round, whose two commands ran back to back), and the load average before
and after the timed rounds (the machine may be shared: a busy CPU changes every
figure).  A command that is
not available (for example ``migrate`` before it lands, or without the
``migrate`` extra) is reported as unavailable.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gen_tree  # noqa: E402


@dataclass
class Command:
    label: str
    argv: list[str]
    ok_codes: tuple[int, ...]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    unavailable: str | None = None
    last_stdout: bytes = b""


def _run_once(cmd: Command, cwd: Path, env: dict[str, str]) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd.argv, cwd=cwd, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in cmd.ok_codes:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        cmd.unavailable = f"exit {proc.returncode}: {err[-1] if err else '(no message)'}"
        return
    cmd.wall.append(wall)
    cmd.cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    cmd.last_stdout = proc.stdout


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def _fmt(seconds: list[float]) -> str:
    return (
        f"median {statistics.median(seconds) * 1000:8.1f} ms   best {min(seconds) * 1000:8.1f} ms"
    )


def _install(venv: Path) -> str:
    """``pip install`` this checkout (with the migrate extra) into a new virtual environment."""
    print(f"installing this checkout into {venv} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    done = subprocess.run(
        [
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"{HERE.parent}[migrate]",
        ],
        capture_output=True,  # (pip's notices about the machine's index would bury the figures)
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout.decode(errors="replace"))
        sys.stderr.write(done.stderr.decode(errors="replace"))
        raise SystemExit(f"pip install failed (exit {done.returncode})")
    return str(bin_dir / "resilient")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tree", type=Path, help="reuse or create the tree here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary tree")
    parser.add_argument("--no-migrate", action="store_true", help="time git grep and check only")
    parser.add_argument(
        "--current",
        action="store_true",
        help="time the `resilient` of this environment instead of a fresh regular install",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="resilient-bench-"))
    if args.current:
        resilient = shutil.which("resilient")
        base = [resilient] if resilient else [sys.executable, "-m", "resilient.migration"]
        installed = "this environment's"
    else:
        base = [_install(tmp / "venv")]
        installed = "a regular install (pip install .[migrate]) of"
    tree = args.tree or tmp / "tree"
    if not (tree / "MANIFEST.json").exists():
        print(f"generating {args.files} files in {tree} ...", file=sys.stderr)
        gen_tree.generate(tree, files=args.files, mock_rate=0.01, seed=args.seed)
    if not (tree / ".git").exists():
        gen_tree.make_git_repo(tree)

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")

    commands = [
        Command(
            "git grep -l MockCircuitBreaker", ["git", "grep", "-l", "MockCircuitBreaker"], (0, 1)
        ),
        Command("resilient check", [*base, "check"], (0, 1)),
        Command("resilient check --no-git", [*base, "check", "--no-git"], (0, 1)),
        Command("resilient migrate (dry run)", [*base, "migrate"], (0, 1)),
    ]
    if args.no_migrate:
        commands[3].unavailable = "skipped (--no-migrate)"
    load_before = _load()
    try:
        for cmd in commands:  # warm-up: page cache, bytecode cache
            if cmd.unavailable is None:
                _run_once(cmd, tree, env)
            cmd.wall.clear()
            cmd.cpu.clear()
        for r in range(args.rounds):
            order = commands[r % len(commands) :] + commands[: r % len(commands)]
            for cmd in order:
                if cmd.unavailable is None:
                    _run_once(cmd, tree, env)
    finally:
        if args.keep and args.tree is None:
            shutil.rmtree(tmp / "pycache", ignore_errors=True)
            print(f"kept the tree in {tree}", file=sys.stderr)
        else:  # with --tree, the temporary folder holds only the bytecode cache
            shutil.rmtree(tmp, ignore_errors=True)

    load_after = _load()
    grep, check, check_no_git, migrate = commands
    print(
        f"tree: {args.files} files, 1% with mock breakers; "
        f"{args.rounds} rounds; {os.cpu_count()} CPUs"
    )
    print(f"timed: {installed} resilient ({' '.join(base)})")
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")
    for cmd in commands:
        if cmd.unavailable is not None or not cmd.wall:
            print(f"  {cmd.label:32} unavailable ({cmd.unavailable})")
            continue
        cpu = statistics.median(cmd.cpu) * 1000
        print(f"  {cmd.label:32} {_fmt(cmd.wall)}   cpu {cpu:8.1f} ms")
    if check.wall:
        n = sum(1 for line in check.last_stdout.splitlines() if b": RES00" in line)
        print(f"  (check reported {n} findings)")

    def ratio(a: Command, b: Command) -> str:
        if not (a.wall and b.wall) or a.unavailable or b.unavailable:
            return "n/a"
        med = statistics.median(a.wall) / statistics.median(b.wall)
        best = min(a.wall) / min(b.wall)
        # paired: the two commands of one round ran back to back, so load that comes
        # and goes during the run hits both sides of each round's ratio
        paired = statistics.median(x / y for x, y in zip(a.wall, b.wall, strict=True))
        return f"{med:.2f}x (median)  {best:.2f}x (best)  {paired:.2f}x (paired by round)"

    print(f"check / git grep:   {ratio(check, grep)}   target <= 3x")
    print(f"check --no-git / git grep:   {ratio(check_no_git, grep)}")
    print(f"migrate / check:    {ratio(migrate, check)}   target < 5x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

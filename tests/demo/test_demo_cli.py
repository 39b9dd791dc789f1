"""`resilient demo`, run as a real subprocess: the summary, the exit status, and the
broken fallback that must make it fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("httpx", reason="the demo extra (httpx) is not installed")
pytest.importorskip("jwt", reason="the demo extra (PyJWT) is not installed")

# Generous: a run takes a few seconds; this only stops a hung demo from hanging pytest.
RUN_LIMIT = 90


def _resilient(*args, env=None, code=None):
    """Run the real `resilient` command (the console script's own entry point)."""
    cmd = [sys.executable, "-m", "resilient.migration", *args]
    if code is not None:
        cmd = [sys.executable, "-c", code, *args]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """One full default run: text on stdout, and the same result as JSON in a file."""
    out = tmp_path_factory.mktemp("demo") / "result.json"
    proc = _resilient("demo", "--json", str(out))
    assert out.exists(), proc.stderr
    return proc, json.loads(out.read_text())


@pytest.fixture(scope="module")
def broken_run():
    """One run with the testing-only fallback that accepts any token, JSON on stdout."""
    proc = _resilient("demo", "--broken-fallback", "--json")
    return proc, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def broken_text_run():
    """The same broken run, as a user sees it: live lines and summary."""
    return _resilient("demo", "--broken-fallback")


def _phase_steps(summary, phase):
    return [s for s in summary["steps"] if s["phase"] == phase]


def test_demo_exits_0_with_nobody_locked_out_and_nobody_let_in(demo_run):
    """The default run passes: both must-be-zero counts are 0 and the exit status is 0."""
    proc, summary = demo_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["ok"] is True
    assert summary["exit_status"] == 0
    assert summary["counts"]["valid_refused"] == 0
    assert summary["counts"]["bad_accepted"] == 0
    assert all(check["ok"] for check in summary["checks"]), summary["checks"]


def test_demo_prints_a_line_per_step_and_the_summary(demo_run):
    """Stdout has the banner, one line per request, and the summary with its verdict."""
    proc, summary = demo_run
    out = proc.stdout
    assert "resilient demo: the auth outage" in out
    assert summary["service_url"].startswith("http://127.0.0.1:")
    assert summary["service_url"] in out
    lines = [line.split() for line in out.splitlines()]
    for step in summary["steps"]:
        expected = [
            f"{step['t']:.3f}s",
            step["user"],
            step["kind"],
            step["state"],
            step["path"],
            step["verdict"],
            f"{step['latency_ms']:.1f}",
            "ms",
        ]
        assert any(words[:8] == expected for words in lines), f"no live line for {step}"
    transition_lines = [line for line in out.splitlines() if ">> breaker" in line]
    assert len(transition_lines) == len(summary["transitions"])
    for label in (
        "valid users refused",
        "forged or expired tokens accepted",
        "served by the local fallback",
        "time spent open",
        "transitions (",
    ):
        assert label in out
    assert "result: PASS" in out
    assert "WRONG" not in out


def test_demo_uses_every_path(demo_run):
    """Requests went to the service, to the fallback after a failure, and were short-circuited."""
    _, summary = demo_run
    counts = summary["counts"]
    assert counts["served_by_remote"] > 0
    assert counts["fallback_after_failure"] > 0
    assert counts["fallback_breaker_open"] > 0
    assert counts["served_by_fallback"] == (
        counts["fallback_after_failure"] + counts["fallback_breaker_open"]
    )
    assert counts["other_errors"] == 0
    assert counts["requests"] == counts["valid_requests"] + counts["bad_requests"]
    assert counts["bad_requests"] > 0


def test_each_failure_mode_really_happened(demo_run):
    """Each outage phase failed a real call for its own reason, and each reached its goal."""
    _, summary = demo_run
    assert [p["key"] for p in summary["phases"]] == [
        "healthy",
        "refused",
        "unavailable",
        "slow",
        "secret",
        "recovered",
    ]
    assert all(p["reached"] for p in summary["phases"]), summary["phases"]
    expected = {
        "refused": "ConnectError",
        "unavailable": "503",
        "slow": "CallTimeoutError",
        "secret": "AUTH_SECRET",
    }
    for phase, needle in expected.items():
        failed = [s for s in _phase_steps(summary, phase) if s["path"] == "fallback"]
        assert failed, f"no failed call in phase {phase}"
        assert any(needle in s["detail"] for s in failed), (phase, failed)
    assert all(s["path"] == "remote" for s in _phase_steps(summary, "healthy"))


def test_bad_tokens_are_refused_on_every_path(demo_run):
    """Forged, expired, unsigned and wrong-audience tokens are refused by remote and fallback."""
    _, summary = demo_run
    bad = [s for s in summary["steps"] if s["kind"] != "valid"]
    assert {s["path"] for s in bad} >= {"remote", "rejected"}
    assert all(s["verdict"] == "refused" for s in bad)
    valid = [s for s in summary["steps"] if s["kind"] == "valid"]
    assert {s["path"] for s in valid} >= {"remote", "fallback", "rejected"}
    assert all(s["verdict"] == "accepted" for s in valid)


def test_breaker_opened_and_closed_again(demo_run):
    """The transitions show the breaker opening, trying half-open, and ending closed."""
    _, summary = demo_run
    pairs = [(t["old"], t["new"]) for t in summary["transitions"]]
    assert ("closed", "open") in pairs
    assert ("half_open", "open") in pairs
    assert pairs[-1] == ("half_open", "closed")
    assert summary["final_states"] == {"local": "closed"}
    assert summary["time_open_s"]["local"] > 0
    times = [t["t"] for t in summary["transitions"]]
    assert times == sorted(times)
    recovered = _phase_steps(summary, "recovered")
    assert recovered[-1]["state"] == "closed"
    assert recovered[-1]["path"] == "remote"


def test_metrics_come_from_the_breaker(demo_run):
    """The JSON carries the breaker's own metrics snapshot, consistent with the steps."""
    _, summary = demo_run
    metrics = summary["metrics"]["local"]
    assert metrics["name"] == "auth.validate_token"
    assert metrics["state"] == "closed"
    counts = summary["counts"]
    assert metrics["rejections"] == counts["fallback_breaker_open"]
    assert metrics["fallbacks"] == counts["served_by_fallback"]
    assert metrics["failures"] == counts["fallback_after_failure"]
    assert metrics["calls"] == counts["served_by_remote"] + counts["fallback_after_failure"]
    assert metrics["timeouts"] >= 1


def test_broken_fallback_makes_the_demo_fail(broken_run):
    """A fallback that accepts any token lets attackers in, and the demo exits 1."""
    proc, summary = broken_run
    assert proc.returncode == 1, proc.stderr
    assert summary["ok"] is False
    assert summary["broken_fallback"] is True
    assert summary["counts"]["bad_accepted"] > 0
    failed = {c["name"] for c in summary["checks"] if not c["ok"]}
    assert failed == {"forged or expired tokens accepted"}
    assert all(s["kind"] != "valid" for s in summary["wrong_steps"])
    assert all(s["path"] in ("fallback", "rejected") for s in summary["wrong_steps"])


def test_broken_fallback_is_flagged_in_the_text(broken_text_run):
    """The text output warns about the flag, marks each wrong verdict and ends in FAIL."""
    proc = broken_text_run
    assert proc.returncode == 1, proc.stderr
    assert "--broken-fallback: the fallback accepts ANY token" in proc.stdout
    assert "<< WRONG" in proc.stdout
    assert "FAIL  forged or expired tokens accepted" in proc.stdout
    assert "result: FAIL" in proc.stdout
    assert "(exit 1)" in proc.stdout


def test_json_on_stdout_replaces_the_live_lines(broken_run):
    """`--json` without a path writes only the JSON document to stdout."""
    proc, summary = broken_run
    assert proc.stdout.lstrip().startswith("{")
    assert summary["schema"] == "resilient-demo/1"


def test_missing_demo_extra_gives_the_install_command():
    """Without PyJWT the demo says how to install the extra and exits 2."""
    code = (
        "import sys; sys.modules['jwt'] = None; "
        "from resilient.migration._cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = _resilient("demo", code=code)
    assert proc.returncode == 2
    assert "pip install 'resilient[demo]'" in proc.stderr


def test_bad_speed_is_a_usage_error():
    """An out-of-range --speed is refused by the parser with exit 2."""
    proc = _resilient("demo", "--speed", "0")
    assert proc.returncode == 2
    assert "--speed" in proc.stderr


def test_registering_the_command_imports_nothing_optional():
    """Building the CLI parser and importing resilient load neither httpx, jwt nor the demo."""
    code = (
        "import sys, resilient\n"
        "assert 'resilient.demo' not in sys.modules, 'import resilient imported the demo'\n"
        "from resilient.migration._cli import build_parser\n"
        "build_parser()\n"
        "loaded = {'httpx', 'jwt', 'resilient.demo._run'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    proc = _resilient(code=code)
    assert proc.returncode == 0, proc.stderr


def test_help_documents_the_testing_flag():
    """`resilient demo --help` lists --speed, --json, --redis and the testing-only flag."""
    proc = _resilient("demo", "--help")
    assert proc.returncode == 0
    for flag in ("--speed", "--json", "--redis", "--broken-fallback", "FOR TESTING"):
        assert flag in proc.stdout


def _redis_url():
    """The test Redis, or a skip (a failure when RESILIENT_REQUIRE_REDIS is set)."""
    url = os.environ.get("RESILIENT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    required = bool(os.environ.get("RESILIENT_REQUIRE_REDIS"))
    redis = pytest.importorskip("redis", reason="the redis extra is not installed")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        if required:
            pytest.fail(f"RESILIENT_REQUIRE_REDIS is set but {url} is unreachable: {exc}")
        pytest.skip(f"no Redis at {url}: {exc}")
    return url


@pytest.mark.redis
def test_two_processes_share_the_breaker_through_redis():
    """With --redis, two client processes share one breaker: they open and close together."""
    proc = _resilient("demo", "--redis", _redis_url(), "--json")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["mode"] == "redis"
    assert summary["clients"] == ["A", "B"]
    assert summary["counts"]["valid_refused"] == 0
    assert summary["counts"]["bad_accepted"] == 0
    assert all(check["ok"] for check in summary["checks"]), summary["checks"]
    assert "the clients opened together (shared breaker)" in {c["name"] for c in summary["checks"]}
    # Both processes were short-circuited, and at least one before it had seen
    # enough failures of its own to open a breaker by itself.
    views = summary["per_client"]
    assert all(view["rejected"] > 0 for view in views.values())
    assert min(view["own_failures_before"] for view in views.values()) < 3
    fleet = [t for t in summary["transitions"] if t["source"] == "store"]
    assert ("closed", "open") in {(t["old"], t["new"]) for t in fleet}
    assert (fleet[-1]["old"], fleet[-1]["new"]) == ("half_open", "closed")
    assert summary["final_states"] == {"A": "closed", "B": "closed"}
    assert set(summary["metrics"]) == {"A", "B"}


def test_unreachable_redis_is_a_clear_error():
    """--redis with nothing listening says which URL failed (password hidden) and exits 2."""
    pytest.importorskip("redis", reason="the redis extra is not installed")
    proc = _resilient("demo", "--redis", "redis://:hunter2@127.0.0.1:1/0")
    assert proc.returncode == 2
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in proc.stderr
    assert "hunter2" not in proc.stderr

"""What the demo prints: the banner, a live line per step, and the summary (text or JSON)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, TextIO

from ._scenario import (
    ACCEPTED,
    FAILURE_THRESHOLD,
    FALLBACK,
    OPEN_STATES,
    REJECTED,
    REMOTE,
    Phase,
    Result,
    Step,
    Timing,
    Transition,
)
from ._tokens import VALID, User

SCHEMA = "resilient-demo/1"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def banner(
    *,
    service_url: str,
    timing: Timing,
    users: Sequence[User],
    failure_threshold: int,
    success_threshold: int,
    breaker_name: str,
    clients: Sequence[str],
    store: str,
    broken_fallback: bool,
) -> str:
    """The lines printed before the run starts."""
    valid = ", ".join(u.name for u in users if u.kind == VALID)
    bad = ", ".join(f"{u.name} ({u.kind})" for u in users if u.kind != VALID)
    lines = [
        "resilient demo: the auth outage, replayed with a real circuit breaker",
        f"  auth service  {service_url}  (real HTTP on loopback, POST /v1/validate)",
        f"  breaker       {breaker_name}: failure_threshold={failure_threshold}, "
        f"success_threshold={success_threshold},",
        f"                recovery_timeout={_ms(timing.recovery_timeout)}, "
        f"call_timeout={_ms(timing.call_timeout)}, ignore=(InvalidToken,)",
        f"  speed         {timing.speed:g} (requests every {_ms(timing.interval)}; "
        f"slow answers take {_ms(timing.slow_delay)})",
        "  fallback      _validate_locally: JWT signature, expiry, issuer and audience, "
        "checked locally",
        f"  users         valid: {valid}",
        f"                bad:   {bad}",
    ]
    if len(clients) > 1:
        lines.append(
            f"  clients       {len(clients)} processes ({', '.join(clients)}) "
            f"sharing the breaker via {store}"
        )
    if broken_fallback:
        lines.append(
            "  !! --broken-fallback: the fallback accepts ANY token (for testing); "
            "this run must fail"
        )
    lines += [
        "  path          remote = the service answered; fallback = the call failed, "
        "validated locally;",
        "                rejected = breaker open, no call made, validated locally",
    ]
    return "\n".join(lines)


class LiveReporter:
    """Prints one line per step and per transition, as they happen."""

    def __init__(self, out: TextIO, *, show_client: bool) -> None:
        self._out = out
        self._show_client = show_client

    def _write(self, line: str) -> None:
        self._out.write(line.rstrip() + "\n")
        self._out.flush()

    def phase(self, number: int, total: int, phase: Phase) -> None:
        """Print the phase heading and the column names."""
        self._write(f"\n[{number}/{total}] {phase.title}")
        client = "client " if self._show_client else ""
        self._write(
            f"  {'time':>8}  {client}{'user':<7} {'token':<9} {'breaker':<9} "
            f"{'path':<8} {'verdict':<8} {'latency':>8}  detail"
        )

    def step(self, step: Step) -> None:
        """Print one request."""
        client = f"{step.client:<6} " if self._show_client else ""
        flag = "   << WRONG" if step.wrong else ""
        self._write(
            f"  {step.t:>7.3f}s  {client}{step.user:<7} {step.kind:<9} {step.state:<9} "
            f"{step.path:<8} {step.verdict:<8} {step.latency_ms:>5.1f} ms  {_detail(step)}{flag}"
        )

    def transition(self, transition: Transition) -> None:
        """Print one breaker transition."""
        who = f"[{transition.client}] " if self._show_client else ""
        fleet = " (fleet-wide)" if transition.source == "store" else ""
        self._write(
            f"  {transition.t:>7.3f}s  >> {who}breaker {transition.old} -> {transition.new}{fleet}"
            + (f": {transition.reason}" if transition.reason else "")
        )


class QuietReporter:
    """Prints nothing (``--json`` to standard output)."""

    def phase(self, number: int, total: int, phase: Phase) -> None:
        """Ignore."""

    def step(self, step: Step) -> None:
        """Ignore."""

    def transition(self, transition: Transition) -> None:
        """Ignore."""


def _detail(step: Step) -> str:
    if step.path == REMOTE and step.verdict == ACCEPTED:
        return ""
    return step.detail


def _time_open(transitions: Sequence[Transition], end: float) -> float:
    total, since = 0.0, None
    for tr in transitions:
        if tr.new in OPEN_STATES and since is None:
            since = tr.t
        elif tr.new not in OPEN_STATES and since is not None:
            total += tr.t - since
            since = None
    if since is not None:
        total += end - since
    return total


def _client_view(result: Result, label: str) -> dict[str, Any]:
    steps = [s for s in result.steps if s.client == label]
    first = next((s for s in steps if s.path == REJECTED), None)
    before = [s for s in steps if first is None or s.index < first.index]
    return {
        "requests": len(steps),
        "rejected": sum(1 for s in steps if s.path == REJECTED),
        "failed_calls": sum(1 for s in steps if s.path == FALLBACK),
        "first_rejected_t": first.t if first else None,
        "own_failures_before": sum(1 for s in before if s.path == FALLBACK),
    }


def summarize(result: Result) -> dict[str, Any]:
    """The run's result as one JSON-ready dict (what ``--json`` writes)."""
    steps = result.steps
    valid_refused = [s for s in steps if s.legitimate and s.verdict != ACCEPTED]
    bad_accepted = [s for s in steps if not s.legitimate and s.verdict == ACCEPTED]
    paths = Counter(s.path for s in steps)
    open_latencies = [s.latency_ms for s in steps if s.path == REJECTED]
    fleet = [t for t in result.transitions if t.source == "store"]
    if len(result.clients) > 1 and fleet:
        # Each fleet-wide change is won by exactly one process: together they are the
        # shared breaker's history.
        time_open = {"fleet": round(_time_open(fleet, result.duration), 4)}
    else:
        time_open = {
            label: round(
                _time_open(
                    [t for t in result.transitions if t.client == label and t.source != "store"],
                    result.duration,
                ),
                4,
            )
            for label in result.clients
        }
    per_client = {label: _client_view(result, label) for label in result.clients}
    left_closed = [t.t for t in result.transitions if t.old == "closed"]
    back_closed = [t.t for t in result.transitions if t.new == "closed"]
    checks = [
        {
            "name": "valid users refused",
            "ok": not valid_refused,
            "detail": f"{len(valid_refused)} (must be 0)",
        },
        {
            "name": "forged or expired tokens accepted",
            "ok": not bad_accepted,
            "detail": f"{len(bad_accepted)} (must be 0)",
        },
        {
            "name": "the breaker opened during the outage",
            "ok": paths[REJECTED] > 0,
            "detail": f"{paths[REJECTED]} requests short-circuited",
        },
        {
            "name": "the breaker closed again when the service came back",
            "ok": all(state == "closed" for state in result.final_states.values()),
            "detail": ", ".join(f"{k}: {v}" for k, v in result.final_states.items()),
        },
        {
            "name": "every phase reached its goal",
            "ok": all(p.reached for p in result.phases),
            "detail": ", ".join(p.key for p in result.phases if not p.reached) or "all",
        },
    ]
    if len(result.clients) > 1:
        shared = [
            label
            for label, view in per_client.items()
            if view["first_rejected_t"] is not None
            and view["own_failures_before"] < FAILURE_THRESHOLD
        ]
        checks.append(
            {
                "name": "the clients opened together (shared breaker)",
                "ok": bool(shared),
                "detail": "; ".join(
                    f"{label} short-circuited after {per_client[label]['own_failures_before']} "
                    f"failed call(s) of its own (threshold {FAILURE_THRESHOLD})"
                    for label in shared
                )
                or "no client was short-circuited before reaching the threshold alone",
            }
        )
    ok = all(c["ok"] for c in checks)
    return {
        "schema": SCHEMA,
        "ok": ok,
        "exit_status": 0 if ok else 1,
        "mode": result.mode,
        "clients": result.clients,
        "broken_fallback": result.broken_fallback,
        "service_url": result.service_url,
        "timing": asdict(result.timing),
        "duration_s": result.duration,
        "counts": {
            "requests": len(steps),
            "valid_requests": sum(1 for s in steps if s.legitimate),
            "bad_requests": sum(1 for s in steps if not s.legitimate),
            "valid_refused": len(valid_refused),
            "bad_accepted": len(bad_accepted),
            "served_by_remote": paths[REMOTE],
            "served_by_fallback": paths[FALLBACK] + paths[REJECTED],
            "fallback_after_failure": paths[FALLBACK],
            "fallback_breaker_open": paths[REJECTED],
            "other_errors": sum(
                v for k, v in paths.items() if k not in (REMOTE, FALLBACK, REJECTED)
            ),
        },
        "time_open_s": time_open,
        "per_client": per_client,
        "outage_window_s": round(back_closed[-1] - left_closed[0], 4)
        if left_closed and back_closed and back_closed[-1] > left_closed[0]
        else None,
        "slowest_ms": max((s.latency_ms for s in steps), default=0.0),
        "slowest_while_open_ms": max(open_latencies, default=0.0),
        "checks": checks,
        "transitions": [asdict(t) for t in result.transitions],
        "phases": [asdict(p) for p in result.phases],
        "final_states": result.final_states,
        "metrics": result.metrics,
        "wrong_steps": [asdict(s) for s in valid_refused + bad_accepted],
        "steps": [asdict(s) for s in steps],
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as text."""
    counts = summary["counts"]
    timing = summary["timing"]
    lines = ["", "summary"]

    def row(label: str, value: str, note: str = "") -> None:
        lines.append(f"  {label:<36} {value:>9}  {note}".rstrip())

    row(
        "requests",
        str(counts["requests"]),
        f"({counts['valid_requests']} with a valid token, {counts['bad_requests']} forged, "
        "expired or otherwise bad)",
    )
    row("valid users refused", str(counts["valid_refused"]), "must be 0")
    row("forged or expired tokens accepted", str(counts["bad_accepted"]), "must be 0")
    row("answered by the auth service", str(counts["served_by_remote"]))
    row(
        "served by the local fallback",
        str(counts["served_by_fallback"]),
        f"({counts['fallback_after_failure']} after a failed call, "
        f"{counts['fallback_breaker_open']} while the breaker was open)",
    )
    if counts["other_errors"]:
        row("requests that failed outright", str(counts["other_errors"]))
    for label, seconds in summary["time_open_s"].items():
        who = f" ({label})" if label != "local" else ""
        row(f"time spent open{who}", f"{seconds:.2f} s", f"of {summary['duration_s']:.2f} s")
    if len(summary["clients"]) > 1:
        for label, view in summary["per_client"].items():
            first = view["first_rejected_t"]
            row(
                f"client {label} short-circuited",
                str(view["rejected"]),
                (
                    f"(first at {first:.3f}s, after {view['own_failures_before']} failed "
                    "call(s) of its own)"
                )
                if first is not None
                else "",
            )
    row(
        "slowest request while open",
        f"{summary['slowest_while_open_ms']:.1f} ms",
        "(no request waits on the dead service)",
    )
    row(
        "slowest request overall",
        f"{summary['slowest_ms']:.1f} ms",
        f"(call_timeout {_ms(timing['call_timeout'])})",
    )
    show_client = len(summary["clients"]) > 1
    lines.append(f"  transitions ({len(summary['transitions'])}):")
    for tr in summary["transitions"]:
        who = f"[{tr['client']}] " if show_client else ""
        fleet = " (fleet-wide)" if tr["source"] == "store" else ""
        reason = f"  {tr['reason']}" if tr["reason"] else ""
        lines.append(f"    {tr['t']:>7.3f}s  {who}{tr['old']} -> {tr['new']}{fleet}{reason}")
    wrong = summary["wrong_steps"]
    lines.extend(
        f"  WRONG: step {step['index']} at {step['t']:.3f}s: {step['user']} ({step['kind']}) "
        f"was {step['verdict']} on the {step['path']} path"
        for step in wrong[:10]
    )
    if len(wrong) > 10:
        lines.append(f"  WRONG: ... and {len(wrong) - 10} more (all listed in --json)")
    lines.append("  checks:")
    for check in summary["checks"]:
        mark = "ok  " if check["ok"] else "FAIL"
        lines.append(f"    {mark}  {check['name']}: {check['detail']}")
    if summary["ok"]:
        verdict = "PASS: nobody locked out, no bad token let in, the breaker recovered"
    else:
        verdict = "FAIL: " + "; ".join(c["name"] for c in summary["checks"] if not c["ok"])
    lines.append(f"  result: {verdict} (exit {summary['exit_status']})")
    return "\n".join(lines)


def to_json(summary: dict[str, Any]) -> str:
    """The summary as indented JSON (anything exotic in metrics is stringified)."""
    return json.dumps(summary, indent=2, default=str)

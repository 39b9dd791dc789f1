"""resilient.testing as a user meets it: the pytest plugin, its fixture and forced_open.

Each test writes a small test file and runs pytest on it with ``pytester``.
"""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]


SERVICE = """
    import freezegun
    import pytest

    from resilient import CircuitOpenError, State, circuit_breaker, configure, get_breaker
    from resilient.testing import forced_open


    class InventoryDown(ConnectionError):
        pass


    @circuit_breaker("inventory.fetch", failure_threshold=2, recovery_timeout=30,
                     success_threshold=1, fallback=lambda sku, healthy: "cached")
    def fetch(sku, healthy):
        if not healthy:
            raise InventoryDown("inventory down")
        return "fresh"


    @circuit_breaker("pricing.quote")
    def quote(sku):
        return 9.99
"""


def write(pytester: pytest.Pytester, body: str) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )
    pytester.makepyfile(test_user=textwrap.dedent(SERVICE) + textwrap.dedent(body))


def test_readme_style_recovery_test_passes_with_freezegun(pytester: pytest.Pytester):
    """A recovery test written with freeze_time and tick passes, and records the transitions."""
    write(
        pytester,
        """
        def test_recovers_after_the_timeout(resilient_breakers):
            with freezegun.freeze_time("2026-01-01") as clock:
                assert fetch("a", healthy=False) == "cached"
                assert fetch("a", healthy=False) == "cached"
                assert fetch.breaker.state is State.OPEN
                clock.tick(29)
                assert fetch("a", healthy=True) == "cached"
                clock.tick(1)
                assert fetch("a", healthy=True) == "fresh"
                assert fetch.breaker.state is State.CLOSED
            assert resilient_breakers.transitions("inventory.fetch") == [
                (State.CLOSED, State.OPEN),
                (State.OPEN, State.HALF_OPEN),
                (State.HALF_OPEN, State.CLOSED),
            ]
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_fixture_gives_every_test_fresh_breakers(pytester: pytest.Pytester):
    """State, counters and configure() defaults left by one test do not reach the next."""
    write(
        pytester,
        """
        def test_leaves_a_mess(resilient_breakers):
            configure(failure_threshold=1)
            with pytest.raises(InventoryDown):
                quote.breaker.call(fetch.__wrapped__, "a", False)
            assert quote.breaker.state is State.OPEN
            assert fetch("a", healthy=False) == "cached"
            get_breaker("made.in.a.test", recovery_timeout=5)


        def test_starts_clean(resilient_breakers):
            assert quote.breaker.state is State.CLOSED
            assert quote.breaker.config.failure_threshold == 5
            assert fetch.breaker.metrics().failures == 0
            assert fetch.breaker.metrics().fallbacks == 0
            assert "made.in.a.test" not in {b.name for b in resilient_breakers.breakers()}
            assert get_breaker("made.in.a.test", recovery_timeout=9).config.recovery_timeout == 9
            assert resilient_breakers.events == []
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_forced_open_holds_a_breaker_open_for_a_block(pytester: pytest.Pytester):
    """forced_open(name) rejects (or falls back) inside the block and resets afterwards."""
    write(
        pytester,
        """
        def test_cut_off(resilient_breakers):
            with forced_open("inventory.fetch") as breaker:
                assert breaker is fetch.breaker
                assert breaker.state is State.FORCED_OPEN
                assert fetch("a", healthy=True) == "cached"
            assert fetch("a", healthy=True) == "fresh"


        def test_cut_off_without_fallback(resilient_breakers):
            with forced_open("pricing.quote"):
                with pytest.raises(CircuitOpenError) as info:
                    quote("a")
                assert info.value.retry_after is None
                assert "pricing.quote" in str(info.value)
            assert quote("a") == 9.99
            assert resilient_breakers.transitions("pricing.quote") == [
                (State.CLOSED, State.FORCED_OPEN),
                (State.FORCED_OPEN, State.CLOSED),
            ]
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_the_plugin_is_inert_until_a_test_asks_for_it(pytester: pytest.Pytester):
    """Without the fixture nothing is reset between tests: the plugin does nothing unasked."""
    write(
        pytester,
        """
        def test_opens_it():
            quote.breaker.trip()


        def test_still_open_without_the_fixture():
            assert quote.breaker.state is State.OPEN


        def test_fresh_with_the_fixture(resilient_breakers):
            assert quote.breaker.state is State.CLOSED
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_the_fixture_comes_from_the_pytest11_entry_point(pytester: pytest.Pytester):
    """In a fresh process the fixture is there without any import; -p no:resilient removes it."""
    write(
        pytester,
        """
        def test_uses_it(resilient_breakers):
            assert fetch("a", healthy=True) == "fresh"
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:resilient")
    without.assert_outcomes(errors=1)
    without.stdout.fnmatch_lines(["*fixture 'resilient_breakers' not found*"])


def test_a_failing_user_test_reports_the_breaker_message(pytester: pytest.Pytester):
    """When a user's test hits an open breaker, the failure names the breaker and the retry time."""
    write(
        pytester,
        """
        def test_forgot_the_fallback(resilient_breakers):
            with freezegun.freeze_time("2026-01-01"):
                quote.breaker.trip()
                quote("a")
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*CircuitOpenError: circuit breaker 'pricing.quote' is open*next trial in 30.0 s*"]
    )

"""``resilient demo``: the auth outage behind this library, replayed with a real breaker.

Never imported by ``import resilient``; the command line registers it through
:mod:`resilient.demo._cli`, which imports nothing optional.  The modules:
``_tokens`` (JWTs and the simulated users), ``_service`` (the HTTP auth service and
its failure modes), ``_client`` (the breaker-protected auth client), ``_scenario``
(the phases and the request stream), ``_channel`` and ``_worker`` (reaching a client
in this process or in another one), ``_report`` (live lines, summary, JSON) and
``_run`` (wiring it together).
"""

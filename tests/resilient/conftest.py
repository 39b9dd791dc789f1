"""Fixtures for tests/resilient/.

Group them by feature; each group lives in its own ``conftest_*.py`` module and
is exposed here.
"""

from __future__ import annotations

# -- Redis: RedisStore and the operator CLI (tests/resilient/conftest_redis.py) --------
from .conftest_redis import (  # noqa: F401 - fixtures, registered by being here
    make_store,
    own_redis,
    prefix,
    redis_client,
    redis_py,
    redis_url,
    workers,
)

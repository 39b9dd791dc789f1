"""resilient: circuit breakers for sync and async Python (placeholder while the runtime lands)."""

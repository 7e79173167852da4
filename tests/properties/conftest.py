"""Property tests (hypothesis): one settings profile, seeded, so every run tries the same examples.

``derandomize=True`` makes hypothesis derive its examples from each test's own source, so CI and a
developer's machine run the same few hundred cases; no example database is written. No deadline:
the machine may be loaded (the cost of the suite is bounded by the example counts instead)."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "snakebatch",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.load_profile("snakebatch")

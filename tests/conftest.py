"""Shared test configuration.

Hypothesis profiles: ``dev`` (quick, the default) and ``ci`` (more examples; chosen when the
``CI`` environment variable is set).  ``SIMBENCH_HYPOTHESIS_PROFILE`` overrides both.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("SIMBENCH_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory, with the fake group function selected."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIMBENCH_GROUP_FN", "fake_groups:seeded")
    return tmp_path

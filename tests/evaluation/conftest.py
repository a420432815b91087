"""Fixtures of the evaluation tests."""

import warnings

import pytest


@pytest.fixture(autouse=True)
def no_warnings():
    # Any warning while scoring or plotting (ours, matplotlib's, seaborn's) fails the test.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield

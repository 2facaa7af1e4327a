"""paraloop.environment.variable answers what os.environ.get answers, whatever the program did to
the environment (paraloop reads its settings' overrides through it at every loop)."""

from __future__ import annotations

import os
import sys
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraloop.environment import variable

NAME = "PARALOOP_TEST_ENVIRONMENT_VARIABLE"


@pytest.fixture(autouse=True)
def _unset() -> object:
    os.environ.pop(NAME, None)
    yield
    os.environ.pop(NAME, None)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40))
def test_a_value_set_through_os_environ_reads_back_as_os_environ_gives_it(value: str) -> None:
    os.environ[NAME] = value
    assert variable(NAME) == os.environ.get(NAME) == value
    assert variable(NAME, "default") == value
    del os.environ[NAME]
    assert variable(NAME) is None
    assert variable(NAME, "default") == "default"


@pytest.mark.skipif(sys.platform == "win32", reason="os.environb is POSIX's")
def test_bytes_that_do_not_decode_read_as_os_environ_decodes_them() -> None:
    os.environb[NAME.encode()] = b"caf\xe9 \xff"
    assert variable(NAME) == os.environ[NAME] == "caf\udce9 \udcff"


def test_an_environment_patched_for_a_block_reads_as_patched() -> None:
    os.environ[NAME] = "outside"
    with mock.patch.dict(os.environ, {"PARALOOP_OTHER_TEST_VARIABLE": "1"}, clear=True):
        assert variable(NAME) is None
        assert variable("PARALOOP_OTHER_TEST_VARIABLE") == "1"
    assert variable(NAME) == "outside"


def test_an_os_environ_a_program_replaced_is_read_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", {NAME: "a dict of its own"})
    assert variable(NAME) == "a dict of its own"
    assert variable("PARALOOP_NOT_IN_THE_DICT", "") == ""

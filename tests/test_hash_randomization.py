"""hash() of a str in a body: Python draws a new hash secret in every interpreter it starts.

Found in session 43 (translating real scripts that shard by ``hash(key) % n``): under spawn and
forkserver the workers were new interpreters, so ``hash("a")`` there was not the program's, and a
body's ``hash(key) % buckets`` disagreed with the same expression after the loop, silently.  Fork
workers share the program's secret, and since session 44 so do forkserver workers on Linux (their
fork server is forked from the program: tests/test_fork_server.py); a program run with
``PYTHONHASHSEED`` set gives its seed to every worker (docs/semantics.md, Known differences).
Open: a spawned worker is a new interpreter, and the secret of a program started without
``PYTHONHASHSEED`` cannot be given to one.
"""

from __future__ import annotations

import pytest
from conftest import last_json, run_plain, run_source

_SHARDS = """
    # paraloop: enable
    import json
    from paraloop import ParaLoop

    keys = [f"user-{n}" for n in range(40)]
    shard_of = {}
    for key in ParaLoop(keys):
        shard_of[key] = hash(key) % 7
    print(json.dumps(all(shard_of[key] == hash(key) % 7 for key in keys)))
    """

_WORKERS = {"PARALOOP_BACKEND": "processes", "PARALOOP_CALLER_RUNS": "0"}

pytestmark = pytest.mark.usefixtures("random_hashes")


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_fork_and_forkserver_workers_hash_as_the_program_does(tmp_path, method) -> None:
    assert last_json(run_plain(tmp_path, _SHARDS)) is True
    assert last_json(run_source(tmp_path, _SHARDS, PARALOOP_START_METHOD=method, **_WORKERS)) is True


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_with_pythonhashseed_set_every_worker_hashes_as_the_program(tmp_path, method) -> None:
    """The documented advice."""
    result = run_source(tmp_path, _SHARDS, PARALOOP_START_METHOD=method, PYTHONHASHSEED="0", **_WORKERS)
    assert last_json(result) is True


@pytest.mark.xfail(
    strict=True,
    reason="open (session 43): a new interpreter draws its own hash secret; the program's cannot be "
    "given to it, and hash() of a str in the body differs silently (documented, with PYTHONHASHSEED)",
)
def test_spawned_workers_hash_strings_as_the_program(tmp_path) -> None:
    result = run_source(tmp_path, _SHARDS, PARALOOP_START_METHOD="spawn", **_WORKERS)
    assert last_json(result) is True

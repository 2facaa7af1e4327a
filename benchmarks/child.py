"""Run one variant of one workload in this fresh process; report its time and its result.

    python child.py MODULE VARIANT '{"n": 1000}'

The variant's library is imported before the clock starts (for paraloop that
also installs the import hook, before the workload module is imported). The
clock covers only the call of the variant's function: for a pool, its start,
the work and (for peers written with ``with``) its shutdown. A variant name
ending in ``:warm`` calls the module's ``warm_up()`` first, outside the clock.
"""

import gc
import importlib
import json
import sys
import time
import warnings

from harness import report

LIBRARIES = {
    "paraloop": "paraloop",
    "mp_pool": "multiprocessing.pool",
    "process_pool": "concurrent.futures",
    "thread_pool": "concurrent.futures",
    "joblib": "joblib",
    "mpire": "mpire",
}


def main() -> None:
    module_name, variant, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    for prefix, library in LIBRARIES.items():
        if variant.startswith(prefix):
            importlib.import_module(library)
    if "paraloop" in sys.modules:
        from paraloop import ParaLoopWarning

        # A ParaLoop loop that was not rewritten runs sequentially: that must fail the run.
        warnings.simplefilter("error", ParaLoopWarning)
    module = importlib.import_module(module_name)
    inputs = module.setup(**args)
    name, _, mode = variant.partition(":")
    function = getattr(module, name)
    if mode == "warm":
        module.warm_up()
    # Every tool's clock starts with an empty young generation (see README.md, How it measures).
    gc.collect()
    began = time.perf_counter()
    result = function(*inputs)
    seconds = time.perf_counter() - began
    report(seconds, result)


if __name__ == "__main__":
    main()

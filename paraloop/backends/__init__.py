"""Where a loop's chunks run: one module (or package) per backend.

Each backend takes a job and a :class:`~paraloop.chunks.Chunker` and yields the chunks'
outcomes as they arrive, in any order; :mod:`paraloop.runtime` puts them in order and
combines them.  ``sequential`` runs chunks inline, ``threads`` in threads of the caller,
``processes`` in a pool of worker processes, ``dask`` as tasks on a Dask cluster.
"""

"""Real loops whose result follows ``hash()`` of a str, or the order of a set of strings.

Python draws a new hash secret in every interpreter it starts.  Fork workers share the program's,
and so, on Linux, do forkserver workers (their fork server is forked from the program:
paraloop/backends/processes/fork_server.py); threads and sequential run in the program.  A spawned
worker and a Dask worker are new interpreters with secrets of their own (docs/semantics.md, Known
differences).  Each program below is a loop of public code, translated with its shape kept (its
file input replaced by generated text), run under paraloop; the same program then runs the plain
loop (a function with the same loop, without ``ParaLoop``) and prints whether the two results are
equal, key order and set order included.  The comparison is inside one program: another
interpreter would hash otherwise.

The sources:

- uhauha2929/stutils, ``stutils/text/tfidf.py`` (``get_idf``): document frequencies,
  ``idf[word] = idf.get(word, 0) + 1`` for each word of ``set(words)``; the dict's keys come in the
  sets' order.
- jonathanha52/CS419-Information-Extraction, ``src/indexing/tfidf.py`` (``idf``): the same count
  written ``if term not in frequency: frequency[term] = 1 else: frequency[term] += 1`` over
  ``set(document)``.
- GeorgZs/ID2222-DataMining, ``Assignment1/shingling.py`` and ``Assignment1/minhash.py`` (run by
  ``Assignment1/main.py``, a Spark ``mapValues``): each message's set of ``hash(shingle)`` of its
  word 3-shingles, then the MinHash signature matrix of those sets.
- FelixKleineBoesing/NLPractice, ``src/data_constructors.py`` (``build_word_indices``): a Counter
  and a set of the corpus's words updated per sentence; ``word_index`` numbers the words in the
  set's order.
- yasaisen/try_keras, ``03_lab/02_MAIN.py`` (Chollet's one-hot hashing trick):
  ``results[i, j, abs(hash(word)) % dimensionality] = 1.`` for the first words of each sample.
- manohargadde/wordembeddings, ``onehotencoding.py``: ``unique_words.add(word.lower())`` for the
  corpus's words, printed; ``word_to_index`` numbers them in the set's order; one-hot vectors.

Expected: the plain result on fork, forkserver, threads and sequential; under spawn and on Dask a
result that follows the workers' hashes differs (strict xfail).  Found here (session 44): the sets
paraloop unites (``s.add(x)``) came out in another order than the plain loop's, on every backend
(onehotencoding; fixed, tests/test_set_order.py); and paraloop's own Dask cluster gave its workers
Dask's seed (6640), not the program's ``PYTHONHASHSEED`` (fixed); NLPractice's
``word_count += Counter(sntc)`` was refused (now replayed: tests/test_counter_additions.py).  Kept open, each a strict xfail
with its reason (``_FOUND``): a set that a worker process sends back is rebuilt in another order
(MinHash's shingle sets; documented); CS419's counting idiom ``if term not in frequency: ... = 1 else: ... += 1`` is refused (with
advice that works); a Dask cluster the user
provides hashes with Dask's seed whatever the program's.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import last_json, run_source

pytestmark = pytest.mark.usefixtures("random_hashes")

# The generated text: 2000 made-up words, documents of 20 to 40 of them (a set of 20 or more
# strings per document, whose order two hash secrets all but never agree on; some 1000 words in
# all, whose set comes out in another order when built in another order of insertions: in none of
# 200 tries with the chunks of _ONE_HOT's loop, against two in three with 120 words).
_TEXT = """
    import random

    _rng = random.Random(20240501)
    _letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = [
        "".join(_rng.choice(_letters) for _ in range(_rng.randint(3, 8))) for _ in range(2000)
    ]
    documents = [
        " ".join(_rng.choice(vocabulary) for _ in range(_rng.randint(20, 40))) for _ in range(48)
    ]
"""

# uhauha2929/stutils, stutils/text/tfidf.py: get_idf.
_STUTILS_IDF = (
    """
    # paraloop: enable
    import json
    import math
    from paraloop import ParaLoop
    """
    + _TEXT
    + """
    def get_idf(texts):
        idf = {}
        for words in ParaLoop(texts):
            for word in set(words):
                idf[word] = idf.get(word, 0) + 1
        for word in idf:
            idf[word] = math.log(len(texts) / (1 + idf[word]))
        return idf


    def get_idf_plain(texts):
        idf = {}
        for words in texts:
            for word in set(words):
                idf[word] = idf.get(word, 0) + 1
        for word in idf:
            idf[word] = math.log(len(texts) / (1 + idf[word]))
        return idf


    texts = [document.split() for document in documents]
    print(json.dumps(list(get_idf(texts).items()) == list(get_idf_plain(texts).items())))
    """
)

# jonathanha52/CS419-Information-Extraction, src/indexing/tfidf.py: idf.
_CS419_IDF = (
    """
    # paraloop: enable
    import json
    from math import log10
    from paraloop import ParaLoop
    """
    + _TEXT
    + """
    def calc_idf(N, nt):
        return log10(N / nt)


    def idf(document_list):
        N = len(document_list)
        frequency = {}
        idf_map = {}
        for document in ParaLoop(document_list):
            for term in set(document):
                if term not in frequency:
                    frequency[term] = 1
                else:
                    frequency[term] += 1
        for term in frequency.keys():
            idf_map[term] = calc_idf(N, frequency[term])
        return idf_map


    def idf_plain(document_list):
        N = len(document_list)
        frequency = {}
        idf_map = {}
        for document in document_list:
            for term in set(document):
                if term not in frequency:
                    frequency[term] = 1
                else:
                    frequency[term] += 1
        for term in frequency.keys():
            idf_map[term] = calc_idf(N, frequency[term])
        return idf_map


    document_list = [document.split() for document in documents]
    print(json.dumps(list(idf(document_list).items()) == list(idf_plain(document_list).items())))
    """
)

# GeorgZs/ID2222-DataMining, Assignment1/shingling.py and minhash.py, as main.py runs them: the
# Spark map (line -> (id, message) -> shingle set) is the ParaLoop loop; MinHash's coefficients
# come from random.Random(0) (np.random there) and its arithmetic is on Python ints.
_MINHASH = (
    """
    # paraloop: enable
    import json
    import random
    from paraloop import ParaLoop
    """
    + _TEXT
    + """
    class Shingling:
        def __init__(self, k):
            self.k = k

        def shingle_document(self, document):
            shingles = set()
            words = document.split()
            for i in range(len(words) - self.k + 1):
                shingle = " ".join(words[i:i + self.k])
                shingles.add(hash(shingle))
            return shingles


    def minhash(shingle_list, num_hash_functions):
        rng = random.Random(0)
        max_shingle_id = max([max(shingle_set) for _, shingle_set in shingle_list if shingle_set])
        hash_functions = [
            (rng.randint(1, max_shingle_id - 1), rng.randint(0, max_shingle_id - 1))
            for _ in range(num_hash_functions)
        ]
        sig_matrix = [[float("inf")] * len(shingle_list) for _ in range(num_hash_functions)]
        for doc_idx, (_, shingle_set) in enumerate(shingle_list):
            for row, (a, b) in enumerate(hash_functions):
                min_hash = float("inf")
                for shingle in shingle_set:
                    hash_val = (a * shingle + b) % max_shingle_id
                    min_hash = min(min_hash, hash_val)
                sig_matrix[row][doc_idx] = min_hash
        return sig_matrix


    def run_sim_items(lines, k):
        shingle_list = []
        for line in ParaLoop(lines):
            doc_id, message = tuple(line.split("\\t", 1))
            shingle_list.append((doc_id, Shingling(k).shingle_document(message)))
        return [(doc_id, list(shingles)) for doc_id, shingles in shingle_list], minhash(shingle_list, 100)


    def run_sim_items_plain(lines, k):
        shingle_list = []
        for line in lines:
            doc_id, message = tuple(line.split("\\t", 1))
            shingle_list.append((doc_id, Shingling(k).shingle_document(message)))
        return [(doc_id, list(shingles)) for doc_id, shingles in shingle_list], minhash(shingle_list, 100)


    lines = [("spam" if n % 5 == 0 else "ham") + "\\t" + document for n, document in enumerate(documents)]
    print(json.dumps(run_sim_items(lines, 3) == run_sim_items_plain(lines, 3)))
    """
)

# FelixKleineBoesing/NLPractice, src/data_constructors.py: build_word_indices.
_WORD_INDICES = (
    """
    # paraloop: enable
    import json
    from collections import Counter
    from paraloop import ParaLoop
    """
    + _TEXT
    + """
    def build_word_indices(corpus):
        if isinstance(corpus, str):
            corpus = [[w.lower() for w in sntc.split()] for sntc in corpus.split(".") if len(sntc) > 0]

        word_list = set()
        word_count = Counter()
        for i, sntc in ParaLoop(enumerate(corpus)):
            word_count += Counter(sntc)
            word_list.update(sntc)

        vocab_size = len(word_count)
        word_index = {w: i for i, w in enumerate(word_list)}
        index_word = {i: w for w, i in word_index.items()}
        return corpus, vocab_size, word_index, index_word, word_count


    def build_word_indices_plain(corpus):
        if isinstance(corpus, str):
            corpus = [[w.lower() for w in sntc.split()] for sntc in corpus.split(".") if len(sntc) > 0]

        word_list = set()
        word_count = Counter()
        for i, sntc in enumerate(corpus):
            word_count += Counter(sntc)
            word_list.update(sntc)

        vocab_size = len(word_count)
        word_index = {w: i for i, w in enumerate(word_list)}
        index_word = {i: w for w, i in word_index.items()}
        return corpus, vocab_size, word_index, index_word, word_count


    def seen(result):
        corpus, vocab_size, word_index, index_word, word_count = result
        return [corpus, vocab_size, list(word_index.items()), list(index_word.items()), list(word_count.items())]


    txt = ". ".join(documents) + "."
    print(json.dumps(seen(build_word_indices(txt)) == seen(build_word_indices_plain(txt))))
    """
)

# yasaisen/try_keras, 03_lab/02_MAIN.py: the one-hot hashing trick.
_HASHING_TRICK = (
    """
    # paraloop: enable
    import json
    import numpy as np
    from paraloop import ParaLoop
    """
    + _TEXT
    + """
    samples = documents
    dimensionality = 1000
    max_length = 10


    def plain():
        results = np.zeros((len(samples), max_length, dimensionality))
        for i, sample in enumerate(samples):
            for j, word in list(enumerate(sample.split()))[:max_length]:
                index = abs(hash(word)) % dimensionality
                results[i, j, index] = 1.
        return results


    results = np.zeros((len(samples), max_length, dimensionality))
    for i, sample in ParaLoop(enumerate(samples)):
        for j, word in list(enumerate(sample.split()))[:max_length]:
            index = abs(hash(word)) % dimensionality
            results[i, j, index] = 1.
    print(json.dumps(bool(np.array_equal(results, plain()))))
    """
)

# manohargadde/wordembeddings, onehotencoding.py: its first and third loops on ParaLoop (the
# second, over the set, is the caller's either way).  chunksize=4 makes the first loop's chunks
# several whatever the measured times (the result must not depend on them, CONTRACT section 4):
# as one chunk, its set is copied into the empty result whole, in its own order.
_ONE_HOT = (
    """
    # paraloop: enable
    import json
    import numpy as np
    from paraloop import ParaLoop
    """
    + _TEXT
    + """
    corpus = [document.capitalize() for document in documents]


    def one_hot(corpus):
        unique_words = set()
        for sentence in ParaLoop(corpus, chunksize=4):
            for word in sentence.split():
                unique_words.add(word.lower())

        word_to_index = {}
        for i, word in enumerate(unique_words):
            word_to_index[word] = i

        one_hot_vectors = []
        for sentence in ParaLoop(corpus):
            sentence_vectors = []
            for word in sentence.split():
                vector = np.zeros(len(unique_words))
                vector[word_to_index[word.lower()]] = 1
                sentence_vectors.append(vector)
            one_hot_vectors.append(sentence_vectors)
        return unique_words, word_to_index, one_hot_vectors


    def one_hot_plain(corpus):
        unique_words = set()
        for sentence in corpus:
            for word in sentence.split():
                unique_words.add(word.lower())

        word_to_index = {}
        for i, word in enumerate(unique_words):
            word_to_index[word] = i

        one_hot_vectors = []
        for sentence in corpus:
            sentence_vectors = []
            for word in sentence.split():
                vector = np.zeros(len(unique_words))
                vector[word_to_index[word.lower()]] = 1
                sentence_vectors.append(vector)
            one_hot_vectors.append(sentence_vectors)
        return unique_words, word_to_index, one_hot_vectors


    def seen(result):
        unique_words, word_to_index, one_hot_vectors = result
        vectors = [[vector.tolist() for vector in sentence] for sentence in one_hot_vectors]
        return [str(unique_words), list(word_to_index.items()), vectors]


    print(json.dumps(seen(one_hot(corpus)) == seen(one_hot_plain(corpus))))
    """
)

SOURCES = {
    "stutils-get_idf": _STUTILS_IDF,
    "cs419-idf": _CS419_IDF,
    "id2222-minhash": _MINHASH,
    "nlpractice-word_indices": _WORD_INDICES,
    "try_keras-hashing_trick": _HASHING_TRICK,
    "wordembeddings-onehot": _ONE_HOT,
}

BACKENDS = ["fork", "forkserver", "spawn", "threads", "sequential", "dask"]
_NEW_INTERPRETERS = {"spawn", "dask"}

_NEW_INTERPRETER = (
    "open: a spawned worker is a new interpreter with its own hash secret (docs/semantics.md, Known "
    "differences); a Dask worker too (Dask's nanny starts it with PYTHONHASHSEED=6640)"
)

# What the loops met besides new interpreters' hashes, each kept open (strict xfail).
_FOUND = {
    # Refused on every backend, with a clear ParaLoopError: the idiom is the per-key count
    # get_idf's idf[word] = idf.get(word, 0) + 1 (combined, and given the plain result), written
    # with a test; paraloop asks for a defaultdict(int) instead.
    "cs419-idf": (
        BACKENDS,
        "finding: refused (ParaLoopError 'cannot combine these updates of frequency ... "
        "frequency[term] += 1, frequency[term] = 1'): 'if term not in frequency: frequency[term] = 1 "
        "else: frequency[term] += 1' is a per-key count from zero, as idf.get(word, 0) + 1, which "
        "paraloop combines",
    ),
    # On worker processes a set made in an iteration comes back as pickle rebuilds it
    # (set(list(s))): same elements, but a set of 20-40 large ints (hash() values) is iterated in
    # another order than the one the plain loop made, in about half of the 48 documents; so
    # list(shingles) after the loop differs (threads and sequential, which do not copy it, pass).
    "id2222-minhash": (
        ["fork", "forkserver"],
        "finding: a set an iteration makes comes back from a worker process rebuilt by pickle, "
        "iterated in another order than the plain loop's set (same elements); list(shingles) differs",
    ),
}


# Loops whose result follows only a set the caller fills (Union adds each chunk's elements in the
# caller, in their order), hashed there: the same on new interpreters too.  Its Union finding
# (the chunks' sets united in their own order) was fixed in session 44 (tests/test_set_order.py).
_SETS_IN_THE_CALLER = {"wordembeddings-onehot", "nlpractice-word_indices"}


def _case(source: str, backend: str) -> Any:
    """The test of ``source`` on ``backend``, marked with what keeps it from the plain result."""
    reasons = []
    backends, finding = _FOUND.get(source, ((), ""))
    if backend in backends:
        reasons.append(finding)
    if backend in _NEW_INTERPRETERS and source not in _SETS_IN_THE_CALLER:
        reasons.append(_NEW_INTERPRETER)
    marks = [pytest.mark.xfail(strict=True, reason="; ".join(reasons))] if reasons else []
    return pytest.param(source, backend, marks=marks, id=f"{source}-{backend}")


def _environment(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Every iteration in a worker, two workers, on ``backend``."""
    environment = {"PARALOOP_CALLER_RUNS": "0", "PARALOOP_WORKERS": "2"}
    if backend in ("fork", "forkserver", "spawn"):
        environment.update(PARALOOP_BACKEND="processes", PARALOOP_START_METHOD=backend)
    elif backend == "dask":
        cluster = request.getfixturevalue("dask_cluster")
        environment.update(PARALOOP_BACKEND="dask", PARALOOP_DASK_SCHEDULER=cluster.scheduler_address)
        # The session's LocalCluster runs its nannies in this process, and a nanny sets
        # os.environ["PYTHONHASHSEED"] = "6640" (its workers' seed) as it starts a worker: the
        # program would then hash as the workers do.
        monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    else:
        environment.update(PARALOOP_BACKEND=backend)
    return environment


@pytest.mark.parametrize(("source", "backend"), [_case(s, b) for s in SOURCES for b in BACKENDS])
def test_the_loop_gives_the_plain_result(tmp_path, request, monkeypatch, source: str, backend: str) -> None:
    result = run_source(tmp_path, SOURCES[source], **_environment(backend, request, monkeypatch))
    assert last_json(result) is True


_DASK_SEED = (
    "open: a cluster the user provides starts its workers with PYTHONHASHSEED=6640 unless its "
    "configuration says otherwise (distributed/nanny.py, pre-spawn-environ), whatever the program's "
    "(documented in docs/semantics.md, Known differences)"
)


@pytest.mark.once
@pytest.mark.xfail(strict=True, reason=_DASK_SEED)
def test_with_pythonhashseed_set_dask_workers_hash_as_the_program(tmp_path, request, monkeypatch) -> None:
    environment = _environment("dask", request, monkeypatch)
    result = run_source(tmp_path, _HASHING_TRICK, PYTHONHASHSEED="1", **environment)
    assert last_json(result) is True


@pytest.mark.once
def test_with_pythonhashseed_set_paraloops_own_dask_workers_hash_as_the_program(tmp_path) -> None:
    """The cluster paraloop starts gives its workers the program's seed (session 44; was 6640)."""
    environment = {"PARALOOP_CALLER_RUNS": "0", "PARALOOP_WORKERS": "2", "PARALOOP_BACKEND": "dask"}
    result = run_source(tmp_path, _HASHING_TRICK, PYTHONHASHSEED="1", **environment)
    assert last_json(result) is True


@pytest.mark.once
def test_dask_workers_hash_with_dasks_own_seed(tmp_path, request, monkeypatch) -> None:
    """Why: a program run with PYTHONHASHSEED=6640, the seed Dask gives its workers, hashes as they do."""
    environment = _environment("dask", request, monkeypatch)
    result = run_source(tmp_path, _HASHING_TRICK, PYTHONHASHSEED="6640", **environment)
    assert last_json(result) is True

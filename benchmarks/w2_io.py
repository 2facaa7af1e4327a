# paraloop: enable
"""W2 I/O-bound: n HTTP GETs (urllib) to a local server that answers each after 20 ms.

The driver starts the server (``serve``) in one of its threads and passes its
address in ``BENCH_URL``. Each GET returns its own number, so the result (the
list of answers, in order) shows every request was made once and kept in order.
"""

import contextlib
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import peers

DELAY = 0.020


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(DELAY)
        body = self.path.rsplit("=", 1)[-1].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the default backlog of 5 would drop concurrent connections


@contextlib.contextmanager
def serve():
    """Run the server on 127.0.0.1 in a thread; yield its URL."""
    server = _Server(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def fetch(i):
    with urllib.request.urlopen(f"{os.environ['BENCH_URL']}?i={i}", timeout=30) as response:
        return int(response.read())


def setup(n):
    return (n,)


def plain(n):
    answers = []
    for i in range(n):
        answers.append(fetch(i))
    return answers


def paraloop(n):
    from paraloop import ParaLoop

    answers = []
    for i in ParaLoop(range(n)):
        answers.append(fetch(i))
    return answers


def paraloop_threads(n):
    from paraloop import ParaLoop

    answers = []
    for i in ParaLoop(range(n), num_processes=64, backend="threads"):
        answers.append(fetch(i))
    return answers


# Peers, hand-tuned for waiting: many workers, one request per message.
def mp_pool(n):
    return peers.mp_pool(fetch, range(n), workers=32, chunksize=1)


def process_pool(n):
    return peers.process_pool(fetch, range(n), workers=32)


def thread_pool(n):
    return peers.thread_pool(fetch, range(n), workers=64)


def joblib(n):
    return peers.joblib_parallel(fetch, range(n), n_jobs=64, prefer="threads")


def mpire(n):
    return peers.mpire_pool(fetch, range(n), n_jobs=64, start_method="threading")

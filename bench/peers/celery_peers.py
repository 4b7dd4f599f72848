"""Celery side of Celeriac's peers benchmark (bench/peers/run.ts starts both roles).

Worker (the orchestrator starts two, each ``--pool solo``, prefetch multiplier 64)::

    PEERS_REDIS_URL=redis://127.0.0.1:<port>/0 PEERS_QUEUE=<queue> \\
      /usr/bin/python3 -m celery -A celery_peers worker --pool solo --prefetch-multiplier 64 -Q <queue> ...

Producer (protocol of bench/peers/producer-common.ts: spec as JSON in argv[2], prints
``RESULT <json>``)::

    PEERS_REDIS_URL=... /usr/bin/python3 celery_peers.py producer '<spec json>'

How the producer measures. Celery's ``apply_async`` is synchronous (one LPUSH round trip to
the broker per task), so "1,000 enqueues in flight" cannot be expressed with one producer
thread; the producer sends from ``spec.threads`` threads (default 1), each calling
``apply_async`` in turn. Completion = the result stored: Celery's Redis backend stores a
result with ``SET celery-task-meta-<id>`` and ``PUBLISH``es it on the channel of the same name
in one MULTI/EXEC, so one ``PSUBSCRIBE celery-task-meta-*`` sees every result right after it
is stored. Celery's own per-task result subscription (``backend.on_task_call`` →
``result_consumer.consume_from``, one SUBSCRIBE per task, for ``AsyncResult.get``) is turned
off in the producer: the single pattern subscription replaces it, which only spares Celery
work, like Celeriac's one KV watch per bucket and BullMQ's one QueueEvents reader.
"""
import json
import os
import sys
import threading
import time

from celery import Celery
from celery.signals import worker_ready

REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("PEERS_QUEUE", "celery")
DEADLINE_S = 60.0
META_PREFIX = "celery-task-meta-"

app = Celery("celery_peers", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=64,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_send_task_events=False,
    task_send_sent_event=False,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
)


@app.task(name="add")
def add(a, b):
    """The benchmark's no-op task."""
    return a + b


@worker_ready.connect
def _announce_ready(**_kwargs):
    # the real stdout: the worker redirects sys.stdout to its logger
    sys.__stdout__.write("READY\n")
    sys.__stdout__.flush()


class Completions:
    """Matches results observed stored to the send times of their task ids (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sent = {}
        self._early = {}
        self._lat = []
        self._target = 0
        self._all = threading.Event()

    def expect(self, n):
        with self._lock:
            self._sent.clear()
            self._early.clear()
            self._lat = []
            self._target = n
            self._all = threading.Event()
            if n == 0:
                self._all.set()
        return self._all

    def bind(self, task_id, t):
        with self._lock:
            early = self._early.pop(task_id, None)
            if early is None:
                self._sent[task_id] = t
            else:
                self._record(early - t)

    def done(self, task_id, t):
        with self._lock:
            sent = self._sent.pop(task_id, None)
            if sent is None:
                if len(self._early) < 1_000_000:
                    self._early[task_id] = t
            else:
                self._record(t - sent)

    def _record(self, seconds):
        self._lat.append(seconds * 1000.0)
        if len(self._lat) == self._target:
            self._all.set()

    def latencies(self):
        with self._lock:
            return list(self._lat)


def pct(xs, p):
    """Nearest-rank percentile, as throughput-phases.ts ``pct``."""
    s = sorted(xs)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, int((p / 100.0) * len(s)))]


def observe(completions, ready):
    """One pattern subscription on the result channels; feeds ``completions`` until the process exits."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    ps = client.pubsub()
    ps.psubscribe(META_PREFIX + "*")
    while True:
        msg = ps.get_message(timeout=1.0)
        if msg is None:
            continue
        if msg["type"] == "psubscribe":
            ready.set()
            continue
        if msg["type"] != "pmessage":
            continue
        now = time.perf_counter()
        channel = msg["channel"].decode()
        if b'"SUCCESS"' in msg["data"]:
            completions.done(channel[len(META_PREFIX):], now)


def wait_all(event, what):
    if not event.wait(DEADLINE_S):
        raise RuntimeError(f"{what}: not all results stored within {DEADLINE_S:.0f} s")


def throughput_run(what, completions, n, threads):
    event = completions.expect(n)
    counter = iter(range(n))
    lock = threading.Lock()
    tag = f"{what}-{time.time_ns()}"

    def sender():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            task_id = f"{tag}-{i}"
            completions.bind(task_id, time.perf_counter())
            add.apply_async((1, 2), task_id=task_id)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=sender, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(DEADLINE_S)
    enqueue_s = time.perf_counter() - t0
    wait_all(event, what)
    seconds = time.perf_counter() - t0
    return {"n": n, "seconds": seconds, "perSecond": n / seconds, "enqueueSeconds": enqueue_s}


def latency_run(what, completions, n, rate_hz):
    event = completions.expect(n)
    interval = 1.0 / rate_hz
    tag = f"{what}-{time.time_ns()}"
    t0 = time.perf_counter()
    for i in range(n):
        wait = t0 + i * interval - time.perf_counter()
        if wait > 0.001:
            time.sleep(wait)
        task_id = f"{tag}-{i}"
        completions.bind(task_id, time.perf_counter())
        add.apply_async((1, 2), task_id=task_id)
    wait_all(event, what)
    lat = completions.latencies()
    return {"n": n, "rateHz": rate_hz, "p50Ms": pct(lat, 50), "p99Ms": pct(lat, 99), "maxMs": max(lat) if lat else float("nan")}


def self_memory():
    """VmRSS and VmHWM of this process in MiB, as children.ts ``procMemory``."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                fields[k] = int(v.split()[0]) / 1024.0
    return {"rssMiB": fields.get("VmRSS"), "hwmMiB": fields.get("VmHWM")}


def producer(spec):
    # one pattern subscription replaces Celery's per-task SUBSCRIBE (see the module docstring)
    app.backend.on_task_call = lambda *_a, **_k: None
    completions = Completions()
    ready = threading.Event()
    threading.Thread(target=observe, args=(completions, ready), daemon=True).start()
    if not ready.wait(10):
        raise RuntimeError("celery producer: PSUBSCRIBE not confirmed within 10 s")
    threads = int(spec.get("threads", 1))
    throughput_run("warmup", completions, spec["warmup"], threads)
    throughput = throughput_run("thr", completions, spec["count"], threads)
    latency = latency_run("lat", completions, spec["latencyCount"], spec["rateHz"])
    out = {"throughput": throughput, "latency": latency, "loadavg": list(os.getloadavg()), "threads": threads, "self": self_memory()}
    sys.stdout.write("RESULT " + json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "producer":
        sys.stderr.write("usage: celery_peers.py producer '<spec json>'\n")
        sys.exit(2)
    producer(json.loads(sys.argv[2]))
    os._exit(0)

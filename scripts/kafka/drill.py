#!/usr/bin/env python3
"""Reliability drill for the Kafka source (run through scripts/kafka/drill.sh).

Produces EVENTS numbered JSON records to a topic of a fresh tansu broker, runs a Kafka -> HTTP flow
(`fiso-flow run`) into a local HTTP receiver, kills the fiso-flow process with SIGKILL twice while
it is delivering, restarts it each time, and waits until the receiver has every record (or the
timeout passes). Prints lost (records never received) and duplicates (deliveries beyond the first).
Exit status 0 when nothing was lost.
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def log(message):
    print(f"drill: {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """A minimal HTTP/1.1 keep-alive server that records the `data.n` of every CloudEvent posted."""

    def __init__(self):
        self.counts = {}
        self.total = 0
        self.lock = threading.Lock()
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        self.ready.wait(10)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def snapshot(self):
        with self.lock:
            return self.total, len(self.counts)

    def _record(self, body):
        try:
            number = json.loads(body)["data"]["n"]
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            self.total += 1
            self.counts[number] = self.counts.get(number, 0) + 1

    async def _serve(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self._record(body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port, backlog=512))
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()


def start_broker(tansu):
    port = free_port()
    address = f"127.0.0.1:{port}"
    log_file = tempfile.NamedTemporaryFile(prefix="fiso-drill-tansu-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [tansu, "broker", "--listener-url", f"tcp://{address}", "--advertised-listener-url", f"tcp://{address}",
         "--storage-engine", "memory://tansu/"],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, address
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"tansu did not start on {address} (log: {log_file.name})")


def produce(address, topic, partitions, events):
    admin = AdminClient({"bootstrap.servers": address})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": address, "linger.ms": 20, "enable.idempotence": True,
                         "queue.buffering.max.messages": 200000})
    failures = []

    def delivered(error, _message):
        if error is not None:
            failures.append(error)

    for number in range(events):
        value = json.dumps({"n": number, "customer": f"c-{number % 97}", "amount": number % 1000})
        while True:
            try:
                producer.produce(topic, value=value.encode(), key=f"c-{number % 97}".encode(), on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        if number % 10000 == 0:
            producer.poll(0)
    remaining = producer.flush(120)
    if remaining or failures:
        raise RuntimeError(f"producing failed: {remaining} not delivered, errors: {failures[:3]}")


def write_config(directory, address, topic, receiver_port):
    flows = os.path.join(directory, "flows")
    os.makedirs(flows, exist_ok=True)
    kafka_file = os.path.join(directory, "kafka.yaml")
    with open(kafka_file, "w") as file:
        file.write(f"""clusters:
  main:
    brokers: ["{address}"]
    config:
      session.timeout.ms: "2000"
      heartbeat.interval.ms: "300"
""")
    with open(os.path.join(flows, "drill.yaml"), "w") as file:
        file.write(f"""name: drill
source:
  type: kafka
  config:
    cluster: main
    topic: {topic}
    consumerGroup: fiso-drill
    startOffset: earliest
sink:
  type: http
  config:
    url: http://127.0.0.1:{receiver_port}/events
""")
    return flows, kafka_file


def start_flow(binary, flows, kafka_file, log_path):
    environment = dict(os.environ)
    environment.update({
        "FISO_CONFIG_DIR": flows, "FISO_KAFKA_CONFIG": kafka_file,
        "FISO_METRICS_ADDR": f"127.0.0.1:{free_port()}", "FISO_LOG_LEVEL": environment.get("FISO_LOG_LEVEL", "warning"),
    })
    log_file = open(log_path, "ab")
    return subprocess.Popen([binary, "run"], env=environment, stdout=log_file, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


def wait_for(receiver, condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        total, unique = receiver.snapshot()
        if condition(total, unique):
            return True
        time.sleep(0.05)
    log(f"timed out waiting for {what}")
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fiso-flow", required=True, help="path of the fiso-flow binary")
    parser.add_argument("--tansu", default=os.environ.get("FISO_TANSU_BIN"), help="path of the tansu binary")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--kills", type=float, nargs="*", default=[0.25, 0.6],
                        help="kill -9 when this fraction of the events has arrived (one kill per value)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for every event")
    arguments = parser.parse_args()
    if not arguments.tansu:
        parser.error("no tansu binary: set FISO_TANSU_BIN (scripts/kafka/setup.sh does)")

    work = tempfile.mkdtemp(prefix="fiso-drill-")
    flow_log = os.path.join(work, "fiso-flow.log")
    broker, address = start_broker(arguments.tansu)
    receiver = Receiver()
    flow = None
    try:
        receiver.start()
        topic = "drill-orders"
        started = time.time()
        produce(address, topic, arguments.partitions, arguments.events)
        log(f"produced {arguments.events} records to {topic} ({arguments.partitions} partitions) on {address} "
            f"in {time.time() - started:.1f}s")
        flows, kafka_file = write_config(work, address, topic, receiver.port)
        started = time.time()
        flow = start_flow(arguments.fiso_flow, flows, kafka_file, flow_log)
        for fraction in arguments.kills:
            target = int(arguments.events * fraction)
            if not wait_for(receiver, lambda _total, unique: unique >= target, arguments.timeout, f"{target} events"):
                break
            flow.send_signal(signal.SIGKILL)
            flow.wait()
            total, unique = receiver.snapshot()
            log(f"kill -9 at {unique} distinct events received ({total} deliveries); restarting")
            flow = start_flow(arguments.fiso_flow, flows, kafka_file, flow_log)
        wait_for(receiver, lambda _total, unique: unique >= arguments.events, arguments.timeout, "every event")
        elapsed = time.time() - started
        # Anything still in flight after the last record arrived would be a duplicate: let it land.
        time.sleep(2)
        flow.send_signal(signal.SIGTERM)
        try:
            flow.wait(30)
        except subprocess.TimeoutExpired:
            flow.kill()
            flow.wait()
        flow = None
        total, unique = receiver.snapshot()
        lost = arguments.events - unique
        duplicates = total - unique
        result = {"events": arguments.events, "received": total, "distinct": unique, "lost": lost,
                  "duplicates": duplicates, "kills": len(arguments.kills), "seconds": round(elapsed, 1)}
        print(json.dumps(result))
        log(f"lost={lost} duplicates={duplicates} (fiso-flow log: {flow_log})")
        return 0 if lost == 0 else 1
    finally:
        if flow is not None:
            flow.kill()
            flow.wait()
        receiver.stop()
        broker.terminate()
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Reference runtime for Fiso-Flow's WASM interceptor ABI, on Wasmtime's Python binding (PyPI `wasmtime`).

Two uses:

  run MODULE [--input FILE] [--timeout-ms N] [--memory-limit BYTES] [--env K=V ...]
      Runs a WASI command module the way the interceptor does (stdin in memory, argv[0] = the
      module's file name, no preopened directories, empty environment unless --env), copies its
      stdout/stderr to ours and exits with its exit code (a trap prints the trap to stderr and
      exits 134, a timeout exits 124). This is the "echo ... | wasmtime enrich.wasm" of the guide,
      used to confirm the example modules behave the same under a second runtime.

  bench MODULE --input FILE [--calls N] [--warmup N]
      Compiles MODULE once (linker.instantiate_pre) and times N calls, each with a fresh store and
      instance: instantiate, run `_start` with the input on stdin, collect stdout. Prints one JSON
      line: {"runtime": "wasmtime-py", "version": ..., "calls": N, "median_ms": ..., "p99_ms": ...,
      "stdout_bytes": ...}.

  --reactor (with run or bench)
      MODULE is a reactor (docs/module-authors-guide.md, "Reactor modules"): one instance is made
      (and `_initialize` called when exported), then each call writes the input into the buffer
      `fiso_alloc(len)` returns and calls `fiso_handle(ptr, len)`; its result is the output
      (`ptr << 32 | len`) or -N, reported as exit status N. `bench --reactor` times calls on that
      one warm instance.

Gzip-compressed modules (magic bytes 1f 8b) are decompressed first, as Fiso-Flow does.
Installs the `wasmtime` wheel with pip when it is missing.
"""

import argparse
import ctypes
import gzip
import json
import os
import subprocess
import sys
import threading
import time

WASMTIME_REQUIREMENT = "wasmtime>=50,<51"


def import_wasmtime():
    try:
        import wasmtime  # noqa: F401
    except ImportError:
        print(f"installing {WASMTIME_REQUIREMENT} with pip", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", WASMTIME_REQUIREMENT])
    import wasmtime

    return wasmtime


wasmtime = import_wasmtime()
from wasmtime import _ffi as ffi  # noqa: E402


def read_module_bytes(path):
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def module_display_name(path):
    name = os.path.basename(path)
    return name[:-3] if name.endswith(".gz") else name


class Reference:
    """One compiled module plus the linker that provides WASI; a fresh store per call."""

    def __init__(self, path, timeout_ms=None, memory_limit=None, env=None):
        config = wasmtime.Config()
        if timeout_ms is not None:
            config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
        self.module = wasmtime.Module(self.engine, read_module_bytes(path))
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        self.pre = linker.instantiate_pre(self.module)
        self.argv0 = module_display_name(path)
        self.timeout_ms = timeout_ms
        self.memory_limit = memory_limit
        self.env = env or {}

    def call(self, stdin_bytes):
        """Returns (exit_code, stdout, stderr, trap_message_or_None)."""
        stdout = bytearray()
        stderr = bytearray()
        wasi = wasmtime.WasiConfig()
        wasi.argv = [self.argv0]
        if self.env:
            wasi.env = list(self.env.items())
        # The C API takes ownership of the byte vector.
        vec = ffi.bytes_to_capi(stdin_bytes)
        ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))
        wasi.stdout_custom = lambda chunk: stdout.extend(chunk)
        wasi.stderr_custom = lambda chunk: stderr.extend(chunk)
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasi)
        if self.memory_limit is not None:
            store.set_limits(memory_size=self.memory_limit)
        timer = None
        if self.timeout_ms is not None:
            store.set_epoch_deadline(1)
            timer = threading.Timer(self.timeout_ms / 1000.0, self.engine.increment_epoch)
            timer.start()
        try:
            instance = self.pre.instantiate(store)
            start = instance.exports(store)["_start"]
            start(store)
            return 0, bytes(stdout), bytes(stderr), None
        except wasmtime.ExitTrap as exit_trap:
            return exit_trap.code, bytes(stdout), bytes(stderr), None
        except (wasmtime.Trap, wasmtime.WasmtimeError) as trap:
            return None, bytes(stdout), bytes(stderr), str(trap)
        finally:
            if timer is not None:
                timer.cancel()


class ReactorReference:
    """One warm instance of a reactor module, called through fiso_alloc/fiso_handle."""

    def __init__(self, path, memory_limit=None, env=None):
        self.engine = wasmtime.Engine()
        module = wasmtime.Module(self.engine, read_module_bytes(path))
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        self.stdout = bytearray()
        wasi = wasmtime.WasiConfig()
        wasi.argv = [module_display_name(path)]
        if env:
            wasi.env = list(env.items())
        # Reactor stdout is log text, kept with stderr.
        wasi.stdout_custom = lambda chunk: self.stdout.extend(chunk)
        wasi.stderr_custom = lambda chunk: self.stdout.extend(chunk)
        self.store = wasmtime.Store(self.engine)
        self.store.set_wasi(wasi)
        if memory_limit is not None:
            self.store.set_limits(memory_size=memory_limit)
        instance = linker.instantiate(self.store, module)
        exports = instance.exports(self.store)
        if "_initialize" in exports:
            exports["_initialize"](self.store)
        self.alloc = exports["fiso_alloc"]
        self.handle = exports["fiso_handle"]
        self.memory = exports["memory"]

    def call(self, input_bytes):
        """Returns (exit_code, output, log, trap_message_or_None)."""
        self.stdout.clear()
        try:
            pointer = self.alloc(self.store, len(input_bytes)) & 0xFFFFFFFF
            self.memory.write(self.store, input_bytes, pointer)
            result = self.handle(self.store, pointer, len(input_bytes))
            if -255 <= result <= -1:
                return -result, b"", bytes(self.stdout), None
            result &= 0xFFFFFFFFFFFFFFFF
            start, length = result >> 32, result & 0xFFFFFFFF
            return 0, bytes(self.memory.read(self.store, start, start + length)), bytes(self.stdout), None
        except wasmtime.ExitTrap as exit_trap:
            return exit_trap.code, b"", bytes(self.stdout), None
        except (wasmtime.Trap, wasmtime.WasmtimeError) as trap:
            return None, b"", bytes(self.stdout), str(trap)


def command_run(args):
    env = {}
    for pair in args.env or []:
        key, _, value = pair.partition("=")
        env[key] = value
    if args.reactor:
        reference = ReactorReference(args.module, args.memory_limit, env)
    else:
        reference = Reference(args.module, args.timeout_ms, args.memory_limit, env)
    if args.input:
        with open(args.input, "rb") as handle:
            stdin_bytes = handle.read()
    else:
        stdin_bytes = sys.stdin.buffer.read()
    code, stdout, stderr, trap = reference.call(stdin_bytes)
    sys.stdout.buffer.write(stdout)
    sys.stdout.flush()
    sys.stderr.buffer.write(stderr)
    if trap is not None:
        lines = [line.strip() for line in trap.splitlines() if line.strip()]
        print(f"trap: {lines[-1] if lines else 'unknown'}", file=sys.stderr)
        sys.stderr.flush()
        return 124 if "interrupt" in trap else 134
    sys.stderr.flush()
    return code


def wasmtime_version():
    try:
        from importlib.metadata import version

        return version("wasmtime")
    except Exception:  # noqa: BLE001 - the version is informational only
        return "unknown"


def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def command_bench(args):
    reference = ReactorReference(args.module) if args.reactor else Reference(args.module)
    with open(args.input, "rb") as handle:
        stdin_bytes = handle.read()
    stdout_bytes = 0
    for _ in range(args.warmup):
        reference.call(stdin_bytes)
    durations = []
    for _ in range(args.calls):
        started = time.perf_counter_ns()
        code, stdout, _, trap = reference.call(stdin_bytes)
        durations.append((time.perf_counter_ns() - started) / 1e6)
        if code != 0 or trap is not None:
            print(f"module failed: exit={code} trap={trap}", file=sys.stderr)
            return 1
        stdout_bytes = len(stdout)
    durations.sort()
    print(
        json.dumps(
            {
                "runtime": "wasmtime-py-reactor" if args.reactor else "wasmtime-py",
                "version": wasmtime_version(),
                "calls": args.calls,
                "median_ms": percentile(durations, 0.5),
                "p99_ms": percentile(durations, 0.99),
                "stdout_bytes": stdout_bytes,
            }
        )
    )
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a module once, like `wasmtime MODULE`")
    run.add_argument("module")
    run.add_argument("--input")
    run.add_argument("--timeout-ms", type=int)
    run.add_argument("--memory-limit", type=int)
    run.add_argument("--env", action="append")
    run.add_argument("--reactor", action="store_true", help="call fiso_alloc/fiso_handle instead of _start")
    bench = commands.add_parser("bench", help="time fresh-instance calls")
    bench.add_argument("module")
    bench.add_argument("--input", required=True)
    bench.add_argument("--calls", type=int, default=200)
    bench.add_argument("--warmup", type=int, default=5)
    bench.add_argument("--reactor", action="store_true", help="time calls on one warm reactor instance")
    args = parser.parse_args()
    status = command_run(args) if args.command == "run" else command_bench(args)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: Wasmtime's worker threads can panic while Python finalizes.
    os._exit(status)


if __name__ == "__main__":
    main()

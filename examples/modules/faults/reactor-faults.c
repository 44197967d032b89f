// A Fiso reactor (mode: reactor) for the tests of the reactor pool and its error classes. It keeps
// a call counter in its instance, so its output shows whether a call ran on a reused instance:
//
//   {"payload":{"calls":N,"input_bytes":L},"headers":{"X-Reactor":"faults"}}
//
// A marker anywhere in the input picks a failure instead:
//   #trap      traps (unreachable)                          -> trap
//   #exit7     calls proc_exit(7)                            -> exit_code 7
//   #exit0     calls proc_exit(0)                            -> exit_code 0 (no output)
//   #refuse    writes a reason to stderr, returns -4         -> exit_code 4
//   #leak      leaks 1 MiB (sbrk, touched), then answers     -> success; memory grows every call
//   #oom       mallocs 1 MiB blocks until malloc fails       -> out_of_memory
//   #spin      loops forever                                 -> timeout
//   #sleep     sleeps 100 ms (poll_oneoff), then answers      -> success
//   #invalid   returns "this is not JSON"                    -> invalid_json
//   #nopayload returns {"headers":{}}                        -> invalid_json (no "payload")
//   #huge      returns a length of 64 MiB                    -> output_too_large
//   #outside   returns a range beyond its memory             -> invalid_json (outside memory)
//   #stdout    writes to stdout and stderr, then answers     -> success; both kept as log text
//
// Build: clang --target=wasm32-wasi -mexec-model=reactor -Oz (see ../build.sh).

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int32_t calls;
static char *input_buffer;
static size_t input_capacity;
static char output[256];
static volatile void *leaked;  // keeps the leaked blocks reachable, so they are not optimised away

__attribute__((export_name("fiso_alloc"))) char *fiso_alloc(int32_t length) {
    if ((size_t)length + 1 > input_capacity) {
        free(input_buffer);
        input_capacity = (size_t)length + 1;
        input_buffer = malloc(input_capacity);
    }
    return input_buffer;
}

static int has(const char *input, int32_t length, const char *marker) {
    size_t size = strlen(marker);
    for (int32_t index = 0; index + (int32_t)size <= length; index++) {
        if (memcmp(input + index, marker, size) == 0) return 1;
    }
    return 0;
}

static int64_t answer(const char *text, size_t length) {
    return ((int64_t)(uintptr_t)text << 32) | (int64_t)length;
}

__attribute__((export_name("fiso_handle"))) int64_t fiso_handle(const char *input, int32_t length) {
    calls++;
    if (has(input, length, "#trap")) __builtin_trap();
    if (has(input, length, "#exit7")) _Exit(7);
    if (has(input, length, "#exit0")) _Exit(0);
    if (has(input, length, "#refuse")) {
        fputs("reactor-faults: refusing this event\n", stderr);
        return -4;
    }
    if (has(input, length, "#oom")) {
        for (;;) {
            void **block = malloc(1 << 20);
            if (!block) abort();
            memset(block, 1, 1 << 20);
            *block = (void *)leaked;
            leaked = block;
        }
    }
    if (has(input, length, "#spin")) {
        for (volatile int forever = 1; forever;) {
        }
    }
    if (has(input, length, "#sleep")) usleep(100000);
    if (has(input, length, "#leak")) {
        char *block = sbrk(1 << 20);
        if (block != (void *)-1) {
            memset(block, 1, 1 << 20);
            leaked = block;
        }
    }
    if (has(input, length, "#invalid")) return answer("this is not JSON", 16);
    if (has(input, length, "#nopayload")) return answer("{\"headers\":{}}", 14);
    if (has(input, length, "#huge")) return answer(output, 64 << 20);
    if (has(input, length, "#outside")) return ((int64_t)0xFFFF0000 << 32) | 4096;
    if (has(input, length, "#stdout")) {
        fputs("to stdout\n", stdout);
        fflush(stdout);
        fputs("to stderr\n", stderr);
    }
    int written = snprintf(output, sizeof output,
                           "{\"payload\":{\"calls\":%d,\"input_bytes\":%d},\"headers\":{\"X-Reactor\":\"faults\"}}",
                           (int)calls, (int)length);
    return answer(output, (size_t)written);
}

// Fault module: computes forever without host calls, with memory traffic and function calls in
// the loop (unlike infinite-loop.wat's bare branch). Fiso-Flow stops it at the timeout and
// reports `timeout`; it is the slow-code case for the fuel calibration in docs/wasm.md.
#include <stdint.h>
#include <stdio.h>

static uint32_t table[4096];

__attribute__((noinline)) static uint32_t mix(uint32_t state, uint32_t index) {
    table[index & 4095] ^= state;
    return (state * 2654435761u) ^ (table[(index * 7) & 4095] >> 3);
}

int main(void) {
    uint32_t state = 1;
    for (uint32_t index = 0;; index++) {
        state = mix(state, index);
        if (state == 0xFFFFFFFFu && index == 0) break;  // never true; keeps the loop observable
    }
    printf("%u\n", state);
    return 0;
}

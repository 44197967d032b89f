// Fault module: reads its input, sleeps 100 ms (WASI poll_oneoff, as Go's time.Sleep and C's usleep
// do), then answers. Sleeping is allowed; the runtime must never let it block a thread it cannot
// spare (see "Inline calls" in docs/wasm.md). Output: {"payload":{"slept_ms":100},"headers":{}}
#include <stdio.h>
#include <unistd.h>

int main(void) {
    char chunk[4096];
    while (fread(chunk, 1, sizeof chunk, stdin) > 0) {
    }
    usleep(100000);
    fputs("{\"payload\":{\"slept_ms\":100},\"headers\":{}}\n", stdout);
    return 0;
}

// Test probe: busy-waits for the number of milliseconds given as "spin_ms" in its input (reading
// the monotonic clock, so it makes host calls while it spins), then reports how long it spun.
// Used for in-flight calls during a hot reload and for timeouts of modules that call the host.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char input[65536];

static long long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int main(void) {
    size_t length = fread(input, 1, sizeof input - 1, stdin);
    input[length] = 0;
    long long spin_ms = 0;
    const char *field = strstr(input, "\"spin_ms\":");
    if (field) spin_ms = atoll(field + strlen("\"spin_ms\":"));
    long long start = now_ms();
    while (now_ms() - start < spin_ms) {
    }
    printf("{\"payload\":{\"module\":\"spin\",\"spun_ms\":%lld},\"headers\":{\"X-Spin\":\"done\"}}\n", now_ms() - start);
    return 0;
}

// Test probe: reports what the WASI environment looks like from inside the module, as the
// payload: its arguments, its environment, the clocks, random bytes and the preopened directories.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

extern char **environ;

static void print_string(const char *text) {
    putchar('"');
    for (; *text; text++) {
        if (*text == '"' || *text == '\\') putchar('\\');
        putchar(*text);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    char chunk[4096];
    size_t stdin_bytes = 0, count;
    while ((count = fread(chunk, 1, sizeof chunk, stdin)) > 0) stdin_bytes += count;

    struct timespec realtime, monotonic_a, monotonic_b;
    clock_gettime(CLOCK_REALTIME, &realtime);
    clock_gettime(CLOCK_MONOTONIC, &monotonic_a);
    clock_gettime(CLOCK_MONOTONIC, &monotonic_b);

    unsigned char random_bytes[16] = {0};
    int random_ok = getentropy(random_bytes, sizeof random_bytes) == 0;
    int random_nonzero = 0;
    for (size_t index = 0; index < sizeof random_bytes; index++) random_nonzero |= random_bytes[index];

    int preopens = 0;
    for (__wasi_fd_t fd = 3; fd < 64; fd++) {
        __wasi_prestat_t prestat;
        if (__wasi_fd_prestat_get(fd, &prestat) == __WASI_ERRNO_SUCCESS) preopens++;
    }

    printf("{\"payload\":{\"argv\":[");
    for (int index = 0; index < argc; index++) {
        if (index) putchar(',');
        print_string(argv[index]);
    }
    printf("],\"env\":[");
    for (char **entry = environ; entry && *entry; entry++) {
        if (entry != environ) putchar(',');
        print_string(*entry);
    }
    printf("],\"realtime_s\":%lld,\"monotonic_ok\":%s,\"random_ok\":%s,\"preopens\":%d,\"stdin_bytes\":%zu},",
           (long long)realtime.tv_sec,
           (monotonic_b.tv_sec > monotonic_a.tv_sec ||
            (monotonic_b.tv_sec == monotonic_a.tv_sec && monotonic_b.tv_nsec >= monotonic_a.tv_nsec)) ? "true" : "false",
           random_ok && random_nonzero ? "true" : "false", preopens, stdin_bytes);
    printf("\"headers\":{\"X-Probe\":\"1\"}}\n");
    return 0;
}

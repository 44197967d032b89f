// Sandbox probe: tries to read a host file. Fiso-Flow gives modules no preopened directories, so
// the open fails, the module says why on stderr and exits 1 (`exit_code`). Were the sandbox
// broken, it would print the file's first line as the payload and exit 0.
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    const char *paths[] = {"/etc/hostname", "/etc/passwd", "enrich.wasm", "./enrich.wasm"};
    for (size_t index = 0; index < sizeof paths / sizeof paths[0]; index++) {
        FILE *file = fopen(paths[index], "r");
        if (file) {
            char line[256] = {0};
            fgets(line, sizeof line, file);
            line[strcspn(line, "\n\"\\")] = 0;
            printf("{\"payload\":{\"leaked\":\"%s\"},\"headers\":{}}\n", line);
            return 0;
        }
        fprintf(stderr, "open-file: cannot open %s: %s\n", paths[index], strerror(errno));
    }
    return 1;
}

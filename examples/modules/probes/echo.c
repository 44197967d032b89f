// Test probe: writes the environment variable FISO_ECHO_OUTPUT to stdout when it is set (so a
// test chooses the module's exact output through the interceptor's `env` setting), otherwise
// copies stdin to stdout unchanged.
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const char *output = getenv("FISO_ECHO_OUTPUT");
    if (output) {
        fputs(output, stdout);
        return 0;
    }
    static char chunk[65536];
    size_t count;
    while ((count = fread(chunk, 1, sizeof chunk, stdin)) > 0) fwrite(chunk, 1, count, stdout);
    return 0;
}

// Fault module: writes a valid but 8 MiB JSON document, more than the default maxOutputBytes
// (4 MiB). Fiso-Flow stops it at the limit and reports `output_too_large`.
#include <stdio.h>
#include <string.h>

int main(void) {
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    fputs("{\"payload\":{\"data\":\"", stdout);
    for (int index = 0; index < 128; index++) fwrite(chunk, 1, sizeof chunk, stdout);
    fputs("\"},\"headers\":{}}\n", stdout);
    return 0;
}

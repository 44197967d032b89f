// Fault module: reads its input, writes nothing and exits 0. Fiso-Flow reports `invalid_json`
// (an empty stdout is not a JSON object).
#include <stdio.h>

int main(void) {
    char chunk[4096];
    while (fread(chunk, 1, sizeof chunk, stdin) > 0) {
    }
    return 0;
}

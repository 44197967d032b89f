// Fault module: explains itself on stderr, then exits with status 3. Fiso-Flow reports
// `exit_code` ("wasm: exit code 3") and returns the stderr text with the error so it can be logged.
#include <stdio.h>

int main(void) {
    fputs("stderr-fail: upstream lookup refused for order 123\n", stderr);
    return 3;
}

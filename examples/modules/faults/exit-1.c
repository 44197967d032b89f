// Fault module: reads its input and exits with status 1, like the guide's Go example does on bad
// input. Fiso-Flow reports `exit_code` with the message "wasm: exit code 1".
#include <stdio.h>

int main(void) {
    char chunk[4096];
    while (fread(chunk, 1, sizeof chunk, stdin) > 0) {
    }
    return 1;
}

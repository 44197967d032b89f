// Fault module: writes a JSON object without "payload". Fiso-Flow reports `invalid_json`
// ("wasm: output has no \"payload\"").
#include <stdio.h>

int main(void) {
    puts("{\"headers\":{\"X-Seen\":\"true\"}}");
    return 0;
}

// Fault module: exits 0 but writes something that is not JSON. Fiso-Flow reports `invalid_json`.
#include <stdio.h>

int main(void) {
    puts("this is not JSON");
    return 0;
}

// Fault module: allocates and touches 1 MiB blocks until malloc fails, then aborts (a trap).
// With a memory limit the growth is denied at the limit; Fiso-Flow reports `out_of_memory`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Every block is linked into a list reachable from this global, so the compiler cannot prove the
// allocations unused and remove them.
void *volatile blocks = NULL;

int main(void) {
    size_t total = 0;
    for (;;) {
        void **block = malloc(1 << 20);
        if (!block) {
            fprintf(stderr, "memory-bomb: malloc failed after %zu MiB\n", total >> 20);
            abort();
        }
        memset(block, 0xA5, 1 << 20);
        *block = blocks;
        blocks = block;
        total += 1 << 20;
    }
}

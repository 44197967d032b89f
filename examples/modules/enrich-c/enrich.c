// The guide's "enrich" example in C as a WASI command: reads {"payload": {...}, "headers": {...},
// "direction": ...} on stdin and writes {"payload": ..., "headers": ...} plus a newline to stdout
// (see enrich-core.c for the transformation and how it matches the Go original byte for byte).
//
// Build: clang --target=wasm32-wasi -Oz -fno-builtin (see ../build.sh), or `python -m ziglang cc --target=wasm32-wasi`.

#include "enrich-core.c"

int main(void) {
    Buffer input = {0};
    for (;;) {
        if (input.capacity - input.length < 4096) {
            size_t capacity = input.capacity ? input.capacity * 2 : 16384;
            input.bytes = grow(input.bytes, input.length, capacity);
            input.capacity = capacity;
        }
        ssize_t count = read(STDIN_FILENO, input.bytes + input.length, input.capacity - input.length);
        if (count < 0) fail("cannot read stdin");
        if (count == 0) break;
        input.length += (size_t)count;
    }

    Buffer output = enrich(input.bytes, input.length);
    for (size_t written = 0; written < output.length;) {
        ssize_t count = write(STDOUT_FILENO, output.bytes + written, output.length - written);
        if (count <= 0) fail("cannot write stdout");
        written += (size_t)count;
    }
    // End here rather than return: nothing is buffered (the output went out with write()), and
    // skipping libc's exit handlers spares the runtime translating them.
    _Exit(0);
}

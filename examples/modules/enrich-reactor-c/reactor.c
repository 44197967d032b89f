// The guide's "enrich" example in C as a Fiso reactor (mode: reactor): the same transformation as
// ../enrich-c (shared in ../enrich-c/enrich-core.c), entered through exported functions instead of
// stdin and stdout, by an instance that serves many events.
//
//   fiso_alloc(len)       -> a buffer of len bytes for the host to write the input envelope into
//   fiso_handle(ptr, len) -> (output pointer << 32) | output length
//
// The arena starts over with every event (fiso_alloc), so memory does not grow from one event to
// the next. An input the Go original refuses ends the instance with status 1 (proc_exit), exactly
// as the command does; the host reports exit_code 1 and replaces the instance.
//
// Build: clang --target=wasm32-wasi -mexec-model=reactor -Oz -fno-builtin (see ../build.sh).

#include "../enrich-c/enrich-core.c"

__attribute__((export_name("fiso_alloc"))) char *fiso_alloc(int32_t length) {
    arena_reset();
    return allocate(length > 0 ? (size_t)length : 1);
}

__attribute__((export_name("fiso_handle"))) int64_t fiso_handle(const char *input, int32_t length) {
    Buffer output = enrich(input, length > 0 ? (size_t)length : 0);
    return ((int64_t)(uintptr_t)output.bytes << 32) | (int64_t)(uint32_t)output.length;
}

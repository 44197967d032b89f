// The guide's "enrich" transformation in C, shared by the command (enrich.c: stdin to stdout)
// and the reactor (../enrich-reactor-c/reactor.c: fiso_alloc/fiso_handle). Included by both, so
// each builds from one file.
//
// The transformation (enrich()): takes {"payload": {...}, "headers": {...}, "direction": ...},
// adds "processed_by" and "timestamp" to the payload and "X-WASM-Processed" to the headers, and
// produces {"payload": ..., "headers": ...} plus a newline.
//
// The output is byte-for-byte what the Go original (enrich-go/main.go) prints: object keys
// sorted, numbers in Go's shortest float64 form, strings escaped the way Go's encoding/json
// escapes them (HTML-safe). Any input the Go original rejects exits with code 1.
//
// Written for a fresh-instance-per-event runtime whose interpreter translates every function a
// call enters: the common path is kept small and the rare cases (escapes, non-ASCII text, arrays,
// numbers with more than 15 digits) live in separate functions marked COLD, which are translated
// only by the events that need them. It avoids big libc functions (stdio, malloc, qsort, printf)
// on that path, using read(), write() and a bump allocator instead.
//

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COLD __attribute__((noinline, cold))
#define MAX_DEPTH 512

typedef enum { J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT } Kind;

typedef struct Node Node;

typedef struct {
    char *bytes;
    size_t length;
} Text;

typedef struct {
    Text key;
    Node *value;
} Member;

struct Node {
    Kind kind;
    Text text;  // a string's decoded bytes, or a number's lexeme
    Node **items;
    Member *members;
    size_t count;
};

static size_t text_length(const char *text);

COLD static void fail(const char *reason) {
    write(STDERR_FILENO, "enrich: ", 8);
    write(STDERR_FILENO, reason, text_length(reason));
    write(STDERR_FILENO, "\n", 1);
    _Exit(1);
}

// Small loops instead of libc's strlen, memcmp and memcpy: those are word-at-a-time functions,
// several times larger, and translating them costs more than they save on short strings.
static size_t text_length(const char *text) {
    size_t length = 0;
    while (text[length]) length++;
    return length;
}

static int compare_bytes(const void *left, const void *right, size_t count) {
    const unsigned char *a = left, *b = right;
    for (size_t index = 0; index < count; index++) {
        if (a[index] != b[index]) return a[index] < b[index] ? -1 : 1;
    }
    return 0;
}

static void copy_bytes(void *destination, const void *source, size_t count) {
    unsigned char *to = destination;
    const unsigned char *from = source;
    while (count--) *to++ = *from++;
}

// MARK: - Memory: a bump allocator (nothing is freed one by one; a command exits after its event,
// a reactor starts over with arena_reset() before each event)

static unsigned char *arena_start, *arena_next, *arena_end;

static void *allocate(size_t size) {
    size = (size + 7) & ~(size_t)7;
    if ((size_t)(arena_end - arena_next) < size) {
        size_t chunk = size > 65536 ? size : 65536;
        unsigned char *memory = sbrk((intptr_t)chunk);
        if (memory == (void *)-1) fail("out of memory");
        // Only this allocator calls sbrk, so a new chunk normally extends the arena; if not,
        // start a new arena there (the old one is not reused).
        if (memory != arena_end) arena_start = arena_next = memory;
        arena_end = memory + chunk;
    }
    void *result = arena_next;
    arena_next += size;
    return result;
}

// Forgets every allocation: the arena's memory serves the next event.
__attribute__((unused)) static void arena_reset(void) { arena_next = arena_start; }

static void *grow(void *old, size_t old_size, size_t new_size) {
    void *memory = allocate(new_size);
    copy_bytes(memory, old, old_size);
    return memory;
}

// MARK: - Byte buffers

typedef struct {
    char *bytes;
    size_t length;
    size_t capacity;
} Buffer;

static void append(Buffer *buffer, const void *bytes, size_t length) {
    if (buffer->length + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity * 2 : 256;
        while (capacity < buffer->length + length) capacity *= 2;
        buffer->bytes = grow(buffer->bytes, buffer->length, capacity);
        buffer->capacity = capacity;
    }
    copy_bytes(buffer->bytes + buffer->length, bytes, length);
    buffer->length += length;
}

static void append_text(Buffer *buffer, const char *text) { append(buffer, text, text_length(text)); }

static void append_byte(Buffer *buffer, char byte) { append(buffer, &byte, 1); }

// MARK: - UTF-8

static void append_utf8(Buffer *buffer, uint32_t scalar) {
    char encoded[4];
    size_t length;
    if (scalar < 0x80) {
        encoded[0] = (char)scalar, length = 1;
    } else if (scalar < 0x800) {
        encoded[0] = (char)(0xC0 | (scalar >> 6)), length = 2;
    } else if (scalar < 0x10000) {
        encoded[0] = (char)(0xE0 | (scalar >> 12)), length = 3;
    } else {
        encoded[0] = (char)(0xF0 | (scalar >> 18)), length = 4;
    }
    for (size_t index = 1; index < length; index++)
        encoded[index] = (char)(0x80 | ((scalar >> (6 * (length - 1 - index))) & 0x3F));
    append(buffer, encoded, length);
}

// Decodes one UTF-8 sequence at `bytes`; returns its length, or 0 when it is not valid UTF-8.
static size_t decode_utf8(const unsigned char *bytes, size_t available, uint32_t *scalar) {
    unsigned char lead = bytes[0];
    size_t length;
    uint32_t value, minimum;
    if (lead < 0x80) {
        *scalar = lead;
        return 1;
    } else if ((lead & 0xE0) == 0xC0) {
        length = 2, value = lead & 0x1F, minimum = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3, value = lead & 0x0F, minimum = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4, value = lead & 0x07, minimum = 0x10000;
    } else {
        return 0;
    }
    if (available < length) return 0;
    for (size_t index = 1; index < length; index++) {
        if ((bytes[index] & 0xC0) != 0x80) return 0;
        value = (value << 6) | (bytes[index] & 0x3F);
    }
    if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
    *scalar = value;
    return length;
}

// MARK: - Parser

typedef struct {
    const unsigned char *bytes;
    size_t length;
    size_t offset;
} Parser;

static int peek(Parser *parser) { return parser->offset < parser->length ? parser->bytes[parser->offset] : -1; }

static int is_digit(int byte) { return byte >= '0' && byte <= '9'; }

static void skip_space(Parser *parser) {
    for (int byte = peek(parser); byte == ' ' || byte == '\t' || byte == '\n' || byte == '\r'; byte = peek(parser))
        parser->offset++;
}

static void expect_literal(Parser *parser, const char *literal) {
    size_t length = text_length(literal);
    if (parser->length - parser->offset < length || compare_bytes(parser->bytes + parser->offset, literal, length) != 0)
        fail("invalid JSON literal");
    parser->offset += length;
}

static int read_hex4(Parser *parser, uint32_t *value) {
    if (parser->length - parser->offset < 4) return 0;
    uint32_t result = 0;
    for (int index = 0; index < 4; index++) {
        int byte = parser->bytes[parser->offset + index], digit;
        if (byte >= '0' && byte <= '9') {
            digit = byte - '0';
        } else if ((byte | 0x20) >= 'a' && (byte | 0x20) <= 'f') {
            digit = (byte | 0x20) - 'a' + 10;
        } else {
            return 0;
        }
        result = result * 16 + (uint32_t)digit;
    }
    parser->offset += 4;
    *value = result;
    return 1;
}

// An escape sequence after a backslash. Lone surrogates become U+FFFD, as in Go.
COLD static void parse_escape(Parser *parser, Buffer *decoded) {
    int escape = peek(parser);
    parser->offset++;
    uint32_t unit, low;
    switch (escape) {
    case '"': append_byte(decoded, '"'); return;
    case '\\': append_byte(decoded, '\\'); return;
    case '/': append_byte(decoded, '/'); return;
    case 'b': append_byte(decoded, '\b'); return;
    case 'f': append_byte(decoded, '\f'); return;
    case 'n': append_byte(decoded, '\n'); return;
    case 'r': append_byte(decoded, '\r'); return;
    case 't': append_byte(decoded, '\t'); return;
    case 'u': break;
    default: fail("invalid escape");
    }
    if (!read_hex4(parser, &unit)) fail("invalid \\u escape");
    if (unit >= 0xD800 && unit <= 0xDBFF) {
        size_t saved = parser->offset;
        if (parser->length - parser->offset >= 2 && parser->bytes[parser->offset] == '\\' &&
            parser->bytes[parser->offset + 1] == 'u') {
            parser->offset += 2;
            if (!read_hex4(parser, &low)) fail("invalid \\u escape");
            if (low >= 0xDC00 && low <= 0xDFFF) {
                append_utf8(decoded, 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00));
                return;
            }
            parser->offset = saved;
        }
        unit = 0xFFFD;
    } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
        unit = 0xFFFD;
    }
    append_utf8(decoded, unit);
}

// A non-ASCII sequence: copied when valid UTF-8, replaced by U+FFFD when not (as Go does).
COLD static void parse_non_ascii(Parser *parser, Buffer *decoded) {
    uint32_t scalar;
    size_t length = decode_utf8(parser->bytes + parser->offset, parser->length - parser->offset, &scalar);
    if (length == 0) {
        append_utf8(decoded, 0xFFFD);
        parser->offset++;
    } else {
        append(decoded, parser->bytes + parser->offset, length);
        parser->offset += length;
    }
}

static Text parse_string(Parser *parser) {
    if (peek(parser) != '"') fail("expected a string");
    parser->offset++;
    Buffer decoded = {0};
    for (;;) {
        // Copy the run of plain ASCII in one go.
        size_t start = parser->offset;
        while (parser->offset < parser->length) {
            unsigned char byte = parser->bytes[parser->offset];
            if (byte == '"' || byte == '\\' || byte < 0x20 || byte >= 0x80) break;
            parser->offset++;
        }
        append(&decoded, parser->bytes + start, parser->offset - start);
        int byte = peek(parser);
        parser->offset++;
        if (byte == '"') break;
        if (byte < 0x20) fail(byte < 0 ? "unterminated string" : "control character in string");
        if (byte == '\\') {
            parse_escape(parser, &decoded);
        } else {
            parser->offset--;
            parse_non_ascii(parser, &decoded);
        }
    }
    Text text = {decoded.bytes, decoded.length};
    return text;
}

static void skip_digits(Parser *parser, int at_least_one) {
    if (at_least_one && !is_digit(peek(parser))) fail("invalid number");
    while (is_digit(peek(parser))) parser->offset++;
}

// Checks a number's syntax and returns its lexeme; write_number converts it.
static Text parse_number(Parser *parser) {
    size_t start = parser->offset;
    if (peek(parser) == '-') parser->offset++;
    if (peek(parser) == '0') {
        parser->offset++;
    } else {
        skip_digits(parser, 1);
    }
    if (peek(parser) == '.') {
        parser->offset++;
        skip_digits(parser, 1);
    }
    if (peek(parser) == 'e' || peek(parser) == 'E') {
        parser->offset++;
        if (peek(parser) == '+' || peek(parser) == '-') parser->offset++;
        skip_digits(parser, 1);
    }
    Text lexeme = {(char *)parser->bytes + start, parser->offset - start};
    return lexeme;
}

static Node *parse_value(Parser *parser, int depth);

static Node *new_node(Kind kind) {
    Node *node = allocate(sizeof(Node));
    *node = (Node){0};
    node->kind = kind;
    return node;
}

// Parses a comma-separated sequence up to `close`; `element` parses one element into `node`.
static void parse_sequence(Parser *parser, Node *node, int depth, char close,
                           void (*element)(Parser *, Node *, int, size_t *)) {
    size_t capacity = 0;
    parser->offset++;
    skip_space(parser);
    if (peek(parser) == close) {
        parser->offset++;
        return;
    }
    for (;;) {
        element(parser, node, depth, &capacity);
        skip_space(parser);
        int byte = peek(parser);
        parser->offset++;
        if (byte == close) return;
        if (byte != ',') fail("expected ',' or the end of an array or object");
    }
}

COLD static void parse_item(Parser *parser, Node *node, int depth, size_t *capacity) {
    if (node->count == *capacity) {
        size_t larger = *capacity ? *capacity * 2 : 4;
        node->items = grow(node->items, node->count * sizeof(Node *), larger * sizeof(Node *));
        *capacity = larger;
    }
    node->items[node->count++] = parse_value(parser, depth + 1);
}

static void parse_member(Parser *parser, Node *node, int depth, size_t *capacity) {
    skip_space(parser);
    Text key = parse_string(parser);
    skip_space(parser);
    if (peek(parser) != ':') fail("expected ':'");
    parser->offset++;
    Node *value = parse_value(parser, depth + 1);
    if (node->count == *capacity) {
        size_t larger = *capacity ? *capacity * 2 : 8;
        node->members = grow(node->members, node->count * sizeof(Member), larger * sizeof(Member));
        *capacity = larger;
    }
    node->members[node->count++] = (Member){key, value};
}

static Node *parse_value(Parser *parser, int depth) {
    if (depth > MAX_DEPTH) fail("JSON nested too deeply");
    skip_space(parser);
    Node *node;
    switch (peek(parser)) {
    case '{':
        node = new_node(J_OBJECT);
        parse_sequence(parser, node, depth, '}', parse_member);
        return node;
    case '[':
        node = new_node(J_ARRAY);
        parse_sequence(parser, node, depth, ']', parse_item);
        return node;
    case '"':
        node = new_node(J_STRING);
        node->text = parse_string(parser);
        return node;
    case 't': expect_literal(parser, "true"); return new_node(J_TRUE);
    case 'f': expect_literal(parser, "false"); return new_node(J_FALSE);
    case 'n': expect_literal(parser, "null"); return new_node(J_NULL);
    default:
        node = new_node(J_NUMBER);
        node->text = parse_number(parser);
        return node;
    }
}

// MARK: - Objects as Go maps

static int compare_text(const Text *left, const Text *right) {
    size_t common = left->length < right->length ? left->length : right->length;
    int order = compare_bytes(left->bytes, right->bytes, common);
    if (order != 0) return order;
    return (left->length > right->length) - (left->length < right->length);
}

// A stable merge sort by key: members with the same key stay in input order.
static void sort_members(Member *members, size_t count, Member *scratch) {
    if (count < 2) return;
    size_t half = count / 2, left = 0, right = half, out = 0;
    sort_members(members, half, scratch);
    sort_members(members + half, count - half, scratch);
    while (left < half || right < count) {
        int take_right = left == half || (right < count && compare_text(&members[right].key, &members[left].key) < 0);
        scratch[out++] = take_right ? members[right++] : members[left++];
    }
    copy_bytes(members, scratch, count * sizeof(Member));
}

// Sorts members by key and keeps the last value of a repeated key: what a Go map does.
static void normalize_object(Node *node) {
    sort_members(node->members, node->count, allocate(node->count * sizeof(Member)));
    size_t kept = 0;
    for (size_t index = 0; index < node->count; index++) {
        if (kept > 0 && compare_text(&node->members[kept - 1].key, &node->members[index].key) == 0) kept--;
        node->members[kept++] = node->members[index];
    }
    node->count = kept;
}

static Node *string_node(const char *text) {
    Node *node = new_node(J_STRING);
    node->text = (Text){(char *)text, text_length(text)};
    return node;
}

static void set_member(Node *object, const char *key, Node *value) {
    object->members = grow(object->members, object->count * sizeof(Member), (object->count + 1) * sizeof(Member));
    object->members[object->count++] = (Member){{(char *)key, text_length(key)}, value};
}

// MARK: - Go-compatible output

// Whether Go's encoder writes this ASCII byte as it is (it escapes quotes, backslashes, control
// characters and, to be safe in HTML, <, > and &).
static int is_plain(unsigned char byte) {
    return byte >= 0x20 && byte < 0x80 && byte != '"' && byte != '\\' && byte != '<' && byte != '>' && byte != '&';
}

COLD static void write_escaped(Buffer *out, const unsigned char *bytes, size_t length, size_t *index) {
    static const char hex[] = "0123456789abcdef";
    unsigned char byte = bytes[*index];
    if (byte < 0x80) {
        const char *short_form = byte == '"'    ? "\\\""
                                 : byte == '\\' ? "\\\\"
                                 : byte == '\b' ? "\\b"
                                 : byte == '\f' ? "\\f"
                                 : byte == '\n' ? "\\n"
                                 : byte == '\r' ? "\\r"
                                 : byte == '\t' ? "\\t"
                                                : NULL;
        if (short_form) {
            append_text(out, short_form);
        } else {
            char escape[6] = {'\\', 'u', '0', '0', hex[byte >> 4], hex[byte & 0xF]};
            append(out, escape, 6);
        }
        (*index)++;
        return;
    }
    uint32_t scalar;
    size_t sequence = decode_utf8(bytes + *index, length - *index, &scalar);
    if (sequence == 0) {
        append_text(out, "\\ufffd");
        (*index)++;
    } else {
        if (scalar == 0x2028 || scalar == 0x2029) {
            append_text(out, scalar == 0x2028 ? "\\u2028" : "\\u2029");
        } else {
            append(out, bytes + *index, sequence);
        }
        *index += sequence;
    }
}

static void write_string(Buffer *out, const Text *text) {
    const unsigned char *bytes = (const unsigned char *)text->bytes;
    append_byte(out, '"');
    size_t index = 0;
    while (index < text->length) {
        size_t start = index;
        while (index < text->length && is_plain(bytes[index])) index++;
        append(out, bytes + start, index - start);
        if (index < text->length) write_escaped(out, bytes, text->length, &index);
    }
    append_byte(out, '"');
}

// The %e form Go uses outside [1e-6, 1e21): "1e-7", "1.5e+300" (at least two exponent digits,
// except that Go drops the zero of "e-07").
COLD static void write_exponent_form(Buffer *out, const char *digits, int digit_count, int exponent) {
    append_byte(out, digits[0]);
    if (digit_count > 1) {
        append_byte(out, '.');
        append(out, digits + 1, (size_t)digit_count - 1);
    }
    append_byte(out, 'e');
    append_byte(out, exponent < 0 ? '-' : '+');
    int magnitude = abs(exponent);
    char reversed[8];
    int length = 0;
    do {
        reversed[length++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    if (length < 2 && exponent > 0) reversed[length++] = '0';
    while (length > 0) append_byte(out, reversed[--length]);
}

// Writes the number 0.DIGITS × 10^point in Go's encoding/json float64 form: %f notation unless
// the magnitude is below 1e-6 or at least 1e21.
static void write_digits(Buffer *out, int negative, const char *digits, int digit_count, int point) {
    if (negative) append_byte(out, '-');
    if (digit_count == 0) {
        append_byte(out, '0');
    } else if (point - 1 < -6 || point - 1 >= 21) {
        write_exponent_form(out, digits, digit_count, point - 1);
    } else if (point <= 0) {
        append_text(out, "0.");
        for (int zero = 0; zero < -point; zero++) append_byte(out, '0');
        append(out, digits, (size_t)digit_count);
    } else if (point >= digit_count) {
        append(out, digits, (size_t)digit_count);
        for (int zero = 0; zero < point - digit_count; zero++) append_byte(out, '0');
    } else {
        append(out, digits, (size_t)point);
        append_byte(out, '.');
        append(out, digits + point, (size_t)(digit_count - point));
    }
}

// Slow path: convert to a double and find the shortest digits that round-trip, as Go does.
COLD static void write_double(Buffer *out, const Text *lexeme) {
    char *copy = allocate(lexeme->length + 1);
    copy_bytes(copy, lexeme->bytes, lexeme->length);
    copy[lexeme->length] = 0;
    double value = strtod(copy, NULL);
    if (isinf(value)) fail("number out of range");  // Go's decoder refuses these too
    char scratch[64];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(scratch, sizeof scratch, "%.*e", precision - 1, value);
        if (strtod(scratch, NULL) == value) break;
    }
    // scratch is "[-]d[.ddd]e[+-]XX"
    char digits[32];
    int digit_count = 0;
    const char *cursor = scratch;
    int negative = *cursor == '-';
    if (negative) cursor++;
    for (; *cursor && *cursor != 'e'; cursor++) {
        if (*cursor != '.') digits[digit_count++] = *cursor;
    }
    int exponent = atoi(cursor + 1);
    while (digit_count > 0 && digits[digit_count - 1] == '0') digit_count--;
    write_digits(out, negative, digits, digit_count, exponent + 1);
}

// A decimal with at most 15 significant digits is exactly what Go's shortest float64 formatting
// gives back for it (doubles hold 15 decimal digits), so such numbers are rewritten from their
// digits without floating point; longer or extreme ones take the slow path.
static void write_number(Buffer *out, const Text *lexeme) {
    const char *cursor = lexeme->bytes, *end = lexeme->bytes + lexeme->length;
    int negative = *cursor == '-';
    if (negative) cursor++;
    char digits[16];
    int digit_count = 0, point = 0, seen_point = 0;
    for (; cursor < end && *cursor != 'e' && *cursor != 'E'; cursor++) {
        if (*cursor == '.') {
            seen_point = 1;
        } else if (digit_count == 0 && *cursor == '0') {  // a leading zero
            point -= seen_point;
        } else {
            if (digit_count == 16) {
                write_double(out, lexeme);
                return;
            }
            digits[digit_count++] = *cursor;
            point += !seen_point;
        }
    }
    long exponent = 0;
    int exponent_negative = 0;
    if (cursor < end) {
        cursor++;
        exponent_negative = *cursor == '-';
        if (*cursor == '+' || *cursor == '-') cursor++;
        for (; cursor < end; cursor++) {
            if (exponent < 100000) exponent = exponent * 10 + (*cursor - '0');
        }
    }
    long scaled_point = point + (exponent_negative ? -exponent : exponent);
    while (digit_count > 0 && digits[digit_count - 1] == '0') digit_count--;
    if (digit_count > 15 || (digit_count > 0 && (scaled_point < -290 || scaled_point > 290))) {
        write_double(out, lexeme);
    } else {
        write_digits(out, negative, digits, digit_count, (int)scaled_point);
    }
}

static void write_value(Buffer *out, Node *node);

COLD static void write_array(Buffer *out, Node *node) {
    append_byte(out, '[');
    for (size_t index = 0; index < node->count; index++) {
        if (index) append_byte(out, ',');
        write_value(out, node->items[index]);
    }
    append_byte(out, ']');
}

static void write_value(Buffer *out, Node *node) {
    switch (node->kind) {
    case J_NULL: append_text(out, "null"); break;
    case J_FALSE: append_text(out, "false"); break;
    case J_TRUE: append_text(out, "true"); break;
    case J_NUMBER: write_number(out, &node->text); break;
    case J_STRING: write_string(out, &node->text); break;
    case J_ARRAY: write_array(out, node); break;
    case J_OBJECT:
        normalize_object(node);
        append_byte(out, '{');
        for (size_t index = 0; index < node->count; index++) {
            if (index) append_byte(out, ',');
            write_string(out, &node->members[index].key);
            append_byte(out, ':');
            write_value(out, node->members[index].value);
        }
        append_byte(out, '}');
        break;
    }
}

// MARK: - The transformation

// Go matches struct fields case-insensitively; so does this.
static int key_is(const Text *key, const char *name) {
    size_t length = text_length(name);
    if (key->length != length) return 0;
    for (size_t index = 0; index < length; index++) {
        char byte = key->bytes[index];
        if (byte >= 'A' && byte <= 'Z') byte = (char)(byte - 'A' + 'a');
        if (byte != name[index]) return 0;
    }
    return 1;
}

// Transforms one input envelope (`length` bytes at `bytes`) into the output document, including
// its final newline. Input the Go original refuses ends the module with status 1 (fail()).
static Buffer enrich(const char *bytes, size_t length) {
    Parser parser = {(const unsigned char *)bytes, length, 0};
    Node *request = parse_value(&parser, 0);
    skip_space(&parser);
    if (parser.offset != parser.length) fail("trailing data after the JSON value");
    if (request->kind != J_OBJECT) fail("input is not a JSON object");

    Node *payload = NULL, *headers = NULL;
    for (size_t index = 0; index < request->count; index++) {
        Member *member = &request->members[index];
        if (key_is(&member->key, "payload")) {
            payload = member->value;
        } else if (key_is(&member->key, "headers")) {
            headers = member->value;
        } else if (key_is(&member->key, "direction")) {
            if (member->value->kind != J_STRING && member->value->kind != J_NULL) fail("direction is not a string");
        }
    }
    if (!payload) fail("input has no payload");
    if (payload->kind != J_OBJECT) fail("payload is not a JSON object");
    if (!headers || headers->kind == J_NULL) {
        headers = new_node(J_OBJECT);
    } else if (headers->kind != J_OBJECT) {
        fail("headers is not an object");
    }
    for (size_t index = 0; index < headers->count; index++) {
        Node *value = headers->members[index].value;
        if (value->kind == J_NULL) {
            headers->members[index].value = string_node("");  // Go leaves a null header empty
        } else if (value->kind != J_STRING) {
            fail("header value is not a string");
        }
    }

    set_member(payload, "processed_by", string_node("wasm-module"));
    set_member(payload, "timestamp", string_node("2024-01-15T10:00:00Z"));
    set_member(headers, "X-WASM-Processed", string_node("true"));

    Buffer output = {0};
    append_text(&output, "{\"payload\":");
    write_value(&output, payload);
    append_text(&output, ",\"headers\":");
    write_value(&output, headers);
    append_text(&output, "}\n");
    return output;
}

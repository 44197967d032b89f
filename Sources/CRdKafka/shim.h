// Shim for librdkafka (Debian `librdkafka-dev`, pkg-config `rdkafka`).
//
// FisoKafka builds against the 2.0.2 headers and uses no function that is newer than them, so the
// same binary runs with any librdkafka 2.x at run time (the ABI of these functions is stable).
// The helpers below exist because Swift cannot call C variadic functions or import macros that
// contain casts.
#ifndef FISO_CRDKAFKA_SHIM_H
#define FISO_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stddef.h>

/// `RD_KAFKA_PARTITION_UA`: let the partitioner choose the partition.
static const int32_t fiso_rdk_partition_unassigned = -1;
/// `RD_KAFKA_OFFSET_BEGINNING`.
static const int64_t fiso_rdk_offset_beginning = -2;
/// `RD_KAFKA_OFFSET_END`.
static const int64_t fiso_rdk_offset_end = -1;
/// `RD_KAFKA_OFFSET_STORED`: use the group's committed offset.
static const int64_t fiso_rdk_offset_stored = -1000;
/// `RD_KAFKA_OFFSET_INVALID`: no offset (for example, nothing committed yet).
static const int64_t fiso_rdk_offset_invalid = -1001;

/// Produces one message with `rd_kafka_produceva`. Key and value are copied by librdkafka
/// (`RD_KAFKA_MSG_F_COPY`); `has_key`/`has_value` distinguish an empty key or value from none
/// (null). On success the headers (if any) are owned by librdkafka; on failure they still belong
/// to the caller. `partition < 0` lets the partitioner decide.
static inline rd_kafka_error_t *fiso_rdk_produce(rd_kafka_t *rk, const char *topic, int32_t partition,
                                                 const void *key, size_t key_length, int has_key,
                                                 const void *value, size_t value_length, int has_value,
                                                 rd_kafka_headers_t *headers, void *message_opaque) {
    static const char empty[1] = {0};
    rd_kafka_vu_t fields[7];
    size_t count = 0;
    fields[count].vtype = RD_KAFKA_VTYPE_TOPIC;
    fields[count++].u.cstr = topic;
    fields[count].vtype = RD_KAFKA_VTYPE_PARTITION;
    fields[count++].u.i32 = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
    fields[count].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    fields[count++].u.i = RD_KAFKA_MSG_F_COPY;
    if (has_key) {
        fields[count].vtype = RD_KAFKA_VTYPE_KEY;
        fields[count].u.mem.ptr = (void *)(key != NULL ? key : empty);
        fields[count++].u.mem.size = key_length;
    }
    if (has_value) {
        fields[count].vtype = RD_KAFKA_VTYPE_VALUE;
        fields[count].u.mem.ptr = (void *)(value != NULL ? value : empty);
        fields[count++].u.mem.size = value_length;
    }
    if (headers != NULL) {
        fields[count].vtype = RD_KAFKA_VTYPE_HEADERS;
        fields[count++].u.headers = headers;
    }
    fields[count].vtype = RD_KAFKA_VTYPE_OPAQUE;
    fields[count++].u.ptr = message_opaque;
    return rd_kafka_produceva(rk, fields, count);
}

#endif

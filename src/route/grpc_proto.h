/*
 * grpc_proto.h - JSON to protobuf without generated code, for the gRPC target.
 *
 * A route names a FileDescriptorSet (`protoc --include_imports --descriptor_set_out`) and a
 * method; the schema is read once when the configuration is built, and each record's JSON is
 * encoded into the method's input message by walking the descriptors. Accepted JSON follows
 * proto3's JSON mapping: fields by name or json_name, 64-bit integers as numbers or strings,
 * enums by name or number, bytes as base64, maps as objects, null as "not set". An unknown
 * field or a value of the wrong type is an error that names the field's path, such as
 * `items[2].price`. Well-known types (Timestamp, Any, wrappers) get no special JSON form.
 */
#ifndef FERRY_GRPC_PROTO_H
#define FERRY_GRPC_PROTO_H

#include <stddef.h>

#include "core/buf.h"

/* The largest descriptor set file read, and the deepest nesting of messages encoded. */
#define FERRY_GRPC_PROTO_DESCRIPTOR_MAX (16u * 1024 * 1024)
#define FERRY_GRPC_PROTO_DEPTH_MAX 64

typedef struct ferry_grpc_proto_s ferry_grpc_proto;

/* Parses a serialized FileDescriptorSet. Returns the schema (the caller frees it with
 * ferry_grpc_proto_destroy()), or NULL with a message in errstr. */
ferry_grpc_proto *ferry_grpc_proto_new(const void *data, size_t len, char *errstr,
                                       size_t errstr_size);

/* Reads and parses a FileDescriptorSet file; same result as ferry_grpc_proto_new(). */
ferry_grpc_proto *ferry_grpc_proto_load(const char *path, char *errstr, size_t errstr_size);

/* Frees the schema. Accepts NULL. */
void ferry_grpc_proto_destroy(ferry_grpc_proto *proto);

/* Finds "package.Service/Method". Returns 0 and points *input_type at the fully qualified
 * input message name (".package.Request", owned by the schema), or -1 with a message in
 * errstr when the service or method is unknown. */
int ferry_grpc_proto_method(const ferry_grpc_proto *proto, const char *method,
                            const char **input_type, int *client_streaming, char *errstr,
                            size_t errstr_size);

/* ferry_grpc_proto_encode(): out's cap was reached (the input may be fine). */
#define FERRY_GRPC_PROTO_FULL (-2)

/* Encodes the JSON object json[0..len) as the message named type (fully qualified, with or
 * without the leading dot) and appends it to out. Returns 0; -1 with a message naming the
 * field path in errstr; or FERRY_GRPC_PROTO_FULL when out's cap was reached. On an error out
 * is as it was. Reads the schema only: any thread may call it. */
int ferry_grpc_proto_encode(const ferry_grpc_proto *proto, const char *type, const char *json,
                            size_t len, struct ferry_buf *out, char *errstr, size_t errstr_size);

#endif

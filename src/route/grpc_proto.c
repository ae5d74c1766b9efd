/*
 * grpc_proto.c - JSON to protobuf encoding driven by a FileDescriptorSet.
 *
 * The set is unpacked with protobuf-c's bindings for descriptor.proto (generated at build
 * time from the system's copy), and every message and enum in it, nested ones included, goes
 * into one table sorted by fully qualified name, because descriptors name field types that
 * way (".package.Outer.Inner"). Encoding walks the JSON tree (jansson) beside the message's
 * field list and writes the wire format directly: varints, zigzag, fixed 32/64-bit values and
 * length-delimited strings, bytes and sub-messages, the latter encoded into a scratch buffer
 * first since their length comes before them. Repeated numeric fields are packed as proto3
 * does by default (proto2 only when asked with [packed = true]); parsers accept both.
 *
 * Well-known types take their proto3 JSON forms: a Timestamp is an RFC 3339 string, a Duration
 * "1.5s", a wrapper (Int64Value, StringValue...) its bare value, a Struct any JSON object, a
 * Value any JSON value, a ListValue any array, a FieldMask "a.b,fooBar". Their field numbers
 * are fixed by google/protobuf's .proto files, so they are written here without a look at the
 * set (a wrapper's single field excepted).
 */
#include "route/grpc_proto.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "route/grpc_wkt.h"

typedef Google__Protobuf__FieldDescriptorProto field_desc;
typedef Google__Protobuf__DescriptorProto message_desc;
typedef Google__Protobuf__EnumDescriptorProto enum_desc;

/* The longest field path kept for error messages; longer ones are cut. */
#define PATH_MAX_LEN 256
/* The most of it an error message shows. */
#define PATH_SHOWN 100

enum wire_type { WIRE_VARINT = 0, WIRE_64BIT = 1, WIRE_LEN = 2, WIRE_32BIT = 5 };

struct type_entry {
    char *name; /* ".package.Message" */
    const message_desc *msg;
    const enum_desc *en;
    int proto3;
};

struct ferry_grpc_proto_s {
    Google__Protobuf__FileDescriptorSet *set;
    struct type_entry *types;
    size_t n_types, cap_types;
};

/* One encoding in progress: where the error goes and the path of the field being encoded. */
struct enc {
    const ferry_grpc_proto *proto;
    char path[PATH_MAX_LEN];
    size_t path_len;
    int depth;
    char *errstr;
    size_t errstr_size;
};

/* ---- the type table ---- */

static int add_type(ferry_grpc_proto *p, const char *scope, const char *name,
                    const message_desc *msg, const enum_desc *en, int proto3)
{
    struct type_entry *t;
    if (p->n_types == p->cap_types) {
        size_t cap = p->cap_types ? p->cap_types * 2 : 64;
        struct type_entry *grown = realloc(p->types, cap * sizeof(*grown));
        if (!grown)
            return -1;
        p->types = grown;
        p->cap_types = cap;
    }
    t = &p->types[p->n_types];
    if (asprintf(&t->name, "%s.%s", scope, name) < 0)
        return -1;
    t->msg = msg;
    t->en = en;
    t->proto3 = proto3;
    p->n_types++;
    return 0;
}

/* Adds m and its enums under scope; add_nested() adds its nested messages. */
static int add_message(ferry_grpc_proto *p, const char *scope, const message_desc *m, int proto3)
{
    char full[512];
    if (add_type(p, scope, m->name, m, NULL, proto3))
        return -1;
    snprintf(full, sizeof(full), "%s.%s", scope, m->name);
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (add_type(p, full, m->enum_type[i]->name, NULL, m->enum_type[i], proto3))
            return -1;
    return 0;
}

static int add_nested(ferry_grpc_proto *p, const char *scope, const message_desc *m, int proto3);

static int add_file(ferry_grpc_proto *p, const Google__Protobuf__FileDescriptorProto *f)
{
    char scope[512] = "";
    int proto3 = f->syntax && strcmp(f->syntax, "proto3") == 0;
    if (f->package && *f->package)
        snprintf(scope, sizeof(scope), ".%s", f->package);
    for (size_t i = 0; i < f->n_enum_type; i++)
        if (add_type(p, scope, f->enum_type[i]->name, NULL, f->enum_type[i], proto3))
            return -1;
    for (size_t i = 0; i < f->n_message_type; i++)
        if (add_nested(p, scope, f->message_type[i], proto3))
            return -1;
    return 0;
}

/* Adds m, its enums and, recursively, its nested messages under scope. */
static int add_nested(ferry_grpc_proto *p, const char *scope, const message_desc *m, int proto3)
{
    char full[512];
    if (add_message(p, scope, m, proto3))
        return -1;
    snprintf(full, sizeof(full), "%s.%s", scope, m->name);
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (add_nested(p, full, m->nested_type[i], proto3))
            return -1;
    return 0;
}

/* ---- names a hand-made set may leave out ---- */

/* descriptor.proto makes every name optional; protoc always writes them, and the code here
 * reads them without looking, so a set that lacks one is refused when it is loaded. */
static int enum_named(const enum_desc *en)
{
    if (!en->name)
        return 0;
    for (size_t i = 0; i < en->n_value; i++)
        if (!en->value[i]->name)
            return 0;
    return 1;
}

static int message_named(const message_desc *m)
{
    if (!m->name)
        return 0;
    for (size_t i = 0; i < m->n_field; i++)
        if (!m->field[i]->name)
            return 0;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (!enum_named(m->enum_type[i]))
            return 0;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (!message_named(m->nested_type[i]))
            return 0;
    return 1;
}

static int file_named(const Google__Protobuf__FileDescriptorProto *f)
{
    for (size_t i = 0; i < f->n_enum_type; i++)
        if (!enum_named(f->enum_type[i]))
            return 0;
    for (size_t i = 0; i < f->n_message_type; i++)
        if (!message_named(f->message_type[i]))
            return 0;
    for (size_t i = 0; i < f->n_service; i++) {
        if (!f->service[i]->name)
            return 0;
        for (size_t j = 0; j < f->service[i]->n_method; j++)
            if (!f->service[i]->method[j]->name)
                return 0;
    }
    return 1;
}

static int type_cmp(const void *a, const void *b)
{
    return strcmp(((const struct type_entry *)a)->name, ((const struct type_entry *)b)->name);
}

static const struct type_entry *find_type(const ferry_grpc_proto *p, const char *name)
{
    struct type_entry key = {.name = (char *)name};

    /* A hand-made set may leave a field's type name out, and a set of services only has no
     * array to search (bsearch on NULL is undefined). */
    if (!name || !p->n_types)
        return NULL;
    return bsearch(&key, p->types, p->n_types, sizeof(key), type_cmp);
}

ferry_grpc_proto *ferry_grpc_proto_new(const void *data, size_t len, char *errstr,
                                       size_t errstr_size)
{
    ferry_grpc_proto *p = calloc(1, sizeof(*p));
    int result = -1;
    if (!p) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    p->set = google__protobuf__file_descriptor_set__unpack(NULL, len, data);
    if (!p->set) {
        snprintf(errstr, errstr_size, "not a FileDescriptorSet (protoc --descriptor_set_out)");
        goto out;
    }
    for (size_t i = 0; i < p->set->n_file; i++) {
        if (!file_named(p->set->file[i])) {
            snprintf(errstr, errstr_size, "file %zu of the set has a descriptor without a name", i);
            goto out;
        }
        if (add_file(p, p->set->file[i])) {
            snprintf(errstr, errstr_size, "out of memory");
            goto out;
        }
    }
    if (p->n_types)
        qsort(p->types, p->n_types, sizeof(*p->types), type_cmp);
    result = 0;
out:
    if (result) {
        ferry_grpc_proto_destroy(p);
        return NULL;
    }
    return p;
}

ferry_grpc_proto *ferry_grpc_proto_load(const char *path, char *errstr, size_t errstr_size)
{
    ferry_grpc_proto *p = NULL;
    struct ferry_buf b;
    char chunk[8192];
    size_t n;
    FILE *f = fopen(path, "rb");
    ferry_buf_init(&b, FERRY_GRPC_PROTO_DESCRIPTOR_MAX);
    if (!f) {
        snprintf(errstr, errstr_size, "cannot open '%s': %s", path, strerror(errno));
        goto out;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (ferry_buf_add(&b, chunk, n)) {
            snprintf(errstr, errstr_size, "'%s': larger than %u bytes", path,
                     FERRY_GRPC_PROTO_DESCRIPTOR_MAX);
            goto out;
        }
    }
    if (ferror(f)) {
        snprintf(errstr, errstr_size, "cannot read '%s': %s", path, strerror(errno));
        goto out;
    }
    p = ferry_grpc_proto_new(b.data ? b.data : "", b.len, errstr, errstr_size);
out:
    if (f)
        fclose(f);
    ferry_buf_release(&b);
    return p;
}

void ferry_grpc_proto_destroy(ferry_grpc_proto *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_types; i++)
        free(p->types[i].name);
    free(p->types);
    if (p->set)
        google__protobuf__file_descriptor_set__free_unpacked(p->set, NULL);
    free(p);
}

static const Google__Protobuf__MethodDescriptorProto *
find_method(const Google__Protobuf__FileDescriptorProto *f, const char *service, size_t svc_len,
            const char *method)
{
    for (size_t i = 0; i < f->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = f->service[i];
        char full[512];
        if (f->package && *f->package)
            snprintf(full, sizeof(full), "%s.%s", f->package, s->name);
        else
            snprintf(full, sizeof(full), "%s", s->name);
        if (strlen(full) != svc_len || memcmp(full, service, svc_len) != 0)
            continue;
        for (size_t j = 0; j < s->n_method; j++)
            if (strcmp(s->method[j]->name, method) == 0)
                return s->method[j];
    }
    return NULL;
}

int ferry_grpc_proto_method(const ferry_grpc_proto *p, const char *method, const char **input_type,
                            int *client_streaming, char *errstr, size_t errstr_size)
{
    const char *slash = strchr(method, '/');
    if (!slash || slash == method || !slash[1]) {
        snprintf(errstr, errstr_size, "'%s': expected package.Service/Method", method);
        return -1;
    }
    for (size_t i = 0; i < p->set->n_file; i++) {
        const Google__Protobuf__MethodDescriptorProto *m =
            find_method(p->set->file[i], method, (size_t)(slash - method), slash + 1);
        if (!m)
            continue;
        if (!m->input_type || !find_type(p, m->input_type)) {
            snprintf(errstr, errstr_size, "'%s': input type '%s' is not in the descriptor set",
                     method, m->input_type ? m->input_type : "");
            return -1;
        }
        *input_type = m->input_type;
        *client_streaming = m->has_client_streaming && m->client_streaming;
        return 0;
    }
    snprintf(errstr, errstr_size, "'%s': no such method in the descriptor set", method);
    return -1;
}

/* ---- wire format ---- */

static int put_varint(struct ferry_buf *out, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    return ferry_buf_add(out, b, n);
}

static int put_fixed(struct ferry_buf *out, uint64_t v, size_t n)
{
    unsigned char b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return ferry_buf_add(out, b, n);
}

static int put_tag(struct ferry_buf *out, int32_t number, enum wire_type w)
{
    return put_varint(out, ((uint64_t)(uint32_t)number << 3) | (uint64_t)w);
}

static int put_len(struct ferry_buf *out, const void *data, size_t n)
{
    if (put_varint(out, n))
        return -1;
    return ferry_buf_add(out, data, n);
}

/* ---- errors and paths ---- */

static int fail(struct enc *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct enc *e, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (e->path_len > PATH_SHOWN) /* keep both ends of a deep path */
        snprintf(e->errstr, e->errstr_size, "%.*s...%s: %s", PATH_SHOWN / 2, e->path,
                 e->path + e->path_len - PATH_SHOWN / 2, msg);
    else if (e->path_len)
        snprintf(e->errstr, e->errstr_size, "%s: %s", e->path, msg);
    else
        snprintf(e->errstr, e->errstr_size, "%s", msg);
    return -1;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static size_t path_push(struct enc *e, const char *fmt, const char *s, size_t i)
{
    size_t mark = e->path_len;
    int n;
    if (fmt[0] == '.')
        n = snprintf(e->path + mark, sizeof(e->path) - mark, mark ? ".%s" : "%s", s);
    else if (s)
        n = snprintf(e->path + mark, sizeof(e->path) - mark, "[\"%s\"]", s);
    else
        n = snprintf(e->path + mark, sizeof(e->path) - mark, "[%zu]", i);
    if (n > 0)
        e->path_len = mark + (size_t)n < sizeof(e->path) ? mark + (size_t)n : sizeof(e->path) - 1;
    return mark;
}

static void path_pop(struct enc *e, size_t mark)
{
    e->path_len = mark;
    e->path[mark] = '\0';
}

/* ---- scalar values ---- */

/* Whether s starts as a decimal integer (of a signed field when minus): strtoll and strtoull
 * would take leading blanks and a sign, and strtoull a minus, which wraps. */
static int starts_decimal(const char *s, int minus)
{
    if (minus && s[0] == '-')
        s++;
    return s[0] >= '0' && s[0] <= '9';
}

static int parse_i64(struct enc *e, const json_t *v, int64_t min, int64_t max, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
            return fail(e, "expected an integer, got %s", "a fraction");
        *out = (int64_t)d;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        *out = strtoll(s, &end, 10);
        if (!starts_decimal(s, 1) || *end || errno)
            return fail(e, "expected an integer, got '%s'", s);
    } else {
        return fail(e, "expected an integer, got %s", json_kind(v));
    }
    if (*out < min || *out > max)
        return fail(e, "integer out of range for %s", min < 0 ? "a signed field" : "the field");
    return 0;
}

static int parse_u64(struct enc *e, const json_t *v, uint64_t max, uint64_t *out)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        *out = strtoull(s, &end, 10);
        if (!starts_decimal(s, 0) || *end || errno)
            return fail(e, "expected an unsigned integer, got '%s'", s);
    } else {
        int64_t i;
        if (parse_i64(e, v, 0, INT64_MAX, &i))
            return -1;
        *out = (uint64_t)i;
    }
    if (*out > max)
        return fail(e, "integer out of range for %s", "the field");
    return 0;
}

/* Whether s is a number as JSON writes one: strtod would also take leading blanks, a plus,
 * hexadecimal ("0x1p3") and "inf", which protobuf's JSON mapping does not. */
static int is_json_number(const char *s)
{
    const char *digits = "0123456789";

    s += *s == '-';
    if (!isdigit((unsigned char)*s))
        return 0;
    s += strspn(s, digits);
    if (*s == '.') {
        if (!isdigit((unsigned char)*++s))
            return 0;
        s += strspn(s, digits);
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        s += *s == '+' || *s == '-';
        if (!isdigit((unsigned char)*s))
            return 0;
        s += strspn(s, digits);
    }
    return *s == '\0';
}

static int parse_double(struct enc *e, const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        if (strcmp(s, "NaN") == 0) {
            *out = NAN;
            return 0;
        }
        if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) {
            *out = s[0] == '-' ? -INFINITY : INFINITY;
            return 0;
        }
        errno = 0;
        *out = strtod(s, &end);
        if (is_json_number(s) && !*end && !errno && isfinite(*out))
            return 0;
        return fail(e, "expected a number, got '%s'", s);
    }
    return fail(e, "expected a number, got %s", json_kind(v));
}

static int enum_number(struct enc *e, const field_desc *f, const json_t *v, int64_t *out)
{
    const struct type_entry *t = find_type(e->proto, f->type_name);
    const char *name;
    if (!json_is_string(v))
        return parse_i64(e, v, INT32_MIN, INT32_MAX, out);
    name = json_string_value(v);
    for (size_t i = 0; t && t->en && i < t->en->n_value; i++) {
        if (strcmp(t->en->value[i]->name, name) == 0) {
            *out = t->en->value[i]->number;
            return 0;
        }
    }
    return fail(e, "unknown enum value '%s'", name);
}

static int is_packable(const field_desc *f)
{
    switch (f->type) {
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP:
        return 0;
    default:
        return 1;
    }
}

static enum wire_type scalar_wire(const field_desc *f)
{
    switch (f->type) {
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64:
        return WIRE_64BIT;
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32:
        return WIRE_32BIT;
    default:
        return WIRE_VARINT;
    }
}

static int put_float_value(struct enc *e, const field_desc *f, const json_t *v,
                           struct ferry_buf *out)
{
    double d = 0;
    if (parse_double(e, v, &d))
        return -1;
    if (f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT) {
        float fl;
        if (isfinite(d) && fabs(d) > FLT_MAX)
            return fail(e, "number out of range for a float");
        fl = (float)d;
        uint32_t bits;
        memcpy(&bits, &fl, sizeof(bits));
        return put_fixed(out, bits, 4);
    }
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return put_fixed(out, bits, 8);
}

static int put_bool_value(struct enc *e, const json_t *v, struct ferry_buf *out)
{
    if (!json_is_boolean(v))
        return fail(e, "expected a boolean, got %s", json_kind(v));
    return put_varint(out, json_is_true(v) ? 1 : 0);
}

/* Appends the value of a numeric, bool or enum field, without its tag. */
static int put_scalar_value(struct enc *e, const field_desc *f, const json_t *v,
                            struct ferry_buf *out)
{
    int64_t i;
    uint64_t u;
    switch (f->type) {
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT:
        return put_float_value(e, f, v, out);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL:
        return put_bool_value(e, v, out);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM:
        return enum_number(e, f, v, &i) ? -1 : put_varint(out, (uint64_t)i);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32:
        return parse_i64(e, v, INT32_MIN, INT32_MAX, &i) ? -1 : put_varint(out, (uint64_t)i);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64:
        return parse_i64(e, v, INT64_MIN, INT64_MAX, &i) ? -1 : put_varint(out, (uint64_t)i);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64: {
        int is32 = f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32;
        if (parse_i64(e, v, is32 ? INT32_MIN : INT64_MIN, is32 ? INT32_MAX : INT64_MAX, &i))
            return -1;
        return put_varint(out, ((uint64_t)i << 1) ^ (uint64_t)(i >> 63));
    }
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32:
        return parse_i64(e, v, INT32_MIN, INT32_MAX, &i) ? -1 : put_fixed(out, (uint64_t)i, 4);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64:
        return parse_i64(e, v, INT64_MIN, INT64_MAX, &i) ? -1 : put_fixed(out, (uint64_t)i, 8);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32:
        return parse_u64(e, v, UINT32_MAX, &u) ? -1 : put_varint(out, u);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64:
        return parse_u64(e, v, UINT64_MAX, &u) ? -1 : put_varint(out, u);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32:
        return parse_u64(e, v, UINT32_MAX, &u) ? -1 : put_fixed(out, u, 4);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64:
        return parse_u64(e, v, UINT64_MAX, &u) ? -1 : put_fixed(out, u, 8);
    default:
        return fail(e, "field type %s is not supported", "group");
    }
}

/* ---- messages ---- */

static int encode_message(struct enc *e, const struct type_entry *t, const json_t *obj,
                          struct ferry_buf *out);

static int put_bytes_value(struct enc *e, const json_t *v, struct ferry_buf *out)
{
    char *copy;
    size_t len, n;
    int result;
    if (!json_is_string(v))
        return fail(e, "expected base64 in a string, got %s", json_kind(v));
    len = json_string_length(v);
    copy = malloc(len + 1);
    if (!copy)
        return fail(e, "%s", "out of memory");
    memcpy(copy, json_string_value(v), len);
    result = ferry_base64_decode(copy, len, FERRY_BASE64_EITHER, &n);
    if (result)
        result = fail(e, "%s", "expected base64");
    else
        result = put_len(out, copy, n);
    free(copy);
    return result;
}

/* ---- well-known types ---- */

/* Field numbers of google/protobuf's messages. */
enum {
    WKT_SECONDS = 1, /* Timestamp and Duration */
    WKT_NANOS = 2,
    WKT_STRUCT_FIELDS = 1, /* Struct: map<string, Value> */
    WKT_ENTRY_KEY = 1,     /* a map entry's */
    WKT_ENTRY_VALUE = 2,
    WKT_VALUE_NULL = 1,
    WKT_VALUE_NUMBER = 2,
    WKT_VALUE_STRING = 3,
    WKT_VALUE_BOOL = 4,
    WKT_VALUE_STRUCT = 5,
    WKT_VALUE_LIST = 6,
    WKT_LIST_VALUES = 1,
    WKT_MASK_PATHS = 1,
    WKT_ANY_TYPE_URL = 1,
    WKT_ANY_VALUE = 2,
};

#define WKT_PACKAGE ".google.protobuf."
#define WKT_VALUE WKT_PACKAGE "Value"

typedef int (*wkt_encoder)(struct enc *e, const struct type_entry *t, const json_t *v,
                           struct ferry_buf *out);

static int put_field(struct enc *e, const field_desc *f, const json_t *v, struct ferry_buf *out);

/* Encodes v with put into a scratch buffer, then appends it to out as field number's bytes.
 * level is 1 when v is a JSON object or array one level down (it counts towards the depth
 * limit), 0 when it is the same JSON value in another message (a Struct entry's Value). */
static int put_sub(struct enc *e, int32_t number, wkt_encoder put, const struct type_entry *t,
                   const json_t *v, int level, struct ferry_buf *out)
{
    struct ferry_buf sub;
    int result;
    e->depth += level;
    if (e->depth > FERRY_GRPC_PROTO_DEPTH_MAX)
        return fail(e, "nested deeper than %d levels", FERRY_GRPC_PROTO_DEPTH_MAX);
    ferry_buf_init(&sub, out->cap);
    result = put(e, t, v, &sub);
    if (!result)
        result = put_tag(out, number, WIRE_LEN) || put_len(out, sub.data ? sub.data : "", sub.len);
    ferry_buf_release(&sub);
    e->depth -= level;
    return result ? -1 : 0;
}

/* Seconds and nanos, each left out when zero as proto3 does. */
static int put_seconds_nanos(struct ferry_buf *out, int64_t seconds, int32_t nanos)
{
    if (seconds && (put_tag(out, WKT_SECONDS, WIRE_VARINT) || put_varint(out, (uint64_t)seconds)))
        return -1;
    if (nanos &&
        (put_tag(out, WKT_NANOS, WIRE_VARINT) || put_varint(out, (uint64_t)(int64_t)nanos)))
        return -1;
    return 0;
}

/* A Timestamp or a Duration from its JSON text, read by parse (grpc_wkt.h); expected says what
 * a value of another JSON type should have been. */
static int put_time_text(struct enc *e, const json_t *v,
                         int (*parse)(const char *, size_t, int64_t *, int32_t *, const char **),
                         const char *expected, struct ferry_buf *out)
{
    int64_t seconds;
    int32_t nanos;
    const char *why;
    if (!json_is_string(v))
        return fail(e, "expected %s in a string, got %s", expected, json_kind(v));
    if (parse(json_string_value(v), json_string_length(v), &seconds, &nanos, &why))
        return fail(e, "%s, got '%s'", why, json_string_value(v));
    return put_seconds_nanos(out, seconds, nanos);
}

static int put_timestamp(struct enc *e, const struct type_entry *t, const json_t *v,
                         struct ferry_buf *out)
{
    (void)t;
    return put_time_text(e, v, ferry_grpc_wkt_timestamp, "an RFC 3339 time", out);
}

static int put_duration(struct enc *e, const struct type_entry *t, const json_t *v,
                        struct ferry_buf *out)
{
    (void)t;
    return put_time_text(e, v, ferry_grpc_wkt_duration, "a duration like \"1.5s\"", out);
}

/* A wrapper's one field: "value", number 1, a single scalar. A set that defines a wrapper
 * otherwise (say, with a message field of its own type) is refused, not followed. */
static const field_desc *wrapper_field(const struct type_entry *t)
{
    const field_desc *f = t->msg->n_field == 1 ? t->msg->field[0] : NULL;
    if (!f || f->number != 1 ||
        f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED ||
        f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE ||
        f->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_GROUP)
        return NULL;
    return f;
}

/* Whether an encoded wrapper field (a one-byte tag, field 1, then its value) holds proto3's
 * zero, which is left out: a zero varint, an all-zero fixed value (+0.0, not -0.0) or an empty
 * string or bytes all encode as zero bytes only. */
static int is_zero_field(const struct ferry_buf *field)
{
    for (size_t i = 1; i < field->len; i++)
        if (field->data[i])
            return 0;
    return 1;
}

/* A wrapper (DoubleValue ... BytesValue) is its field "value", written as a bare value. */
static int put_wrapper(struct enc *e, const struct type_entry *t, const json_t *v,
                       struct ferry_buf *out)
{
    const field_desc *f = wrapper_field(t);
    struct ferry_buf field;
    int result;
    if (!f)
        return fail(e, "%s in the descriptor set is not a wrapper", t->name + 1);
    ferry_buf_init(&field, out->cap);
    result = put_field(e, f, v, &field);
    if (!result && !is_zero_field(&field))
        result = ferry_buf_add(out, field.data, field.len) ? -1 : 0;
    ferry_buf_release(&field);
    return result;
}

static int put_struct(struct enc *e, const struct type_entry *t, const json_t *v,
                      struct ferry_buf *out);
static int put_list(struct enc *e, const struct type_entry *t, const json_t *v,
                    struct ferry_buf *out);

/* A Value: whichever of its kinds the JSON value is; a null is NULL_VALUE, not absent. */
static int put_value(struct enc *e, const struct type_entry *t, const json_t *v,
                     struct ferry_buf *out)
{
    double d;
    uint64_t bits;
    int result;
    switch (json_typeof(v)) {
    case JSON_NULL:
        result = put_tag(out, WKT_VALUE_NULL, WIRE_VARINT) || put_varint(out, 0);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        result = put_tag(out, WKT_VALUE_BOOL, WIRE_VARINT) || put_varint(out, json_is_true(v));
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        d = json_number_value(v);
        memcpy(&bits, &d, sizeof(bits));
        result = put_tag(out, WKT_VALUE_NUMBER, WIRE_64BIT) || put_fixed(out, bits, 8);
        break;
    case JSON_STRING:
        result = put_tag(out, WKT_VALUE_STRING, WIRE_LEN) ||
                 put_len(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_OBJECT:
        result = put_sub(e, WKT_VALUE_STRUCT, put_struct, t, v, 1, out);
        break;
    case JSON_ARRAY:
        result = put_sub(e, WKT_VALUE_LIST, put_list, t, v, 1, out);
        break;
    default:
        result = fail(e, "%s", "unknown JSON value");
    }
    return result ? -1 : 0;
}

/* One entry of a Struct's map: the key, then the Value. */
static int put_struct_entry(struct enc *e, const struct type_entry *t, const char *key,
                            const json_t *v, struct ferry_buf *out)
{
    struct ferry_buf entry;
    int result;
    ferry_buf_init(&entry, out->cap);
    result = put_tag(&entry, WKT_ENTRY_KEY, WIRE_LEN) || put_len(&entry, key, strlen(key)) ||
             put_sub(e, WKT_ENTRY_VALUE, put_value, t, v, 0, &entry);
    if (!result)
        result = put_tag(out, WKT_STRUCT_FIELDS, WIRE_LEN) ||
                 put_len(out, entry.data ? entry.data : "", entry.len);
    ferry_buf_release(&entry);
    return result ? -1 : 0;
}

static int put_struct(struct enc *e, const struct type_entry *t, const json_t *v,
                      struct ferry_buf *out)
{
    const char *key;
    json_t *item;
    if (!json_is_object(v))
        return fail(e, "expected an object, got %s", json_kind(v));
    json_object_foreach((json_t *)v, key, item)
    {
        size_t mark = path_push(e, ".", key, 0);
        if (put_struct_entry(e, t, key, item, out))
            return -1;
        path_pop(e, mark);
    }
    return 0;
}

static int put_list(struct enc *e, const struct type_entry *t, const json_t *v,
                    struct ferry_buf *out)
{
    if (!json_is_array(v))
        return fail(e, "expected an array, got %s", json_kind(v));
    for (size_t i = 0; i < json_array_size(v); i++) {
        size_t mark = path_push(e, "[", NULL, i);
        if (put_sub(e, WKT_LIST_VALUES, put_value, t, json_array_get(v, i), 0, out))
            return -1;
        path_pop(e, mark);
    }
    return 0;
}

/* Appends one path of a FieldMask's JSON form in snake case: "user.displayName" is written as
 * "user.display_name". A path with "_" in it has no JSON form. */
static int put_mask_path(struct enc *e, const char *p, size_t n, struct ferry_buf *out)
{
    struct ferry_buf path;
    int result = 0;
    ferry_buf_init(&path, out->cap);
    for (size_t i = 0; i < n && !result; i++) {
        if (p[i] == '_')
            result = fail(e, "field mask path '%.*s' has an underscore: write it in lowerCamelCase",
                          (int)n, p);
        else if (p[i] >= 'A' && p[i] <= 'Z')
            result = ferry_buf_addc(&path, '_') || ferry_buf_addc(&path, (char)(p[i] - 'A' + 'a'));
        else
            result = ferry_buf_addc(&path, p[i]);
    }
    if (!result)
        result = put_tag(out, WKT_MASK_PATHS, WIRE_LEN) ||
                 put_len(out, path.data ? path.data : "", path.len);
    ferry_buf_release(&path);
    return result ? -1 : 0;
}

static int put_field_mask(struct enc *e, const struct type_entry *t, const json_t *v,
                          struct ferry_buf *out)
{
    const char *p, *end, *comma;
    (void)t;
    if (!json_is_string(v))
        return fail(e, "expected field paths like \"a.b,c\" in a string, got %s", json_kind(v));
    p = json_string_value(v);
    end = p + json_string_length(v);
    if (p == end)
        return 0; /* no paths */
    for (;;) {    /* every path between commas, empty ones too ("a," is "a" and "") */
        comma = memchr(p, ',', (size_t)(end - p));
        if (put_mask_path(e, p, (size_t)((comma ? comma : end) - p), out))
            return -1;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int encode_typed(struct enc *e, const struct type_entry *t, const json_t *v,
                        struct ferry_buf *out);
static wkt_encoder find_wkt(const char *type_name);

/* The message an Any holds, named by its "@type" URL's last segment, encoded into out. A
 * well-known type's JSON form is the "value" member; any other type's fields are the object's
 * other members. */
static int put_any_payload(struct enc *e, const char *url, const json_t *v, struct ferry_buf *out)
{
    const char *slash = strrchr(url, '/');
    const struct type_entry *t;
    json_t *fields;
    char name[512];
    int result;
    snprintf(name, sizeof(name), ".%s", slash ? slash + 1 : url);
    t = find_type(e->proto, name);
    if (!t || !t->msg)
        return fail(e, "@type '%s' is not in the descriptor set", url);
    if (find_wkt(t->name)) {
        if (!json_object_get(v, "value"))
            return fail(e, "expected \"value\" with the %s", t->name + 1);
        return encode_typed(e, t, json_object_get(v, "value"), out);
    }
    fields = json_copy((json_t *)v);
    if (!fields)
        return fail(e, "%s", "out of memory");
    json_object_del(fields, "@type");
    result = encode_typed(e, t, fields, out);
    json_decref(fields);
    return result;
}

/* An Any: {"@type": "type.googleapis.com/package.Message", ...the message's fields}. */
static int put_any(struct enc *e, const struct type_entry *t, const json_t *v,
                   struct ferry_buf *out)
{
    const json_t *type = json_object_get(v, "@type");
    struct ferry_buf payload;
    const char *url;
    int result;
    (void)t;
    if (!json_is_object(v))
        return fail(e, "expected an object, got %s", json_kind(v));
    if (!json_is_string(type))
        return fail(e, "%s", "expected \"@type\" with the type's URL in a string");
    url = json_string_value(type);
    if (strlen(url) != json_string_length(type))
        return fail(e, "%s", "\"@type\" holds a NUL byte");
    if (++e->depth > FERRY_GRPC_PROTO_DEPTH_MAX)
        return fail(e, "nested deeper than %d levels", FERRY_GRPC_PROTO_DEPTH_MAX);
    ferry_buf_init(&payload, out->cap);
    result = put_any_payload(e, url, v, &payload);
    e->depth--;
    if (!result)
        result = put_tag(out, WKT_ANY_TYPE_URL, WIRE_LEN) || put_len(out, url, strlen(url)) ||
                 (payload.len && (put_tag(out, WKT_ANY_VALUE, WIRE_LEN) ||
                                  put_len(out, payload.data, payload.len)));
    ferry_buf_release(&payload);
    return result ? -1 : 0;
}

struct wkt {
    const char *name;
    wkt_encoder encode;
};

static const struct wkt wkts[] = {
    {".google.protobuf.Timestamp", put_timestamp}, {".google.protobuf.Duration", put_duration},
    {".google.protobuf.Struct", put_struct},       {WKT_VALUE, put_value},
    {".google.protobuf.ListValue", put_list},      {".google.protobuf.FieldMask", put_field_mask},
    {".google.protobuf.DoubleValue", put_wrapper}, {".google.protobuf.FloatValue", put_wrapper},
    {".google.protobuf.Int64Value", put_wrapper},  {".google.protobuf.UInt64Value", put_wrapper},
    {".google.protobuf.Int32Value", put_wrapper},  {".google.protobuf.UInt32Value", put_wrapper},
    {".google.protobuf.BoolValue", put_wrapper},   {".google.protobuf.StringValue", put_wrapper},
    {".google.protobuf.BytesValue", put_wrapper},  {".google.protobuf.Any", put_any},
};

/* The encoder of a well-known type with a JSON form of its own, or NULL for any other type
 * (google.protobuf.Empty included: it is written as {} like other messages). */
static wkt_encoder find_wkt(const char *type_name)
{
    if (strncmp(type_name, WKT_PACKAGE, sizeof(WKT_PACKAGE) - 1) != 0)
        return NULL;
    for (size_t i = 0; i < sizeof(wkts) / sizeof(wkts[0]); i++)
        if (strcmp(type_name, wkts[i].name) == 0)
            return wkts[i].encode;
    return NULL;
}

/* Whether v, a JSON object, is written in well-known type t's own JSON form rather than as a
 * plain message: a Struct and a Value are objects, an Any names its "@type". An object for
 * any other well-known type ({"seconds": 5} for a Timestamp, {"value": "x"} for a wrapper) is
 * the message field by field, as ferry took them before it knew their JSON forms. */
static int object_is_wkt_form(const struct type_entry *t, const json_t *v)
{
    return strcmp(t->name, WKT_PACKAGE "Struct") == 0 || strcmp(t->name, WKT_VALUE) == 0 ||
           (strcmp(t->name, WKT_PACKAGE "Any") == 0 && json_object_get(v, "@type"));
}

/* Encodes v as a message of type t: in its JSON form when t is a well-known type, else field by
 * field. */
static int encode_typed(struct enc *e, const struct type_entry *t, const json_t *v,
                        struct ferry_buf *out)
{
    wkt_encoder encode = find_wkt(t->name);
    if (encode && json_is_object(v) && !object_is_wkt_form(t, v))
        encode = NULL;
    return encode ? encode(e, t, v, out) : encode_message(e, t, v, out);
}

/* Whether a JSON null for field f means "not set": everywhere but in a Value. */
static int null_is_absent(const field_desc *f)
{
    return f->type != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE ||
           !f->type_name || strcmp(f->type_name, WKT_VALUE) != 0;
}

static int put_message_value(struct enc *e, const field_desc *f, const json_t *v,
                             struct ferry_buf *out)
{
    const struct type_entry *t = find_type(e->proto, f->type_name);
    struct ferry_buf sub;
    int result;
    if (!t || !t->msg)
        return fail(e, "type '%s' is not in the descriptor set", f->type_name);
    ferry_buf_init(&sub, out->cap);
    result = encode_typed(e, t, v, &sub);
    if (!result)
        result = put_len(out, sub.data ? sub.data : "", sub.len);
    ferry_buf_release(&sub);
    return result;
}

/* Appends one value of field f with its tag. */
static int put_field(struct enc *e, const field_desc *f, const json_t *v, struct ferry_buf *out)
{
    switch (f->type) {
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING:
        if (!json_is_string(v))
            return fail(e, "expected a string, got %s", json_kind(v));
        if (put_tag(out, f->number, WIRE_LEN))
            return -1;
        return put_len(out, json_string_value(v), json_string_length(v));
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES:
        return put_tag(out, f->number, WIRE_LEN) ? -1 : put_bytes_value(e, v, out);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE:
        return put_tag(out, f->number, WIRE_LEN) ? -1 : put_message_value(e, f, v, out);
    default:
        return put_tag(out, f->number, scalar_wire(f)) ? -1 : put_scalar_value(e, f, v, out);
    }
}

static int is_packed(const struct type_entry *t, const field_desc *f)
{
    if (!is_packable(f))
        return 0;
    if (f->options && f->options->has_packed)
        return f->options->packed;
    return t->proto3;
}

static int put_packed(struct enc *e, const field_desc *f, const json_t *arr, struct ferry_buf *out)
{
    struct ferry_buf vals;
    int result = 0;
    ferry_buf_init(&vals, out->cap);
    for (size_t i = 0; i < json_array_size(arr) && !result; i++) {
        size_t mark = path_push(e, "[", NULL, i);
        result = put_scalar_value(e, f, json_array_get(arr, i), &vals);
        if (!result)
            path_pop(e, mark);
    }
    if (!result && vals.len)
        result = put_tag(out, f->number, WIRE_LEN) || put_len(out, vals.data, vals.len);
    ferry_buf_release(&vals);
    return result ? -1 : 0;
}

static const message_desc *map_entry(const struct enc *e, const field_desc *f)
{
    const struct type_entry *t;
    if (f->type != GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE)
        return NULL;
    t = find_type(e->proto, f->type_name);
    if (!t || !t->msg || !t->msg->options || !t->msg->options->map_entry)
        return NULL;
    return t->msg->n_field == 2 ? t->msg : NULL;
}

/* JSON object keys are strings; a map keyed by bool wants true/false. */
static json_t *map_key(const field_desc *key_field, const char *key)
{
    if (key_field->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL) {
        if (strcmp(key, "true") == 0)
            return json_true();
        if (strcmp(key, "false") == 0)
            return json_false();
    }
    return json_string(key);
}

static int put_map_entry(struct enc *e, const field_desc *f, const message_desc *entry,
                         const char *key, const json_t *value, struct ferry_buf *out)
{
    const field_desc *kf = entry->field[0]->number == 1 ? entry->field[0] : entry->field[1];
    const field_desc *vf = entry->field[0]->number == 1 ? entry->field[1] : entry->field[0];
    json_t *k = map_key(kf, key);
    struct ferry_buf kv;
    int result;
    ferry_buf_init(&kv, out->cap);
    result = k ? put_field(e, kf, k, &kv) : fail(e, "%s", "out of memory");
    if (!result && (!json_is_null(value) || !null_is_absent(vf)))
        result = put_field(e, vf, value, &kv);
    if (!result)
        result = put_tag(out, f->number, WIRE_LEN) || put_len(out, kv.data ? kv.data : "", kv.len);
    json_decref(k);
    ferry_buf_release(&kv);
    return result ? -1 : 0;
}

static int put_map(struct enc *e, const field_desc *f, const message_desc *entry, const json_t *obj,
                   struct ferry_buf *out)
{
    const char *key;
    json_t *value;
    if (!json_is_object(obj))
        return fail(e, "expected an object (a map), got %s", json_kind(obj));
    json_object_foreach((json_t *)obj, key, value)
    {
        size_t mark = path_push(e, "[", key, 0);
        if (put_map_entry(e, f, entry, key, value, out))
            return -1;
        path_pop(e, mark);
    }
    return 0;
}

static int put_repeated(struct enc *e, const struct type_entry *t, const field_desc *f,
                        const json_t *v, struct ferry_buf *out)
{
    const message_desc *entry = map_entry(e, f);
    if (entry)
        return put_map(e, f, entry, v, out);
    if (!json_is_array(v))
        return fail(e, "expected an array, got %s", json_kind(v));
    if (is_packed(t, f))
        return put_packed(e, f, v, out);
    for (size_t i = 0; i < json_array_size(v); i++) {
        size_t mark = path_push(e, "[", NULL, i);
        if (put_field(e, f, json_array_get(v, i), out))
            return -1;
        path_pop(e, mark);
    }
    return 0;
}

/* The index in m of the field called key (by its name or its JSON name), or -1. */
static long field_index(const message_desc *m, const char *key)
{
    for (size_t i = 0; i < m->n_field; i++) {
        const field_desc *f = m->field[i];
        if (strcmp(f->name, key) == 0 || (f->json_name && strcmp(f->json_name, key) == 0))
            return (long)i;
    }
    return -1;
}

static const field_desc *find_field(const message_desc *m, const char *key)
{
    long i = field_index(m, key);
    return i < 0 ? NULL : m->field[i];
}

/* Refuses an object that sets one field twice (by its name and its JSON name) or two fields of
 * one oneof, as protobuf's JSON mapping does: the receiver would keep only the last. A null
 * sets nothing; unknown fields are left to encode_field(). */
static int check_fields_set(struct enc *e, const struct type_entry *t, const json_t *obj)
{
    const message_desc *m = t->msg;
    const char **by = calloc(m->n_field + m->n_oneof_decl + 1, sizeof(*by)); /* the keys that set
                                                                              * a field or oneof */
    const char *key;
    json_t *v;
    int result = 0;

    if (!by)
        return fail(e, "out of memory");
    json_object_foreach((json_t *)obj, key, v)
    {
        long i = field_index(m, key);
        const field_desc *f = i < 0 ? NULL : m->field[i];
        if (!f || (json_is_null(v) && null_is_absent(f)))
            continue;
        if (by[i]) {
            result = fail(e, "'%s' and '%s' name the same field of %s", by[i], key, t->name + 1);
            break;
        }
        by[i] = key;
        if (!f->has_oneof_index || f->oneof_index < 0 || (size_t)f->oneof_index >= m->n_oneof_decl)
            continue;
        if (by[m->n_field + (size_t)f->oneof_index]) {
            const char *oneof = m->oneof_decl[f->oneof_index]->name;
            result = fail(e, "'%s' and '%s' are both set, but oneof '%s' holds only one",
                          by[m->n_field + (size_t)f->oneof_index], key, oneof ? oneof : "");
            break;
        }
        by[m->n_field + (size_t)f->oneof_index] = key;
    }
    free(by);
    return result;
}

static int encode_field(struct enc *e, const struct type_entry *t, const char *key, const json_t *v,
                        struct ferry_buf *out)
{
    const field_desc *f = find_field(t->msg, key);
    size_t mark = path_push(e, ".", key, 0);
    int result;
    if (!f)
        return fail(e, "unknown field in %s", t->name + 1);
    if (json_is_null(v) && null_is_absent(f))
        result = 0;
    else if (f->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED)
        result = put_repeated(e, t, f, v, out);
    else
        result = put_field(e, f, v, out);
    if (!result)
        path_pop(e, mark);
    return result;
}

static int encode_message(struct enc *e, const struct type_entry *t, const json_t *obj,
                          struct ferry_buf *out)
{
    const char *key;
    json_t *v;
    if (!json_is_object(obj))
        return fail(e, "expected an object, got %s", json_kind(obj));
    if (++e->depth > FERRY_GRPC_PROTO_DEPTH_MAX)
        return fail(e, "nested deeper than %d levels", FERRY_GRPC_PROTO_DEPTH_MAX);
    if (check_fields_set(e, t, obj))
        return -1;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (encode_field(e, t, key, v, out))
            return -1;
    }
    e->depth--;
    return 0;
}

int ferry_grpc_proto_encode(const ferry_grpc_proto *p, const char *type, const char *json,
                            size_t len, struct ferry_buf *out, char *errstr, size_t errstr_size)
{
    struct enc e = {.proto = p, .errstr = errstr, .errstr_size = errstr_size};
    struct ferry_buf mark = *out;
    char dotted[512];
    const struct type_entry *t;
    json_error_t jerr;
    json_t *root = NULL;
    int result = -1;
    snprintf(dotted, sizeof(dotted), "%s%s", type[0] == '.' ? "" : ".", type);
    t = find_type(p, dotted);
    if (!t || !t->msg) {
        snprintf(errstr, errstr_size, "message type '%s' is not in the descriptor set", type);
        goto out;
    }
    /* any value at the root: a well-known request type may be a string ("1.5s") or a number */
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!root) {
        snprintf(errstr, errstr_size, "invalid JSON: %s", jerr.text);
        goto out;
    }
    errstr[0] = '\0';
    result = encode_typed(&e, t, root, out);
    if (result && !errstr[0]) { /* an append failed, not the input */
        snprintf(errstr, errstr_size, "encoded message larger than %zu bytes", out->cap);
        result = FERRY_GRPC_PROTO_FULL;
    }
out:
    if (result)
        ferry_buf_rewind(out, &mark);
    json_decref(root);
    return result;
}

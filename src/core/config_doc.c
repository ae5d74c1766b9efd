/*
 * config_doc.c - renders the configuration reference from the same tables the loader uses,
 * so the documentation cannot drift from what ferry accepts: as Markdown (docs/config.md) or
 * as the man page ferry.yaml(5). The man page is the Markdown's text with `code` in bold and
 * roff's special characters escaped.
 */
#include "core/config.h"
#include "core/config_int.h"
#include "core/config_schema.h"
#include "core/job.h"
#include "core/units.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[] = {
    [FERRY_CFG_STRING] = "string",     [FERRY_CFG_INT] = "integer",
    [FERRY_CFG_DOUBLE] = "number",     [FERRY_CFG_BOOL] = "boolean",
    [FERRY_CFG_DURATION] = "duration", [FERRY_CFG_SIZE] = "size",
    [FERRY_CFG_ENUM] = "one of",       [FERRY_CFG_STRINGS] = "list of strings",
    [FERRY_CFG_MAP] = "map",           [FERRY_CFG_SECTION] = "section",
    [FERRY_CFG_LIST] = "list",         [FERRY_CFG_RESERVED] = "reserved",
};

static void add_type(struct ferry_buf *out, const struct ferry_cfg_field *f)
{
    char lo[32], hi[32];

    ferry_buf_adds(out, kind_names[f->kind]);
    if (f->kind == FERRY_CFG_ENUM) {
        for (int i = 0; f->choices[i]; i++)
            ferry_buf_addf(out, "%s`%s`", i ? ", " : " ", f->choices[i]);
        return;
    }
    if (f->kind != FERRY_CFG_INT && f->kind != FERRY_CFG_DURATION && f->kind != FERRY_CFG_SIZE &&
        f->kind != FERRY_CFG_DOUBLE)
        return;
    ferry_config_format_bounds(f, lo, hi, sizeof(lo));
    ferry_buf_addf(out, ", %s to %s", lo, hi);
}

static void add_section(struct ferry_buf *out, const struct ferry_cfg_section *sec,
                        const char *path);

static void add_subsections(struct ferry_buf *out, const struct ferry_cfg_section *sec,
                            const char *path)
{
    char sub[256];
    for (const struct ferry_cfg_field *f = sec->fields; f->name; f++) {
        if (f->kind != FERRY_CFG_SECTION && f->kind != FERRY_CFG_LIST)
            continue;
        snprintf(sub, sizeof(sub), "%s%s%s%s", path, *path ? "." : "", f->name,
                 f->kind == FERRY_CFG_LIST ? "[]" : "");
        add_section(out, f->sub, sub);
    }
}

static void add_section(struct ferry_buf *out, const struct ferry_cfg_section *sec,
                        const char *path)
{
    ferry_buf_addf(out, "\n## `%s`\n\n", path);
    if (sec->help)
        ferry_buf_addf(out, "%s\n\n", sec->help);
    ferry_buf_adds(out, "| key | type | default | meaning |\n|---|---|---|---|\n");
    for (const struct ferry_cfg_field *f = sec->fields; f->name; f++) {
        ferry_buf_addf(out, "| `%s`%s | ", f->name, f->required ? " (required)" : "");
        add_type(out, f);
        ferry_buf_addf(out, " | %s%s%s | %s |\n", f->def ? "`" : "", f->def ? f->def : "",
                       f->def ? "`" : "", f->help ? f->help : "");
    }
    add_subsections(out, sec, path);
}

static void add_reserved(struct ferry_buf *out, const struct ferry_cfg_section *sec)
{
    for (const struct ferry_cfg_field *f = sec->fields; f->name; f++)
        if (f->kind == FERRY_CFG_RESERVED)
            ferry_buf_addf(out, "\n## `%s`\n\n%s Not accepted yet.\n", f->name, f->help);
}

/* What every value may be written as: the reference's introduction. */
static const char doc_units[] =
    "A file holds one YAML document of at most 4 MiB: a second one, after a `---` line, is an "
    "error. A key may appear once in a mapping, `headers` and `properties` included; a list or "
    "a mapping holds at most 4096 entries. Anchors and aliases (`&name`, `*name`) may repeat "
    "values, up to 1,000,000 values in the file counting each repeat; merge keys (`<<`) are "
    "not supported. A list of "
    "strings may be written as a single value: `topics: orders` is `topics: [orders]`; no item "
    "may be empty (`\"\"`, `~`, a `-` with nothing after it), as no list has a use for one. "
    "Durations take a unit: `250ms`, `10s`, `2m`, `1h`. Sizes are bytes or take a unit: "
    "`512KiB`, `1MiB` (powers of 1024) or `1MB` (powers of 1000). Numbers, those in durations "
    "and sizes included, are plain decimal (`10`, `1.5`): not `0x10`, `1e3` or `+5`; a fraction "
    "of a millisecond or a byte rounds to the nearest one. Any value may use `${env:NAME}` or "
    "`${env:NAME:-fallback}`; an unset variable without a fallback is an error, and a fallback "
    "holds no `}` and no other `${...}`. `${file:PATH}` "
    "stands for the contents of a file (up to 64 KiB, without trailing white space such as a "
    "final newline), for secrets kept out of the config; a file that cannot be read is an "
    "error. A relative path is read from the config file's directory for "
    "`routes[].validate.json_schema` and `routes[].target.grpc.descriptor_set`, files that go "
    "with the config; every other path is used as written, so a relative one is read from "
    "ferry's working directory (`/` under the systemd unit): `server.data_dir`, "
    "`server.tls.cert_file` and `key_file`, `kafka.dev.bootstrap_file`, "
    "`routes[].target.tls.ca_file`, `cert_file` and `key_file`, "
    "`routes[].target.smtp.password_file`, `ingest.auth.keys[].key_file`, `tables[].path`, "
    "`${file:PATH}`, and the files that librdkafka properties such as `ssl.ca.location` name.\n";

int ferry_config_reference(struct ferry_buf *out)
{
    ferry_buf_adds(out, "# Configuration reference\n\n"
                        "Generated by `ferry config-docs` from the tables the parser uses; a "
                        "test fails when this file and the binary disagree.\n\n");
    ferry_buf_adds(out, doc_units);
    add_subsections(out, &ferry_config_root, "");
    for (int i = 0; ferry_jobs[i]; i++)
        add_subsections(out, ferry_jobs[i]->config, "");
    add_reserved(out, &ferry_config_root);
    for (int i = 0; ferry_jobs[i]; i++)
        add_reserved(out, ferry_jobs[i]->config);
    return out->failed ? -1 : 0;
}

/* ---- the man page ---- */

/* Writes text as roff: `code` in bold, backslashes escaped, and a leading '.' or '\'' kept
 * from reading as a request. */
static void add_roff(struct ferry_buf *out, const char *text)
{
    int code = 0;

    if (*text == '.' || *text == '\'')
        ferry_buf_adds(out, "\\&");
    for (const char *c = text; *c; c++) {
        if (*c == '`') {
            ferry_buf_adds(out, code ? "\\fR" : "\\fB");
            code = !code;
        } else if (*c == '\\')
            ferry_buf_adds(out, "\\e");
        else if (*c == '-')
            ferry_buf_adds(out, "\\-");
        else if (*c == '\n')
            ferry_buf_adds(out, "\n.br\n");
        else
            ferry_buf_addc(out, *c);
    }
    if (code)
        ferry_buf_adds(out, "\\fR");
}

static void add_man_section(struct ferry_buf *out, const struct ferry_cfg_section *sec,
                            const char *path);

static void add_man_subsections(struct ferry_buf *out, const struct ferry_cfg_section *sec,
                                const char *path)
{
    char sub[256];
    for (const struct ferry_cfg_field *f = sec->fields; f->name; f++) {
        if (f->kind != FERRY_CFG_SECTION && f->kind != FERRY_CFG_LIST)
            continue;
        snprintf(sub, sizeof(sub), "%s%s%s%s", path, *path ? "." : "", f->name,
                 f->kind == FERRY_CFG_LIST ? "[]" : "");
        add_man_section(out, f->sub, sub);
    }
}

static void add_man_section(struct ferry_buf *out, const struct ferry_cfg_section *sec,
                            const char *path)
{
    struct ferry_buf type;

    ferry_buf_adds(out, ".SS ");
    add_roff(out, path);
    ferry_buf_addc(out, '\n');
    if (sec->help) {
        add_roff(out, sec->help);
        ferry_buf_addc(out, '\n');
    }
    for (const struct ferry_cfg_field *f = sec->fields; f->name; f++) {
        ferry_buf_init(&type, 1024);
        add_type(&type, f);
        ferry_buf_adds(out, ".TP\n\\fB");
        add_roff(out, f->name);
        ferry_buf_addf(out, "\\fR%s (", f->required ? " (required)" : "");
        add_roff(out, type.data ? type.data : "");
        if (f->def) {
            ferry_buf_adds(out, "; default ");
            add_roff(out, f->def);
        }
        ferry_buf_adds(out, ")\n");
        add_roff(out, f->help ? f->help : "");
        ferry_buf_addc(out, '\n');
        ferry_buf_release(&type);
    }
    add_man_subsections(out, sec, path);
}

int ferry_config_reference_man(struct ferry_buf *out)
{
    ferry_buf_addf(out, ".TH FERRY.YAML 5 \"\" \"ferry %s\" \"File Formats\"\n", FERRY_VERSION);
    ferry_buf_adds(out, ".SH NAME\nferry.yaml \\- the configuration file of ferry\n"
                        ".SH DESCRIPTION\n"
                        "One YAML file configures everything ferry runs: the Kafka connection, "
                        "the HTTP server, routes, ingest and tables. \\fBferry check \\-c\\fR "
                        "\\fIFILE\\fR checks it; errors name the file, line and key.\n.PP\n");
    add_roff(out, doc_units);
    ferry_buf_adds(out, "\n.SH KEYS\n");
    add_man_subsections(out, &ferry_config_root, "");
    for (int i = 0; ferry_jobs[i]; i++)
        add_man_subsections(out, ferry_jobs[i]->config, "");
    ferry_buf_adds(out, ".SH SEE ALSO\n\\fBferry\\fR(1); docs/config.md in the sources is the "
                        "same reference in Markdown.\n");
    return out->failed ? -1 : 0;
}

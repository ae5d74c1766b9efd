/*
 * config_int.h - what config.c, config_load.c and config_doc.c share, and nobody else needs.
 */
#ifndef FERRY_CONFIG_INT_H
#define FERRY_CONFIG_INT_H

#include "core/config.h"
#include "core/config_schema.h"
#include "core/job.h"

/* One table of keys and the object it fills. The top level of the file has several: the core's
 * root table first, then each job's own section, in the order of ferry_jobs. */
struct ferry_cfg_part {
    const struct ferry_cfg_section *sec;
    void *obj;
};

/* Most parts of the top level: the core's and one per job. */
#define FERRY_CFG_PARTS_MAX (1 + FERRY_JOBS_MAX)

/* Fills parts (room for FERRY_CFG_PARTS_MAX) with cfg's top-level parts; returns how many. */
size_t ferry_config_parts(const struct ferry_config *cfg, struct ferry_cfg_part *parts);

/* Remembers that path was written at line (1-based). has_value is 0 for a key written with no
 * value ("key:"), which means the key left out: ferry_config_line() then answers 0 for it, while
 * an error at path still names its line. */
void ferry_config_note_line(struct ferry_config *cfg, const char *path, int line, int has_value);

/* Records a message that already has its "config: ..." prefix, at line (0: no line). */
void ferry_config_error_line(struct ferry_config *cfg, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Levenshtein distance, for "did you mean" suggestions. */
size_t ferry_config_edit_distance(const char *a, const char *b);

/* Fills cfg from YAML text against ferry_config_root. */
void ferry_config_parse(struct ferry_config *cfg, const char *text, size_t len);

/* Applies the defaults of sec to obj. */
void ferry_config_apply_defaults(struct ferry_config *cfg, const struct ferry_cfg_section *sec,
                                 void *obj);

/* Writes a numeric field's bounds as a user would write them ("250ms", "1MiB", "10"). */
void ferry_config_format_bounds(const struct ferry_cfg_field *f, char *lo, char *hi, size_t size);

#endif

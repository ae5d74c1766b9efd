/*
 * metrics.c - the metric registry and its Prometheus text rendering.
 *
 * Families keep their registration order so /metrics reads the same every time. Registration
 * and rendering take the registry's mutex; updates to a series never do.
 */
#include "core/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

/* SERIES_SECONDS: a counter of microseconds, shown in seconds (the unit Prometheus names use). */
enum series_type { SERIES_COUNTER, SERIES_GAUGE, SERIES_HISTOGRAM, SERIES_SECONDS };

struct series {
    struct series *next;
    char *labels; /* may be NULL */
    union {
        struct ferry_counter counter;
        struct ferry_gauge gauge;
        struct ferry_histogram histogram;
    } u;
};

struct family {
    struct family *next;
    char *name;
    char *help;
    enum series_type type;
    struct series *first, *last;
};

struct collector {
    struct collector *next;
    ferry_metrics_collect_fn fn;
    void *arg;
};

struct ferry_metrics {
    pthread_mutex_t lock;
    struct family *first, *last;
    struct collector *collectors;
};

ferry_metrics *ferry_metrics_new(void)
{
    ferry_metrics *m = calloc(1, sizeof(*m));
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void ferry_metrics_destroy(ferry_metrics *m)
{
    if (!m)
        return;
    for (struct family *f = m->first, *fn; f; f = fn) {
        fn = f->next;
        for (struct series *s = f->first, *sn; s; s = sn) {
            sn = s->next;
            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    for (struct collector *c = m->collectors, *cn; c; c = cn) {
        cn = c->next;
        free(c);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct family *find_or_add_family(ferry_metrics *m, const char *name, const char *help,
                                         enum series_type type)
{
    struct family *f;
    for (f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f->type == type ? f : NULL;
    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->name = strdup(name);
    f->help = strdup(help);
    f->type = type;
    if (!f->name || !f->help) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return f;
}

static struct series *add_series(ferry_metrics *m, const char *name, const char *help,
                                 const char *labels, enum series_type type)
{
    struct family *f;
    struct series *s = NULL;

    pthread_mutex_lock(&m->lock);
    f = find_or_add_family(m, name, help, type);
    if (!f)
        goto out;
    s = calloc(1, sizeof(*s));
    if (!s)
        goto out;
    s->labels = labels ? strdup(labels) : NULL;
    if (labels && !s->labels) {
        free(s);
        s = NULL;
        goto out;
    }
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
out:
    pthread_mutex_unlock(&m->lock);
    return s;
}

struct ferry_counter *ferry_metrics_counter(ferry_metrics *m, const char *name, const char *help,
                                            const char *labels)
{
    struct series *s = add_series(m, name, help, labels, SERIES_COUNTER);
    return s ? &s->u.counter : NULL;
}

struct ferry_counter *ferry_metrics_seconds(ferry_metrics *m, const char *name, const char *help,
                                            const char *labels)
{
    struct series *s = add_series(m, name, help, labels, SERIES_SECONDS);
    return s ? &s->u.counter : NULL;
}

struct ferry_gauge *ferry_metrics_gauge(ferry_metrics *m, const char *name, const char *help,
                                        const char *labels)
{
    struct series *s = add_series(m, name, help, labels, SERIES_GAUGE);
    return s ? &s->u.gauge : NULL;
}

struct ferry_histogram *ferry_metrics_histogram(ferry_metrics *m, const char *name,
                                                const char *help, const char *labels,
                                                const double *bounds, size_t nbounds)
{
    struct series *s;
    if (nbounds > FERRY_HISTOGRAM_MAX_BUCKETS)
        return NULL;
    s = add_series(m, name, help, labels, SERIES_HISTOGRAM);
    if (!s)
        return NULL;
    s->u.histogram.nbounds = nbounds;
    memcpy(s->u.histogram.bounds, bounds, nbounds * sizeof(*bounds));
    return &s->u.histogram;
}

void ferry_histogram_observe(struct ferry_histogram *h, double value)
{
    size_t i = 0;
    while (i < h->nbounds && value > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    if (value > 0)
        atomic_fetch_add_explicit(&h->sum_micros, (uint64_t)(value * 1e6), memory_order_relaxed);
}

int ferry_metrics_add_collector(ferry_metrics *m, ferry_metrics_collect_fn fn, void *arg)
{
    struct collector *c = calloc(1, sizeof(*c)), **tail;
    if (!c)
        return -1;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_lock(&m->lock);
    for (tail = &m->collectors; *tail; tail = &(*tail)->next)
        ;
    *tail = c;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

void ferry_metrics_remove_collector(ferry_metrics *m, ferry_metrics_collect_fn fn, void *arg)
{
    pthread_mutex_lock(&m->lock);
    for (struct collector **p = &m->collectors; *p; p = &(*p)->next) {
        if ((*p)->fn == fn && (*p)->arg == arg) {
            struct collector *dead = *p;
            *p = dead->next;
            free(dead);
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
}

void ferry_metrics_escape_label(const char *value, char *out, size_t size)
{
    size_t o = 0;
    for (; *value && o + 3 < size; value++) {
        if (*value == '\\' || *value == '"') {
            out[o++] = '\\';
            out[o++] = *value;
        } else if (*value == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *value;
        }
    }
    out[o] = '\0';
}

/* Writes `name{labels,extra}` (extra may be NULL). */
static void add_sample_name(struct ferry_buf *out, const char *name, const char *suffix,
                            const char *labels, const char *extra)
{
    int has = (labels && *labels) || extra;
    ferry_buf_addf(out, "%s%s%s%s%s%s%s", name, suffix, has ? "{" : "", labels ? labels : "",
                   labels && *labels && extra ? "," : "", extra ? extra : "", has ? "}" : "");
}

static void render_histogram(struct ferry_buf *out, const struct family *f, const struct series *s)
{
    const struct ferry_histogram *h = &s->u.histogram;
    uint64_t cumulative = 0;
    char le[64];

    for (size_t i = 0; i <= h->nbounds; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->nbounds)
            snprintf(le, sizeof(le), "le=\"%g\"", h->bounds[i]);
        else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        add_sample_name(out, f->name, "_bucket", s->labels, le);
        ferry_buf_addf(out, " %llu\n", (unsigned long long)cumulative);
    }
    add_sample_name(out, f->name, "_sum", s->labels, NULL);
    ferry_buf_addf(out, " %.6f\n",
                   (double)atomic_load_explicit(&h->sum_micros, memory_order_relaxed) / 1e6);
    add_sample_name(out, f->name, "_count", s->labels, NULL);
    ferry_buf_addf(out, " %llu\n", (unsigned long long)cumulative);
}

static void render_family(struct ferry_buf *out, const struct family *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "counter"};

    ferry_buf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]);
    for (const struct series *s = f->first; s; s = s->next) {
        if (f->type == SERIES_HISTOGRAM) {
            render_histogram(out, f, s);
            continue;
        }
        add_sample_name(out, f->name, "", s->labels, NULL);
        if (f->type == SERIES_COUNTER)
            ferry_buf_addf(out, " %llu\n",
                           (unsigned long long)atomic_load_explicit(&s->u.counter.value,
                                                                    memory_order_relaxed));
        else if (f->type == SERIES_SECONDS)
            ferry_buf_addf(out, " %.6f\n",
                           (double)atomic_load_explicit(&s->u.counter.value, memory_order_relaxed) /
                               1e6);
        else
            ferry_buf_addf(
                out, " %lld\n",
                (long long)atomic_load_explicit(&s->u.gauge.value, memory_order_relaxed));
    }
}

int ferry_metrics_render(ferry_metrics *m, struct ferry_buf *out)
{
    pthread_mutex_lock(&m->lock);
    for (const struct family *f = m->first; f; f = f->next)
        render_family(out, f);
    for (const struct collector *c = m->collectors; c; c = c->next)
        c->fn(out, c->arg);
    pthread_mutex_unlock(&m->lock);
    return out->failed ? -1 : 0;
}

static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

void ferry_metrics_collect_process(struct ferry_buf *out, void *arg)
{
    unsigned long utime = 0, stime = 0, vsize = 0;
    unsigned long long start = 0;
    long rss = 0, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    double boot = 0;
    FILE *f = fopen("/proc/self/stat", "r");

    (void)arg;
    if (!f)
        return;
    if (fscanf(f,
               "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
               "%*d %*d %llu %lu %ld",
               &utime, &stime, &start, &vsize, &rss) != 5) {
        fclose(f);
        return;
    }
    fclose(f);
    f = fopen("/proc/stat", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "btime %lf", &boot) == 1)
                break;
        fclose(f);
    }
    ferry_buf_addf(out,
                   "# HELP process_cpu_seconds_total User and system CPU time spent.\n"
                   "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                   "# HELP process_resident_memory_bytes Resident memory size.\n"
                   "# TYPE process_resident_memory_bytes gauge\n"
                   "process_resident_memory_bytes %ld\n"
                   "# HELP process_virtual_memory_bytes Virtual memory size.\n"
                   "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %lu\n"
                   "# HELP process_open_fds Open file descriptors.\n"
                   "# TYPE process_open_fds gauge\nprocess_open_fds %d\n"
                   "# HELP process_start_time_seconds Start time since the epoch.\n"
                   "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
                   (double)(utime + stime) / (double)ticks, rss * page, vsize, count_open_fds(),
                   boot + (double)start / (double)ticks);
}

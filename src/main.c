/*
 * main.c - the ferry command line: run, check, redrive, dev-broker, config-docs, version.
 *
 * Only this file exits the process. Each subcommand parses its own flags; usage errors print
 * one line and exit 2.
 */
#include "core/app.h"
#include "core/config.h"
#include "core/devbroker.h"
#include "core/job.h"
#include "core/kafka.h"
#include "core/log.h"
#include "core/units.h"
#include "route/redrive.h"
#include "route/route.h"

#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt */
#endif
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "ferry.yaml"
#define DEV_TOPICS_MAX 64
#define CONFIG_DOCS_MAX (1024 * 1024)

static const char usage_main[] =
    "usage: ferry <command> [options]\n"
    "\n"
    "commands:\n"
    "  run -c FILE         run the daemon on a config file\n"
    "  check -c FILE       validate a config file and summarize it\n"
    "  redrive --route R   send a route's dead letters through its target again\n"
    "  dev-broker          run the embedded in-memory Kafka cluster alone\n"
    "  config-docs         print the configuration reference (Markdown, or --man)\n"
    "  version             print the version\n"
    "\n"
    "`ferry <command> --help` describes a command.\n";

static const char usage_run[] =
    "usage: ferry run [-c FILE]\n"
    "\n"
    "Runs ferry on FILE (default ./" DEFAULT_CONFIG "). Without kafka.brokers it starts an\n"
    "embedded in-memory Kafka cluster that keeps nothing after exit.\n"
    "SIGTERM, SIGINT or SIGHUP drains and stops; a second signal stops at once.\n"
    "\n"
    "  -c, --config FILE   the YAML config file\n"
    "  -h, --help          this text\n";

static const char usage_check[] =
    "usage: ferry check [-c FILE]\n"
    "\n"
    "Validates FILE (default ./" DEFAULT_CONFIG ") without connecting to anything. Prints a\n"
    "summary and exits 0 when it is valid; prints every problem as\n"
    "`config: <key>: <problem> (<file>:<line>)` and exits 2 otherwise.\n"
    "\n"
    "  -c, --config FILE   the YAML config file\n"
    "  -h, --help          this text\n";

static const char usage_redrive[] =
    "usage: ferry redrive [-c FILE] --route NAME [--from [P:]OFFSET] [--to [P:]OFFSET]\n"
    "                     [--since TIME] [--status CODE]... [--dry-run] [--restart]\n"
    "                     [--progress FILE]\n"
    "\n"
    "Reads the dead-letter topic of route NAME and sends the route's dead letters through the\n"
    "route's target again, as the route would (templates, on_status, retries). Dead letters\n"
    "that fail again stay where they are. Progress is saved after each one in\n"
    "./ferry-redrive-NAME.progress: run the same command again to resume an interrupted run.\n"
    "\n"
    "  -c, --config FILE     the YAML config file (default ./" DEFAULT_CONFIG ")\n"
    "  -r, --route NAME      the route whose dead letters are sent again\n"
    "      --from [P:]OFF    first dead-letter offset, of partition P or of every partition\n"
    "      --to [P:]OFF      last dead-letter offset (inclusive), likewise (repeatable)\n"
    "      --since TIME      dead letters written since TIME: 15m (ago), 2026-12-04T05:00:00Z,\n"
    "                        or milliseconds since the epoch\n"
    "      --status CODE     only dead letters whose ferry.http_status is CODE (repeatable)\n"
    "  -n, --dry-run         send nothing, save nothing; print what would be sent\n"
    "      --restart         discard the saved progress and start a new run\n"
    "      --progress FILE   where progress is saved\n"
    "  -h, --help            this text\n"
    "\n"
    "Exit codes: 0 done, 1 Kafka or the progress file failed, or another run holds the file,\n"
    "2 bad command line, or a config file that cannot be read or is invalid, 3 interrupted\n"
    "(progress saved), 4 done but some dead letters failed again.\n";

static const char usage_dev_broker[] =
    "usage: ferry dev-broker [--brokers N] [--topic NAME:PARTITIONS]... [--bootstrap-file F]\n"
    "\n"
    "Runs librdkafka's in-memory mock Kafka cluster on 127.0.0.1 until SIGTERM, SIGINT or\n"
    "SIGHUP.\n"
    "Prints the bootstrap address on the first line of standard output. Any Kafka client\n"
    "(kcat, confluent-kafka) can use it. NOTHING IS KEPT: all data is lost on exit, and each\n"
    "partition keeps only about 5 MiB. Topics are created with 4 partitions when first used.\n"
    "\n"
    "  -b, --brokers N            number of brokers (default 1)\n"
    "  -t, --topic NAME:PARTS     create a topic at start (repeatable)\n"
    "  -f, --bootstrap-file F     also write the bootstrap address to F\n"
    "  -h, --help                 this text\n";

static const char usage_config_docs[] =
    "usage: ferry config-docs [--man]\n"
    "\n"
    "Prints the configuration reference (docs/config.md), or with --man the man page\n"
    "ferry.yaml(5) in roff.\n";

static const char usage_version[] = "usage: ferry version\n"
                                    "\n"
                                    "Prints ferry's version and librdkafka's.\n";

static int usage_error(const char *cmd, const char *what)
{
    fprintf(stderr, "ferry %s: %s (see 'ferry %s --help')\n", cmd, what, cmd);
    return FERRY_EXIT_INVALID;
}

/* Parses "-c FILE" / "--help" for run and check. Returns -1 to continue, else an exit code. */
static int parse_config_flag(int argc, char **argv, const char *cmd, const char *usage,
                             const char **path)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {0}};
    int c;
    char what[256];

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            *path = optarg;
        } else if (c == 'h') {
            fputs(usage, stdout);
            return FERRY_EXIT_OK;
        } else {
            snprintf(what, sizeof(what), "%s '%s'",
                     c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return usage_error(cmd, what);
        }
    }
    if (optind < argc) {
        snprintf(what, sizeof(what), "unexpected argument '%s'", argv[optind]);
        return usage_error(cmd, what);
    }
    return -1;
}

/* Loads and fully validates a config. Returns NULL after printing why, with *code set. */
static struct ferry_config *load_valid_config(const char *cmd, const char *path, int *code)
{
    char errstr[512];
    struct ferry_config *cfg = ferry_config_load(path, errstr, sizeof(errstr));

    if (!cfg) {
        fprintf(stderr, "ferry %s: %s\n", cmd, errstr);
        *code = FERRY_EXIT_INVALID;
        return NULL;
    }
    ferry_kafka_check_config(cfg); /* librdkafka's verdict, beside every other problem */
    if (ferry_config_error_count(cfg) == 0)
        return cfg;
    for (size_t i = 0; i < ferry_config_error_count(cfg); i++)
        fprintf(stderr, "%s\n", ferry_config_error_at(cfg, i));
    ferry_config_destroy(cfg);
    *code = FERRY_EXIT_INVALID; /* as for an unreadable file: a supervisor must not retry it */
    return NULL;
}

static void print_summary(const struct ferry_config *cfg)
{
    printf("%s: valid\n", cfg->path);
    if (cfg->kafka.brokers)
        printf("  kafka:  %s\n", cfg->kafka.brokers);
    else
        printf("  kafka:  embedded dev cluster, %lld broker(s), in memory only\n",
               (long long)cfg->kafka.dev.brokers);
    printf("  server: http://%s\n", cfg->server.listen);
    for (int i = 0; ferry_jobs[i]; i++)
        if (ferry_jobs[i]->summary)
            ferry_jobs[i]->summary(ferry_config_job(cfg, ferry_jobs[i]), stdout);
    printf("  log:    %s, %s\n", (const char *[]){"debug", "info", "warn", "error"}[cfg->log.level],
           cfg->log.format ? "json" : "logfmt");
}

static int cmd_run_or_check(int argc, char **argv, int check)
{
    const char *cmd = check ? "check" : "run";
    const char *path = DEFAULT_CONFIG;
    struct ferry_config *cfg;
    int code = parse_config_flag(argc, argv, cmd, check ? usage_check : usage_run, &path);

    if (code >= 0)
        return code;
    cfg = load_valid_config(cmd, path, &code);
    if (!cfg)
        return code;
    code = FERRY_EXIT_OK;
    if (check)
        print_summary(cfg);
    else
        code = ferry_app_run(cfg);
    ferry_config_destroy(cfg);
    return code;
}

struct dev_args {
    int64_t brokers;
    const char *topics[DEV_TOPICS_MAX];
    int ntopics;
    const char *bootstrap_file;
};

static int parse_dev_args(int argc, char **argv, struct dev_args *d)
{
    static const struct option opts[] = {{"brokers", required_argument, NULL, 'b'},
                                         {"topic", required_argument, NULL, 't'},
                                         {"bootstrap-file", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    char what[256];
    int c;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":b:t:f:h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_dev_broker, stdout);
            return FERRY_EXIT_OK;
        } else if (c == 'b' &&
                   (ferry_int_parse(optarg, &d->brokers) || d->brokers < 1 || d->brokers > 9)) {
            return usage_error("dev-broker", "--brokers takes a number from 1 to 9");
        } else if (c == 't') {
            if (d->ntopics == DEV_TOPICS_MAX) {
                snprintf(what, sizeof(what), "at most %d --topic options are allowed",
                         DEV_TOPICS_MAX);
                return usage_error("dev-broker", what);
            }
            d->topics[d->ntopics++] = optarg;
        } else if (c == 'f') {
            d->bootstrap_file = optarg;
        } else if (c == ':' || c == '?') {
            snprintf(what, sizeof(what), "%s '%s'",
                     c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return usage_error("dev-broker", what);
        }
    }
    if (optind < argc) {
        snprintf(what, sizeof(what), "unexpected argument '%s'", argv[optind]);
        return usage_error("dev-broker", what);
    }
    return -1;
}

static int cmd_dev_broker(int argc, char **argv)
{
    struct dev_args d = {.brokers = 1};
    char errstr[512];
    ferry_devbroker *db;
    int code = parse_dev_args(argc, argv, &d);

    if (code >= 0)
        return code;
    db = ferry_devbroker_new((int)d.brokers, errstr, sizeof(errstr));
    if (!db) {
        fprintf(stderr, "ferry dev-broker: %s\n", errstr);
        return FERRY_EXIT_FAILURE;
    }
    for (int i = 0; i < d.ntopics && code < 0; i++)
        if (ferry_devbroker_topic_create_spec(db, d.topics[i], errstr, sizeof(errstr)))
            code = usage_error("dev-broker", errstr);
    if (code < 0 && d.bootstrap_file &&
        ferry_devbroker_write_bootstrap(db, d.bootstrap_file, errstr, sizeof(errstr))) {
        fprintf(stderr, "ferry dev-broker: %s\n", errstr);
        code = FERRY_EXIT_FAILURE;
    }
    if (code < 0) {
        printf("%s\n", ferry_devbroker_bootstrap(db));
        fflush(stdout);
        FLOG_WARN("devbroker", NULL,
                  "in-memory Kafka at %s: NOTHING IS KEPT after exit, and each partition keeps "
                  "only about 5 MiB",
                  ferry_devbroker_bootstrap(db));
        ferry_app_wait_signal();
        code = FERRY_EXIT_OK;
    }
    if (code == FERRY_EXIT_OK && d.bootstrap_file)
        unlink(d.bootstrap_file); /* the address is gone with the cluster */
    ferry_devbroker_destroy(db);
    return code;
}

static int cmd_config_docs(int argc, char **argv)
{
    struct ferry_buf out;
    int code = FERRY_EXIT_OK, man;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_config_docs, stdout);
        return FERRY_EXIT_OK;
    }
    man = argc > 1 && strcmp(argv[1], "--man") == 0;
    if (argc > 1 + man)
        return usage_error("config-docs", "takes no arguments but --man");
    ferry_buf_init(&out, CONFIG_DOCS_MAX);
    if (man ? ferry_config_reference_man(&out) : ferry_config_reference(&out)) {
        fprintf(stderr,
                "ferry config-docs: the reference is longer than %d bytes, or memory ran out\n",
                CONFIG_DOCS_MAX);
        code = FERRY_EXIT_FAILURE;
    } else
        fputs(out.data, stdout);
    ferry_buf_release(&out);
    return code;
}

/* Adds one --from/--to/--status/--since value to the redrive options. Returns 0, or an exit
 * code after printing why. */
static int add_redrive_value(struct ferry_redrive_options *o, int c, const char *arg)
{
    struct ferry_redrive_filter *f = &o->filter;
    char errstr[512], what[640];
    int rc = 0;

    if ((c == 'F' && f->nfrom == FERRY_REDRIVE_BOUNDS_MAX) ||
        (c == 'T' && f->nto == FERRY_REDRIVE_BOUNDS_MAX) ||
        (c == 's' && f->nstatuses == FERRY_REDRIVE_STATUSES_MAX)) {
        snprintf(errstr, sizeof(errstr), "too many values");
        rc = -1;
    } else if (c == 'F' || c == 'T') {
        rc = ferry_redrive_bound_parse(arg, c == 'F' ? &f->from[f->nfrom++] : &f->to[f->nto++],
                                       errstr, sizeof(errstr));
    } else if (c == 's') {
        rc = ferry_redrive_status_parse(arg, &f->statuses[f->nstatuses++], errstr, sizeof(errstr));
    } else {
        f->since_text = arg;
        rc = ferry_redrive_time_parse(arg, (int64_t)time(NULL) * 1000, &f->since_ms, errstr,
                                      sizeof(errstr));
    }
    if (!rc)
        return 0;
    snprintf(what, sizeof(what), "--%s: %s",
             c == 'F'   ? "from"
             : c == 'T' ? "to"
             : c == 's' ? "status"
                        : "since",
             errstr);
    return usage_error("redrive", what);
}

/* Parses the redrive command line. Returns -1 to continue, else an exit code. */
static int parse_redrive_args(int argc, char **argv, const char **path,
                              struct ferry_redrive_options *o)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"route", required_argument, NULL, 'r'},
                                         {"from", required_argument, NULL, 'F'},
                                         {"to", required_argument, NULL, 'T'},
                                         {"since", required_argument, NULL, 'S'},
                                         {"status", required_argument, NULL, 's'},
                                         {"dry-run", no_argument, NULL, 'n'},
                                         {"restart", no_argument, NULL, 'R'},
                                         {"progress", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    char what[640];
    int c, code;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:r:nh", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(usage_redrive, stdout);
            return FERRY_EXIT_OK;
        } else if (c == 'c' || c == 'r' || c == 'p') {
            *(c == 'c' ? path : c == 'r' ? &o->route : &o->progress_path) = optarg;
        } else if (c == 'n' || c == 'R') {
            *(c == 'n' ? &o->dry_run : &o->restart) = 1;
        } else if (c == 'F' || c == 'T' || c == 's' || c == 'S') {
            if (c == 'S' && o->filter.since_text)
                return usage_error("redrive", "--since is given twice");
            code = add_redrive_value(o, c, optarg);
            if (code)
                return code;
        } else {
            snprintf(what, sizeof(what), "%s '%s'",
                     c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return usage_error("redrive", what);
        }
    }
    if (optind < argc) {
        snprintf(what, sizeof(what), "unexpected argument '%s'", argv[optind]);
        return usage_error("redrive", what);
    }
    if (!o->route)
        return usage_error("redrive", "--route NAME is required");
    if (ferry_redrive_filter_check(&o->filter, "--", what, sizeof(what)))
        return usage_error("redrive", what);
    return -1;
}

/* A redrive's stop request: a stop signal (blocked since main() began), within ms. */
static int redrive_signalled(void *arg, int64_t ms)
{
    sigset_t set = ferry_app_stop_signals();
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    (void)arg;
    return sigtimedwait(&set, NULL, &ts) > 0;
}

static void print_redrive_summary(const struct ferry_redrive_options *o,
                                  const struct ferry_redrive_summary *s)
{
    printf("%sredrive of route '%s'%s: read %" PRIu64 ", %s %" PRIu64 ", skipped by filter %" PRIu64
           ", %s %" PRIu64 "\n",
           o->dry_run ? "dry run: " : "", o->route,
           s->resumed     ? " (resumed)"
           : s->continued ? " (after the previous run)"
                          : "",
           s->read, o->dry_run ? "would redrive" : "redriven", s->redriven, s->skipped,
           o->dry_run ? "would fail" : "failed again", s->failed_again);
    if (s->interrupted)
        printf("interrupted: progress saved; run the same command again to resume\n");
}

static int cmd_redrive(int argc, char **argv)
{
    static const int codes[] = {
        [FERRY_REDRIVE_OK] = FERRY_EXIT_OK,
        [FERRY_REDRIVE_EUSAGE] = FERRY_EXIT_INVALID,
        [FERRY_REDRIVE_EFAIL] = FERRY_EXIT_FAILURE,
        [FERRY_REDRIVE_EBUSY] = FERRY_EXIT_FAILURE, /* a later try may pass */
    };
    _Static_assert(sizeof(codes) / sizeof(codes[0]) == FERRY_REDRIVE_EBUSY + 1,
                   "an exit code for every redrive result");
    struct ferry_redrive_options o = {0};
    struct ferry_redrive_summary sum;
    const char *path = DEFAULT_CONFIG;
    struct ferry_config *cfg;
    char errstr[1024];
    int code, rc;

    ferry_redrive_filter_init(&o.filter);
    o.stop = redrive_signalled;
    code = parse_redrive_args(argc, argv, &path, &o);
    if (code >= 0)
        return code;
    cfg = load_valid_config("redrive", path, &code);
    if (!cfg)
        return code;
    ferry_log_setup(cfg->log.level, cfg->log.format); /* the config's log settings, as in run */
    o.routes = ferry_config_job(cfg, &ferry_routes_job);
    rc = ferry_redrive_run(cfg, &o, &sum, stdout, errstr, sizeof(errstr));
    if (rc == FERRY_REDRIVE_OK || sum.read)
        print_redrive_summary(&o, &sum);
    if (rc != FERRY_REDRIVE_OK)
        fprintf(stderr, "ferry redrive: %s\n", errstr);
    code = codes[rc];
    if (!code && sum.interrupted)
        code = FERRY_EXIT_FORCED;
    else if (!code && sum.failed_again && !o.dry_run)
        code = FERRY_REDRIVE_EXIT_FAILED_AGAIN;
    ferry_config_destroy(cfg);
    return code;
}

/* `ferry version` takes --help and nothing else, like every other command. */
static int cmd_version(int argc, char **argv)
{
    char what[256];

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_version, stdout);
        return FERRY_EXIT_OK;
    }
    if (argc > 1) {
        snprintf(what, sizeof(what), "unexpected argument '%s'", argv[1]);
        return usage_error("version", what);
    }
    printf("ferry %s (librdkafka %s)\n", FERRY_VERSION, rd_kafka_version_str());
    return FERRY_EXIT_OK;
}

static int dispatch_command(int argc, char **argv);

/* glibc's malloc by default gives a freed block of more than 128 KiB (more, after it has seen
 * larger ones freed) back to the system, and a heap's free top past twice that. librdkafka
 * reads every fetch response (up to 8 MiB for a table, 1 MiB a partition) into a buffer of its
 * own, freed once its records are: each one then came back as fresh pages, each page a fault
 * costing about 10 us on a virtual machine. Keeping up to 64 MiB free at a heap's top and
 * taking blocks up to 32 MiB from the heaps cut a 1M-record table restore from 32-37k page
 * faults to 20k and 2.1-2.5 CPU s to 1.7-1.8 (bench/README.md, "session 10"). ferry still
 * hands memory back after a wave of closed connections (httpd.c). Malloc settings an operator
 * gives in GLIBC_TUNABLES are left as they are. */
#define FERRY_MALLOC_MMAP_THRESHOLD (32 * 1024 * 1024) /* glibc's largest on 64-bit systems */
#define FERRY_MALLOC_TRIM_THRESHOLD (64 * 1024 * 1024)

static void tune_malloc(void)
{
#ifdef __GLIBC__
    const char *tunables = getenv("GLIBC_TUNABLES");

    if (tunables && strstr(tunables, "glibc.malloc."))
        return;
    mallopt(M_MMAP_THRESHOLD, FERRY_MALLOC_MMAP_THRESHOLD);
    mallopt(M_TRIM_THRESHOLD, FERRY_MALLOC_TRIM_THRESHOLD);
#endif
}

int main(int argc, char **argv)
{
    char errstr[512];
    int code;

    tune_malloc();
    ferry_app_block_signals();
    if (ferry_job_global_init(errstr, sizeof(errstr))) {
        fprintf(stderr, "ferry: cannot start: %s\n", errstr);
        return FERRY_EXIT_FAILURE;
    }
    code = dispatch_command(argc, argv);
    ferry_job_global_cleanup();
    return code;
}

static int dispatch_command(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : NULL;

    if (!cmd || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, cmd ? stdout : stderr);
        return cmd ? FERRY_EXIT_OK : FERRY_EXIT_INVALID;
    }
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "check") == 0)
        return cmd_run_or_check(argc - 1, argv + 1, cmd[0] == 'c');
    if (strcmp(cmd, "redrive") == 0)
        return cmd_redrive(argc - 1, argv + 1);
    if (strcmp(cmd, "dev-broker") == 0)
        return cmd_dev_broker(argc - 1, argv + 1);
    if (strcmp(cmd, "config-docs") == 0)
        return cmd_config_docs(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version(argc - 1, argv + 1);
    fprintf(stderr, "ferry: unknown command '%s' (see 'ferry --help')\n", cmd);
    return FERRY_EXIT_INVALID;
}

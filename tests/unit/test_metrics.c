/*
 * test_metrics.c - unit tests of the metrics registry (src/core/metrics.c): what /metrics
 * shows for each kind of series, its HELP and TYPE lines once per family, and that a name
 * keeps the kind it was first registered with.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/metrics.h"

static char *rendered(ferry_metrics *m, struct ferry_buf *out)
{
    ferry_buf_init(out, 1 << 20);
    assert_int_equal(ferry_metrics_render(m, out), 0);
    assert_int_equal(ferry_buf_addc(out, '\0'), 0);
    return out->data;
}

static void test_series_kinds(void **state)
{
    ferry_metrics *m = ferry_metrics_new();
    struct ferry_counter *c, *s1, *s2;
    struct ferry_gauge *g;
    struct ferry_buf out;
    (void)state;

    assert_non_null(m);
    c = ferry_metrics_counter(m, "t_records_total", "Records.", "route=\"a\"");
    g = ferry_metrics_gauge(m, "t_in_flight", "In flight.", NULL);
    s1 = ferry_metrics_seconds(m, "t_idle_seconds_total", "Idle.", "cause=\"kafka\"");
    s2 = ferry_metrics_seconds(m, "t_idle_seconds_total", "Idle.", "cause=\"held\"");
    assert_non_null(c);
    assert_non_null(g);
    assert_non_null(s1);
    assert_non_null(s2);
    ferry_counter_add(c, 3);
    ferry_gauge_set(g, -2);
    ferry_counter_add(s1, 1500000); /* microseconds */
    ferry_counter_add(s2, 7);
    assert_string_equal(rendered(m, &out), "# HELP t_records_total Records.\n"
                                           "# TYPE t_records_total counter\n"
                                           "t_records_total{route=\"a\"} 3\n"
                                           "# HELP t_in_flight In flight.\n"
                                           "# TYPE t_in_flight gauge\n"
                                           "t_in_flight -2\n"
                                           "# HELP t_idle_seconds_total Idle.\n"
                                           "# TYPE t_idle_seconds_total counter\n"
                                           "t_idle_seconds_total{cause=\"kafka\"} 1.500000\n"
                                           "t_idle_seconds_total{cause=\"held\"} 0.000007\n");
    ferry_buf_release(&out);
    /* a name is one kind: a seconds counter cannot join a plain counter's family */
    assert_null(ferry_metrics_seconds(m, "t_records_total", "Records.", "route=\"b\""));
    assert_null(ferry_metrics_counter(m, "t_idle_seconds_total", "Idle.", NULL));
    ferry_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

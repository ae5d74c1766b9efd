/*
 * job.c - the core's side of the job list: finding a job's place in it, and the process-wide
 * set-up each job may need before any thread starts.
 */
#include "core/job.h"

#include <stdio.h>

int ferry_job_index(const struct ferry_job *job)
{
    for (int i = 0; ferry_jobs[i]; i++)
        if (ferry_jobs[i] == job)
            return i;
    return -1;
}

static void cleanup_first(int n)
{
    while (n-- > 0)
        if (ferry_jobs[n]->global_cleanup)
            ferry_jobs[n]->global_cleanup();
}

int ferry_job_global_init(char *errstr, size_t errstr_size)
{
    char why[256] = "";

    for (int i = 0; ferry_jobs[i]; i++) {
        if (!ferry_jobs[i]->global_init || ferry_jobs[i]->global_init(why, sizeof(why)) == 0)
            continue;
        snprintf(errstr, errstr_size, "%s: %s", ferry_jobs[i]->name, why);
        cleanup_first(i);
        return -1;
    }
    return 0;
}

void ferry_job_global_cleanup(void)
{
    int n = 0;

    while (ferry_jobs[n])
        n++;
    cleanup_first(n);
}

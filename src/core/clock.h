/*
 * clock.h - the one monotonic clock of the process, for deadlines, timers and durations.
 *
 * CLOCK_MONOTONIC never jumps with the wall clock (NTP, an operator's date), so intervals
 * measured on it are true intervals. Its origin is unspecified (boot, usually): compare and
 * subtract its readings, never show them as dates. Wall-clock time (log lines, HTTP dates)
 * comes from time() or CLOCK_REALTIME instead. A condition variable whose clock attribute is
 * CLOCK_MONOTONIC (ferry_clock_cond_init makes one) takes its pthread_cond_timedwait()
 * deadlines on this clock: ferry_clock_timespec() converts one.
 *
 * Header-only: a reading is one vDSO call, cheap enough for every loop turn and every request.
 * Any thread.
 */
#ifndef FERRY_CLOCK_H
#define FERRY_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Returns the monotonic clock in milliseconds. */
static inline int64_t ferry_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns the monotonic clock in microseconds, for durations finer than a millisecond. */
static inline int64_t ferry_clock_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Returns the wall clock in milliseconds since the epoch: for times written where other
 * processes read them (a parked record's due time), never for intervals. */
static inline int64_t ferry_clock_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns a reading in milliseconds (a deadline) as a struct timespec on the same clock. */
static inline struct timespec ferry_clock_timespec(int64_t ms)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000;
    return ts;
}

/* Initializes a condition variable whose timed waits take deadlines on this clock
 * (ferry_clock_timespec). */
static inline void ferry_clock_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

#endif

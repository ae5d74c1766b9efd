/*
 * sync_marker.h - the marker of a store whose commits skip their sync (store.h, "Unsynced
 * loading").
 *
 * A file named "unsynced" in the store's directory, holding the boot id of the system that
 * wrote it (/proc/sys/kernel/random/boot_id). While it exists, the store's file may be behind
 * the page cache. If ferry dies, the page cache still holds every write and the store is whole;
 * if the system dies, the boot id changes, and a store whose marker names another boot may have
 * lost any write since the marker was set.
 *
 * Plain files and fsync; no LMDB. @locality any thread, one caller per directory at a time
 */
#ifndef FERRY_SYNC_MARKER_H
#define FERRY_SYNC_MARKER_H

#include <stddef.h>

/* Writes the marker and makes it durable (the file, then the directory). Returns 0, 1 when the
 * system has no boot id (no marker is written: the store must stay synced), or -1 with errstr. */
int ferry_sync_marker_set(const char *dir, char *errstr, size_t errstr_size);

/* Removes the marker (and a half-written one) and makes that durable. A missing marker or
 * directory is fine. Returns 0 or -1 with errstr. */
int ferry_sync_marker_clear(const char *dir, char *errstr, size_t errstr_size);

enum ferry_sync_marker {
    FERRY_SYNC_MARKER_NONE,       /* the store was synced */
    FERRY_SYNC_MARKER_THIS_BOOT,  /* ferry stopped while unsynced: the page cache holds it all */
    FERRY_SYNC_MARKER_OTHER_BOOT, /* the system went down (or has no boot id): writes may be lost */
};

/* What dir's marker says (an enum ferry_sync_marker), or -1 with errstr when it cannot be
 * read. */
int ferry_sync_marker_check(const char *dir, char *errstr, size_t errstr_size);

#endif

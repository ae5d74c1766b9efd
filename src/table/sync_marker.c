/*
 * sync_marker.c - the marker of a store whose commits skip their sync (see sync_marker.h).
 *
 * The marker is written to a temporary name, synced, renamed into place and the directory
 * synced, so it is either wholly there or not at all after a crash.
 */
#include "table/sync_marker.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SYNC_MARKER_NAME "unsynced"
#define SYNC_MARKER_TEMP "unsynced.tmp"
#define SYNC_MARKER_PATH_MAX 4096
#define BOOT_ID_FILE "/proc/sys/kernel/random/boot_id"
#define BOOT_ID_MAX 64

/* Reads the first line of a small file, without its newline. Returns 0, or -1 with errno. */
static int read_line(const char *file, char *out, size_t cap)
{
    FILE *f = fopen(file, "r");

    if (!f)
        return -1;
    if (!fgets(out, (int)cap, f))
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

/* This boot's id, or "" when the system has none. */
static void boot_id(char *out, size_t cap)
{
    if (read_line(BOOT_ID_FILE, out, cap) != 0)
        out[0] = '\0';
}

/* Writes text to file and syncs it. Returns 0, or -1 with errno. */
static int write_synced(const char *file, const char *text)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0640), rc = -1, saved;
    size_t len = strlen(text);

    if (fd < 0)
        return -1;
    if (write(fd, text, len) == (ssize_t)len && fsync(fd) == 0)
        rc = 0;
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int ferry_sync_marker_set(const char *dir, char *errstr, size_t errstr_size)
{
    char id[BOOT_ID_MAX], temp[SYNC_MARKER_PATH_MAX], file[SYNC_MARKER_PATH_MAX];

    boot_id(id, sizeof(id));
    if (!id[0])
        return 1;
    snprintf(temp, sizeof(temp), "%s/%s", dir, SYNC_MARKER_TEMP);
    snprintf(file, sizeof(file), "%s/%s", dir, SYNC_MARKER_NAME);
    if (write_synced(temp, id) != 0 || rename(temp, file) != 0 || ferry_file_sync_dir(dir) != 0) {
        snprintf(errstr, errstr_size, "table store '%s': writing its unsynced marker: %s", dir,
                 strerror(errno));
        unlink(temp);
        return -1;
    }
    return 0;
}

int ferry_sync_marker_clear(const char *dir, char *errstr, size_t errstr_size)
{
    char temp[SYNC_MARKER_PATH_MAX], file[SYNC_MARKER_PATH_MAX];

    snprintf(temp, sizeof(temp), "%s/%s", dir, SYNC_MARKER_TEMP);
    snprintf(file, sizeof(file), "%s/%s", dir, SYNC_MARKER_NAME);
    unlink(temp); /* left by a crash while the marker was written; usually missing */
    if (unlink(file) == 0 ? ferry_file_sync_dir(dir) == 0 : errno == ENOENT)
        return 0;
    snprintf(errstr, errstr_size, "table store '%s': removing its unsynced marker: %s", dir,
             strerror(errno));
    return -1;
}

int ferry_sync_marker_check(const char *dir, char *errstr, size_t errstr_size)
{
    char file[SYNC_MARKER_PATH_MAX], marker[BOOT_ID_MAX], id[BOOT_ID_MAX];

    snprintf(file, sizeof(file), "%s/%s", dir, SYNC_MARKER_NAME);
    if (read_line(file, marker, sizeof(marker)) != 0) {
        if (errno == ENOENT)
            return FERRY_SYNC_MARKER_NONE;
        snprintf(errstr, errstr_size, "table store '%s': reading its unsynced marker: %s", dir,
                 strerror(errno));
        return -1;
    }
    boot_id(id, sizeof(id));
    return id[0] && strcmp(marker, id) == 0 ? FERRY_SYNC_MARKER_THIS_BOOT
                                            : FERRY_SYNC_MARKER_OTHER_BOOT;
}

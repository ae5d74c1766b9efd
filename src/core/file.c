/*
 * file.c - opening the files a config names without blocking on a FIFO, and syncing a
 * directory (see file.h).
 */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *ferry_file_open_regular(const char *path, char *errstr, size_t errstr_size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    FILE *f = NULL;

    if (fd < 0) {
        snprintf(errstr, errstr_size, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode))
        snprintf(errstr, errstr_size, "'%s' is not a regular file", path);
    else if (fcntl(fd, F_SETFL, 0) || !(f = fdopen(fd, "rb"))) /* reads block as usual */
        snprintf(errstr, errstr_size, "cannot open '%s': %s", path, strerror(errno));
    if (!f)
        close(fd);
    return f;
}

int ferry_file_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc, saved;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

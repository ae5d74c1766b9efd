/*
 * file.h - opening the files a config names (TLS certificates and keys, API key files), and
 * making a directory's entries durable.
 *
 * ferry blocks its stop signals from the start and takes them with sigwait, so a blocking
 * open of a FIFO or a terminal named by mistake would hang `ferry check` and `ferry run`
 * beyond Ctrl-C and SIGTERM. These files are opened without blocking and must be regular.
 */
#ifndef FERRY_FILE_H
#define FERRY_FILE_H

#include <stddef.h>
#include <stdio.h>

/* Opens the regular file path for reading. Returns the stream, or NULL with errstr ("cannot
 * open 'PATH': REASON" or "'PATH' is not a regular file"). */
FILE *ferry_file_open_regular(const char *path, char *errstr, size_t errstr_size);

/* Syncs the directory dir, so that files created, renamed or removed in it stay so after a
 * system crash. Returns 0, or -1 with errno. */
int ferry_file_sync_dir(const char *dir);

#endif

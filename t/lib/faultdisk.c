/*
 * A disk that fails on demand, for tests of docs/security.md R77: preloaded
 * (LD_PRELOAD) into nginx or oauth2-admin, it makes the writes or the syncs
 * of an LMDB data.mdb fail while the file OAUTH2_FAULT_FILE exists.  Its
 * first line is "<errno> <what>":
 *
 *   ENOSPC write   every pwrite and writev of data.mdb fails
 *   EIO sync       every fdatasync and fsync of data.mdb fails
 *   EIO meta       a pwrite of data.mdb's first two pages (LMDB's meta
 *                  pages) fails: LMDB then marks its environment failed and
 *                  answers MDB_PANIC until it is opened again
 *
 * A third word, "after <n>", lets a process's first n such calls through
 * (a command's first commits succeed, its next fail).
 *
 * Each failed call appends one byte to <OAUTH2_FAULT_FILE>.hits, so that a
 * test can tell that the fault was met.  Any other file, and every call
 * while the trigger is absent, goes to libc untouched.
 *
 * Built by the tests that use it: cc -shared -fPIC -o faultdisk.so
 * faultdisk.c -ldl
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define META_END   (2 * 4096)
#define AT_CURSOR  (-2)

enum { WRITE, SYNC, META };


static int
check(int fd, int what, off_t offset);


/* the errno the call fails with, or 0; errno itself as it was */
static int
fault(int fd, int what, off_t offset)
{
    int  saved, err;

    saved = errno;
    err = check(fd, what, offset);
    errno = saved;
    return err;
}


static int
check(int fd, int what, off_t offset)
{
    int      n, fail, err, tfd, after;
    char     link[64], path[4096], line[64], kind[16], name[16];
    static int  matched;
    ssize_t  len;
    const char  *trigger;

    trigger = getenv("OAUTH2_FAULT_FILE");
    if (trigger == NULL) {
        return 0;
    }

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    len = readlink(link, path, sizeof(path) - 1);
    if (len < 9 || memcmp(path + len - 9, "/data.mdb", 9) != 0) {
        return 0;
    }
    if (offset == AT_CURSOR) {
        offset = lseek(fd, 0, SEEK_CUR);
    }

    tfd = open(trigger, O_RDONLY | O_CLOEXEC);
    if (tfd < 0) {
        return 0;
    }
    n = (int) read(tfd, line, sizeof(line) - 1);
    close(tfd);
    line[n > 0 ? n : 0] = '\0';
    after = 0;
    if (sscanf(line, "%15s %15s after %d", name, kind, &after) < 2) {
        return 0;
    }

    err = strcmp(name, "ENOSPC") == 0 ? ENOSPC : EIO;
    fail = (strcmp(kind, "write") == 0 && what == WRITE)
           || (strcmp(kind, "sync") == 0 && what == SYNC)
           || (strcmp(kind, "meta") == 0 && what == WRITE
               && offset >= 0 && offset < META_END);
    if (!fail || matched++ < after) {
        return 0;
    }

    snprintf(path, sizeof(path), "%s.hits", trigger);
    tfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (tfd >= 0) {
        (void) write(tfd, "x", 1);
        close(tfd);
    }
    return err;
}


#define NEXT(type, name, args)                                               \
    static type (*next) args;                                                \
    if (next == NULL) {                                                      \
        next = (type (*) args) dlsym(RTLD_NEXT, name);                       \
    }


ssize_t
pwrite(int fd, const void *buf, size_t count, off_t offset)
{
    int  err;

    NEXT(ssize_t, "pwrite", (int, const void *, size_t, off_t))
    err = fault(fd, WRITE, offset);
    if (err) {
        errno = err;
        return -1;
    }
    return next(fd, buf, count, offset);
}


ssize_t
pwrite64(int fd, const void *buf, size_t count, off_t offset)
{
    return pwrite(fd, buf, count, offset);
}


ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
    int  err;

    NEXT(ssize_t, "writev", (int, const struct iovec *, int))
    err = fault(fd, WRITE, AT_CURSOR);
    if (err) {
        errno = err;
        return -1;
    }
    return next(fd, iov, iovcnt);
}


int
fdatasync(int fd)
{
    int  err;

    NEXT(int, "fdatasync", (int))
    err = fault(fd, SYNC, -1);
    if (err) {
        errno = err;
        return -1;
    }
    return next(fd);
}


int
fsync(int fd)
{
    int  err;

    NEXT(int, "fsync", (int))
    err = fault(fd, SYNC, -1);
    if (err) {
        errno = err;
        return -1;
    }
    return next(fd);
}

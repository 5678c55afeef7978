/*
 * A client that is gone before its answer, for the admin daemon's log
 * (t/daemon_http.t): preloaded (LD_PRELOAD) into oauth2-admin serve, it
 * makes every send and sendmsg (libmicrohttpd's two ways to send) fail
 * with EPIPE while the file OAUTH2_SEND_FAULT_FILE exists.  libmicrohttpd
 * then logs "Failed to send the response headers for the request for
 * `<path>'", the path percent-decoded, at each request: what a client
 * that closes its connection early makes it log, without the race.
 *
 * Built by the test that uses it: cc -shared -fPIC -o faultsend.so
 * faultsend.c -ldl
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>


/* whether the trigger file exists; errno itself as it was */
static int
gone(void)
{
    int          saved, exists;
    const char  *trigger;

    trigger = getenv("OAUTH2_SEND_FAULT_FILE");
    if (trigger == NULL) {
        return 0;
    }

    saved = errno;
    exists = access(trigger, F_OK) == 0;
    errno = saved;
    return exists;
}


#define NEXT(type, name, args)                                               \
    static type (*next) args;                                                \
    if (next == NULL) {                                                      \
        next = (type (*) args) dlsym(RTLD_NEXT, name);                       \
    }


ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
    NEXT(ssize_t, "send", (int, const void *, size_t, int))
    if (gone()) {
        errno = EPIPE;
        return -1;
    }
    return next(fd, buf, len, flags);
}


ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
    NEXT(ssize_t, "sendmsg", (int, const struct msghdr *, int))
    if (gone()) {
        errno = EPIPE;
        return -1;
    }
    return next(fd, msg, flags);
}

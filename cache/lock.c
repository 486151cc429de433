/* Lock files under locks/: flock(2) locks, which the kernel releases when the
 * holder dies, so a killed process never leaves a stale lock. Each acquisition
 * opens its own file description, so threads of one process exclude each other
 * as well. */
#include "cache/cache_internal.h"
#include "common/error.h"
#include "common/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct ct_cache_lock {
    int fd;
    char path[];
};

int cache_lockfile_acquire(const char *path, int blocking, void (*on_wait)(void *), void *user,
                           int *fd_out)
{
    int waited = 0;
    for (;;) {
        int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return ct_error_set(CT_EIO, "%s: cannot open lock file: %s", path, strerror(errno));
        int rc;
        while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
            ;
        if (rc != 0 && errno == EWOULDBLOCK) {
            if (!blocking) {
                close(fd);
                return ct_error_set(CT_EBUSY, "%s: locked by another process or thread", path);
            }
            if (!waited && on_wait)
                on_wait(user);
            waited = 1;
            while ((rc = flock(fd, LOCK_EX)) != 0 && errno == EINTR)
                ;
        }
        if (rc != 0) {
            int e = errno;
            close(fd);
            return ct_error_set(CT_EIO, "%s: cannot lock: %s", path, strerror(e));
        }
        /* The previous holder unlinks the file before releasing it; if the path no
         * longer names the file we locked, lock whatever it names now. */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            *fd_out = fd;
            return 0;
        }
        close(fd);
    }
}

void cache_lockfile_release(const char *path, int fd, int unlink_it)
{
    if (fd < 0)
        return;
    /* Unlink while still holding the lock, so that no one can lock this path
     * between our unlink and close (see the inode check above). */
    if (unlink_it)
        unlink(path);
    close(fd);
}

void cache_writer_lock_path(ct_cache *c, const uint8_t id[CACHE_ID_LEN], char *buf, size_t n)
{
    char hex[2 * CACHE_ID_LEN + 1];
    ct_hex_encode(id, CACHE_ID_LEN, hex);
    snprintf(buf, n, "%s/w-%s.lock", c->locks_dir, hex);
}

static int key_lock(ct_cache *c, const uint8_t key[CT_KEY_LEN], int blocking, void (*on_wait)(void *),
                    void *user, ct_cache_lock **out)
{
    *out = NULL;
    char hex[2 * CT_KEY_LEN + 1];
    cache_key_hex(key, hex);
    size_t n = strlen(c->locks_dir) + 1 + sizeof hex + sizeof ".lock";
    ct_cache_lock *l = malloc(sizeof *l + n);
    if (!l)
        return ct_error_set(CT_ENOMEM, "out of memory");
    snprintf(l->path, n, "%s/%s.lock", c->locks_dir, hex);
    int rc = cache_lockfile_acquire(l->path, blocking, on_wait, user, &l->fd);
    if (rc) {
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

int ct_cache_lock_key(ct_cache *c, const uint8_t key[CT_KEY_LEN], void (*on_wait)(void *user),
                      void *user, ct_cache_lock **out)
{
    return key_lock(c, key, 1, on_wait, user, out);
}

int ct_cache_trylock_key(ct_cache *c, const uint8_t key[CT_KEY_LEN], ct_cache_lock **out)
{
    return key_lock(c, key, 0, NULL, NULL, out);
}

void ct_cache_unlock(ct_cache_lock *l)
{
    if (!l)
        return;
    cache_lockfile_release(l->path, l->fd, 1);
    free(l);
}

/* Refusing network filesystems: LMDB relies on POSIX locks and a coherent shared
 * mmap between processes, which NFS, SMB and most remote FUSE filesystems do not
 * give, so a cache there corrupts silently. */
#include "cache/fs_internal.h"
#include "common/error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

#define FUSE_MAGIC 0x65735546UL

static const struct {
    unsigned long magic;
    const char *name;
    int network;
} fs_table[] = {
    {0x6969UL, "nfs", 1},
    {0x517BUL, "smb", 1},
    {0xFF534D42UL, "cifs", 1},
    {0xFE534D42UL, "smb2", 1},
    {0x01021997UL, "9p", 1},
    {0x00C36400UL, "ceph", 1},
    {0x5346414FUL, "afs", 1},
    {0x6B414653UL, "kafs", 1},
    {0x73757245UL, "coda", 1},
    {0x564CUL, "ncp", 1},
    {0x0BD00BD0UL, "lustre", 1},
    {0x47504653UL, "gpfs", 1},
    {0x19830326UL, "beegfs", 1},
    {0x20030528UL, "orangefs", 1},
    {0xAAD7AAEAUL, "panfs", 1},
    {0x01161970UL, "gfs2", 1},
    {0x7461636FUL, "ocfs2", 1},
    {0xEF53UL, "ext4", 0},
    {0x58465342UL, "xfs", 0},
    {0x9123683EUL, "btrfs", 0},
    {0x01021994UL, "tmpfs", 0},
    {0x2FC12FC1UL, "zfs", 0},
    {0x794C7630UL, "overlayfs", 0},
    {0xF2F52010UL, "f2fs", 0},
};

/* FUSE filesystems that keep their data on this machine. */
static const char *const fuse_local[] = {
    "fuseblk", "fuse.fuse-overlayfs", "fuse.ntfs-3g", "fuse.ntfs", "fuse.exfat",
    "fuse.lxcfs", "fuse.squashfuse", "fuse.bindfs",
};

int ct_cache_fs_classify(unsigned long magic, const char *mount_type, const char **name)
{
    if (magic == FUSE_MAGIC) {
        if (mount_type) {
            for (size_t i = 0; i < sizeof fuse_local / sizeof fuse_local[0]; i++)
                if (strcmp(mount_type, fuse_local[i]) == 0) {
                    *name = fuse_local[i];
                    return 0;
                }
        }
        /* Unknown FUSE (sshfs, s3fs, gcsfuse, ...): assume remote. */
        *name = mount_type ? mount_type : "fuse";
        return 1;
    }
    for (size_t i = 0; i < sizeof fs_table / sizeof fs_table[0]; i++)
        if (fs_table[i].magic == magic) {
            *name = fs_table[i].name;
            return fs_table[i].network;
        }
    *name = NULL;
    return 0;
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
    char *d = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *d++ = *s;
        }
    }
    *d = '\0';
}

/* The filesystem type of the mount holding `real` (an absolute, resolved path). */
static int mount_type_of(const char *real, char *type, size_t n)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return 0;
    char line[4096];
    size_t best = 0;
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *tok, *fields[64];
        int nf = 0;
        for (tok = strtok_r(line, " \n", &save); tok && nf < 64; tok = strtok_r(NULL, " \n", &save))
            fields[nf++] = tok;
        int dash = -1;
        for (int i = 6; i < nf; i++)
            if (strcmp(fields[i], "-") == 0) {
                dash = i;
                break;
            }
        if (nf < 5 || dash < 0 || dash + 1 >= nf)
            continue;
        char *mp = fields[4];
        unescape(mp);
        size_t len = strlen(mp);
        int prefix = strcmp(mp, "/") == 0 ||
                     (strncmp(real, mp, len) == 0 && (real[len] == '/' || real[len] == '\0'));
        if (prefix && len >= best) { /* later mounts shadow earlier ones */
            best = len;
            snprintf(type, n, "%s", fields[dash + 1]);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

int ct_cache_fs_check(const char *path)
{
    char probe[PATH_MAX];
    if (snprintf(probe, sizeof probe, "%s", path) >= (int)sizeof probe)
        return ct_error_set(CT_EINVAL, "%s: path too long", path);
    struct statfs sf;
    /* The directory may not exist yet: judge where it would be created. */
    while (statfs(probe, &sf) != 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            return ct_error_set(CT_EIO, "%s: cannot query the filesystem: %s", probe, strerror(errno));
        char *slash = strrchr(probe, '/');
        if (!slash)
            snprintf(probe, sizeof probe, ".");
        else if (slash == probe)
            probe[1] = '\0';
        else
            *slash = '\0';
    }
    char type[256] = "";
    const char *mt = NULL;
    if ((unsigned long)sf.f_type == FUSE_MAGIC) {
        char real[PATH_MAX];
        if (realpath(probe, real) && mount_type_of(real, type, sizeof type))
            mt = type;
    }
    const char *name = NULL;
    if (ct_cache_fs_classify((unsigned long)sf.f_type, mt, &name))
        return ct_error_set(CT_EUNSUPPORTED,
                            "%s: the cache directory is on a network filesystem (%s), where LMDB "
                            "locking and memory maps are unreliable; use a local directory "
                            "(CROSSTIME_CACHE) or override with allow_network_fs "
                            "(--allow-network-fs) at your own risk",
                            path, name);
    return 0;
}

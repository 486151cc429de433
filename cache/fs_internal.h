/* Recognising network filesystems, where LMDB's locking and mmap coherence fail. */
#ifndef CT_CACHE_FS_INTERNAL_H
#define CT_CACHE_FS_INTERNAL_H

/* Classifies a filesystem by its statfs f_type and, for FUSE, by the mount's type
 * as /proc/self/mountinfo spells it ("fuse.sshfs", "fuseblk"; NULL when unknown).
 * Returns 1 for a network (or possibly remote) filesystem and sets *name to a short
 * name of it, 0 for a local one (*name is then the name when known, else NULL). */
int ct_cache_fs_classify(unsigned long magic, const char *mount_type, const char **name);

/* Refuses `path` (or its nearest existing ancestor) when it lies on a network
 * filesystem: CT_EUNSUPPORTED with a message naming the filesystem and the override. */
int ct_cache_fs_check(const char *path);

#endif

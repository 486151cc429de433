/* Per-key locks: held across processes and threads, released when a holder dies. */
#include "tests/cache/cache_testutil.h"
#include "common/progress.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

/* A child that takes the key's lock, says so, and sleeps until killed. */
static pid_t spawn_holder(const char *dir, const uint8_t key[CT_KEY_LEN])
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        ct_cache_options o = CT_CACHE_OPTIONS_INIT;
        o.dir = dir;
        ct_cache *c;
        ct_cache_lock *l;
        if (ct_cache_open(&o, &c) || ct_cache_lock_key(c, key, NULL, NULL, &l))
            _exit(2);
        if (write(fds[1], "l", 1) != 1)
            _exit(3);
        for (;;)
            pause();
    }
    close(fds[1]);
    char b;
    ck_assert_int_eq(read(fds[0], &b, 1), 1);
    close(fds[0]);
    return pid;
}

static void reap_killed(pid_t pid)
{
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

typedef struct {
    pid_t pid;
    int delay_ms;
} killer_arg;

static void *killer(void *p)
{
    killer_arg *a = p;
    usleep((useconds_t)a->delay_ms * 1000);
    kill(a->pid, SIGKILL);
    return NULL;
}

static void count_wait(void *user) { ++*(int *)user; }

START_TEST(killed_holder_releases_its_lock)
{
    char dir[PATH_MAX];
    ct_test_tmpdir(dir, sizeof dir, "lock");
    uint8_t key[CT_KEY_LEN], other[CT_KEY_LEN];
    tc_key(key, "locked %llu %llu", 0, 0);
    tc_key(other, "other %llu %llu", 0, 0);
    /* The children open the cache before this process does (LMDB environments are
     * not to be carried across fork). */
    pid_t pid = spawn_holder(dir, key);
    ct_cache *c = tc_open(dir, 0, 1 << 20);

    ct_cache_lock *l = NULL;
    ck_assert_int_eq(ct_cache_trylock_key(c, key, &l), CT_EBUSY);
    ck_assert_ptr_null(l);
    ck_assert_ptr_nonnull(strstr(ct_error_message(), "locked"));
    /* Other keys are independent. */
    ck_assert_int_eq(ct_cache_trylock_key(c, other, &l), 0);
    ct_cache_unlock(l);

    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    reap_killed(pid);
    ck_assert_int_eq(ct_cache_trylock_key(c, key, &l), 0); /* not stale */
    ct_cache_unlock(l);
    ct_cache_close(c);

    /* Blocking: we wait (on_wait called once) until the holder is killed. */
    pid = spawn_holder(dir, key);
    c = tc_open(dir, 0, 1 << 20);
    killer_arg ka = {pid, 300};
    pthread_t th;
    pthread_create(&th, NULL, killer, &ka);
    int waits = 0;
    double t0 = ct_seconds();
    ck_assert_int_eq(ct_cache_lock_key(c, key, count_wait, &waits, &l), 0);
    double waited = ct_seconds() - t0;
    pthread_join(th, NULL);
    reap_killed(pid);
    ck_assert_int_eq(waits, 1);
    ck_assert_msg(waited >= 0.2, "lock_key returned after %.3f s while the holder lived", waited);
    /* Now we hold it: a trylock from another thread's view (new open file) fails. */
    ct_cache_lock *l2 = NULL;
    ck_assert_int_eq(ct_cache_trylock_key(c, key, &l2), CT_EBUSY);
    ct_cache_unlock(l);
    ck_assert_int_eq(ct_cache_trylock_key(c, key, &l2), 0);
    ct_cache_unlock(l2);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

typedef struct {
    ct_cache *c;
    const uint8_t *key;
    int *counter;
    int max_inside;
    int *inside;
    pthread_mutex_t *mu;
} mutual_arg;

static void *contender(void *p)
{
    mutual_arg *a = p;
    for (int i = 0; i < 50; i++) {
        ct_cache_lock *l;
        if (ct_cache_lock_key(a->c, a->key, NULL, NULL, &l) != 0)
            return (void *)1;
        pthread_mutex_lock(a->mu);
        int in = ++*a->inside;
        if (in > a->max_inside)
            a->max_inside = in;
        pthread_mutex_unlock(a->mu);
        /* A read-modify-write that would lose updates without the lock. */
        int v = *(volatile int *)a->counter;
        usleep(50);
        *(volatile int *)a->counter = v + 1;
        pthread_mutex_lock(a->mu);
        --*a->inside;
        pthread_mutex_unlock(a->mu);
        ct_cache_unlock(l);
    }
    return NULL;
}

START_TEST(threads_exclude_each_other_and_lock_files_are_removed)
{
    char dir[PATH_MAX], locks[PATH_MAX + 16];
    ct_test_tmpdir(dir, sizeof dir, "lock");
    ct_cache *c = tc_open(dir, 0, 1 << 20);
    uint8_t key[CT_KEY_LEN];
    tc_key(key, "shared %llu %llu", 0, 0);
    int counter = 0, inside = 0;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    mutual_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (mutual_arg){c, key, &counter, 0, &inside, &mu};
        pthread_create(&th[i], NULL, contender, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        ck_assert_ptr_null(ret);
        ck_assert_int_eq(args[i].max_inside, 1);
    }
    ck_assert_int_eq(counter, 200);
    /* Released locks leave no files behind. */
    snprintf(locks, sizeof locks, "%s/locks", dir);
    DIR *d = opendir(locks);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL)
        files += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(files, 0);
    ct_cache_close(c);
    tc_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache_lock");
    TCase *tc = tcase_create("lock");
    tcase_add_test(tc, killed_holder_releases_its_lock);
    tcase_add_test(tc, threads_exclude_each_other_and_lock_files_are_removed);
    suite_add_tcase(s, tc);
    return ct_test_run(s);
}

/* Toy step kinds: deterministic text transforms that let the planner, runner, cache
 * and CLI be tested end to end without models. Planned only for recipes with a
 * `toy:` section, which no user-facing recipe has.
 *
 *   toy/item/<i>           toy_transform(text = toy.inputs[i])
 *   toy/round<r>/<i>       toy_transform(prev = the step of round r-1)   r = 1..rounds-1
 *   toy/join               toy_join(parts = the last round's steps)
 *
 * CT_TOY_WITNESS=<file> makes every computation append its label to that file, so
 * tests can count how often each step really ran. */
#include "common/error.h"
#include "pipeline/plan.h"
#include "pipeline/step.h"
#include "pipeline/steps/shard.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void witness(ct_step_ctx *ctx)
{
    const char *path = getenv("CT_TOY_WITNESS");
    if (!path || !*path)
        return;
    char line[512];
    int n = snprintf(line, sizeof line, "%s\n", ct_step_label(ctx));
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        /* one write with O_APPEND: lines from parallel processes never interleave */
        if (write(fd, line, (size_t)n) != n)
            ct_step_log(ctx, "cannot write the witness file %s", path);
        close(fd);
    }
}

/* Sleeps in small slices so Ctrl-C is honoured promptly. */
static int toy_sleep(ct_step_ctx *ctx, long ms)
{
    for (long left = ms; left > 0; left -= 10) {
        if (ct_step_interrupted(ctx))
            return ct_error_set(CT_EINTR, "interrupted");
        struct timespec ts = {0, (left < 10 ? left : 10) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int check_failure(ct_step_ctx *ctx)
{
    const char *fail_at = json_string_value(json_object_get(ct_step_params(ctx), "fail_at"));
    if (fail_at && strcmp(fail_at, ct_step_label(ctx)) == 0) {
        ct_step_log(ctx, "toy step %s fails on purpose (toy.fail_at)", ct_step_label(ctx));
        return ct_error_set(CT_ESTEP, "%s: failed on purpose", ct_step_label(ctx));
    }
    return 0;
}

static void transform(const char *how, char *s, size_t n)
{
    if (strcmp(how, "upper") == 0) {
        for (size_t i = 0; i < n; i++)
            s[i] = (char)toupper((unsigned char)s[i]);
    } else if (strcmp(how, "reverse") == 0) {
        for (size_t i = 0; i < n / 2; i++) {
            char t = s[i];
            s[i] = s[n - 1 - i];
            s[n - 1 - i] = t;
        }
    } else { /* rot13 */
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (c >= 'a' && c <= 'z')
                s[i] = (char)('a' + (c - 'a' + 13) % 26);
            else if (c >= 'A' && c <= 'Z')
                s[i] = (char)('A' + (c - 'A' + 13) % 26);
        }
    }
}

static int run_transform(ct_step_ctx *ctx)
{
    json_t *params = ct_step_params(ctx);
    int rc = toy_sleep(ctx, (long)json_integer_value(json_object_get(params, "sleep_ms")));
    if (rc || (rc = check_failure(ctx)))
        return rc;
    witness(ctx);
    char *text;
    size_t len;
    if (ct_step_input_count(ctx, "prev")) {
        if ((rc = ct_steps_read_input(ctx, "prev", 0, &text, &len)))
            return rc;
    } else {
        const char *t = json_string_value(json_object_get(params, "text"));
        text = strdup(t ? t : "");
        len = strlen(text);
    }
    transform(json_string_value(json_object_get(params, "transform")), text, len);
    ct_blob_writer *w;
    if (!(rc = ct_step_output(ctx, &w)))
        rc = ct_blob_write(w, text, len);
    ct_step_set_summary(ctx, json_pack("{s:I}", "bytes", (json_int_t)len));
    free(text);
    return rc;
}

static int run_join(ct_step_ctx *ctx)
{
    int rc = toy_sleep(ctx, (long)json_integer_value(json_object_get(ct_step_params(ctx), "sleep_ms")));
    if (rc || (rc = check_failure(ctx)))
        return rc;
    witness(ctx);
    ct_blob_writer *w;
    if ((rc = ct_step_output(ctx, &w)))
        return rc;
    size_t n = ct_step_input_count(ctx, "parts");
    ct_progress *prog = ct_step_progress(ctx, (double)n, "parts");
    for (size_t i = 0; i < n && !rc; i++) {
        char *text;
        size_t len;
        if ((rc = ct_steps_read_input(ctx, "parts", i, &text, &len)))
            break;
        rc = ct_blob_write(w, text, len);
        if (!rc)
            rc = ct_blob_write(w, "\n", 1);
        free(text);
        ct_progress_update(prog, (double)(i + 1));
    }
    return rc;
}

/* Parameters every toy step carries: what it does and the test knobs. */
static json_t *toy_params(json_t *toy)
{
    return json_pack("{s:O, s:O, s:O}", "transform", json_object_get(toy, "transform"), "fail_at",
                     json_object_get(toy, "fail_at"), "sleep_ms", json_object_get(toy, "sleep_ms"));
}

static int plan_toy(ct_plan *plan, const ct_recipe *recipe)
{
    json_t *toy = ct_recipe_get(recipe, "toy");
    if (!toy)
        return 0;
    json_t *inputs = json_object_get(toy, "inputs");
    json_int_t rounds = json_integer_value(json_object_get(toy, "rounds"));
    json_t *last = json_array();
    size_t i;
    json_t *item;
    int rc = 0;
    json_array_foreach(inputs, i, item) {
        char label[64], prev[64];
        snprintf(label, sizeof label, "toy/item/%zu", i);
        json_t *params = toy_params(toy);
        json_object_set(params, "text", item);
        if ((rc = ct_plan_add(plan, "toy_transform", label, params, NULL)))
            break;
        for (json_int_t r = 1; r < rounds && !rc; r++) {
            snprintf(prev, sizeof prev, "%s", label);
            snprintf(label, sizeof label, "toy/round%lld/%zu", (long long)r, i);
            rc = ct_plan_add(plan, "toy_transform", label, toy_params(toy),
                             json_pack("{s:s}", "prev", prev));
        }
        json_array_append_new(last, json_string(label));
    }
    if (rc) {
        json_decref(last);
        return rc;
    }
    return ct_plan_add(plan, "toy_join", "toy/join", toy_params(toy), json_pack("{s:o}", "parts", last));
}

const ct_step_kind ct_step_toy_transform = {
    .name = "toy_transform",
    .version = 1,
    .summary = "test-only: transform a text (upper, reverse, rot13)",
    .plan = plan_toy,
    .run = run_transform,
    .internal = 1,
    .bundle = CT_BUNDLE_ARTIFACT,
};

const ct_step_kind ct_step_toy_join = {
    .name = "toy_join",
    .version = 1,
    .summary = "test-only: join the transformed texts",
    .plan = NULL,
    .run = run_join,
    .internal = 1,
    .bundle = CT_BUNDLE_RESULT,
};

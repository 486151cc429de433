#include "pipeline/recipe/schema.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define END {.name = NULL}

static const char *const families[] = {"gpt-neox", "bloom", "olmo", NULL};
static const char *const text_formats[] = {"text", "jsonl", NULL};
static const char *const dtypes[] = {"bf16", "fp16", NULL};
static const char *const cc_types[] = {"l1", "batchtopk", NULL};
static const char *const transforms[] = {"upper", "reverse", "rot13", NULL};

static int valid_segment(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)s[i]) || s[i] == '/' || s[i] == '@')
            return 0;
    return 1;
}

/* hf:ORG/NAME@REVISION, pretrain:<step>, or a local directory. */
static int valid_source(const char *s)
{
    if (strncmp(s, "hf:", 3) == 0) {
        const char *org = s + 3, *slash = strchr(org, '/');
        const char *at = slash ? strchr(slash, '@') : NULL;
        return slash && at && valid_segment(org, (size_t)(slash - org)) &&
               valid_segment(slash + 1, (size_t)(at - slash - 1)) &&
               valid_segment(at + 1, strlen(at + 1));
    }
    if (strncmp(s, "pretrain:", 9) == 0) {
        const char *p = s + 9;
        if (!*p)
            return 0;
        for (; *p; p++)
            if (!isdigit((unsigned char)*p))
                return 0;
        return 1;
    }
    return *s != '\0';
}

/* A tokenizer source: like a checkpoint source, or "" for the first checkpoint's. */
static int valid_tokenizer(const char *s) { return *s == '\0' || valid_source(s); }

/* blimp/<paradigm>, clams/<lang>/<phenomenon>, multiblimp/<lang>[/<phenomenon>], or a
 * language set lang/<code> (expanded when the recipe loads, tasks.c): only the form is
 * checked here; whether the task data exists is known when it is read. */
static int valid_task(const char *s)
{
    const char *parts[3];
    size_t lens[3], n = 0;
    for (const char *p = s;;) {
        if (n == 3)
            return 0;
        const char *slash = strchr(p, '/');
        parts[n] = p;
        lens[n++] = slash ? (size_t)(slash - p) : strlen(p);
        if (!slash)
            break;
        p = slash + 1;
    }
    for (size_t i = 0; i < n; i++)
        if (!valid_segment(parts[i], lens[i]))
            return 0;
    if (lens[0] == 5 && strncmp(parts[0], "blimp", 5) == 0)
        return n == 2;
    if (lens[0] == 5 && strncmp(parts[0], "clams", 5) == 0)
        return n == 3;
    if (lens[0] == 10 && strncmp(parts[0], "multiblimp", 10) == 0)
        return n == 2 || n == 3;
    if (lens[0] == 4 && strncmp(parts[0], "lang", 4) == 0)
        return n == 2;
    return 0;
}

#define SOURCE_FORM "a local directory, 'hf:ORG/NAME@REVISION' or 'pretrain:<step>'"

static const ct_sfield e_string = {.type = CT_SF_STRING};
static const ct_sfield e_int = {.type = CT_SF_INT};
static const ct_sfield e_step = {.type = CT_SF_INT, .flags = CT_SF_MIN};
static const ct_sfield e_weight = {.type = CT_SF_NUMBER, .flags = CT_SF_MIN};
static const ct_sfield e_task = {
    .type = CT_SF_STRING,
    .valid = valid_task,
    .expect = "a task 'blimp/<paradigm>', 'clams/<lang>/<phenomenon>', "
              "'multiblimp/<lang>[/<phenomenon>]' or a language set 'lang/<code>'"};
static const ct_sfield e_tuple = {.type = CT_SF_LIST, .elem = &e_string};

static const ct_sfield checkpoint_fields[] = {
    {.name = "name", .type = CT_SF_STRING, .flags = CT_SF_REQUIRED | CT_SF_NONEMPTY,
     .doc = "Checkpoint name, used in tuples, tables and reports."},
    {.name = "source", .type = CT_SF_STRING, .flags = CT_SF_REQUIRED, .valid = valid_source,
     .doc = "Where the weights are: a local Hugging Face directory (relative to the file that "
            "names it), `hf:ORG/NAME@REVISION` in the Hugging Face hub cache, or `pretrain:<step>` "
            "for a checkpoint written by this recipe's `pretrain` block.",
     .expect = SOURCE_FORM},
    {.name = "tokens", .type = CT_SF_SIZE, .flags = CT_SF_REQUIRED,
     .doc = "Training tokens the checkpoint has seen; checkpoints must be listed in strictly "
            "increasing order of it."},
    END,
};
static const ct_sfield e_checkpoint = {.type = CT_SF_MAP, .fields = checkpoint_fields};

static const ct_sfield model_fields[] = {
    {.name = "family", .type = CT_SF_ENUM, .flags = CT_SF_REQUIRED, .choices = families,
     .doc = "Model architecture."},
    {.name = "tokenizer", .type = CT_SF_STRING, .def = "''", .valid = valid_tokenizer,
     .doc = "Tokenizer source (same forms as a checkpoint source); empty: the first checkpoint's.",
     .expect = "'' or " SOURCE_FORM},
    {.name = "checkpoints", .type = CT_SF_LIST, .flags = CT_SF_REQUIRED | CT_SF_NONEMPTY,
     .elem = &e_checkpoint, .doc = "The checkpoints, ordered by training tokens."},
    END,
};

static const ct_sfield mix_lang_fields[] = {
    {.name = "files", .type = CT_SF_LIST, .flags = CT_SF_REQUIRED | CT_SF_NONEMPTY,
     .elem = &e_string, .doc = "The language's files, read in order (as `corpus.files`)."},
    {.name = "weight", .type = CT_SF_NUMBER, .flags = CT_SF_REQUIRED | CT_SF_MIN,
     .doc = "Its share of the documents relative to the other languages (> 0)."},
    END,
};
static const ct_sfield e_mix_lang = {.type = CT_SF_MAP, .fields = mix_lang_fields};

static const ct_sfield corpus_fields[] = {
    {.name = "files", .type = CT_SF_LIST, .flags = CT_SF_OPTIONAL | CT_SF_NONEMPTY,
     .elem = &e_string,
     .doc = "Corpus files: paths or globs, relative to the file that names them, or absolute "
            "(plain, .gz or .zst). Exactly one of `files` and `mix` is given."},
    {.name = "mix", .type = CT_SF_DICT, .flags = CT_SF_OPTIONAL, .elem = &e_mix_lang,
     .doc = "A language mixture instead of `files`: language code -> `{files: [...], weight: w}`; "
            "documents are drawn from the languages in proportion to the weights (smooth weighted "
            "round-robin, each language's files in order), and every sequence records its language."},
    {.name = "format", .type = CT_SF_ENUM, .def = "text", .choices = text_formats,
     .doc = "`text`: one document per line; `jsonl`: one JSON object per line."},
    {.name = "text_field", .type = CT_SF_STRING, .flags = CT_SF_NONEMPTY, .def = "text",
     .doc = "The field holding a document's text in jsonl files."},
    {.name = "seq_len", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "1024", .min = 2,
     .doc = "Tokens per sequence; shorter documents are skipped, longer ones truncated."},
    {.name = "train_sequences", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "0",
     .doc = "Training sequences; 0: as many as `crosscoder.tokens` needs."},
    {.name = "val_sequences", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "240",
     .doc = "Validation sequences."},
    {.name = "test_sequences", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "500",
     .doc = "Held-out test sequences."},
    {.name = "shard_sequences", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "256", .min = 1,
     .doc = "Sequences per token/activation shard."},
    {.name = "seed", .type = CT_SF_INT, .def = "0",
     .doc = "Seed of document sampling and the train/val/test split."},
    {.name = "languages", .type = CT_SF_DICT, .def = "{}", .elem = &e_weight,
     .doc = "Multilingual sampling weights, language code -> weight (e.g. `en: 0.35`); empty: no "
            "weighting."},
    {.name = "download", .type = CT_SF_STRING, .def = "''",
     .doc = "Where to get the corpus files (a URL and a command); `plan` shows it when `files` "
            "match nothing, with `{dir}` replaced by the directory they are expected in. Not part "
            "of any key."},
    END,
};

static const ct_sfield activations_fields[] = {
    {.name = "dtype", .type = CT_SF_ENUM, .def = "bf16", .choices = dtypes,
     .doc = "Storage type of cached activations (computation is fp32)."},
    {.name = "norm_batches", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "1000", .min = 1,
     .doc = "Batches used to estimate the normalisation factor sqrt(d) / E[norm of x]."},
    {.name = "norm_batch_sequences", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "4", .min = 1,
     .doc = "Sequences per normalisation batch."},
    END,
};

static const ct_sfield topk_fields[] = {
    {.name = "k_start", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "1000", .min = 1,
     .doc = "k at step 0 (annealed linearly)."},
    {.name = "k_end", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "200", .min = 1,
     .doc = "k after annealing."},
    {.name = "k_anneal_steps", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "5000",
     .doc = "Steps over which k is annealed."},
    {.name = "threshold_start_step", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "1000",
     .doc = "Step after which the inference threshold is tracked."},
    {.name = "threshold_beta", .type = CT_SF_NUMBER, .flags = CT_SF_MIN | CT_SF_MAX,
     .def = "0.999", .max = 1, .doc = "EMA factor of the threshold."},
    {.name = "aux_coeff", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "0.03125",
     .doc = "Weight of the AuxK loss."},
    {.name = "aux_k", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "0",
     .doc = "k of the AuxK loss; 0: d/2."},
    {.name = "dead_tokens", .type = CT_SF_SIZE, .def = "10M",
     .doc = "A latent is dead after this many tokens without firing."},
    END,
};

static const ct_sfield crosscoder_fields[] = {
    {.name = "type", .type = CT_SF_ENUM, .def = "l1", .choices = cc_types,
     .doc = "`l1`: ReLU with decoder-norm-weighted L1 (the paper's main model); `batchtopk`: "
            "BatchTopK."},
    {.name = "dict_size", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "16384", .min = 1,
     .doc = "Latents H."},
    {.name = "batch_size", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "4096", .min = 1,
     .doc = "Activations per step."},
    {.name = "tokens", .type = CT_SF_SIZE, .def = "400M",
     .doc = "Training tokens (steps = tokens / batch_size)."},
    {.name = "lr", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "5e-5",
     .doc = "Adam learning rate."},
    {.name = "beta1", .type = CT_SF_NUMBER, .flags = CT_SF_MIN | CT_SF_MAX, .def = "0.9", .max = 1,
     .doc = "Adam beta1."},
    {.name = "beta2", .type = CT_SF_NUMBER, .flags = CT_SF_MIN | CT_SF_MAX, .def = "0.999",
     .max = 1, .doc = "Adam beta2."},
    {.name = "eps", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "1e-8",
     .doc = "Adam epsilon."},
    {.name = "grad_clip", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "1.0",
     .doc = "Gradient norm clip; 0: none."},
    {.name = "l1_coeff", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "2",
     .doc = "Final L1 coefficient (l1 model)."},
    {.name = "l1_warmup", .type = CT_SF_NUMBER, .flags = CT_SF_MIN | CT_SF_MAX, .def = "0.05",
     .max = 1, .doc = "Fraction of steps over which the L1 coefficient rises linearly from 0."},
    {.name = "lr_decay_start", .type = CT_SF_NUMBER, .flags = CT_SF_MIN | CT_SF_MAX, .def = "0.8",
     .max = 1, .doc = "Fraction of steps after which the learning rate decays linearly to 0."},
    {.name = "dec_init_norm", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "0.08",
     .doc = "Norm of each decoder row at init. The paper's BatchTopK model uses 1.0: set it "
            "explicitly with `type: batchtopk`."},
    {.name = "checkpoint_every", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "5000", .min = 1,
     .doc = "Steps between saved training states."},
    {.name = "log_every", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "100", .min = 1,
     .doc = "Steps between logged metrics."},
    {.name = "seeds", .type = CT_SF_LIST, .flags = CT_SF_NONEMPTY, .def = "[124, 153, 6582]",
     .elem = &e_int, .doc = "One crosscoder per seed and tuple; tables average over seeds."},
    {.name = "topk", .type = CT_SF_MAP, .def = "{}", .fields = topk_fields,
     .doc = "BatchTopK settings (used with `type: batchtopk`)."},
    END,
};

static const ct_sfield relie_fields[] = {
    {.name = "ig_steps", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "10", .min = 1,
     .doc = "Integrated-gradients steps (alpha = k/ig_steps)."},
    {.name = "threshold", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "0.1",
     .doc = "Per-position effects with absolute IE at most this are zeroed."},
    {.name = "max_examples", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "1000",
     .doc = "Examples per task (0: all)."},
    {.name = "batch_size", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "4", .min = 1,
     .doc = "Prefixes per forward batch."},
    {.name = "top_k", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "10", .min = 1,
     .doc = "Latents selected per checkpoint by absolute IE; their union is ablated by "
            "`validate`."},
    {.name = "top_k_overlap", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "100", .min = 1,
     .doc = "Latents per language compared by `overlap` (top by summed absolute IE)."},
    {.name = "low", .type = CT_SF_NUMBER, .flags = CT_SF_MIN | CT_SF_MAX, .def = "0.3", .max = 1,
     .doc = "RelIE below this: specific to the earlier checkpoint."},
    {.name = "high", .type = CT_SF_NUMBER, .flags = CT_SF_MIN | CT_SF_MAX, .def = "0.7", .max = 1,
     .doc = "RelIE above this: specific to the later checkpoint."},
    END,
};

static const ct_sfield evaluation_fields[] = {
    {.name = "ce_sequences", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "240",
     .doc = "Validation sequences for the CE increase."},
    {.name = "ce_batch", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "8", .min = 1,
     .doc = "Sequences per CE batch."},
    END,
};

static const ct_sfield annotate_fields[] = {
    {.name = "sequences", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "500",
     .doc = "Held-out sequences searched for top contexts."},
    {.name = "seed", .type = CT_SF_INT, .def = "42", .doc = "Seed of their shuffle."},
    {.name = "sequences_per_language", .type = CT_SF_INT, .flags = CT_SF_OPTIONAL | CT_SF_MIN,
     .doc = "With a `corpus.mix` of 2 or more languages: held-out sequences searched per language "
            "(of `languages`, else of the mix) instead of `sequences`; 100 when not given (METHOD "
            "section 7)."},
    {.name = "top_contexts", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "20", .min = 1,
     .doc = "Contexts kept per latent."},
    {.name = "context_tokens", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "16", .min = 1,
     .doc = "Tokens shown around each activation."},
    END,
};

static const ct_sfield pretrain_tokenizer_fields[] = {
    {.name = "vocab_size", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "4096", .min = 2,
     .doc = "BPE vocabulary size."},
    {.name = "min_frequency", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "2", .min = 1,
     .doc = "Minimum pair frequency of a merge."},
    END,
};

static const ct_sfield pretrain_model_fields[] = {
    {.name = "hidden", .type = CT_SF_INT, .flags = CT_SF_REQUIRED | CT_SF_MIN, .min = 1,
     .doc = "Residual width d."},
    {.name = "layers", .type = CT_SF_INT, .flags = CT_SF_REQUIRED | CT_SF_MIN, .min = 1,
     .doc = "Decoder blocks."},
    {.name = "heads", .type = CT_SF_INT, .flags = CT_SF_REQUIRED | CT_SF_MIN, .min = 1,
     .doc = "Attention heads (must divide hidden)."},
    {.name = "intermediate", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "0",
     .doc = "MLP width; 0: 4 x hidden."},
    {.name = "ctx", .type = CT_SF_INT, .flags = CT_SF_REQUIRED | CT_SF_MIN, .min = 1,
     .doc = "Context length."},
    {.name = "rotary_pct", .type = CT_SF_NUMBER, .flags = CT_SF_MIN | CT_SF_MAX, .def = "0.25",
     .max = 1, .doc = "Fraction of each head's dimensions rotated."},
    {.name = "parallel_residual", .type = CT_SF_BOOL, .def = "true",
     .doc = "GPT-NeoX parallel attention/MLP residual."},
    END,
};

static const ct_sfield pretrain_fields[] = {
    {.name = "tokenizer", .type = CT_SF_MAP, .def = "{}", .fields = pretrain_tokenizer_fields,
     .doc = "The BPE tokenizer trained on the corpus."},
    {.name = "model", .type = CT_SF_MAP, .flags = CT_SF_REQUIRED, .fields = pretrain_model_fields,
     .doc = "The GPT-NeoX model's shape."},
    {.name = "batch_sequences", .type = CT_SF_INT, .flags = CT_SF_REQUIRED | CT_SF_MIN, .min = 1,
     .doc = "Sequences per step."},
    {.name = "steps", .type = CT_SF_INT, .flags = CT_SF_REQUIRED | CT_SF_MIN, .min = 1,
     .doc = "Training steps."},
    {.name = "lr", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "1e-3",
     .doc = "Peak learning rate."},
    {.name = "min_lr", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "1e-4",
     .doc = "Learning rate at the end of the decay."},
    {.name = "warmup_steps", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "100",
     .doc = "Linear warmup steps."},
    {.name = "weight_decay", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "0.1",
     .doc = "AdamW weight decay."},
    {.name = "grad_clip", .type = CT_SF_NUMBER, .flags = CT_SF_MIN, .def = "1.0",
     .doc = "Gradient norm clip; 0: none."},
    {.name = "seed", .type = CT_SF_INT, .def = "1234",
     .doc = "Seed of initialisation and data order."},
    {.name = "save_steps", .type = CT_SF_LIST, .flags = CT_SF_REQUIRED | CT_SF_NONEMPTY,
     .elem = &e_step, .doc = "Steps at which checkpoints are written (`pretrain:<step>` sources)."},
    {.name = "resume_every", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "100", .min = 1,
     .doc = "Steps between saves of the resume state (not part of the key)."},
    END,
};

static const ct_sfield toy_fields[] = {
    {.name = "inputs", .type = CT_SF_LIST, .def = "[]", .elem = &e_string, .doc = "Input strings."},
    {.name = "rounds", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "1",
     .doc = "Times the transform is applied."},
    {.name = "transform", .type = CT_SF_ENUM, .def = "upper", .choices = transforms,
     .doc = "The transform."},
    {.name = "fail_at", .type = CT_SF_STRING, .def = "''",
     .doc = "Input at which the toy step fails (tests of failure handling)."},
    {.name = "sleep_ms", .type = CT_SF_INT, .flags = CT_SF_MIN, .def = "0",
     .doc = "Delay per input, in milliseconds."},
    END,
};

static const ct_sfield root_fields[] = {
    {.name = "name", .type = CT_SF_STRING, .flags = CT_SF_REQUIRED | CT_SF_NONEMPTY,
     .doc = "The recipe's name."},
    {.name = "description", .type = CT_SF_STRING, .def = "''", .doc = "Free text."},
    {.name = "model", .type = CT_SF_MAP, .flags = CT_SF_REQUIRED | CT_SF_NOT_IN_TOY,
     .fields = model_fields, .doc = "The model family and its checkpoints."},
    {.name = "layer", .type = CT_SF_INT, .flags = CT_SF_REQUIRED | CT_SF_NOT_IN_TOY | CT_SF_MIN,
     .doc = "Decoder block (0-based) whose output (residual stream) is read."},
    {.name = "corpus", .type = CT_SF_MAP, .flags = CT_SF_REQUIRED | CT_SF_NOT_IN_TOY,
     .fields = corpus_fields, .doc = "Text the activations are computed on."},
    {.name = "activations", .type = CT_SF_MAP, .def = "{}", .fields = activations_fields,
     .doc = "Activation storage and normalisation."},
    {.name = "crosscoder", .type = CT_SF_MAP, .def = "{}", .fields = crosscoder_fields,
     .doc = "Crosscoder training."},
    {.name = "tuples", .type = CT_SF_LIST,
     .flags = CT_SF_REQUIRED | CT_SF_NOT_IN_TOY | CT_SF_NONEMPTY, .elem = &e_tuple,
     .doc = "Checkpoint tuples that get a crosscoder: lists of 2 or more checkpoint names."},
    {.name = "tasks", .type = CT_SF_LIST, .def = "[]", .elem = &e_task,
     .doc = "Minimal-pair tasks: `blimp/<paradigm>`, `clams/<lang>/<phenomenon>`, "
            "`multiblimp/<lang>[/<phenomenon>]`, or `lang/<code>` for every task of a language "
            "(the paper's seven CLAMS phenomena and the MultiBLiMP phenomena present), expanded "
            "in place when the recipe loads."},
    {.name = "languages", .type = CT_SF_LIST, .def = "[]", .elem = &e_string,
     .doc = "Languages of a multilingual study (annotation, overlap)."},
    {.name = "relie", .type = CT_SF_MAP, .def = "{}", .fields = relie_fields,
     .doc = "Attribution and RelIE."},
    {.name = "evaluation", .type = CT_SF_MAP, .def = "{}", .fields = evaluation_fields,
     .doc = "Crosscoder evaluation."},
    {.name = "annotate", .type = CT_SF_MAP, .def = "{}", .fields = annotate_fields,
     .doc = "Feature annotation."},
    {.name = "pretrain", .type = CT_SF_MAP, .flags = CT_SF_OPTIONAL, .fields = pretrain_fields,
     .doc = "Train a small GPT-NeoX series on the corpus first (recipes whose checkpoints are "
            "`pretrain:<step>`)."},
    {.name = "toy", .type = CT_SF_MAP, .flags = CT_SF_OPTIONAL | CT_SF_INTERNAL,
     .fields = toy_fields, .doc = "Internal: a toy step used by the pipeline's own tests."},
    END,
};

const ct_sfield ct_recipe_schema = {.type = CT_SF_MAP, .fields = root_fields, .doc = "A recipe."};

static const char *plural(const ct_sfield *e)
{
    switch (e->type) {
    case CT_SF_STRING: return "strings";
    case CT_SF_INT: return "integers";
    case CT_SF_NUMBER: return "numbers";
    case CT_SF_BOOL: return "booleans";
    case CT_SF_SIZE: return "token counts";
    case CT_SF_LIST: return "lists";
    default: return "maps";
    }
}

static void choices_list(const ct_sfield *f, const char *sep, int quote, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = '\0';
    for (const char *const *c = f->choices; *c && k < cap; c++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%s%s%s", c == f->choices ? "" : sep,
                              quote ? "'" : "", *c, quote ? "'" : "");
}

void ct_sfield_expected(const ct_sfield *f, char *buf, size_t cap)
{
    switch (f->type) {
    case CT_SF_STRING: snprintf(buf, cap, "a string"); break;
    case CT_SF_INT: snprintf(buf, cap, "an integer"); break;
    case CT_SF_NUMBER: snprintf(buf, cap, "a number"); break;
    case CT_SF_BOOL: snprintf(buf, cap, "a boolean (true or false)"); break;
    case CT_SF_SIZE: snprintf(buf, cap, "a token count (e.g. 400M, 400_000_000, 4e8)"); break;
    case CT_SF_ENUM: {
        char list[256];
        choices_list(f, ", ", 1, list, sizeof list);
        snprintf(buf, cap, "one of %s", list);
        break;
    }
    case CT_SF_LIST: snprintf(buf, cap, "a list of %s", plural(f->elem)); break;
    default: snprintf(buf, cap, "a map"); break;
    }
}

void ct_sfield_type_name(const ct_sfield *f, char *buf, size_t cap)
{
    char inner[256];
    switch (f->type) {
    case CT_SF_STRING: snprintf(buf, cap, "string"); break;
    case CT_SF_INT: snprintf(buf, cap, "int"); break;
    case CT_SF_NUMBER: snprintf(buf, cap, "number"); break;
    case CT_SF_BOOL: snprintf(buf, cap, "bool"); break;
    case CT_SF_SIZE: snprintf(buf, cap, "size"); break;
    case CT_SF_ENUM:
        choices_list(f, "\\|", 0, inner, sizeof inner);
        snprintf(buf, cap, "enum %s", inner);
        break;
    case CT_SF_LIST:
        ct_sfield_type_name(f->elem, inner, sizeof inner);
        snprintf(buf, cap, "list of %s", inner);
        break;
    case CT_SF_DICT:
        ct_sfield_type_name(f->elem, inner, sizeof inner);
        snprintf(buf, cap, "map of %s", inner);
        break;
    default: snprintf(buf, cap, "map"); break;
    }
}

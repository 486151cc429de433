/* The built-in step kinds, in plan order (upstream kinds first). */
#include "pipeline/step.h"

extern const ct_step_kind ct_step_toy_transform;
extern const ct_step_kind ct_step_toy_join;
extern const ct_step_kind ct_step_tokenizer_train;
extern const ct_step_kind ct_step_tokenize_index;
extern const ct_step_kind ct_step_tokenize;
extern const ct_step_kind ct_step_pretrain_tokens;
extern const ct_step_kind ct_step_pretrain;
extern const ct_step_kind ct_step_extract;
extern const ct_step_kind ct_step_scale;
extern const ct_step_kind ct_step_train;
extern const ct_step_kind ct_step_accuracy;
extern const ct_step_kind ct_step_attribute;
extern const ct_step_kind ct_step_validate;
extern const ct_step_kind ct_step_evaluate;
extern const ct_step_kind ct_step_overlap;
extern const ct_step_kind ct_step_annotate;
extern const ct_step_kind ct_step_report;

void ct_steps_register_builtin(void)
{
    static const ct_step_kind *const builtin[] = {
        &ct_step_toy_transform,
        &ct_step_toy_join,
        &ct_step_tokenizer_train,
        &ct_step_tokenize_index,
        &ct_step_tokenize,
        &ct_step_pretrain_tokens,
        &ct_step_pretrain,
        &ct_step_extract,
        &ct_step_scale,
        &ct_step_train,
        &ct_step_accuracy,
        &ct_step_attribute,
        &ct_step_validate,
        &ct_step_evaluate,
        &ct_step_overlap,
        &ct_step_annotate,
        &ct_step_report, /* keep last: it reads every other kind's steps */
    };
    for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++)
        ct_step_register(builtin[i]);
}

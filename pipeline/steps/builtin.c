/* The built-in step kinds, in plan order (upstream kinds first). */
#include "pipeline/step.h"

extern const ct_step_kind ct_step_toy_transform;
extern const ct_step_kind ct_step_toy_join;

void ct_steps_register_builtin(void)
{
    static const ct_step_kind *const builtin[] = {
        &ct_step_toy_transform,
        &ct_step_toy_join,
    };
    for (size_t i = 0; i < sizeof builtin / sizeof *builtin; i++)
        ct_step_register(builtin[i]);
}

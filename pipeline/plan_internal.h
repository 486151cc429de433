/* Planner internals shared with the runner (not part of the public API). */
#ifndef CT_PLAN_INTERNAL_H
#define CT_PLAN_INTERNAL_H

#include "pipeline/plan.h"

/* Inputs of step i as its plan function gave them: name -> label | [labels]. */
json_t *ct_plan_step_inputs(const ct_plan *p, size_t i);
/* Options of step i (never NULL: an empty object when none were set). */
json_t *ct_plan_step_options(const ct_plan *p, size_t i);
/* Marks step i as present in the cache (after the runner computed or found it). */
void ct_plan_set_cached(ct_plan *p, size_t i, int cached);

#endif

/* Growable arrays: the one capacity-doubling helper every module uses. */
#ifndef CT_ARRAY_H
#define CT_ARRAY_H

#include <stddef.h>

/* Ensures the array *p of *cap elements of `elem` bytes holds at least `need`
 * elements, doubling the capacity (from 16) as needed. Returns 0, or -1 when out of
 * memory (the array is left as it was); callers record their own message. */
int ct_array_grow(void **p, size_t *cap, size_t need, size_t elem);

#endif

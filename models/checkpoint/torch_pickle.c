#include "common/array.h"
#include "models/checkpoint/torch_pickle.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

/* Only what a torch state dict pickles to. Python objects become these few kinds;
 * calls (REDUCE) are recognised by the callee's allow-listed name and turned into data,
 * never dispatched to anything. */
typedef enum {
    PK_NONE,
    PK_BOOL,
    PK_INT,
    PK_FLOAT,
    PK_STR,
    PK_TUPLE,
    PK_LIST,
    PK_DICT,
    PK_GLOBAL,
    PK_STORAGE,
    PK_TENSOR,
} pk_kind;

typedef enum {
    G_ORDERED_DICT = 1,
    G_REBUILD_TENSOR_V2,
    G_REBUILD_PARAMETER,
    G_STORAGE_CLASS,
} pk_global;

typedef struct pk_obj pk_obj;
struct pk_obj {
    pk_kind kind;
    int64_t i; /* INT, BOOL; STORAGE: index; GLOBAL: pk_global */
    double f;
    char *s; /* STR; GLOBAL: "module.name" */
    size_t slen;
    pk_obj **items; /* TUPLE, LIST; DICT: key, value, key, value... */
    size_t n, cap;
    ct_dtype dtype; /* GLOBAL storage class */
    ct_pk_tensor t; /* TENSOR (name unused) */
};

typedef struct {
    const char *path;
    const unsigned char *p, *end, *base;
    pk_obj **all;
    size_t n_all, cap_all;
    pk_obj **stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    pk_obj **memo;
    size_t cap_memo, n_memo;
    ct_pk_state_dict *sd;
} pk_vm;

#define PK_MAX_DEPTH (1u << 22)
#define PK_MAX_MEMO (1u << 26)

static const struct {
    const char *name;
    ct_dtype dt;
} k_storages[] = {
    {"torch.FloatStorage", CT_DT_F32},     {"torch.HalfStorage", CT_DT_F16},
    {"torch.BFloat16Storage", CT_DT_BF16}, {"torch.DoubleStorage", CT_DT_F64},
    {"torch.LongStorage", CT_DT_I64},      {"torch.IntStorage", CT_DT_I32},
    {"torch.ShortStorage", CT_DT_I16},     {"torch.CharStorage", CT_DT_I8},
    {"torch.ByteStorage", CT_DT_U8},       {"torch.BoolStorage", CT_DT_BOOL},
};

static long off(const pk_vm *vm)
{
    return (long)(vm->p - vm->base);
}

static int oom(const pk_vm *vm)
{
    return ct_error_set(CT_ENOMEM, "%s: out of memory", vm->path);
}

static pk_obj *obj_new(pk_vm *vm, pk_kind kind)
{
    if (ct_array_grow((void **)&vm->all, &vm->cap_all, vm->n_all + 1, sizeof *vm->all))
        return NULL;
    pk_obj *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->kind = kind;
    vm->all[vm->n_all++] = o;
    return o;
}

static int push(pk_vm *vm, pk_obj *o)
{
    if (!o)
        return oom(vm);
    if (vm->sp >= PK_MAX_DEPTH)
        return ct_error_set(CT_ECORRUPT, "%s: pickle stack too deep at byte %ld", vm->path,
                            off(vm));
    if (ct_array_grow((void **)&vm->stack, &vm->cap_stack, vm->sp + 1, sizeof *vm->stack))
        return oom(vm);
    vm->stack[vm->sp++] = o;
    return 0;
}

/* Pops into *o; the floor is the innermost mark, so a MARK is never popped by accident. */
static int pop(pk_vm *vm, pk_obj **o)
{
    size_t floor = vm->n_marks ? vm->marks[vm->n_marks - 1] : 0;
    if (vm->sp <= floor)
        return ct_error_set(CT_ECORRUPT, "%s: pickle stack underflow at byte %ld", vm->path,
                            off(vm));
    *o = vm->stack[--vm->sp];
    return 0;
}

static int top(pk_vm *vm, pk_obj **o)
{
    if (vm->sp == 0)
        return ct_error_set(CT_ECORRUPT, "%s: pickle stack empty at byte %ld", vm->path, off(vm));
    *o = vm->stack[vm->sp - 1];
    return 0;
}

static int pop_mark(pk_vm *vm, size_t *start)
{
    if (!vm->n_marks)
        return ct_error_set(CT_ECORRUPT, "%s: pickle opcode at byte %ld needs a MARK", vm->path,
                            off(vm));
    *start = vm->marks[--vm->n_marks];
    return 0;
}

static int need(pk_vm *vm, size_t n)
{
    if ((size_t)(vm->end - vm->p) < n)
        return ct_error_set(CT_ECORRUPT, "%s: pickle truncated at byte %ld", vm->path, off(vm));
    return 0;
}

static uint64_t rd_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int push_int(pk_vm *vm, int64_t v)
{
    pk_obj *o = obj_new(vm, PK_INT);
    if (o)
        o->i = v;
    return push(vm, o);
}

static int push_str(pk_vm *vm, size_t lenbytes)
{
    int rc = need(vm, lenbytes);
    if (rc)
        return rc;
    uint64_t n = rd_le(vm->p, (int)lenbytes);
    vm->p += lenbytes;
    if ((rc = need(vm, n)))
        return rc;
    pk_obj *o = obj_new(vm, PK_STR);
    if (!o || !(o->s = malloc(n + 1)))
        return oom(vm);
    memcpy(o->s, vm->p, n);
    o->s[n] = '\0';
    o->slen = n;
    vm->p += n;
    return push(vm, o);
}

static int seq_append(pk_vm *vm, pk_obj *seq, pk_obj *item)
{
    if (ct_array_grow((void **)&seq->items, &seq->cap, seq->n + 1, sizeof *seq->items))
        return oom(vm);
    seq->items[seq->n++] = item;
    return 0;
}

/* Moves stack[start..sp) into a new sequence of `kind`. */
static int collect(pk_vm *vm, size_t start, pk_kind kind, pk_obj **out)
{
    pk_obj *o = obj_new(vm, kind);
    if (!o)
        return oom(vm);
    for (size_t i = start; i < vm->sp; i++)
        if (seq_append(vm, o, vm->stack[i]))
            return oom(vm);
    vm->sp = start;
    *out = o;
    return 0;
}

static int tuple_n(pk_vm *vm, size_t n)
{
    if (vm->sp < n + (vm->n_marks ? vm->marks[vm->n_marks - 1] : 0))
        return ct_error_set(CT_ECORRUPT, "%s: pickle stack underflow at byte %ld", vm->path,
                            off(vm));
    pk_obj *t;
    int rc = collect(vm, vm->sp - n, PK_TUPLE, &t);
    return rc ? rc : push(vm, t);
}

static int dict_set(pk_vm *vm, pk_obj *d, pk_obj *k, pk_obj *v)
{
    if (d->kind != PK_DICT)
        return ct_error_set(CT_ECORRUPT, "%s: SETITEM on a non-dict at byte %ld", vm->path,
                            off(vm));
    return seq_append(vm, d, k) || seq_append(vm, d, v) ? oom(vm) : 0;
}

static int do_global(pk_vm *vm, const char *mod, size_t ml, const char *name, size_t nl)
{
    pk_obj *o = obj_new(vm, PK_GLOBAL);
    if (!o || !(o->s = malloc(ml + nl + 2)))
        return oom(vm);
    memcpy(o->s, mod, ml);
    o->s[ml] = '.';
    memcpy(o->s + ml + 1, name, nl);
    o->s[ml + nl + 1] = '\0';
    o->slen = ml + nl + 1;
    if (strlen(o->s) != o->slen)
        return ct_error_set(CT_ECORRUPT, "%s: NUL in a global name at byte %ld", vm->path, off(vm));
    if (strcmp(o->s, "collections.OrderedDict") == 0)
        o->i = G_ORDERED_DICT;
    else if (strcmp(o->s, "torch._utils._rebuild_tensor_v2") == 0)
        o->i = G_REBUILD_TENSOR_V2;
    else if (strcmp(o->s, "torch._utils._rebuild_parameter") == 0)
        o->i = G_REBUILD_PARAMETER;
    else {
        for (size_t i = 0; i < sizeof k_storages / sizeof k_storages[0]; i++)
            if (strcmp(o->s, k_storages[i].name) == 0) {
                o->i = G_STORAGE_CLASS;
                o->dtype = k_storages[i].dt;
            }
    }
    if (!o->i)
        return ct_error_set(CT_EFORMAT,
                            "%s: refusing pickle global '%s' at byte %ld: not part of a tensor "
                            "state dict (nothing was executed)",
                            vm->path, o->s, off(vm));
    return push(vm, o);
}

static int op_global(pk_vm *vm)
{
    const unsigned char *nl1 = memchr(vm->p, '\n', (size_t)(vm->end - vm->p));
    const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(vm->end - nl1 - 1)) : NULL;
    if (!nl2)
        return ct_error_set(CT_ECORRUPT, "%s: truncated GLOBAL at byte %ld", vm->path, off(vm));
    const unsigned char *mod = vm->p, *name = nl1 + 1;
    vm->p = nl2 + 1;
    return do_global(vm, (const char *)mod, (size_t)(nl1 - mod), (const char *)name,
                     (size_t)(nl2 - name));
}

static int op_persid(pk_vm *vm)
{
    pk_obj *pid = NULL;
    int rc = pop(vm, &pid);
    if (rc)
        return rc;
    /* ('storage', storage class, key, location, numel) */
    if (pid->kind != PK_TUPLE || pid->n != 5 || pid->items[0]->kind != PK_STR ||
        strcmp(pid->items[0]->s, "storage") != 0 || pid->items[1]->kind != PK_GLOBAL ||
        pid->items[1]->i != G_STORAGE_CLASS || pid->items[2]->kind != PK_STR ||
        pid->items[4]->kind != PK_INT || pid->items[4]->i < 0)
        return ct_error_set(CT_EFORMAT, "%s: unsupported persistent id at byte %ld", vm->path,
                            off(vm));
    const char *key = pid->items[2]->s;
    ct_dtype dt = pid->items[1]->dtype;
    size_t numel = (size_t)pid->items[4]->i;
    ct_pk_state_dict *sd = vm->sd;
    size_t idx = 0;
    while (idx < sd->n_storages && strcmp(sd->storages[idx].key, key) != 0)
        idx++;
    if (idx == sd->n_storages) {
        size_t cap = sd->n_storages; /* exact-size growth: storages are few */
        ct_pk_storage *s = realloc(sd->storages, (cap + 1) * sizeof *s);
        if (!s)
            return oom(vm);
        sd->storages = s;
        s[idx].key = strdup(key);
        if (!s[idx].key)
            return oom(vm);
        s[idx].dtype = dt;
        s[idx].numel = numel;
        sd->n_storages++;
    } else if (sd->storages[idx].dtype != dt || sd->storages[idx].numel != numel) {
        return ct_error_set(CT_ECORRUPT, "%s: storage '%s' is declared twice with different types",
                            vm->path, key);
    }
    pk_obj *o = obj_new(vm, PK_STORAGE);
    if (o)
        o->i = (int64_t)idx;
    return push(vm, o);
}

static int int_tuple(pk_vm *vm, const pk_obj *t, int64_t *v, int *n, const char *what)
{
    if (t->kind != PK_TUPLE || t->n > CT_TENSOR_MAX_DIM)
        return ct_error_set(CT_EFORMAT, "%s: tensor %s is not a tuple of at most %d ints", vm->path,
                            what, CT_TENSOR_MAX_DIM);
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->kind != PK_INT || t->items[i]->i < 0)
            return ct_error_set(CT_EFORMAT, "%s: tensor %s[%zu] is not a non-negative int",
                                vm->path, what, i);
        v[i] = t->items[i]->i;
    }
    *n = (int)t->n;
    return 0;
}

static int op_reduce(pk_vm *vm)
{
    pk_obj *args = NULL, *fn = NULL;
    int rc = pop(vm, &args);
    if (!rc)
        rc = pop(vm, &fn);
    if (rc)
        return rc;
    if (fn->kind != PK_GLOBAL || args->kind != PK_TUPLE)
        return ct_error_set(CT_EFORMAT, "%s: REDUCE of a non-global at byte %ld", vm->path,
                            off(vm));
    switch (fn->i) {
    case G_ORDERED_DICT:
        if (args->n != 0)
            return ct_error_set(CT_EFORMAT, "%s: OrderedDict with arguments at byte %ld", vm->path,
                                off(vm));
        return push(vm, obj_new(vm, PK_DICT));
    case G_REBUILD_TENSOR_V2: {
        /* (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
        if (args->n < 4 || args->items[0]->kind != PK_STORAGE || args->items[1]->kind != PK_INT ||
            args->items[1]->i < 0)
            return ct_error_set(CT_EFORMAT, "%s: malformed _rebuild_tensor_v2 call at byte %ld",
                                vm->path, off(vm));
        pk_obj *o = obj_new(vm, PK_TENSOR);
        if (!o)
            return oom(vm);
        o->t.storage = (int)args->items[0]->i;
        o->t.offset = (size_t)args->items[1]->i;
        int ns, nt;
        if ((rc = int_tuple(vm, args->items[2], o->t.size, &ns, "size")) ||
            (rc = int_tuple(vm, args->items[3], o->t.stride, &nt, "stride")))
            return rc;
        if (ns != nt)
            return ct_error_set(CT_EFORMAT, "%s: tensor size and stride differ in rank at byte %ld",
                                vm->path, off(vm));
        o->t.ndim = ns;
        return push(vm, o);
    }
    case G_REBUILD_PARAMETER: /* (data, requires_grad, backward_hooks) */
        if (args->n < 1 || args->items[0]->kind != PK_TENSOR)
            return ct_error_set(CT_EFORMAT, "%s: malformed _rebuild_parameter call at byte %ld",
                                vm->path, off(vm));
        return push(vm, args->items[0]);
    default:
        return ct_error_set(CT_EFORMAT, "%s: refusing to call '%s' at byte %ld", vm->path, fn->s,
                            off(vm));
    }
}

static int memo_put(pk_vm *vm, uint64_t idx)
{
    pk_obj *o = NULL;
    int rc = top(vm, &o);
    if (rc)
        return rc;
    /* each memo store costs at least two bytes of input, so a larger index is bogus and
     * must not size an allocation */
    if (idx >= PK_MAX_MEMO || idx > (uint64_t)(vm->end - vm->base))
        return ct_error_set(CT_ECORRUPT, "%s: memo index %llu too large at byte %ld", vm->path,
                            (unsigned long long)idx, off(vm));
    size_t old = vm->cap_memo;
    if (ct_array_grow((void **)&vm->memo, &vm->cap_memo, (size_t)idx + 1, sizeof *vm->memo))
        return oom(vm);
    memset(vm->memo + old, 0, (vm->cap_memo - old) * sizeof *vm->memo);
    vm->memo[idx] = o;
    if (idx + 1 > vm->n_memo)
        vm->n_memo = (size_t)idx + 1;
    return 0;
}

static int memo_get(pk_vm *vm, uint64_t idx)
{
    if (idx >= vm->cap_memo || !vm->memo[idx])
        return ct_error_set(CT_ECORRUPT, "%s: memo entry %llu undefined at byte %ld", vm->path,
                            (unsigned long long)idx, off(vm));
    return push(vm, vm->memo[idx]);
}

static int step(pk_vm *vm, int *stop)
{
    unsigned char op = *vm->p++;
    pk_obj *a = NULL, *b = NULL, *o = NULL;
    size_t start = 0;
    int rc = 0;
    switch (op) {
    case 0x80: /* PROTO */
        if ((rc = need(vm, 1)))
            return rc;
        if (*vm->p > 5)
            return ct_error_set(CT_EFORMAT, "%s: pickle protocol %d not supported", vm->path,
                                *vm->p);
        vm->p++;
        return 0;
    case 0x95: /* FRAME: a size hint only */
        if ((rc = need(vm, 8)))
            return rc;
        vm->p += 8;
        return 0;
    case '.': /* STOP */ *stop = 1; return 0;
    case '(': /* MARK */
        if (ct_array_grow((void **)&vm->marks, &vm->cap_marks, vm->n_marks + 1, sizeof *vm->marks))
            return oom(vm);
        vm->marks[vm->n_marks++] = vm->sp;
        return 0;
    case '}': return push(vm, obj_new(vm, PK_DICT));
    case ']': return push(vm, obj_new(vm, PK_LIST));
    case ')': return push(vm, obj_new(vm, PK_TUPLE));
    case 'N': return push(vm, obj_new(vm, PK_NONE));
    case 0x88: /* NEWTRUE */
    case 0x89: /* NEWFALSE */
        if ((o = obj_new(vm, PK_BOOL)))
            o->i = op == 0x88;
        return push(vm, o);
    case 'J': /* BININT */
        if ((rc = need(vm, 4)))
            return rc;
        rc = push_int(vm, (int32_t)(uint32_t)rd_le(vm->p, 4));
        vm->p += 4;
        return rc;
    case 'K': /* BININT1 */
        if ((rc = need(vm, 1)))
            return rc;
        return push_int(vm, *vm->p++);
    case 'M': /* BININT2 */
        if ((rc = need(vm, 2)))
            return rc;
        rc = push_int(vm, (int64_t)rd_le(vm->p, 2));
        vm->p += 2;
        return rc;
    case 0x8a: { /* LONG1: little-endian two's complement */
        if ((rc = need(vm, 1)))
            return rc;
        int n = *vm->p++;
        if (n > 8)
            return ct_error_set(CT_EFORMAT, "%s: integer wider than 64 bits at byte %ld", vm->path,
                                off(vm));
        if ((rc = need(vm, (size_t)n)))
            return rc;
        uint64_t v = rd_le(vm->p, n);
        if (n > 0 && n < 8 && (vm->p[n - 1] & 0x80))
            v |= ~(uint64_t)0 << (8 * n);
        vm->p += n;
        return push_int(vm, (int64_t)v);
    }
    case 'G': { /* BINFLOAT, big-endian */
        if ((rc = need(vm, 8)))
            return rc;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++)
            bits = bits << 8 | vm->p[i];
        vm->p += 8;
        if (!(o = obj_new(vm, PK_FLOAT)))
            return oom(vm);
        memcpy(&o->f, &bits, 8);
        return push(vm, o);
    }
    case 'X': return push_str(vm, 4);  /* BINUNICODE */
    case 0x8c: return push_str(vm, 1); /* SHORT_BINUNICODE */
    case 0x8d: return push_str(vm, 8); /* BINUNICODE8 */
    case 'T': return push_str(vm, 4);  /* BINSTRING */
    case 'U': return push_str(vm, 1);  /* SHORT_BINSTRING */
    case 'B': return push_str(vm, 4);  /* BINBYTES */
    case 'C': return push_str(vm, 1);  /* SHORT_BINBYTES */
    case 'c': return op_global(vm);
    case 0x93: /* STACK_GLOBAL */
        if ((rc = pop(vm, &b)) || (rc = pop(vm, &a)))
            return rc;
        if (a->kind != PK_STR || b->kind != PK_STR)
            return ct_error_set(CT_ECORRUPT, "%s: STACK_GLOBAL of non-strings at byte %ld",
                                vm->path, off(vm));
        return do_global(vm, a->s, a->slen, b->s, b->slen);
    case 'Q': return op_persid(vm);
    case 'R': return op_reduce(vm);
    case 'b': /* BUILD: state of an OrderedDict (_metadata) or a Parameter is not needed */
        if ((rc = pop(vm, &a)) || (rc = top(vm, &b)))
            return rc;
        if (b->kind != PK_DICT && b->kind != PK_TENSOR)
            return ct_error_set(CT_EFORMAT, "%s: BUILD on an unsupported object at byte %ld",
                                vm->path, off(vm));
        return 0;
    case 't': /* TUPLE */
        if ((rc = pop_mark(vm, &start)) || (rc = collect(vm, start, PK_TUPLE, &o)))
            return rc;
        return push(vm, o);
    case 0x85: return tuple_n(vm, 1);
    case 0x86: return tuple_n(vm, 2);
    case 0x87: return tuple_n(vm, 3);
    case 'l': /* LIST */
        if ((rc = pop_mark(vm, &start)) || (rc = collect(vm, start, PK_LIST, &o)))
            return rc;
        return push(vm, o);
    case 'd': /* DICT */
        if ((rc = pop_mark(vm, &start)) || (rc = collect(vm, start, PK_DICT, &o)))
            return rc;
        if (o->n % 2)
            return ct_error_set(CT_ECORRUPT, "%s: odd DICT item count at byte %ld", vm->path,
                                off(vm));
        return push(vm, o);
    case 's': /* SETITEM */
        if ((rc = pop(vm, &b)) || (rc = pop(vm, &a)) || (rc = top(vm, &o)))
            return rc;
        return dict_set(vm, o, a, b);
    case 'u': /* SETITEMS */
        if ((rc = pop_mark(vm, &start)))
            return rc;
        if (start == 0 || (vm->sp - start) % 2)
            return ct_error_set(CT_ECORRUPT, "%s: malformed SETITEMS at byte %ld", vm->path,
                                off(vm));
        o = vm->stack[start - 1];
        for (size_t i = start; i < vm->sp && !rc; i += 2)
            rc = dict_set(vm, o, vm->stack[i], vm->stack[i + 1]);
        vm->sp = start;
        return rc;
    case 'a': /* APPEND */
        if ((rc = pop(vm, &a)) || (rc = top(vm, &o)))
            return rc;
        if (o->kind != PK_LIST)
            return ct_error_set(CT_ECORRUPT, "%s: APPEND to a non-list at byte %ld", vm->path,
                                off(vm));
        return seq_append(vm, o, a);
    case 'e': /* APPENDS */
        if ((rc = pop_mark(vm, &start)))
            return rc;
        if (start == 0 || vm->stack[start - 1]->kind != PK_LIST)
            return ct_error_set(CT_ECORRUPT, "%s: APPENDS to a non-list at byte %ld", vm->path,
                                off(vm));
        o = vm->stack[start - 1];
        for (size_t i = start; i < vm->sp && !rc; i++)
            rc = seq_append(vm, o, vm->stack[i]);
        vm->sp = start;
        return rc;
    case 'q': /* BINPUT */
        if ((rc = need(vm, 1)))
            return rc;
        return memo_put(vm, *vm->p++);
    case 'r': /* LONG_BINPUT */
        if ((rc = need(vm, 4)))
            return rc;
        rc = memo_put(vm, rd_le(vm->p, 4));
        vm->p += 4;
        return rc;
    case 0x94: /* MEMOIZE */ return memo_put(vm, vm->n_memo);
    case 'h': /* BINGET */
        if ((rc = need(vm, 1)))
            return rc;
        return memo_get(vm, *vm->p++);
    case 'j': /* LONG_BINGET */
        if ((rc = need(vm, 4)))
            return rc;
        rc = memo_get(vm, rd_le(vm->p, 4));
        vm->p += 4;
        return rc;
    case '0': /* POP */
        if (vm->n_marks && vm->marks[vm->n_marks - 1] == vm->sp) {
            vm->n_marks--; /* pops the mark itself, as CPython does */
            return 0;
        }
        return pop(vm, &a);
    case '1': /* POP_MARK */
        if ((rc = pop_mark(vm, &start)))
            return rc;
        vm->sp = start;
        return 0;
    case '2': /* DUP */
        if ((rc = top(vm, &a)))
            return rc;
        return push(vm, a);
    default:
        vm->p--;
        return ct_error_set(CT_EFORMAT, "%s: unsupported pickle opcode 0x%02x at byte %ld",
                            vm->path, op, off(vm));
    }
}

static int extract(pk_vm *vm, const pk_obj *d)
{
    ct_pk_state_dict *sd = vm->sd;
    if (d->kind != PK_DICT)
        return ct_error_set(CT_EFORMAT, "%s: the pickle does not hold a state dict", vm->path);
    size_t n = d->n / 2;
    sd->tensors = calloc(n ? n : 1, sizeof *sd->tensors);
    if (!sd->tensors)
        return oom(vm);
    for (size_t i = 0; i < n; i++) {
        const pk_obj *k = d->items[2 * i], *v = d->items[2 * i + 1];
        if (k->kind != PK_STR || strlen(k->s) != k->slen)
            return ct_error_set(CT_EFORMAT, "%s: state dict key %zu is not a string", vm->path, i);
        if (v->kind != PK_TENSOR)
            return ct_error_set(CT_EFORMAT, "%s: state dict entry '%s' is not a tensor", vm->path,
                                k->s);
        ct_pk_tensor *t = &sd->tensors[sd->n_tensors];
        *t = v->t;
        if (!(t->name = strdup(k->s)))
            return oom(vm);
        sd->n_tensors++;
    }
    return 0;
}

void ct_pk_state_dict_free(ct_pk_state_dict *sd)
{
    if (!sd)
        return;
    for (size_t i = 0; i < sd->n_storages; i++)
        free(sd->storages[i].key);
    for (size_t i = 0; i < sd->n_tensors; i++)
        free(sd->tensors[i].name);
    free(sd->storages);
    free(sd->tensors);
    memset(sd, 0, sizeof *sd);
}

int ct_pk_parse_state_dict(const char *path, const unsigned char *buf, size_t len,
                           ct_pk_state_dict *out)
{
    memset(out, 0, sizeof *out);
    pk_vm vm = {.path = path, .p = buf, .end = buf + len, .base = buf, .sd = out};
    int rc = 0, stop = 0;
    while (!rc && !stop) {
        if (vm.p >= vm.end) {
            rc = ct_error_set(CT_ECORRUPT, "%s: pickle ends without STOP", path);
            break;
        }
        rc = step(&vm, &stop);
    }
    if (!rc) {
        if (vm.sp != 1 || vm.n_marks)
            rc = ct_error_set(CT_ECORRUPT, "%s: pickle leaves %zu objects on the stack", path,
                              vm.sp);
        else
            rc = extract(&vm, vm.stack[0]);
    }
    for (size_t i = 0; i < vm.n_all; i++) {
        free(vm.all[i]->s);
        free(vm.all[i]->items);
        free(vm.all[i]);
    }
    free(vm.all);
    free(vm.stack);
    free(vm.marks);
    free(vm.memo);
    if (rc)
        ct_pk_state_dict_free(out);
    return rc;
}

#include "pipeline/recipe/yaml.h"

#include "common/error.h"

#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64

typedef struct {
    ct_rnode *node;
    ct_rnode *key;    /* pending key of a mapping */
    const char *anchor;
} frame;

typedef struct {
    const char *name;
    ct_rnode *node;
} anchor;

typedef struct {
    ct_rarena *a;
    const char *file;
    const char *text;
    size_t len, nchars; /* libyaml's mark.index counts characters */
    int line0, col0;
    frame stack[MAX_DEPTH];
    int depth;
    ct_rnode *root;
    anchor *anchors;
    size_t n_anchors, cap_anchors;
} parse_ctx;

/* Line and column of byte `off`, counting characters as libyaml does. */
static yaml_mark_t mark_at(const char *text, size_t off)
{
    yaml_mark_t m = {0, 0, 0};
    for (size_t i = 0; i < off; i++) {
        if (((unsigned char)text[i] & 0xC0) != 0x80)
            m.index++;
        if (text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            m.column++;
        }
    }
    return m;
}

static void mark_pos(const parse_ctx *c, yaml_mark_t m, int *line, int *col)
{
    /* At the end of a text without a final newline libyaml reports the start of a line
     * that does not exist; point at the end of the last line instead. */
    if (m.index >= c->nchars && c->len > 0 && c->text[c->len - 1] != '\n')
        m = mark_at(c->text, c->len);
    *line = c->line0 + (int)m.line + 1;
    *col = (int)m.column + 1 + (m.line == 0 ? c->col0 : 0);
}

static int fail_at(const parse_ctx *c, yaml_mark_t m, const char *what, const char *arg)
{
    int line, col;
    mark_pos(c, m, &line, &col);
    return ct_error_set(CT_EINVAL, "%s:%d:%d: %s%s", c->file, line, col, what, arg ? arg : "");
}

static int check_tag(const parse_ctx *c, const yaml_char_t *tag, yaml_mark_t m, int scalar,
                     int *force_string)
{
    *force_string = 0;
    if (!tag)
        return 0;
    if (scalar && strcmp((const char *)tag, YAML_STR_TAG) == 0) {
        *force_string = 1;
        return 0;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "unsupported YAML tag '%s' (only !!str is understood)",
             (const char *)tag);
    return fail_at(c, m, msg, NULL);
}

static int add_anchor(parse_ctx *c, const char *name, ct_rnode *node)
{
    if (!name)
        return 0;
    if (c->n_anchors == c->cap_anchors) {
        size_t cap = c->cap_anchors ? 2 * c->cap_anchors : 8;
        anchor *an = ct_rarena_alloc(c->a, cap * sizeof *an);
        if (!an)
            return ct_error_set(CT_ENOMEM, "out of memory");
        if (c->n_anchors)
            memcpy(an, c->anchors, c->n_anchors * sizeof *an);
        c->anchors = an;
        c->cap_anchors = cap;
    }
    c->anchors[c->n_anchors].name = name;
    c->anchors[c->n_anchors++].node = node;
    return 0;
}

/* Attaches a finished node to its parent (or makes it the root). */
static int attach(parse_ctx *c, ct_rnode *node, yaml_mark_t m)
{
    if (c->depth == 0) {
        c->root = node;
        return 0;
    }
    frame *f = &c->stack[c->depth - 1];
    int rc;
    if (f->node->kind == CT_RN_SEQ) {
        rc = ct_rnode_append(c->a, f->node, NULL, node);
    } else if (!f->key) {
        if (node->kind != CT_RN_SCALAR)
            return fail_at(c, m, "map keys must be plain strings", NULL);
        long prev = ct_rnode_find(f->node, node->text);
        if (prev >= 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "duplicate key '%.100s' (first at line %d)", node->text,
                     f->node->keys[prev]->line);
            return fail_at(c, m, msg, NULL);
        }
        f->key = node;
        return 0;
    } else {
        rc = ct_rnode_append(c->a, f->node, f->key, node);
        f->key = NULL;
    }
    if (rc)
        return rc;
    if (f->node->weight > CT_RNODE_MAX_WEIGHT)
        return fail_at(c, m, "document too large after expanding aliases", NULL);
    return 0;
}

static int syntax_error(const parse_ctx *c, const yaml_parser_t *p, const char *text, size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return ct_error_set(CT_ENOMEM, "%s: out of memory while parsing YAML", c->file);
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) /* the reader reports a byte offset, not a mark */
        m = mark_at(text, p->problem_offset < len ? p->problem_offset : len);
    int line, col;
    mark_pos(c, m, &line, &col);
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->context) {
        int cline, ccol;
        mark_pos(c, p->context_mark, &cline, &ccol);
        return ct_error_set(CT_EINVAL, "%s:%d:%d: invalid YAML: %s (%s at line %d)", c->file, line,
                            col, problem, p->context, cline);
    }
    return ct_error_set(CT_EINVAL, "%s:%d:%d: invalid YAML: %s", c->file, line, col, problem);
}

static int handle(parse_ctx *c, yaml_event_t *ev, int *docs, int *done)
{
    int line, col, force;
    mark_pos(c, ev->start_mark, &line, &col);
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = 1;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1)
            return fail_at(c, ev->start_mark, "a recipe is a single YAML document", NULL);
        return 0;
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        for (size_t i = c->n_anchors; i-- > 0;)
            if (strcmp(c->anchors[i].name, name) == 0)
                return attach(c, c->anchors[i].node, ev->start_mark);
        return fail_at(c, ev->start_mark, "undefined alias *", name);
    }
    case YAML_SCALAR_EVENT: {
        int rc = check_tag(c, ev->data.scalar.tag, ev->start_mark, 1, &force);
        if (rc)
            return rc;
        const char *v = (const char *)ev->data.scalar.value;
        size_t n = ev->data.scalar.length;
        if (memchr(v, '\0', n))
            return fail_at(c, ev->start_mark, "strings must not contain NUL characters", NULL);
        int quoted = force || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        ct_rnode *node = ct_rnode_scalar(c->a, c->file, line, col, v, n, quoted);
        if (!node)
            return ct_error_set(CT_ENOMEM, "out of memory");
        const char *an = (const char *)ev->data.scalar.anchor;
        if (an && (rc = add_anchor(c, ct_rarena_strdup(c->a, an), node)))
            return rc;
        return attach(c, node, ev->start_mark);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int seq = ev->type == YAML_SEQUENCE_START_EVENT;
        const yaml_char_t *tag = seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag;
        const yaml_char_t *an = seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
        int rc = check_tag(c, tag, ev->start_mark, 0, &force);
        if (rc)
            return rc;
        if (c->depth == MAX_DEPTH)
            return fail_at(c, ev->start_mark, "nesting too deep", NULL);
        ct_rnode *node = ct_rnode_new(c->a, seq ? CT_RN_SEQ : CT_RN_MAP, c->file, line, col);
        if (!node)
            return ct_error_set(CT_ENOMEM, "out of memory");
        frame *f = &c->stack[c->depth++];
        f->node = node;
        f->key = NULL;
        f->anchor = an ? ct_rarena_strdup(c->a, (const char *)an) : NULL;
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        frame f = c->stack[--c->depth];
        int rc = add_anchor(c, f.anchor, f.node);
        return rc ? rc : attach(c, f.node, ev->start_mark);
    }
    default:
        return 0;
    }
}

int ct_ryaml_parse(ct_rarena *a, const char *file, const char *text, size_t len, int line0,
                   int col0, ct_rnode **out)
{
    parse_ctx c = {.a = a, .file = file, .text = text, .len = len, .line0 = line0, .col0 = col0};
    yaml_parser_t p;
    *out = NULL;
    for (size_t i = 0; i < len; i++)
        c.nchars += ((unsigned char)text[i] & 0xC0) != 0x80;
    if (!yaml_parser_initialize(&p))
        return ct_error_set(CT_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = 0, docs = 0, done = 0;
    while (!rc && !done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            rc = syntax_error(&c, &p, text, len);
            break;
        }
        rc = handle(&c, &ev, &docs, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (!rc)
        *out = c.root;
    return rc;
}

#include "models/tokenizer/tok_nfc.h"

#include <stdlib.h>
#include <string.h>

#include "models/tokenizer/tok_nfc_tables.h"

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21,
       TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static inline unsigned info(uint32_t cp)
{
    if (cp >= 0x110000)
        return 0;
    return nfc_stage2[((unsigned)nfc_stage1[cp >> NFC_SHIFT] << NFC_SHIFT) | (cp & ((1u << NFC_SHIFT) - 1))];
}

static inline unsigned ccc(uint32_t cp) { return info(cp) & 0xFF; }

/* Whether a code point can make NFC differ from the input around it. */
static inline int may_change(uint32_t cp)
{
    if (cp < 0x300)
        return 0;
    if ((cp >= VBASE && cp < VBASE + VCOUNT) || (cp > TBASE && cp < TBASE + TCOUNT))
        return 1;
    return (info(cp) & 0x3FF) != 0;
}

static const uint32_t *decomp_of(uint32_t cp, size_t *n)
{
    size_t lo = 0, hi = sizeof nfc_decomp_cp / sizeof nfc_decomp_cp[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (nfc_decomp_cp[mid] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sizeof nfc_decomp_cp / sizeof nfc_decomp_cp[0] && nfc_decomp_cp[lo] == cp) {
        *n = nfc_decomp_off[lo + 1] - nfc_decomp_off[lo];
        return nfc_decomp_data + nfc_decomp_off[lo];
    }
    return NULL;
}

static uint32_t compose(uint32_t a, uint32_t b)
{
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE &&
        b < TBASE + TCOUNT)
        return a + (b - TBASE);
    uint64_t key = ((uint64_t)a << 21) | b;
    size_t lo = 0, hi = sizeof nfc_comp_key / sizeof nfc_comp_key[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (nfc_comp_key[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < sizeof nfc_comp_key / sizeof nfc_comp_key[0] && nfc_comp_key[lo] == key)
        return nfc_comp_val[lo];
    return 0;
}

static int full_nfc(const char *s, size_t n, tok_buf *out)
{
    /* A full canonical decomposition is at most 4 code points per input code point
     * (Hangul gives 3; the table's longest is 4); n bytes hold at most n code points. */
    uint32_t *cp = malloc((n * 4 + 1) * sizeof *cp);
    if (!cp)
        return -1;
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        int l;
        uint32_t c = tok_utf8_decode(s + i, &l);
        i += (size_t)l;
        if (c >= SBASE && c < SBASE + SCOUNT) {
            uint32_t si = c - SBASE;
            cp[m++] = LBASE + si / NCOUNT;
            cp[m++] = VBASE + (si % NCOUNT) / TCOUNT;
            if (si % TCOUNT)
                cp[m++] = TBASE + si % TCOUNT;
            continue;
        }
        size_t dn = 0;
        const uint32_t *d = (info(c) & 0x100) ? decomp_of(c, &dn) : NULL;
        if (d) {
            memcpy(cp + m, d, dn * sizeof *d);
            m += dn;
        } else {
            cp[m++] = c;
        }
    }
    /* Canonical ordering: a stable sort by combining class inside each run of
     * non-starters (runs are short, so insertion sort). */
    for (size_t i = 1; i < m; i++) {
        unsigned ci = ccc(cp[i]);
        if (!ci)
            continue;
        size_t j = i;
        uint32_t c = cp[i];
        while (j > 0) {
            unsigned cj = ccc(cp[j - 1]);
            if (cj <= ci || cj == 0)
                break;
            cp[j] = cp[j - 1];
            j--;
        }
        cp[j] = c;
    }
    /* Canonical composition. */
    size_t o = 0;
    long starter = -1;
    unsigned last_cc = 0;
    int after = 0; /* characters appended after the starter */
    for (size_t i = 0; i < m; i++) {
        uint32_t c = cp[i];
        unsigned cc = ccc(c);
        if (starter >= 0 && (!after || last_cc < cc)) {
            uint32_t k = compose(cp[starter], c);
            if (k) {
                cp[starter] = k;
                continue;
            }
        }
        if (cc == 0) {
            starter = (long)o;
            after = 0;
        } else {
            last_cc = cc;
            after = 1;
        }
        cp[o++] = c;
    }
    int rc = tok_buf_reserve(out, o * 4);
    if (!rc) {
        for (size_t i = 0; i < o; i++)
            out->n += (size_t)tok_utf8_encode(cp[i], out->p + out->n);
        out->p[out->n] = 0;
    }
    free(cp);
    return rc;
}

int tok_nfc(const char *s, size_t n, tok_buf *out)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0xCC) { /* below U+0300 nothing decomposes or combines */
            i++;
            continue;
        }
        int l;
        uint32_t cp = tok_utf8_decode(s + i, &l);
        if (may_change(cp))
            return full_nfc(s, n, out);
        i += (size_t)l;
    }
    return tok_buf_put(out, s, n);
}

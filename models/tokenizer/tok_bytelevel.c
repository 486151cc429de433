#include "models/tokenizer/tok_bytelevel.h"
#include "models/tokenizer/tok_util.h"

#include <pthread.h>
#include <string.h>

static uint16_t b2c[256];     /* byte -> code point */
static int16_t c2b[0x144];    /* code point -> byte, -1 outside the alphabet */
static char b2u[256][2];      /* byte -> UTF-8 of its code point */
static uint8_t b2ulen[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
    int n = 0;
    for (int i = 0; i < 0x144; i++)
        c2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        b2c[b] = (uint16_t)(printable ? b : 256 + n++);
    }
    for (int b = 0; b < 256; b++) {
        c2b[b2c[b]] = (int16_t)b;
        b2ulen[b] = (uint8_t)tok_utf8_encode(b2c[b], b2u[b]);
    }
}

int tok_bytelevel_map(const char *s, size_t n, tok_buf *out)
{
    pthread_once(&once, init);
    if (tok_buf_reserve(out, 2 * n))
        return -1;
    char *o = out->p + out->n;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        *o++ = b2u[b][0];
        if (b2ulen[b] == 2)
            *o++ = b2u[b][1];
    }
    out->n = (size_t)(o - out->p);
    out->p[out->n] = 0;
    return 0;
}

int tok_bytelevel_unmap(const char *tok, size_t n, tok_buf *out)
{
    pthread_once(&once, init);
    if (tok_buf_reserve(out, n))
        return -1;
    size_t start = out->n;
    for (size_t i = 0; i < n;) {
        int l = tok_utf8_len((unsigned char)tok[i]);
        if (!l || i + (size_t)l > n)
            goto raw;
        uint32_t cp = tok_utf8_decode(tok + i, &l);
        if (cp >= 0x144 || c2b[cp] < 0)
            goto raw;
        out->p[out->n++] = (char)c2b[cp];
        i += (size_t)l;
    }
    out->p[out->n] = 0;
    return 0;
raw:
    out->n = start;
    return tok_buf_put(out, tok, n);
}

int tok_utf8_lossy(const char *str, size_t n, tok_buf *out)
{
    static const char fffd[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    const unsigned char *s = (const unsigned char *)str;
    if (tok_buf_reserve(out, n))
        return -1;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (tok_buf_put(out, s + i, 1))
                return -1;
            i++;
            continue;
        }
        unsigned char lo, hi;
        size_t need = tok_utf8_lead(c, &lo, &hi);
        /* The longest valid prefix of the sequence is one maximal subpart: it is replaced
         * by a single U+FFFD and decoding resumes at the first byte that broke it. */
        size_t k = 1;
        if (need) {
            if (i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
                k = 2;
                while (k <= need && i + k < n && (s[i + k] & 0xC0) == 0x80)
                    k++;
            }
        }
        if (need && k == need + 1) {
            if (tok_buf_put(out, s + i, k))
                return -1;
        } else if (tok_buf_put(out, fffd, 3)) {
            return -1;
        }
        i += k;
    }
    return 0;
}

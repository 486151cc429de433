/* torch.save zip files: tensors rebuilt from storages (offsets, shared storages,
 * non-contiguous strides, fp16, scalar and bool buffers), and refusals of anything that
 * is not a plain state dict. */
#include "ckpt_testutil.h"
#include "models/checkpoint/safetensors.h"
#include "models/checkpoint/torch_pickle.h"
#include "models/checkpoint/torchbin.h"

#include <archive.h>
#include <archive_entry.h>

static char g_tmp[512];

static const char *fixture(char *buf, size_t n, const char *rel)
{
    char r[512];
    snprintf(r, sizeof r, "tests/fixtures/checkpoints/%s", rel);
    return ct_test_src(buf, n, r);
}

static const ct_tensor_view *find(const ct_torchbin *tb, const char *name, ct_tensor_view *v)
{
    for (size_t i = 0; i < ct_torchbin_count(tb); i++) {
        ct_torchbin_at(tb, i, v);
        if (strcmp(v->name, name) == 0)
            return v;
    }
    return NULL;
}

/* Every tensor of the .bin equals the same-named tensor of the safetensors file of the
 * same fixture, and matches the script's expected values. */
START_TEST(neox_bin_matches_expected)
{
    char p[4096];
    ct_torchbin *tb;
    ck_assert_msg(ct_torchbin_open(fixture(p, sizeof p, "neox/pytorch_model.bin"), &tb) == 0, "%s",
                  ct_error_message());
    exp_row *rows;
    size_t n = load_expected("neox", &rows);
    ck_assert_uint_eq(ct_torchbin_count(tb), n);
    for (size_t i = 0; i < n; i++) {
        ct_tensor_view v;
        ck_assert_msg(find(tb, rows[i].tensor, &v) != NULL, "missing %s", rows[i].tensor);
        ck_assert_int_eq(v.dtype, CT_DT_F32);
        check_view_against(&v, &rows[i]);
    }
    /* the transposed view was gathered: compare with the contiguous safetensors copy */
    ct_safetensors *st;
    ck_assert_int_eq(ct_safetensors_open(fixture(p, sizeof p, "neox/model.safetensors"), &st), 0);
    for (size_t i = 0; i < n; i++) {
        ct_tensor_view a, b;
        find(tb, rows[i].tensor, &a);
        ck_assert_int_eq(ct_safetensors_find(st, rows[i].tensor, &b), 0);
        ck_assert_uint_eq(a.nbytes, b.nbytes);
        ck_assert_msg(memcmp(a.data, b.data, a.nbytes) == 0, "%s differs", rows[i].tensor);
    }
    ct_safetensors_close(st);
    free(rows);
    ct_torchbin_close(tb);
}
END_TEST

START_TEST(old_pythia_buffers_and_fp16)
{
    char p[4096];
    ct_torchbin *tb;
    ck_assert_msg(ct_torchbin_open(fixture(p, sizeof p, "neox-old/pytorch_model.bin"), &tb) == 0,
                  "%s", ct_error_message());
    exp_row *rows;
    size_t n = load_expected("neox", &rows);
    ck_assert_uint_eq(ct_torchbin_count(tb), n + 2 * 3); /* 3 buffers per layer */
    for (size_t i = 0; i < n; i++) {
        ct_tensor_view v;
        ck_assert_ptr_nonnull(find(tb, rows[i].tensor, &v));
        ck_assert_int_eq(v.dtype, CT_DT_F16);
        check_view_against(&v, &rows[i]);
    }
    ct_tensor_view v;
    ck_assert_ptr_nonnull(find(tb, "gpt_neox.layers.1.attention.bias", &v));
    ck_assert_int_eq(v.dtype, CT_DT_BOOL);
    ck_assert_int_eq(v.ndim, 4);
    ck_assert_int_eq(v.shape[3], 32);
    const unsigned char *m = v.data; /* tril: row 1 is [1, 1, 0, ...] */
    ck_assert(m[32] == 1 && m[33] == 1 && m[34] == 0 && m[0] == 1 && m[1] == 0);
    ck_assert_ptr_nonnull(find(tb, "gpt_neox.layers.0.attention.masked_bias", &v));
    ck_assert_int_eq(v.ndim, 0);
    ck_assert_uint_eq(v.numel, 1);
    float f;
    ck_assert_int_eq(ct_dtype_to_f32(v.dtype, v.data, 1, &f), 0);
    ck_assert(f == -1e9f);
    ck_assert_ptr_nonnull(find(tb, "gpt_neox.layers.0.attention.rotary_emb.inv_freq", &v));
    ck_assert_int_eq(v.shape[0], 1); /* rotary dims 2 -> one frequency */
    free(rows);
    ct_torchbin_close(tb);
}
END_TEST

START_TEST(refuses_foreign_global)
{
    char p[4096];
    ct_torchbin *tb = (ct_torchbin *)1;
    fixture(p, sizeof p, "bad/evil_global.bin");
    ck_assert_int_eq(ct_torchbin_open(p, &tb), CT_EFORMAT);
    ck_assert_ptr_null(tb);
    assert_msg_has(p, "refusing pickle global 'os.system'", (const char *)NULL);

    /* STACK_GLOBAL spelling, and a known global used as a call it is not */
    const unsigned char evil2[] = "\x80\x04\x8c\x08"
                                  "builtins"
                                  "\x8c\x04"
                                  "eval"
                                  "\x93"
                                  "\x8c\x01"
                                  "1"
                                  "\x85"
                                  "R.";
    ct_pk_state_dict sd;
    ck_assert_int_eq(ct_pk_parse_state_dict("x.pkl", evil2, sizeof evil2 - 1, &sd), CT_EFORMAT);
    assert_msg_has("x.pkl", "'builtins.eval'", (const char *)NULL);
    const unsigned char call_storage[] = "\x80\x02"
                                         "ctorch\nFloatStorage\n"
                                         ")R.";
    ck_assert_int_eq(ct_pk_parse_state_dict("y.pkl", call_storage, sizeof call_storage - 1, &sd),
                     CT_EFORMAT);
    assert_msg_has("y.pkl", "refusing to call 'torch.FloatStorage'", (const char *)NULL);
    const unsigned char bigmemo[] = "\x80\x02}r\xff\xff\xff\x03.";
    ck_assert_int_eq(ct_pk_parse_state_dict("m.pkl", bigmemo, sizeof bigmemo - 1, &sd), CT_ECORRUPT);
    assert_msg_has("m.pkl", "memo index 67108863 too large", (const char *)NULL);
    const unsigned char newobj[] = "\x80\x02"
                                   "ccollections\nOrderedDict\n"
                                   ")\x81.";
    ck_assert_int_eq(ct_pk_parse_state_dict("z.pkl", newobj, sizeof newobj - 1, &sd), CT_EFORMAT);
    assert_msg_has("z.pkl", "unsupported pickle opcode 0x81", (const char *)NULL);
}
END_TEST

START_TEST(missing_storage_member)
{
    char p[4096];
    ct_torchbin *tb;
    fixture(p, sizeof p, "bad/missing_storage.bin");
    ck_assert_int_eq(ct_torchbin_open(p, &tb), CT_ECORRUPT);
    assert_msg_has(p, "storage member 'archive/data/0' (tensor 'a') is missing", (const char *)NULL);
}
END_TEST

START_TEST(not_a_zip_and_truncated)
{
    char p[1024], src[4096];
    ct_torchbin *tb;
    snprintf(p, sizeof p, "%s/plain.bin", g_tmp);
    spit_str(p, "\x80\x02}q\x00.");
    ck_assert_int_eq(ct_torchbin_open(p, &tb), CT_EFORMAT);
    assert_msg_has(p, "not a zip archive", (const char *)NULL);

    size_t n;
    unsigned char *b = slurp(fixture(src, sizeof src, "neox/pytorch_model.bin"), &n);
    snprintf(p, sizeof p, "%s/trunc.bin", g_tmp);
    for (size_t cut = 64; cut < n; cut += n / 7) {
        spit(p, b, cut);
        int rc = ct_torchbin_open(p, &tb);
        ck_assert_msg(rc < 0, "cut at %zu accepted", cut);
        assert_msg_has(p, (const char *)NULL);
    }
    snprintf(p, sizeof p, "%s/missing.bin", g_tmp);
    ck_assert_int_eq(ct_torchbin_open(p, &tb), CT_ENOTFOUND);
    free(b);
}
END_TEST

/* data.pkl of a real torch.save file. */
static unsigned char *read_pkl(const char *zip, size_t *len)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_zip(a);
    ck_assert_int_eq(archive_read_open_filename(a, zip, 1 << 16), ARCHIVE_OK);
    struct archive_entry *e;
    unsigned char *buf = NULL;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        const char *s = strrchr(archive_entry_pathname(e), '/');
        if (s && strcmp(s, "/data.pkl") == 0) {
            *len = (size_t)archive_entry_size(e);
            buf = malloc(*len);
            ck_assert_int_eq(archive_read_data(a, buf, *len), (la_ssize_t)*len);
            break;
        }
    }
    archive_read_free(a);
    ck_assert_ptr_nonnull(buf);
    return buf;
}

/* Every strict prefix of a real pickle, and random corruptions of it, fail cleanly. */
START_TEST(pickle_prefixes_and_corruption)
{
    char src[4096];
    size_t n;
    unsigned char *pk = read_pkl(fixture(src, sizeof src, "neox-old/pytorch_model.bin"), &n);
    ct_pk_state_dict sd;
    ck_assert_int_eq(ct_pk_parse_state_dict("ok.pkl", pk, n, &sd), 0);
    ck_assert_uint_eq(sd.n_tensors, 28 + 6); /* 12 per layer, embeddings, final norm, head */
    ck_assert_str_eq(sd.tensors[0].name, "gpt_neox.embed_in.weight");
    ck_assert_int_eq(sd.storages[sd.tensors[0].storage].dtype, CT_DT_F16);
    ct_pk_state_dict_free(&sd);
    for (size_t cut = 0; cut < n; cut++) {
        int rc = ct_pk_parse_state_dict("cut.pkl", pk, cut, &sd);
        ck_assert_msg(rc < 0, "prefix of %zu bytes accepted", cut);
    }
    unsigned char *m = malloc(n);
    uint64_t rng = 12345;
    for (int it = 0; it < 3000; it++) {
        memcpy(m, pk, n);
        for (int k = 0; k < 1 + it % 3; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            m[rng % n] = (unsigned char)(rng >> 40);
        }
        if (ct_pk_parse_state_dict("fuzz.pkl", m, n, &sd) == 0)
            ct_pk_state_dict_free(&sd);
        else
            ck_assert_ptr_nonnull(strstr(ct_error_message(), "fuzz.pkl"));
    }
    free(m);
    free(pk);
}
END_TEST

typedef struct {
    const char *name;
    const void *data;
    size_t len;
} zip_member;

static void write_zip(const char *path, const zip_member *mem, int n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    archive_write_zip_set_compression_store(a);
    ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, mem[i].name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)mem[i].len);
        ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
        ck_assert_int_eq(archive_write_data(a, mem[i].data, mem[i].len), (la_ssize_t)mem[i].len);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

/* Hand-made pickles for layouts torch.save can produce but the fixtures do not:
 * a tensor reaching past its storage is refused; a parameter wrapper is unwrapped. */
START_TEST(storage_bounds_and_parameters)
{
    /* {'w': _rebuild_parameter(_rebuild_tensor_v2(storage('0', Float, 4), 2, (3,), (1,),
     * False, OrderedDict()), True, OrderedDict())} -> reaches element 4 of 4 */
    const char pkl[] = "\x80\x02"
                       "ccollections\nOrderedDict\n"
                       ")R"
                       "X\x01\x00\x00\x00w"
                       "ctorch._utils\n_rebuild_parameter\n"
                       "("
                       "ctorch._utils\n_rebuild_tensor_v2\n"
                       "((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00"
                       "0"
                       "X\x03\x00\x00\x00"
                       "cpuK\x04tQ"
                       "K\x02K\x03\x85K\x01\x85\x89"
                       "ccollections\nOrderedDict\n)R"
                       "tR"
                       "\x88"
                       "ccollections\nOrderedDict\n)R"
                       "tR"
                       "s.";
    ct_pk_state_dict sd;
    ck_assert_msg(
        ct_pk_parse_state_dict("p.pkl", (const unsigned char *)pkl, sizeof pkl - 1, &sd) == 0, "%s",
        ct_error_message());
    ck_assert_uint_eq(sd.n_tensors, 1);
    ck_assert_str_eq(sd.tensors[0].name, "w");
    ck_assert_uint_eq(sd.tensors[0].offset, 2);
    ck_assert_int_eq(sd.tensors[0].size[0], 3);
    ck_assert_uint_eq(sd.storages[0].numel, 4);
    ct_pk_state_dict_free(&sd);

    /* the same in a zip with a 16-byte storage: the loader refuses the overreach */
    char p[1024];
    snprintf(p, sizeof p, "%s/overreach.bin", g_tmp);
    const zip_member mem[] = {{"archive/data.pkl", pkl, sizeof pkl - 1},
                              {"archive/data/0", "0123456789abcdef", 16}};
    write_zip(p, mem, 2);
    ct_torchbin *tb;
    ck_assert_int_eq(ct_torchbin_open(p, &tb), CT_ECORRUPT);
    assert_msg_has(p, "tensor 'w' reaches element 4 of storage '0' which has 4", (const char *)NULL);
}
END_TEST

/* Storages stored before data.pkl (a second pass reads them), and a big-endian
 * archive, which is refused. */
START_TEST(member_order_and_byteorder)
{
    const char pkl[] = "\x80\x02" "ccollections\nOrderedDict\n" ")R" "X\x01\x00\x00\x00w"
                       "ctorch._utils\n_rebuild_tensor_v2\n"
                       "((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0"
                       "X\x03\x00\x00\x00" "cpuK\x04tQ"
                       "K\x01K\x03\x85K\x01\x85\x89" "ccollections\nOrderedDict\n)R" "tR" "s.";
    const float vals[4] = {10.0f, 11.0f, 12.5f, -13.0f};
    char p[1024];
    snprintf(p, sizeof p, "%s/order.bin", g_tmp);
    const zip_member mem[] = {{"archive/data/0", vals, sizeof vals},
                              {"archive/byteorder", "little", 6},
                              {"archive/data.pkl", pkl, sizeof pkl - 1}};
    write_zip(p, mem, 3);
    ct_torchbin *tb;
    ck_assert_msg(ct_torchbin_open(p, &tb) == 0, "%s", ct_error_message());
    ck_assert_uint_eq(ct_torchbin_count(tb), 1);
    ct_tensor_view v;
    ct_torchbin_at(tb, 0, &v);
    ck_assert_str_eq(v.name, "w");
    ck_assert_uint_eq(v.numel, 3);
    ck_assert_int_eq(memcmp(v.data, vals + 1, 12), 0); /* storage offset 1 */
    ct_torchbin_close(tb);

    const zip_member big[] = {{"archive/byteorder", "big", 3},
                              {"archive/data.pkl", pkl, sizeof pkl - 1},
                              {"archive/data/0", vals, sizeof vals}};
    write_zip(p, big, 3);
    ck_assert_int_eq(ct_torchbin_open(p, &tb), CT_EFORMAT);
    assert_msg_has(p, "byteorder is 'big'", (const char *)NULL);

    const zip_member nopkl[] = {{"archive/data/0", vals, sizeof vals}};
    write_zip(p, nopkl, 1);
    ck_assert_int_eq(ct_torchbin_open(p, &tb), CT_EFORMAT);
    assert_msg_has(p, "no <name>/data.pkl", (const char *)NULL);
}
END_TEST

int main(void)
{
    make_run_tmpdir(g_tmp, sizeof g_tmp, "ckpt-tb");
    Suite *s = suite_create("checkpoint_torchbin");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, neox_bin_matches_expected);
    tcase_add_test(tc, old_pythia_buffers_and_fp16);
    tcase_add_test(tc, refuses_foreign_global);
    tcase_add_test(tc, missing_storage_member);
    tcase_add_test(tc, not_a_zip_and_truncated);
    tcase_add_test(tc, pickle_prefixes_and_corruption);
    tcase_add_test(tc, storage_bounds_and_parameters);
    tcase_add_test(tc, member_order_and_byteorder);
    suite_add_tcase(s, tc);
    int rc = ct_test_run(s);
    remove_run_tmpdir(g_tmp);
    return rc;
}

/* CITATION.cff against the rules of CFF 1.2.0 that a citation tool relies on: the
 * required keys, only known keys (the schema allows no others), persons or entities
 * as authors, and the references the project owes (the paper and its datasets). */
#include "tests/support/testutil.h"

#include <yaml.h>

static yaml_document_t doc;

static yaml_node_t *get(yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(&doc, p->value);
    }
    return NULL;
}

static const char *str(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int in(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

static void keys_known(yaml_node_t *map, const char *const *allowed, const char *where)
{
    ck_assert_msg(map && map->type == YAML_MAPPING_NODE, "%s is not a mapping", where);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = str(yaml_document_get_node(&doc, p->key));
        ck_assert_msg(k && in(k, allowed), "%s: key '%s' is not in CFF 1.2.0", where, k ? k : "?");
    }
}

static const char *const top_keys[] = {
    "abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi", "identifiers",
    "keywords", "license", "license-url", "message", "preferred-citation", "references", "repository",
    "repository-artifact", "repository-code", "title", "type", "url", "version", NULL};

static const char *const ref_keys[] = {
    "abbreviation", "abstract", "authors", "collection-doi", "collection-title", "collection-type", "commit",
    "conference", "contact", "copyright", "data-type", "database", "database-provider", "date-accessed",
    "date-downloaded", "date-published", "date-released", "department", "doi", "edition", "editors",
    "editors-series", "end", "entry", "filename", "format", "identifiers", "institution", "isbn", "issn",
    "issue", "issue-date", "issue-title", "journal", "keywords", "languages", "license", "license-url",
    "loc-end", "loc-start", "location", "medium", "month", "nihmsid", "notes", "number", "number-volumes",
    "pages", "patent-states", "pmcid", "publisher", "recipients", "repository", "repository-artifact",
    "repository-code", "scope", "section", "senders", "start", "status", "term", "thesis-type", "title",
    "translators", "type", "url", "version", "volume", "volume-title", "year", "year-original", NULL};

static const char *const person_keys[] = {
    "address", "affiliation", "alias", "city", "country", "email", "family-names", "fax", "given-names",
    "name-particle", "name-suffix", "orcid", "post-code", "region", "tel", "website",
    /* entities */
    "name", "date-end", "date-start", "location", NULL};

static const char *const ref_types[] = {
    "art", "article", "audiovisual", "bill", "blog", "book", "catalogue", "conference", "conference-paper",
    "data", "database", "dictionary", "edited-work", "encyclopedia", "film-broadcast", "generic",
    "government-document", "grant", "hearing", "historical-work", "legal-case", "legal-rule", "magazine-article",
    "manual", "map", "multimedia", "music", "newspaper-article", "pamphlet", "patent", "personal-communication",
    "proceedings", "report", "serial", "slides", "software", "software-code", "software-container",
    "software-executable", "software-virtual-machine", "sound-recording", "standard", "statute", "thesis",
    "unpublished", "video", "website", NULL};

static const char *const id_types[] = {"doi", "url", "swh", "other", NULL};

static void check_authors(yaml_node_t *authors, const char *where)
{
    ck_assert_msg(authors && authors->type == YAML_SEQUENCE_NODE, "%s: authors is not a list", where);
    ck_assert_msg(authors->data.sequence.items.top > authors->data.sequence.items.start, "%s: no authors", where);
    for (yaml_node_item_t *i = authors->data.sequence.items.start; i < authors->data.sequence.items.top; i++) {
        yaml_node_t *a = yaml_document_get_node(&doc, *i);
        keys_known(a, person_keys, where);
        ck_assert_msg(str(get(a, "family-names")) || str(get(a, "name")),
                      "%s: an author has neither family-names (person) nor name (entity)", where);
    }
}

START_TEST(citation_is_valid_cff)
{
    char path[PATH_MAX];
    ct_test_src(path, sizeof path, "CITATION.cff");
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "no %s", path);
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    ck_assert_msg(yaml_parser_load(&parser, &doc), "%s: YAML error: %s at line %zu", path,
                  parser.problem ? parser.problem : "?", parser.problem_mark.line + 1);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    keys_known(root, top_keys, "CITATION.cff");

    ck_assert_str_eq(str(get(root, "cff-version")), "1.2.0");
    ck_assert_msg(str(get(root, "message")) && strlen(str(get(root, "message"))) > 10, "message missing");
    ck_assert_msg(str(get(root, "title")) && strstr(str(get(root, "title")), "crosstime"), "title missing");
    ck_assert_str_eq(str(get(root, "type")), "software");
    ck_assert_ptr_nonnull(str(get(root, "version")));
    check_authors(get(root, "authors"), "authors");
    yaml_node_t *first = yaml_document_get_node(&doc, *get(root, "authors")->data.sequence.items.start);
    ck_assert_str_eq(str(get(first, "name")), "The crosstime developers");
    /* a software license is stated only when the repository has one */
    if (get(root, "license")) {
        char lic[PATH_MAX];
        ct_test_src(lic, sizeof lic, "LICENSE");
        ck_assert_msg(access(lic, R_OK) == 0, "CITATION.cff names a license but there is no LICENSE file");
    }

    yaml_node_t *refs = get(root, "references");
    ck_assert_msg(refs && refs->type == YAML_SEQUENCE_NODE, "references missing");
    int paper = 0, blimp = 0, clams = 0, multiblimp = 0, ud = 0;
    for (yaml_node_item_t *i = refs->data.sequence.items.start; i < refs->data.sequence.items.top; i++) {
        yaml_node_t *r = yaml_document_get_node(&doc, *i);
        const char *title = str(get(r, "title"));
        ck_assert_msg(title != NULL, "a reference has no title");
        keys_known(r, ref_keys, title);
        ck_assert_msg(str(get(r, "type")) && in(str(get(r, "type")), ref_types), "%s: bad type", title);
        check_authors(get(r, "authors"), title);
        const char *year = str(get(r, "year"));
        ck_assert_msg(year && atoi(year) >= 1990 && atoi(year) <= 2100, "%s: bad year", title);
        yaml_node_t *ids = get(r, "identifiers");
        if (ids) {
            ck_assert_int_eq(ids->type, YAML_SEQUENCE_NODE);
            for (yaml_node_item_t *j = ids->data.sequence.items.start; j < ids->data.sequence.items.top; j++) {
                yaml_node_t *id = yaml_document_get_node(&doc, *j);
                ck_assert_msg(str(get(id, "type")) && in(str(get(id, "type")), id_types), "%s: identifier", title);
                ck_assert_ptr_nonnull(str(get(id, "value")));
            }
            if (strstr(title, "Crosscoding Through Time"))
                paper = strcmp(str(get(yaml_document_get_node(&doc, *ids->data.sequence.items.start), "value")),
                               "arXiv:2509.05291") == 0;
        }
        const char *doi = str(get(r, "doi"));
        if (doi)
            ck_assert_msg(strncmp(doi, "10.", 3) == 0, "%s: doi '%s' is not a DOI", title, doi);
        blimp |= strstr(title, "BLiMP: The Benchmark") != NULL && strcmp(year, "2020") == 0;
        clams |= strcmp(title, "Cross-Linguistic Syntactic Evaluation of Word Prediction Models") == 0;
        multiblimp |= strstr(title, "MultiBLiMP 1.0") != NULL;
        ud |= strstr(title, "Universal Dependencies") != NULL;
    }
    ck_assert_msg(paper, "the paper (arXiv:2509.05291) is not referenced");
    ck_assert_msg(blimp && clams && multiblimp && ud, "a dataset reference is missing");
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("citation");
    TCase *t = tcase_create("citation");
    tcase_add_test(t, citation_is_valid_cff);
    suite_add_tcase(s, t);
    return ct_test_run(s);
}

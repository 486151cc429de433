/* The CLI's subcommands: each is `int ct_cmd_NAME(int argc, char **argv)` returning the
 * process exit status (0 ok, 1 failure, 2 usage), with argv[0] the subcommand's name. */
#ifndef CT_CLI_COMMANDS_H
#define CT_CLI_COMMANDS_H

int ct_cmd_run(int argc, char **argv);             /* cli/run.c */
int ct_cmd_plan(int argc, char **argv);            /* cli/run.c */
int ct_cmd_why(int argc, char **argv);             /* cli/why.c */
int ct_cmd_steps(int argc, char **argv);           /* cli/why.c */
int ct_cmd_cache_ls(int argc, char **argv);        /* cli/cache.c */
int ct_cmd_cache_stat(int argc, char **argv);      /* cli/cache.c */
int ct_cmd_cache_verify(int argc, char **argv);    /* cli/cache.c */
int ct_cmd_cache_gc(int argc, char **argv);        /* cli/cache.c */
int ct_cmd_cache_cat(int argc, char **argv);       /* cli/cache.c */
int ct_cmd_cache_roots(int argc, char **argv);     /* cli/cache.c */
int ct_cmd_inspect_tokenize(int argc, char **argv); /* cli/inspect_tokenize.c */
int ct_cmd_tokenizer_train(int argc, char **argv); /* cli/tokenizer_train.c */
int ct_cmd_inspect_task(int argc, char **argv);     /* cli/inspect_task.c */
int ct_cmd_bundle_export(int argc, char **argv);   /* cli/bundle.c */
int ct_cmd_bundle_import(int argc, char **argv);   /* cli/bundle.c */
int ct_cmd_bundle_verify(int argc, char **argv);   /* cli/bundle.c */
int ct_cmd_inspect_forward(int argc, char **argv);  /* cli/inspect_forward.c */
int ct_cmd_bench_forward(int argc, char **argv);    /* cli/bench_forward.c */
int ct_cmd_import_crosscoder(int argc, char **argv); /* cli/import_crosscoder.c */
int ct_cmd_export_crosscoder(int argc, char **argv); /* cli/export_crosscoder.c */
int ct_cmd_export_checkpoint(int argc, char **argv); /* cli/export_checkpoint.c */
int ct_cmd_bench_crosscoder(int argc, char **argv); /* cli/bench_crosscoder.c */
int ct_cmd_results(int argc, char **argv);         /* cli/results.c */
int ct_cmd_report(int argc, char **argv);          /* cli/report.c */

#endif

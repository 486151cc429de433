add_executable(bench_noop_run ${CMAKE_CURRENT_LIST_DIR}/noop_run.c)
add_dependencies(bench_noop_run crosstime_cli)
target_compile_definitions(bench_noop_run PRIVATE CT_CLI_PATH="$<TARGET_FILE:crosstime_cli>")

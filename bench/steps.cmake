# Throughput of the corpus-to-crosscoder step kinds (tokenize, extract, the training
# row source, train) on a synthetic d=256 world.
add_executable(bench_steps ${CMAKE_CURRENT_LIST_DIR}/steps.c)
target_link_libraries(bench_steps PRIVATE crosstime)
target_compile_definitions(bench_steps PRIVATE CT_SOURCE_ROOT="${CMAKE_SOURCE_DIR}")

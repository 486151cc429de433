# Forward throughput (models/forward): the Pythia-70M-shaped benchmark. It shares the
# implementation of `crosstime bench forward` (cli/bench_forward.c).
add_executable(bench_forward ${CMAKE_CURRENT_LIST_DIR}/forward.c
               ${CMAKE_SOURCE_DIR}/cli/bench_forward.c)
target_link_libraries(bench_forward PRIVATE ct_common ct_kernels ct_checkpoint ct_models m)

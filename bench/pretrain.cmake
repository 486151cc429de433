# Pretraining throughput (models/forward/pretrain): full training steps of a
# tiny-en-sized GPT-NeoX on the CPU.
add_executable(bench_pretrain ${CMAKE_CURRENT_LIST_DIR}/pretrain.c)
target_link_libraries(bench_pretrain PRIVATE ct_common ct_kernels ct_checkpoint ct_models m)

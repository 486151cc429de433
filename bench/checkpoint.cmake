add_executable(bench_ckpt_load ${CMAKE_CURRENT_LIST_DIR}/ckpt_load.c)
target_link_libraries(bench_ckpt_load PRIVATE ct_common ct_checkpoint m)

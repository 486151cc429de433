# Crosscoder training throughput; compare with bench/reference/crosscoder_torch.py.
# Linked against the modules it uses only, so it builds while unrelated modules change.
add_executable(crosscoder_train ${CMAKE_CURRENT_LIST_DIR}/crosscoder_train.c)
target_link_libraries(crosscoder_train PRIVATE ct_common ct_kernels ct_checkpoint ct_crosscoder m)

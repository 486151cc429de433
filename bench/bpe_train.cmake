add_executable(bench_bpe_train ${CMAKE_CURRENT_LIST_DIR}/bpe_train.c)
target_link_libraries(bench_bpe_train PRIVATE ct_common ct_corpus ct_tokenizer)
target_compile_definitions(bench_bpe_train PRIVATE CT_SOURCE_ROOT="${CMAKE_SOURCE_DIR}")

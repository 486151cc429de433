# Attribution throughput (analysis/): integrated gradients over a Pythia-70M-shaped
# random checkpoint pair; compare with bench/reference/attribution_torch.py.
add_executable(bench_attribution ${CMAKE_CURRENT_LIST_DIR}/attribution.c)
target_link_libraries(bench_attribution PRIVATE ct_common ct_kernels ct_checkpoint ct_models ct_crosscoder ct_tasks ct_tokenizer
  ct_analysis m)

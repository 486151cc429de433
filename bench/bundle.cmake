add_executable(bench_bundle_throughput ${CMAKE_CURRENT_LIST_DIR}/bundle_throughput.c)
foreach(m common cache kernels recipe pipeline bundle)
  target_link_libraries(bench_bundle_throughput PRIVATE ct_${m})
endforeach()
target_link_libraries(bench_bundle_throughput PRIVATE PkgConfig::LMDB PkgConfig::LIBGIT2
  PkgConfig::LIBARCHIVE PkgConfig::OPENBLAS PkgConfig::YAML PkgConfig::JANSSON PkgConfig::PCRE2
  PkgConfig::CRYPTO PkgConfig::ZSTD OpenMP::OpenMP_C Threads::Threads m)
if(CT_HAVE_CUDA)
  target_link_libraries(bench_bundle_throughput PRIVATE CUDA::cudart CUDA::cublas)
endif()

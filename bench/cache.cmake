add_executable(bench_blob_throughput ${CMAKE_CURRENT_LIST_DIR}/blob_throughput.c)
target_link_libraries(bench_blob_throughput PRIVATE ct_cache ct_common PkgConfig::LMDB PkgConfig::JANSSON
  PkgConfig::CRYPTO PkgConfig::LIBARCHIVE Threads::Threads)

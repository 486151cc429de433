# Fuzz targets (libFuzzer). Configure with CC=clang -DCT_FUZZ=ON; run e.g.
#   build/bundle_import_fuzz -max_total_time=600 fuzz/corpus/bundle_import
# The committed corpus also runs as a plain ctest test (tests/bundle).
include_guard(GLOBAL)
option(CT_FUZZ "Build the libFuzzer targets (needs a compiler with -fsanitize=fuzzer)" OFF)
if(CT_FUZZ)
  include(CheckCSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
  check_c_source_compiles("#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; return (int)(n & 0); }"
    CT_HAVE_LIBFUZZER)
  unset(CMAKE_REQUIRED_FLAGS)
  if(CT_HAVE_LIBFUZZER)
    # Coverage feedback for the code under attack; the rest is only sanitized.
    target_compile_options(ct_bundle PRIVATE -fsanitize=fuzzer-no-link,address)
    add_executable(bundle_import_fuzz ${CMAKE_SOURCE_DIR}/fuzz/bundle_import_fuzz.c)
    target_compile_options(bundle_import_fuzz PRIVATE -fsanitize=fuzzer,address)
    target_link_options(bundle_import_fuzz PRIVATE -fsanitize=fuzzer,address)
    target_link_libraries(bundle_import_fuzz PRIVATE crosstime)
    set_target_properties(bundle_import_fuzz PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
  else()
    message(WARNING "CT_FUZZ=ON but ${CMAKE_C_COMPILER_ID} has no -fsanitize=fuzzer (use clang): "
                    "no fuzz targets")
  endif()
endif()

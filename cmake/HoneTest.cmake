include(GoogleTest)
# hone_add_test(<name> LABELS <cpu|cuda|slow> SOURCES <files>...)
# One GoogleTest executable per module; every test in it carries the given ctest label (one label:
# gtest_discover_tests cannot pass a list through PROPERTIES).
function(hone_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "LABELS;SOURCES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE hone::all GTest::gtest GTest::gmock GTest::gtest_main hone_options)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_precompile_headers(${name} REUSE_FROM hone_test_pch)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "HONE_SOURCE_DIR=${PROJECT_SOURCE_DIR};HONE_BINARY_DIR=${PROJECT_BINARY_DIR}"
    DISCOVERY_TIMEOUT 120)
endfunction()

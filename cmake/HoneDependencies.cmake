# Third-party libraries, all from Debian packages (see docs/ARCHITECTURE.md for why each is here).
find_package(CLI11 CONFIG REQUIRED)          # libcli11-dev: the command line
find_package(nlohmann_json 3.10 REQUIRED)    # nlohmann-json3-dev: configs, recipes, --json output
find_package(ZLIB REQUIRED)                  # zlib1g-dev: gzip'd IDX files
find_package(Threads REQUIRED)
# libcpp-httplib-dev: the server's HTTP (a compiled library; its defines come from pkg-config).
# `make setup` installs it. The GPU machine has no registry: there scripts/gpu_deps.sh unpacks the
# Debian package into .gpu-deps/, found through CMAKE_PREFIX_PATH below (pkg-config there would need
# the .pc files of openssl and brotli too); the defines are those Debian's library was built with.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HTTPLIB IMPORTED_TARGET cpp-httplib)
if(NOT HTTPLIB_FOUND)
  find_path(HONE_HTTPLIB_INCLUDE_DIR httplib.h)
  find_library(HONE_HTTPLIB_LIBRARY NAMES libcpp-httplib.so.0.11 cpp-httplib)
  if(HONE_HTTPLIB_INCLUDE_DIR AND HONE_HTTPLIB_LIBRARY)
    add_library(PkgConfig::HTTPLIB UNKNOWN IMPORTED)
    set_target_properties(PkgConfig::HTTPLIB PROPERTIES IMPORTED_LOCATION "${HONE_HTTPLIB_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${HONE_HTTPLIB_INCLUDE_DIR}"
      INTERFACE_COMPILE_DEFINITIONS "CPPHTTPLIB_OPENSSL_SUPPORT;CPPHTTPLIB_ZLIB_SUPPORT;CPPHTTPLIB_BROTLI_SUPPORT")
    set(HTTPLIB_FOUND TRUE)
    message(STATUS "hone: cpp-httplib from ${HONE_HTTPLIB_LIBRARY} (no pkg-config entry)")
  else()
    message(WARNING "hone: cpp-httplib not found (Debian libcpp-httplib-dev): the serve module is not built")
  endif()
endif()
# libutf8proc-dev: Unicode data for the WordPiece tokenizer (NFD, case mapping, categories). Found
# directly: Debian's libutf8proc.pc reports a stale version (2.6.0 for 2.8.0).
find_path(HONE_UTF8PROC_INCLUDE_DIR utf8proc.h)
find_library(HONE_UTF8PROC_LIBRARY NAMES utf8proc)
if(NOT HONE_UTF8PROC_INCLUDE_DIR OR NOT HONE_UTF8PROC_LIBRARY)
  message(FATAL_ERROR "utf8proc not found: install the Debian package libutf8proc-dev (`make setup` does)")
endif()
add_library(hone::utf8proc UNKNOWN IMPORTED)
set_target_properties(hone::utf8proc PROPERTIES IMPORTED_LOCATION "${HONE_UTF8PROC_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${HONE_UTF8PROC_INCLUDE_DIR}")
if(HONE_BUILD_TESTS)
  find_package(GTest REQUIRED)               # libgtest-dev
endif()

# Compile options shared by every hone target.
add_library(hone_options INTERFACE)
target_compile_options(hone_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
if(HONE_WERROR)
  target_compile_options(hone_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()
if(HONE_SANITIZE)
  # Reports are recoverable at build time; UBSAN_OPTIONS=halt_on_error=1 (ctest and `make fuzz` set
  # it, docs/reliability.md) turns each into a failure, and suppressions stay possible without a rebuild.
  target_compile_options(hone_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer)
  target_link_options(hone_options INTERFACE -fsanitize=address,undefined)
endif()
if(HONE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "HONE_FUZZ needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  # Coverage feedback from the readers themselves, not only from the harnesses.
  target_compile_options(hone_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link>)
endif()

# Every target that includes torch precompiles the same header set (one PCH per target).
function(hone_torch_pch target)
  target_precompile_headers(${target} PRIVATE
    <torch/torch.h> <nlohmann/json.hpp> ${PROJECT_SOURCE_DIR}/include/hone/core/format.h
    <filesystem> <string> <vector> <memory> <optional>)
endfunction()

# Where a module's headers come from: a folder of links to include/hone/<module> for the module and
# every module below it (HONE_MODULE_ORDER), and nothing above. A library sees only its own folder,
# so `#include "hone/compress/..."` in src/train fails to compile.
set(HONE_MODULE_ORDER core ops io data randnla nn models run text runtime train profile bench compress export serve optimize
    CACHE INTERNAL "hone's modules, lowest first (docs/ARCHITECTURE.md)")
function(hone_module_includes target module)
  set(view ${PROJECT_BINARY_DIR}/include-views/${module})
  file(MAKE_DIRECTORY ${view}/hone)
  foreach(m IN LISTS HONE_MODULE_ORDER)
    if(EXISTS ${PROJECT_SOURCE_DIR}/include/hone/${m} AND NOT EXISTS ${view}/hone/${m})
      file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/hone/${m} ${view}/hone/${m} SYMBOLIC)
    endif()
    if(EXISTS ${PROJECT_SOURCE_DIR}/include/hone/${m}.h AND NOT EXISTS ${view}/hone/${m}.h)
      file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/hone/${m}.h ${view}/hone/${m}.h SYMBOLIC)
    endif()
    if(m STREQUAL module)
      break()
    endif()
  endforeach()
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${view}>)
endfunction()

# hone_module(<name> [DEPENDS <module or target>...] SOURCES <files>...): the library hone_<name>
# (alias hone::<name>), linking the modules it depends on.
function(hone_module name)
  cmake_parse_arguments(ARG "" "" "DEPENDS;SOURCES" ${ARGN})
  add_library(hone_${name} STATIC ${ARG_SOURCES})
  add_library(hone::${name} ALIAS hone_${name})
  hone_module_includes(hone_${name} ${name})
  foreach(dep IN LISTS ARG_DEPENDS)
    if(TARGET hone_${dep})
      target_link_libraries(hone_${name} PUBLIC hone_${dep})
    else()
      target_link_libraries(hone_${name} PUBLIC ${dep})
    endif()
  endforeach()
  target_link_libraries(hone_${name} PRIVATE hone_options)
  target_precompile_headers(hone_${name} REUSE_FROM hone_pch)
endfunction()

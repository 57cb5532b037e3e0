# Use ccache when present. Precompiled headers need the sloppiness settings below to hit the cache;
# CCACHE_BASEDIR makes paths relative, so a fresh clone on the same machine reuses earlier objects.
find_program(HONE_CCACHE ccache)
if(HONE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "CCACHE_BASEDIR=${PROJECT_SOURCE_DIR}"
      ${HONE_CCACHE})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${HONE_CCACHE})
  message(STATUS "hone: compiling through ccache (${HONE_CCACHE})")
endif()

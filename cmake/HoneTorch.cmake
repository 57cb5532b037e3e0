# LibTorch comes from the pip `torch` wheel (torch==2.11.0) inside a Python environment.
# HONE_PYTHON names that interpreter; we ask it for torch.utils.cmake_prefix_path.
#
# CUDA: the 2.11.0 wheel on PyPI is built against CUDA 13.0. When torch has CUDA *and* an nvcc is
# found, HONE_CUDA defaults to ON and we link torch_cuda (GPU code runs where a GPU is present; on a
# machine without one, CUDA tests skip themselves). When they disagree (no nvcc, or a toolkit whose
# major version differs from torch's), HONE_CUDA defaults to OFF: we then link only torch_cpu and
# c10, which needs neither the toolkit nor a GPU. See docs/ARCHITECTURE.md, "CUDA and the wheel".
set(HONE_PYTHON "python3" CACHE FILEPATH "Python interpreter that has torch==2.11.0 installed")

execute_process(
  COMMAND ${HONE_PYTHON} -c "import torch,sys; print(torch.utils.cmake_prefix_path); print(torch.__version__); print(torch.version.cuda or '')"
  OUTPUT_VARIABLE _hone_torch_out RESULT_VARIABLE _hone_torch_rc ERROR_VARIABLE _hone_torch_err
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _hone_torch_rc EQUAL 0)
  message(FATAL_ERROR "hone: '${HONE_PYTHON}' cannot import torch (${_hone_torch_err}). "
                      "Run `make setup` or pass -DHONE_PYTHON=/path/to/python-with-torch.")
endif()
string(REPLACE "\n" ";" _hone_torch_out "${_hone_torch_out}")
list(GET _hone_torch_out 0 HONE_TORCH_PREFIX)
list(GET _hone_torch_out 1 HONE_TORCH_VERSION)
list(LENGTH _hone_torch_out _n)
set(HONE_TORCH_CUDA "")
if(_n GREATER 2)
  list(GET _hone_torch_out 2 HONE_TORCH_CUDA)
endif()
if(NOT HONE_TORCH_VERSION MATCHES "^2\\.11\\.")
  message(WARNING "hone is pinned to torch 2.11.0; found ${HONE_TORCH_VERSION}")
endif()

# Default for HONE_CUDA: torch built with CUDA, and an nvcc of the same major version.
set(_hone_cuda_default OFF)
find_program(HONE_NVCC nvcc HINTS /usr/local/cuda/bin ENV CUDA_HOME PATH_SUFFIXES bin)
if(HONE_TORCH_CUDA AND HONE_NVCC)
  execute_process(COMMAND ${HONE_NVCC} --version OUTPUT_VARIABLE _nvcc_v)
  string(REGEX MATCH "release ([0-9]+)\\.([0-9]+)" _m "${_nvcc_v}")
  set(_nvcc_major ${CMAKE_MATCH_1})
  string(REGEX MATCH "^([0-9]+)" _m "${HONE_TORCH_CUDA}")
  if(_nvcc_major STREQUAL CMAKE_MATCH_1)
    set(_hone_cuda_default ON)
  else()
    message(STATUS "hone: torch has CUDA ${HONE_TORCH_CUDA} but nvcc is ${_nvcc_major}.x: CPU-only build")
  endif()
endif()
option(HONE_CUDA "Build and link hone's CUDA paths (torch_cuda, CUDA kernels)" ${_hone_cuda_default})

list(APPEND CMAKE_PREFIX_PATH ${HONE_TORCH_PREFIX})
if(HONE_CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_COMPILER ${HONE_NVCC})
  endif()
  # Hopper (sm_90) is our GPU; kernels pick their path at run time from the device's capability.
  if(NOT DEFINED TORCH_CUDA_ARCH_LIST)
    set(TORCH_CUDA_ARCH_LIST "9.0")
  endif()
  find_package(Torch REQUIRED)
  enable_language(CUDA)  # hone's own kernels (src/ops/cuda)
  set(HONE_TORCH_LIBRARIES ${TORCH_LIBRARIES})
else()
  # CPU-only: find the libraries ourselves, so that no CUDA toolkit is needed at configure time.
  set(_tdir ${HONE_TORCH_PREFIX}/../..)
  get_filename_component(_tdir ${_tdir} ABSOLUTE)
  find_library(HONE_TORCH_CPU_LIB torch_cpu PATHS ${_tdir}/lib NO_DEFAULT_PATH REQUIRED)
  find_library(HONE_C10_LIB c10 PATHS ${_tdir}/lib NO_DEFAULT_PATH REQUIRED)
  add_library(hone_torch_cpu INTERFACE)
  target_include_directories(hone_torch_cpu SYSTEM INTERFACE
    ${_tdir}/include ${_tdir}/include/torch/csrc/api/include)
  target_link_libraries(hone_torch_cpu INTERFACE ${HONE_TORCH_CPU_LIB} ${HONE_C10_LIB})
  target_compile_definitions(hone_torch_cpu INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
  set(HONE_TORCH_LIBRARIES hone_torch_cpu)
endif()
message(STATUS "hone: torch ${HONE_TORCH_VERSION} (CUDA '${HONE_TORCH_CUDA}') from ${HONE_TORCH_PREFIX}; HONE_CUDA=${HONE_CUDA}")

# The torch 2.11 wheel's libtorch exports its own copy of some std::filesystem functions
# (pytorch/pytorch#133437), and its std::filesystem::remove_all crashes when it wins symbol
# resolution. Putting libstdc++ in front of the torch libraries in every hone binary's
# DT_NEEDED list makes the real libstdc++ the one that binds here. On the lent GPU machine (its own
# GCC in /opt/gcc) libtorch's copy still won and crashed the CUDA profile test, so hone no longer
# calls std::filesystem::remove_all at all (hone::remove_tree, src/core/fs.cpp).
add_library(hone_libstdcxx_first INTERFACE)
target_link_options(hone_libstdcxx_first INTERFACE "LINKER:--push-state,--no-as-needed" "-lstdc++" "LINKER:--pop-state")

// Builds the precompiled header that every test executable reuses (see tests/CMakeLists.txt).

# Uses ccache for C/C++ when it is installed (it is in scripts/setup.sh), unless the caller
# already chose a compiler launcher.
find_program(TRIAD_CCACHE ccache)
if(TRIAD_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_C_COMPILER_LAUNCHER ${TRIAD_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${TRIAD_CCACHE})
  message(STATUS "triad: using ccache (${TRIAD_CCACHE})")
endif()

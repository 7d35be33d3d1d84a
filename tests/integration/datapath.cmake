# Data-path test programs, included by tests/integration/CMakeLists.txt
# (include(datapath.cmake OPTIONAL)).  The test_*.sh scripts find them in
# $UIB_BUILD_DIR/tests/integration/.

add_executable(uib_datacheck ${CMAKE_CURRENT_LIST_DIR}/datacheck.c)
target_link_libraries(uib_datacheck PRIVATE PkgConfig::IBVERBS)

add_executable(uib_verbs_errors ${CMAKE_CURRENT_LIST_DIR}/verbs_errors.c
  ${CMAKE_CURRENT_LIST_DIR}/verbs_check.c ${CMAKE_CURRENT_LIST_DIR}/verbs_hardening.c)
target_link_libraries(uib_verbs_errors PRIVATE PkgConfig::IBVERBS)

set_target_properties(uib_datacheck uib_verbs_errors PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

add_executable(uib_fork_check fork_check.c)
target_link_libraries(uib_fork_check PRIVATE PkgConfig::IBVERBS)
set_target_properties(uib_fork_check PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

add_executable(uib_ud_check ud_check.c)
target_link_libraries(uib_ud_check PRIVATE PkgConfig::IBVERBS)
set_target_properties(uib_ud_check PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

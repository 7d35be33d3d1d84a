# Trust-model test programs, included by tests/integration/CMakeLists.txt.
# test_trust.sh finds them in $UIB_BUILD_DIR/tests/integration/.

add_executable(uib_trust_open ${CMAKE_CURRENT_LIST_DIR}/trust_open.c)
target_link_libraries(uib_trust_open PRIVATE PkgConfig::IBVERBS)
set_target_properties(uib_trust_open PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

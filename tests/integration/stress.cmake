# Stress and fault-injection test programs (issue 7), included by
# tests/integration/CMakeLists.txt.  test_cq_stress.sh and test_corrupt.sh
# find them in $UIB_BUILD_DIR/tests/integration/.

find_package(Threads REQUIRED)

add_executable(uib_cq_stress ${CMAKE_CURRENT_LIST_DIR}/cq_stress.c)
target_link_libraries(uib_cq_stress PRIVATE PkgConfig::IBVERBS Threads::Threads)

set_target_properties(uib_cq_stress PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

# corrupt_check.c reads its own rings' headers: it needs the provider's
# queue layout (providers/uib/queue.h), not its code.
add_executable(uib_corrupt_check ${CMAKE_CURRENT_LIST_DIR}/corrupt_check.c)
target_include_directories(uib_corrupt_check PRIVATE
  ${PROJECT_SOURCE_DIR}/providers/uib)
target_link_libraries(uib_corrupt_check PRIVATE PkgConfig::IBVERBS)
set_target_properties(uib_corrupt_check PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

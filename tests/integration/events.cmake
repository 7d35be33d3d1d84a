# Event and stress test programs, included by tests/integration/CMakeLists.txt
# (include(events.cmake OPTIONAL)).  The test_*.sh scripts find them in
# $UIB_BUILD_DIR/tests/integration/.

# Completion channels and async events in one process (test_events_check.sh).
add_executable(uib_events_check ${CMAKE_CURRENT_LIST_DIR}/events_check.c)
target_link_libraries(uib_events_check PRIVATE PkgConfig::IBVERBS uibdv)

# Two-process RC data check that survives its peer being killed
# (test_kill_stress.sh).
add_executable(uib_rc_stress ${CMAKE_CURRENT_LIST_DIR}/rc_stress.c)
target_link_libraries(uib_rc_stress PRIVATE PkgConfig::IBVERBS)

set_target_properties(uib_events_check uib_rc_stress PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

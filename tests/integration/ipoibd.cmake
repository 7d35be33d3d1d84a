# ipoibd's privileged test programs (netns, TAP); the scripts that run
# them are test_ipoibd_*.sh.
add_executable(ipoibd_nl_check ipoibd_nl_check.c)
target_link_libraries(ipoibd_nl_check PRIVATE ipoibd_core)

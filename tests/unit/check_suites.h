/* SPDX-License-Identifier: MIT */
/* One Check suite per unit; check_main.c runs them all. */
#ifndef UIB_CHECK_SUITES_H
#define UIB_CHECK_SUITES_H

#include <check.h>

Suite *make_state_suite(void);
Suite *make_devtree_suite(void);
Suite *make_toeplitz_suite(void);
Suite *make_ipoib_proto_suite(void);
Suite *make_intf_suite(void);
Suite *make_config_suite(void);

#endif /* UIB_CHECK_SUITES_H */

// SPDX-License-Identifier: MIT
/*
 * The one runner of the Check unit suites.  Output is CK_NORMAL, so the
 * ctest log ends with Check's summary line
 * ("N%: Checks: X, Failures: Y, Errors: Z").  CK_FORK and friends are
 * honoured as Check documents them.
 */
#include <stdlib.h>

#include "check_suites.h"

int main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(make_state_suite());
	srunner_add_suite(sr, make_devtree_suite());
	srunner_add_suite(sr, make_toeplitz_suite());
	srunner_add_suite(sr, make_ipoib_proto_suite());
	srunner_add_suite(sr, make_intf_suite());
	srunner_add_suite(sr, make_config_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

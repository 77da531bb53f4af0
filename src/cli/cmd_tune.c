/* clasp tune (not yet available). */
#include "cli/cli.h"

int cmd_tune(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "clasp: '%s' is not available in this build yet\n", argv[0]);
    return 2;
}

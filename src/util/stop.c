/* The stop flag attacks poll between steps (clasp_stop_requested, see
 * clasp/plugin.h): the runner points it at its caller's signal flag while
 * an attack pass runs. */
#include "clasp/plugin.h"
#include "util/util.h"

static volatile sig_atomic_t *stop_flag;

void clasp_stop_flag_set(volatile sig_atomic_t *flag)
{
    stop_flag = flag;
}

int clasp_stop_requested(void)
{
    volatile sig_atomic_t *f = stop_flag;
    return f && *f;
}

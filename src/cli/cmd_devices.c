/* clasp devices: every OpenCL platform/device, and the one clasp uses. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_devices(int argc, char **argv)
{
    (void)argc, (void)argv;
    clasp_device_info *list;
    size_t n, chosen = (size_t)-1;
    if (clasp_device_list(&list, &n) != CLASP_OK) return cli_fail("listing OpenCL devices");
    const char *spec = getenv("CLASP_DEVICE");
    clasp_status st = clasp_device_choose(spec, list, n, &chosen);
    if (n == 0) {
        free(list);
        /* clasp_device_choose said what the driver reported. */
        fprintf(stderr, "clasp: %s\n", clasp_last_error());
        return 1;
    }
    printf("  %-5s %-32s %-40s %5s %9s  %s\n", "id", "platform", "device", "CUs", "memory", "type");
    for (size_t i = 0; i < n; i++) {
        const clasp_device_info *d = &list[i];
        char id[16];
        snprintf(id, sizeof id, "%d:%d", d->platform, d->device);
        printf("%c %-5s %-32.32s %-40.40s %5u %6.1f GiB  %s\n",
               i == chosen && st == CLASP_OK ? '*' : ' ', id, d->platform_name, d->name,
               d->compute_units, (double)d->global_mem / (1024.0 * 1024.0 * 1024.0),
               d->is_gpu   ? "GPU"
               : d->is_cpu ? "CPU"
                           : "other");
    }
    free(list);
    if (st != CLASP_OK) {
        fprintf(stderr, "clasp: %s\n", clasp_last_error());
        return 1;
    }
    printf("\n* = the device clasp uses%s (choose another with CLASP_DEVICE=P:D or a name "
           "substring)\n",
           spec && *spec ? " (from CLASP_DEVICE)" : "");
    return 0;
}

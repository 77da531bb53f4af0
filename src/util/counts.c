/* Sums of per-class counts, for every report and log line that needs a
 * total. */
#include "clasp/eval.h"

int64_t clasp_class_sum(const int64_t *per_class, int num_classes)
{
    int64_t s = 0;
    for (int i = 0; per_class && i < num_classes; i++) s += per_class[i];
    return s;
}

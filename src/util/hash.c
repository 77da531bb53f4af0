/* FNV-1a: cache keys and configuration digests (not for security). */
#include "util/util.h"

uint64_t clasp_fnv1a(const void *data, size_t n, uint64_t h)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

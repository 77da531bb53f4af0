/* Per-thread error messages and the status name table. */
#include "clasp/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_message[1024];

const char *clasp_status_string(clasp_status s)
{
    static const char *const names[] = {
#define CLASP_STATUS_NAME_(name, value, text) [value] = text,
        CLASP_STATUS_LIST(CLASP_STATUS_NAME_)
#undef CLASP_STATUS_NAME_
    };
    if ((unsigned)s >= (unsigned)CLASP_STATUS_COUNT_) return "unknown status";
    return names[s];
}

const char *clasp_last_error(void)
{
    return last_message[0] ? last_message : "no error message recorded";
}

clasp_status clasp_error(clasp_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return s;
}

void clasp_error_clear(void)
{
    last_message[0] = '\0';
}

/* clasp — which declarations libclasp exports.
 *
 * libclasp is built with hidden symbol visibility: only what the public
 * headers declare, between CLASP_API_BEGIN and CLASP_API_END, leaves the
 * shared library. A program or plugin that includes these headers is not
 * affected (the markers only restate the default visibility). */
#ifndef CLASP_EXPORT_H
#define CLASP_EXPORT_H

#if defined(__GNUC__)
#define CLASP_API_BEGIN _Pragma("GCC visibility push(default)")
#define CLASP_API_END _Pragma("GCC visibility pop")
#else
#define CLASP_API_BEGIN
#define CLASP_API_END
#endif

#endif

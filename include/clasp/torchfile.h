/* TEMPORARY contract copy; replaced by the torch branch. */
#ifndef CLASP_TORCHFILE_H
#define CLASP_TORCHFILE_H
#include "clasp/safetensors.h"
#include "clasp/export.h"
CLASP_API_BEGIN
typedef struct clasp_ckpt_info {
    char format[24];
    char entry[64];
    char prefix[32];
} clasp_ckpt_info;
clasp_status clasp_torch_read(const char *path, clasp_st_file *out, clasp_ckpt_info *info);
clasp_status clasp_ckpt_read(const char *path, clasp_st_file *out, clasp_ckpt_info *info);
CLASP_API_END
#endif

/* Interim: every model file is read as safetensors until the PyTorch reader lands. */
#include <string.h>
#include "clasp/torchfile.h"
clasp_status clasp_ckpt_read(const char *path, clasp_st_file *out, clasp_ckpt_info *info)
{
    if (info) memset(info, 0, sizeof *info), strcpy(info->format, "safetensors");
    return clasp_st_read(path, out);
}

/* clasp — PyTorch checkpoints (torch.save files) read without Python.
 *
 * Both containers torch.save writes: the zip archive of PyTorch >= 1.6
 * (<archive>/data.pkl and one entry per storage, <archive>/data/<key>) and
 * the legacy stream of PyTorch <= 1.5 (pickled magic number, protocol
 * version and system info, the main pickle, the list of storage keys, then
 * each storage as an int64 element count and its bytes).
 *
 * Safety: the pickle is interpreted as data only. Its globals must be on a
 * short allow-list (torch._utils._rebuild_tensor_v2, _rebuild_parameter,
 * _rebuild_parameter_with_state, torch.<X>Storage, collections.OrderedDict);
 * any other (os.system, builtins.eval, argparse.Namespace, ...) makes the
 * read fail at that opcode with the name and byte offset, and nothing is
 * imported or called. Sizes, offsets and strides are checked against the
 * storages the file really holds.
 *
 * Values: float32, float16, bfloat16 and float64 tensors become F32; int64
 * stays I64; int32, int16, int8, uint8 and bool become I64. Views (storage
 * offset, strides, storages shared by several tensors) come back as
 * contiguous copies. A tensor may not have more elements than its storage
 * (expanded, stride-0 tensors larger than their storage are refused). */
#ifndef CLASP_TORCHFILE_H
#define CLASP_TORCHFILE_H

#include "clasp/safetensors.h"
#include "clasp/status.h"

#include "clasp/export.h"

#ifdef __cplusplus
extern "C" {
#endif
CLASP_API_BEGIN

/* What was read, filled by the readers below. */
typedef struct clasp_ckpt_info {
    char format[24]; /* "safetensors", "pytorch-zip", "pytorch-legacy" */
    char entry[64];  /* "" = the file is the state dict itself, else the key
                        it was found under: "state_dict", "model", ... */
    char prefix[32]; /* "" or the removed prefix: "module.", "_orig_mod.",
                        "module._orig_mod.", "model." (RobustBench's
                        wrapper), "module.model.", ... */
} clasp_ckpt_info;

/* Reads a torch.save file (zip or legacy) as a state dict into `out`
 * (initialised here; free with clasp_st_free): F32 and I64 tensors in the
 * pickle's dict order. The state dict is the file's top-level dict of
 * tensors, or the one under "state_dict", "model", "model_state_dict" or
 * "net" (in that order), or the only entry that is a dict of tensors; other
 * entries (epoch, accuracy, optimizer state) are read and ignored. The
 * prefixes "module." (DataParallel) and "_orig_mod." (torch.compile) are
 * removed when every tensor name has them; then "model." when every name
 * but normalize.mean and normalize.std has it (RobustBench's
 * Sequential(normalize, model) wrapper; those two are kept). `info` may be NULL. On failure
 * `out` is empty and the message names the file, the byte offset and what
 * was expected. */
clasp_status clasp_torch_read(const char *path, clasp_st_file *out, clasp_ckpt_info *info);

/* Any model file: sniffs the first bytes ("PK\3\4" = PyTorch zip, the
 * pickle opcode 0x80 = legacy PyTorch, else safetensors via clasp_st_read),
 * reads it and removes the prefixes as above (for safetensors too). `info`
 * may be NULL. */
clasp_status clasp_ckpt_read(const char *path, clasp_st_file *out, clasp_ckpt_info *info);

CLASP_API_END
#ifdef __cplusplus
}
#endif
#endif

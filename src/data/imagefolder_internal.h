/* Image decoding and PIL-style preprocessing behind the image-folder data
 * sets (imagefolder.c, stream.c). Not part of the public API. */
#ifndef CLASP_IMAGEFOLDER_INTERNAL_H
#define CLASP_IMAGEFOLDER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "clasp/data.h"

#pragma GCC visibility push(hidden)

/* An 8-bit RGB image, rows of w*3 bytes, top row first. */
typedef struct clasp_rgb {
    int w, h;
    unsigned char *px; /* owned */
} clasp_rgb;

void clasp_rgb_free(clasp_rgb *im);

/* The most pixels an image may have (PIL's MAX_IMAGE_PIXELS, 89 478 485:
 * larger ones are refused there as decompression bombs past twice that;
 * refused here already, so that a worker's memory stays bounded). */
#define CLASP_IMAGE_MAX_PIXELS 89478485LL
/* The largest image file read (bytes). */
#define CLASP_IMAGE_MAX_FILE (256LL << 20)

/* Decodes a JPEG or PNG held in memory (format from its first bytes, not
 * from a name) to RGB as PIL's Image.open(...).convert("RGB") does: JPEG
 * through libjpeg with the default (islow) IDCT and fancy upsampling,
 * greyscale replicated, CMYK read with Adobe's inverted polarity as PIL
 * always does and converted with PIL's formula; PNG through libpng,
 * greyscale replicated, alpha dropped, palettes looked up, 16-bit samples
 * cut to their high byte (16-bit greyscale clipped at 255, as PIL's mode I
 * to RGB). EXIF orientation is not applied (neither does PIL's open).
 * `name` names the input in errors. A truncated or corrupt image is
 * CLASP_ERR_FORMAT; other formats CLASP_ERR_UNSUPPORTED. */
clasp_status clasp_image_decode(const unsigned char *buf, size_t len, const char *name,
                                clasp_rgb *out);

/* Reads and decodes the file at path (errors name it). */
clasp_status clasp_image_load(const char *path, clasp_rgb *out);

/* PIL's resampling filters. */
typedef enum { CLASP_FILTER_BILINEAR, CLASP_FILTER_BICUBIC } clasp_filter;

/* Resizes `in` to ow x oh as PIL's Image.resize does (separable, the
 * filter's support widened by the downscaling factor, so antialiased;
 * 22-bit fixed-point weights and rounding to uint8; horizontal pass
 * first). */
clasp_status clasp_rgb_resize(const clasp_rgb *in, int ow, int oh, clasp_filter f, clasp_rgb *out);

/* The rectangle (left, top, w, h) of `in` as a new image; parts outside
 * `in` are black (0), as PIL's crop. */
clasp_status clasp_rgb_crop(const clasp_rgb *in, int left, int top, int w, int h, clasp_rgb *out);

/* torchvision's CenterCrop offsets (Python's round-half-even of half the
 * difference; a crop larger than the image pads it with zeros first). */
void clasp_center_crop_box(int w, int h, int cw, int ch, int *left, int *top);

/* Preprocessing as RobustBench names it. */
typedef enum {
    CLASP_PREP_NONE,                  /* ToTensor only: every image must have the same size */
    CLASP_PREP_RES256CROP224,         /* Resize(256) bilinear, CenterCrop(224) */
    CLASP_PREP_CROP288,               /* CenterCrop(288) */
    CLASP_PREP_RES224,                /* Resize([224, 224]) bilinear */
    CLASP_PREP_BICUBIC_RES256CROP224, /* Resize(256) bicubic, CenterCrop(224) */
} clasp_prep;

/* Applies the evaluation preprocessing `p` to `in` giving out (a new
 * image). */
clasp_status clasp_preprocess(const clasp_rgb *in, clasp_prep p, clasp_rgb *out);

/* The training preprocessing: torchvision's RandomResizedCrop((h, w))
 * (bilinear) then RandomHorizontalFlip(0.5), drawn from `key`
 * (counter-based: the same key, the same crop). */
clasp_status clasp_preprocess_train(const clasp_rgb *in, int w, int h, uint64_t key,
                                    clasp_rgb *out);

/* torchvision's RandomResizedCrop.get_params (scale (0.08, 1), ratio
 * (3/4, 4/3), ten tries then the centre fallback) with clasp's own
 * counter-based draws from `key`: (left, top, w, h). */
void clasp_rrc_box(int w, int h, uint64_t key, int *left, int *top, int *cw, int *ch);

/* The folder's skip_bad option. */
int clasp_imagefolder_skip_bad(const clasp_imagefolder *f);

/* ImageNet-1k tables (imagenet_tables.c). */
extern const char clasp_imagenet_wnids[1000][10];
extern const char *const clasp_imagenet_classes[1000];
typedef struct clasp_imagenet_subset_entry {
    uint16_t cls;    /* class index: clasp_imagenet_wnids[cls] */
    uint32_t number; /* ILSVRC2012_val_<number>.JPEG */
} clasp_imagenet_subset_entry;
extern const clasp_imagenet_subset_entry clasp_robustbench_5000[5000];

#pragma GCC visibility pop

#endif

/* Built-in class groups: CIFAR-100's 20 superclasses.
 *
 * Source: the coarse labels CIFAR-100 ships with each image (the
 * "coarse_labels" of the python version's train and test files; the
 * superclass table of Krizhevsky, "Learning Multiple Layers of Features
 * from Tiny Images", 2009), read here per fine label in the dataset's
 * order (fine labels sorted alphabetically, apple = 0 ... worm = 99;
 * superclasses likewise, aquatic_mammals = 0 ... vehicles_2 = 19). Each
 * superclass holds five classes. */
#include <string.h>

#include "experiment/report/facts.h"

static const char *const cifar100_coarse_names[20] = {
    "aquatic mammals",
    "fish",
    "flowers",
    "food containers",
    "fruit and vegetables",
    "household electrical devices",
    "household furniture",
    "insects",
    "large carnivores",
    "large man-made outdoor things",
    "large natural outdoor scenes",
    "large omnivores and herbivores",
    "medium-sized mammals",
    "non-insect invertebrates",
    "people",
    "reptiles",
    "small mammals",
    "trees",
    "vehicles 1",
    "vehicles 2",
};

/* clang-format off */
static const int cifar100_coarse_of[100] = {
     4,  1, 14,  8,  0,  6,  7,  7, 18,  3,  /* apple .. bottle */
     3, 14,  9, 18,  7, 11,  3,  9,  7, 11,  /* bowl .. cattle */
     6, 11,  5, 10,  7,  6, 13, 15,  3, 15,  /* chair .. dinosaur */
     0, 11,  1, 10, 12, 14, 16,  9, 11,  5,  /* dolphin .. keyboard */
     5, 19,  8,  8, 15, 13, 14, 17, 18, 10,  /* lamp .. mountain */
    16,  4, 17,  4,  2,  0, 17,  4, 18, 17,  /* mouse .. pine_tree */
    10,  3,  2, 12, 12, 16, 12,  1,  9, 19,  /* plain .. rocket */
     2, 10,  0,  1, 16, 12,  9, 13, 15, 13,  /* rose .. spider */
    16, 19,  2,  4,  6, 19,  5,  5,  8, 19,  /* squirrel .. tractor */
    18,  1,  2, 15,  6,  0, 17,  8, 14, 13,  /* train .. worm */
};
/* clang-format on */

int report_builtin_groups(const clasp_report *r, const char *const **names, const int **group_of)
{
    if (r->num_classes != 100 || strcmp(r->dataset, "cifar100") != 0) return 0;
    *names = cifar100_coarse_names;
    *group_of = cifar100_coarse_of;
    return 20;
}

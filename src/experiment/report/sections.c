/* The report's sections in the order both report.md and report.json give
 * them. A new section is a file exporting its two writers and one row
 * here. Past 20 classes (REPORT_SMALL_CLASSES) the distribution, worst
 * and best classes, largest gains and frequent flows take the place of the
 * tables with a row per class; below it they write nothing, so small
 * reports are as they were. Class groups are written at any size when
 * there are groups: the built-in ones need 100 classes, a mapping file
 * (data.groups) none.
 *
 * A few sections have two rows, one per format: report.json has always
 * kept the model's training facts (calibration, timings, epochs) next to
 * its identity and the gradient-free check after the relations, while
 * report.md tells them after the attacks; the rows keep both files as they
 * were. */
#include "experiment/report/section.h"

const report_section report_sections[] = {
    {"model", sec_model_md, sec_model_json},
    {"calibration", NULL, sec_calibration_json},
    {"timings", NULL, sec_timings_json},
    {"epochs", NULL, sec_epochs_json},
    {"per-class accuracy", sec_classes_md, sec_attacks_json},
    {"distribution", sec_distribution_md, sec_distribution_json},
    {"worst and best classes", sec_ranking_md, sec_ranking_json},
    {"class groups", sec_groups_md, sec_groups_json},
    {"gains of stronger attacks", sec_gains_md, sec_gains_json},
    {"largest gains", sec_top_gains_md, sec_top_gains_json},
    {"flow", sec_flow_md, NULL},
    {"frequent flows", sec_top_flows_md, sec_top_flows_json},
    {"ensembles and worst cases", sec_worst_md, NULL},
    {"gradient-free check", sec_masking_md, NULL},
    {"unbounded attacks", sec_l2_md, NULL},
    {"class-wise relations", sec_relations_md, sec_relations_json},
    {"gradient-free check", NULL, sec_masking_json},
    {"training", sec_training_md, NULL},
    {"charts", sec_charts_md, sec_charts_json},
};

const int report_n_sections = (int)(sizeof report_sections / sizeof *report_sections);

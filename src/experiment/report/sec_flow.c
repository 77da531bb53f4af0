/* Section "flow": where the strongest attack sends each class's examples
 * (report.json keeps every attack's flow in its record). */
#include "experiment/report/section.h"

void sec_flow_md(clasp_buf *b, const report_ctx *x)
{
    if (x->m->n_attacks == 0 || x->f->large) return; /* see sec_top_flows.c */
    const clasp_attack_report *a = &x->m->attacks[x->f->strongest];
    clasp_buf_puts(b, "\n### Flow under the strongest attack (");
    report_md_text(b, a->label);
    clasp_buf_puts(b, ")\n\n");
    report_md_flow_table(b, x->r, a);
}

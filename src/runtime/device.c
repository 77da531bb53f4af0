/* Device discovery and choice. */
#include <CL/cl.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"

static void info_string(cl_device_id d, cl_device_info what, char *buf, size_t size)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(d, what, size, buf, NULL) != CL_SUCCESS) buf[0] = '\0';
    buf[size - 1] = '\0';
}

/* What the driver said when the last listing found no device, for the
 * "no OpenCL device" messages: "install a driver" points the wrong way
 * when one is installed and fails (PoCL, e.g., reports no device when it
 * cannot create its cache folder). */
static _Thread_local char no_device_why[768];

clasp_status clasp_device_list(clasp_device_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    cl_uint np = 0;
    cl_int err = clGetPlatformIDs(0, NULL, &np);
    snprintf(no_device_why, sizeof no_device_why, "the OpenCL loader found no platform (%s)",
             np == 0 && err == CL_SUCCESS ? "0 platforms" : clasp_cl_error_name(err));
    if (err == CL_PLATFORM_NOT_FOUND_KHR || np == 0) return CLASP_OK;
    if (err != CL_SUCCESS) return clasp_cl_check(err, "clGetPlatformIDs");
    cl_platform_id *plats = calloc(np, sizeof *plats);
    if (!plats) return clasp_error(CLASP_ERR_NOMEM, "out of memory listing platforms");
    clasp_status st = clasp_cl_check(clGetPlatformIDs(np, plats, NULL), "clGetPlatformIDs");
    clasp_device_info *list = NULL;
    size_t count = 0;
    for (cl_uint p = 0; st == CLASP_OK && p < np; p++) {
        cl_uint nd = 0;
        cl_int derr = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (derr != CL_SUCCESS || !nd) {
            char pname[128] = "";
            clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname, pname, NULL);
            pname[sizeof pname - 1] = '\0';
            size_t len = p ? strlen(no_device_why) : 0;
            if (len < sizeof no_device_why)
                snprintf(no_device_why + len, sizeof no_device_why - len,
                         "%splatform %u '%s' reports %s", p ? "; " : "", p, pname,
                         derr != CL_SUCCESS ? clasp_cl_error_name(derr) : "0 devices");
            continue;
        }
        cl_device_id *devs = calloc(nd, sizeof *devs);
        clasp_device_info *grown = realloc(list, (count + nd) * sizeof *list);
        if (!devs || !grown) {
            free(devs);
            if (grown) list = grown;
            st = clasp_error(CLASP_ERR_NOMEM, "out of memory listing devices");
            break;
        }
        list = grown;
        clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, devs, NULL);
        char pname[128] = "";
        clGetPlatformInfo(plats[p], CL_PLATFORM_NAME, sizeof pname, pname, NULL);
        pname[sizeof pname - 1] = '\0';
        for (cl_uint d = 0; d < nd; d++) {
            clasp_device_info *di = &list[count++];
            memset(di, 0, sizeof *di);
            di->platform = (int)p;
            di->device = (int)d;
            snprintf(di->platform_name, sizeof di->platform_name, "%s", pname);
            info_string(devs[d], CL_DEVICE_NAME, di->name, sizeof di->name);
            info_string(devs[d], CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
            info_string(devs[d], CL_DEVICE_VERSION, di->version, sizeof di->version);
            info_string(devs[d], CL_DRIVER_VERSION, di->driver, sizeof di->driver);
            cl_device_type type = 0;
            cl_ulong mem = 0, maxalloc = 0;
            cl_uint cu = 0;
            size_t wg = 0;
            clGetDeviceInfo(devs[d], CL_DEVICE_TYPE, sizeof type, &type, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc,
                            NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
            clGetDeviceInfo(devs[d], CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
            di->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
            di->is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
            di->global_mem = mem;
            di->max_alloc = maxalloc;
            di->compute_units = cu;
            di->max_work_group = wg;
        }
        free(devs);
    }
    free(plats);
    if (st != CLASP_OK) {
        free(list);
        return st;
    }
    *out = list;
    *n = count;
    return CLASP_OK;
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n) return 1;
    }
    return n == 0;
}

static clasp_status not_found(const char *spec, const clasp_device_info *list, size_t n)
{
    char msg[2048];
    size_t len =
        (size_t)snprintf(msg, sizeof msg, "device '%s' matches no device; valid choices:", spec);
    for (size_t i = 0; i < n && len < sizeof msg; i++)
        len += (size_t)snprintf(msg + len, sizeof msg - len, "\n  %d:%d  %s / %s", list[i].platform,
                                list[i].device, list[i].platform_name, list[i].name);
    if (n == 0 && len < sizeof msg)
        snprintf(msg + len, sizeof msg - len, " (none: %s)", no_device_why);
    return clasp_error(CLASP_ERR_NOT_FOUND, "%s", msg);
}

clasp_status clasp_device_choose(const char *spec, const clasp_device_info *list, size_t n,
                                 size_t *index)
{
    if (!spec || !*spec) {
        if (n == 0)
            return clasp_error(CLASP_ERR_NOT_FOUND,
                               "no OpenCL device found: %s. Without a platform, install an "
                               "OpenCL driver (e.g. the pocl-opencl-icd package for the CPU); "
                               "PoCL reports no device when it cannot create its cache folder "
                               "(make $XDG_CACHE_HOME or $HOME/.cache writable, or set "
                               "POCL_CACHE_DIR)",
                               no_device_why);
        for (size_t i = 0; i < n; i++)
            if (clasp_device_kind_of(&list[i]) != CLASP_DEVICE_CPU) return *index = i, CLASP_OK;
        for (size_t i = 0; i < n; i++)
            if (list[i].is_cpu) return *index = i, CLASP_OK;
        *index = 0;
        return CLASP_OK;
    }
    int p, d, used = 0;
    if (sscanf(spec, "%d:%d%n", &p, &d, &used) == 2 && spec[used] == '\0') {
        for (size_t i = 0; i < n; i++)
            if (list[i].platform == p && list[i].device == d) return *index = i, CLASP_OK;
        return not_found(spec, list, n);
    }
    for (size_t i = 0; i < n; i++) {
        char both[300];
        snprintf(both, sizeof both, "%s %s", list[i].platform_name, list[i].name);
        if (contains_nocase(both, spec)) return *index = i, CLASP_OK;
    }
    return not_found(spec, list, n);
}

clasp_device_kind clasp_device_kind_of(const clasp_device_info *d)
{
    if (d->is_gpu && d->is_cpu) return CLASP_DEVICE_SIMULATOR;
    return d->is_gpu ? CLASP_DEVICE_GPU : CLASP_DEVICE_CPU;
}

const char *clasp_device_kind_name(clasp_device_kind k)
{
    return k == CLASP_DEVICE_GPU ? "gpu" : k == CLASP_DEVICE_SIMULATOR ? "simulator" : "cpu";
}

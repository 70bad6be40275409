// oneDNN 2.x C API (Debian libdnnl-dev). Only NFMKernels imports this module.
#include <oneapi/dnnl/dnnl.h>

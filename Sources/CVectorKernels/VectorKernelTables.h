// The kernel tables that AVX2Kernels.c and AVX512Kernels.c export, for VectorKernels.c to choose from.
#ifndef NFM_VECTOR_KERNEL_TABLES_H
#define NFM_VECTOR_KERNEL_TABLES_H

#include "CVectorKernels.h"

// AVX2 and AVX-512 exist on x86-64 only; elsewhere (e.g. aarch64) no compiled path is built and
// every kernel runs the portable Swift loops.
#if defined(__x86_64__)
#define NFM_HAS_X86_VECTOR_KERNELS 1
extern const NFMVectorKernels nfmVectorKernelsAVX2;
extern const NFMVectorKernels nfmVectorKernelsAVX512;
#endif

#endif

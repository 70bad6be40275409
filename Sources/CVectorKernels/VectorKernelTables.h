// The kernel tables that AVX2Kernels.c and AVX512Kernels.c export, for VectorKernels.c to choose from.
#ifndef NFM_VECTOR_KERNEL_TABLES_H
#define NFM_VECTOR_KERNEL_TABLES_H

#include "CVectorKernels.h"

extern const NFMVectorKernels nfmVectorKernelsAVX2;
extern const NFMVectorKernels nfmVectorKernelsAVX512;

#endif

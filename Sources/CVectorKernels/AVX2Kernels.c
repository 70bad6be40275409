// The kernels compiled for AVX2 (256-bit vectors). Chosen only when the CPU reports AVX2.
#include "VectorKernelTables.h"

#ifdef NFM_HAS_X86_VECTOR_KERNELS

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#define KERNEL_TABLE nfmVectorKernelsAVX2
#define LANES 8
#include "VectorKernelBodies.inc"
#pragma clang attribute pop
#endif

// The kernels compiled for AVX-512 Foundation (512-bit vectors). Chosen only when the CPU reports
// AVX-512F and the operating system saves the 512-bit registers (`__builtin_cpu_supports` checks both).
#include "VectorKernelTables.h"

#ifdef NFM_HAS_X86_VECTOR_KERNELS

#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#define KERNEL_TABLE nfmVectorKernelsAVX512
#define LANES 16
#include "VectorKernelBodies.inc"
#pragma clang attribute pop
#endif

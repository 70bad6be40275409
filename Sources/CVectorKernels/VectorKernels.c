// Which instruction sets this CPU runs, and the kernels of each.
#include "VectorKernelTables.h"

bool nfm_cpu_supports(NFMVectorInstructionSet set) {
#ifdef NFM_HAS_X86_VECTOR_KERNELS
    // Both checks include the operating system's support (XCR0 saves the wider registers), not only CPUID.
    __builtin_cpu_init();
    switch (set) {
    case NFMVectorInstructionSetAVX2: return __builtin_cpu_supports("avx2");
    case NFMVectorInstructionSetAVX512: return __builtin_cpu_supports("avx512f");
    }
#else
    (void)set;
#endif
    return false;
}

const NFMVectorKernels *nfm_vector_kernels(NFMVectorInstructionSet set) {
#ifdef NFM_HAS_X86_VECTOR_KERNELS
    switch (set) {
    case NFMVectorInstructionSetAVX2: return &nfmVectorKernelsAVX2;
    case NFMVectorInstructionSetAVX512: return &nfmVectorKernelsAVX512;
    }
#else
    (void)set;
#endif
    return 0;
}

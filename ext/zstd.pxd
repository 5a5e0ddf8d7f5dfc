# libzstd: only what _scan.pyx reports; decompression is done in tar.c.

cdef extern from "zstd.h" nogil:
    const char *ZSTD_versionString()

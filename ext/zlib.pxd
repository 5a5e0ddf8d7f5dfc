# zlib: only what _scan.pyx reports; the gzip fallback inflater is in tar.c.

cdef extern from "zlib.h" nogil:
    const char *zlibVersion()

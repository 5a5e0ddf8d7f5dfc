# The capture-glob matcher's C API (glob.h).

cdef extern from "glob.h" nogil:
    ctypedef struct ls_globs:
        pass

    enum:
        LS_GLOBS_OK
        LS_GLOBS_NOMEM

    int ls_globs_new(const void *program, size_t len, ls_globs **out)
    int ls_globs_match(ls_globs *g, const unsigned char *path, size_t len)
    void ls_globs_free(ls_globs *g)

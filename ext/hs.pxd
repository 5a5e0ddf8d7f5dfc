# Hyperscan / Vectorscan (hs.h): the compile and database calls _scan.pyx makes.
# Scanning itself happens in tar.c.

cdef extern from "hs/hs.h" nogil:
    ctypedef struct hs_database_t:
        pass
    ctypedef struct hs_compile_error_t:
        char *message
        int expression
    ctypedef int hs_error_t

    enum:
        HS_SUCCESS
        HS_FLAG_CASELESS
        HS_FLAG_MULTILINE
        HS_FLAG_SINGLEMATCH
        HS_FLAG_PREFILTER
        HS_MODE_STREAM

    hs_error_t hs_compile(const char *expression, unsigned int flags, unsigned int mode,
                          const void *platform, hs_database_t **db, hs_compile_error_t **error)
    hs_error_t hs_compile_multi(const char *const *expressions, const unsigned int *flags,
                                const unsigned int *ids, unsigned int elements, unsigned int mode,
                                const void *platform, hs_database_t **db, hs_compile_error_t **error)
    hs_error_t hs_free_compile_error(hs_compile_error_t *error)
    hs_error_t hs_free_database(hs_database_t *db)
    const char *hs_version()
    hs_error_t hs_serialize_database(const hs_database_t *db, char **bytes, size_t *length)
    hs_error_t hs_deserialize_database(const char *bytes, const size_t length, hs_database_t **db)

# OpenSSL libcrypto: only what _scan.pyx reports; hashing is done in tar.c.

cdef extern from "openssl/crypto.h" nogil:
    enum:
        OPENSSL_VERSION
    const char *OpenSSL_version(int t)

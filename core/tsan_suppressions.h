/*
 * core/tsan_suppressions.h — what ThreadSanitizer must not report: races
 * inside the uninstrumented libraries we call, whose internal hand-offs it
 * cannot see (RocksDB's block cache hands a block one thread decompressed,
 * with snappy's memcpy, to another thread's read).  TSan looks __tsan_default_suppressions up by name in the
 * executable: core/rcu.c defines it for programs that link the engine
 * statically; programs that link libomendb.so (which exports omen_* only)
 * define their own from this same list (tests/lib/apitest.h).
 */
#ifndef OMEN_CORE_TSAN_SUPPRESSIONS_H
#define OMEN_CORE_TSAN_SUPPRESSIONS_H

#define OMEN_TSAN_SUPPRESSIONS                  \
	"called_from_lib:liburcu-memb.so\n"     \
	"called_from_lib:liburcu-common.so\n"   \
	"called_from_lib:librocksdb.so\n"       \
	"called_from_lib:libsnappy.so\n"        \
	"called_from_lib:liblz4.so\n"           \
	"called_from_lib:libzstd.so\n"          \
	"called_from_lib:libstdc++.so\n"

#endif

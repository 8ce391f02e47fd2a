/*
 * tools/omendb.c — `omendb COMMAND [options] ...`, the command-line program
 * over the public API (<omendb.h> only: nothing internal is linked).
 *
 * Commands: demo (tools/demo.c), load, get, put, del, scan, stats, verify,
 * checkpoint.  Each parses its own options with getopt_long (argv[0] is set
 * to "omendb CMD" so getopt's own messages carry the command), opens the
 * database, does one thing and closes it.  Only put and load create a
 * missing database; every other command opens with create_if_missing = 0
 * and exits 66 when there is nothing there.  Exit codes are tools/cli.h's.
 *
 * The CSV format (scan writes it, load reads it): one record per line,
 * "KEY,VALUE\n".  KEY is decimal (load also takes 0x hex).  VALUE is either
 *   text (default): printable ASCII as is, except that a backslash is
 *     written "\\", newline "\n", carriage return "\r", tab "\t", a comma
 *     "\x2c" and every other byte outside 0x20..0x7e "\xHH"; so any value
 *     round-trips and every line has exactly two fields; or
 *   hex (--hex): two lowercase hex digits per byte, any case accepted.
 * load splits a line at its first comma (a raw comma in a text value is
 * taken literally), strips a CRLF's CR, and skips empty lines, lines that
 * begin with '#' and a first line "key,value" (a header).  Quoted
 * RFC 4180 fields are not understood: use the escapes above.
 *
 * Single-threaded (the engine's workers are its own).  Long work — load,
 * scan to a file, verify — reports progress on stderr when stderr is a
 * terminal (tools/cli.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getline, getopt_long */
#endif

#include <omendb.h>

#include "tools/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef OMEN_TSAN
/* As tests/lib/apitest.h: the engine's suppression list lives inside
 * libomendb.so, which exports omen_* only, so a program linking the
 * shared library names the uninstrumented libraries itself. */
#include "core/tsan_suppressions.h"
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return OMEN_TSAN_SUPPRESSIONS;
}

/* TSan sleeps a second at exit (atexit_sleep_ms) for threads still
 * running; every engine thread is joined by omen_close before we return,
 * and tests/tool.sh runs the program a hundred times.  TSAN_OPTIONS
 * still overrides this. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "atexit_sleep_ms=0";
}
#endif

/* ===================================================================== */
/* Messages                                                               */

static const char *cli_cmd = "omendb"; /* the running command, for messages */

static void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cli_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "omendb %s: ", cli_cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* "omendb CMD: WHAT: <omen_strerror>[: <omen_errmsg>]"; call right after
 * the failing call, while omen_errmsg still holds its text. */
static void cli_err_db(const char *what, int rc)
{
	const char *s = omen_strerror(rc), *m = omen_errmsg();

	if (*m && strcmp(m, s) != 0)
		cli_err("%s: %s: %s", what, s, m);
	else
		cli_err("%s: %s", what, s);
}

static int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cli_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "omendb %s: ", cli_cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try 'omendb %s --help')\n", cli_cmd);
	return CLI_USAGE;
}

/* ===================================================================== */
/* Parsing and formatting                                                 */

/* A key or count: decimal, or hex after 0x/0X; the whole string, no sign,
 * no spaces, no overflow. */
static bool cli_parse_u64(const char *s, uint64_t *out)
{
	int base = 10;
	char *end;
	unsigned long long v;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!((*s >= '0' && *s <= '9') || (base == 16 && ((*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))))
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (uint64_t)v;
	return true;
}

static int cli_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode hex digits s[0..n) into out (may be s: it shrinks).  Returns the
 * byte count, or -1 for an odd length or a non-hex digit. */
static long cli_unhex(const char *s, size_t n, char *out)
{
	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = cli_hexval((unsigned char)s[i]), lo = cli_hexval((unsigned char)s[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (char)(hi << 4 | lo);
	}
	return (long)(n / 2);
}

/* Decode the text escapes of s[0..n) into out (may be s).  Returns the
 * byte count, or -1 for an unknown or truncated escape. */
static long cli_unescape(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			out[o++] = s[i];
			continue;
		}
		if (++i == n)
			return -1;
		switch (s[i]) {
		case '\\': out[o++] = '\\'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'x': {
			int hi, lo;

			if (n - i < 3) /* s[i] is the 'x': two digits must follow */
				return -1;
			hi = cli_hexval((unsigned char)s[i + 1]);
			lo = cli_hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
			break;
		}
		default:
			return -1;
		}
	}
	return (long)o;
}

/* How a value is printed: text with the CSV escapes (a comma too), the
 * same escapes but a comma as is (get), or hex digits. */
enum cli_valfmt { CLI_VAL_CSV, CLI_VAL_TEXT, CLI_VAL_HEX };

/* Write v[0..n) to f in format fmt. */
static void cli_write_value(FILE *f, const void *v, size_t n, enum cli_valfmt fmt)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = v;

	for (size_t i = 0; i < n; i++) {
		unsigned c = p[i];

		if (fmt == CLI_VAL_HEX) {
			putc(digits[c >> 4], f);
			putc(digits[c & 15], f);
		} else if (c == '\\') {
			fputs("\\\\", f);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c == '\r') {
			fputs("\\r", f);
		} else if (c == '\t') {
			fputs("\\t", f);
		} else if (c < 0x20 || c > 0x7e || (c == ',' && fmt == CLI_VAL_CSV)) {
			putc('\\', f);
			putc('x', f);
			putc(digits[c >> 4], f);
			putc(digits[c & 15], f);
		} else {
			putc((int)c, f);
		}
	}
}

/* Finish writing f (stdout or a file of ours): flush, close files, and
 * map a failure to CLI_IOERR. */
static int cli_close_output(FILE *f, const char *name)
{
	bool bad = fflush(f) != 0 || ferror(f);
	int err = errno;

	if (f != stdout && fclose(f) != 0 && !bad) {
		bad = true;
		err = errno;
	}
	if (bad) {
		cli_err("%s: write failed: %s", name, strerror(err));
		return CLI_IOERR;
	}
	return CLI_OK;
}

/* ===================================================================== */
/* Opening and closing                                                    */

/* Open dir: create it only when create; shards applies to a new database
 * (0 = one per CPU).  Returns a CLI code; 66 when there is no database. */
static int cli_open(const char *dir, bool create, unsigned shards, omen_db **db)
{
	omen_options o;
	int rc;

	omen_options_init(&o);
	o.create_if_missing = create;
	o.shards = shards;
	rc = omen_open(dir, &o, db);
	if (rc == OMEN_OK)
		return CLI_OK;
	if (rc == OMEN_ENOTFOUND && !create) {
		cli_err("%s: no database here (missing or empty directory)", dir);
		return CLI_NOINPUT;
	}
	cli_err_db(dir, rc);
	return CLI_FAIL;
}

/* Close db; a failure turns an OK status into CLI_FAIL. */
static int cli_close(omen_db *db, const char *dir, int status)
{
	int rc = omen_close(db);

	if (rc != OMEN_OK) {
		cli_err_db(dir, rc);
		return status == CLI_OK ? CLI_FAIL : status;
	}
	return status;
}

/* ===================================================================== */
/* Option parsing shared by the commands                                  */

/* Set argv[0] to "omendb CMD" (getopt's messages use it) and reset getopt. */
static void cli_begin(char **argv, const char *cmd)
{
	static char prog[64];

	cli_cmd = cmd;
	snprintf(prog, sizeof(prog), "omendb %s", cmd);
	argv[0] = prog;
	optind = 1;
	opterr = 1;
}

/* The exit status for getopt's '?' (it has printed the message). */
static int cli_bad_option(void)
{
	fprintf(stderr, "Try 'omendb %s --help'.\n", cli_cmd);
	return CLI_USAGE;
}

static int cli_want_args(int have, int want, const char *synopsis)
{
	if (have == want)
		return CLI_OK;
	return cli_usage_error("%s arguments: usage: omendb %s %s", have < want ? "missing" : "too many",
			       cli_cmd, synopsis);
}

static int cli_key_arg(const char *s, uint64_t *key)
{
	if (cli_parse_u64(s, key))
		return CLI_OK;
	return cli_usage_error("bad key '%s': a decimal or 0x-hex number below 2^64", s);
}

static int cli_shards_arg(const char *s, unsigned *shards)
{
	uint64_t v;

	if (!cli_parse_u64(s, &v) || v > 4096)
		return cli_usage_error("bad shard count '%s': 0 (one per CPU) to 4096", s);
	*shards = (unsigned)v;
	return CLI_OK;
}

/* ===================================================================== */
/* load                                                                   */

static const char load_help[] =
	"Usage: omendb load [options] DIR FILE\n"
	"Load records from FILE ('-' = standard input) into the database in DIR,\n"
	"creating it if missing.  Records go through the asynchronous ingest path\n"
	"and are flushed (acknowledged) before the command returns; a key that\n"
	"appears twice keeps its last value.\n"
	"\n"
	"FILE is CSV by default: one 'KEY,VALUE' record per line, KEY decimal or\n"
	"0x hex, VALUE text with the escapes \\\\ \\n \\r \\t \\xHH (the format\n"
	"'omendb scan' writes; a raw comma in VALUE is taken literally).  Empty\n"
	"lines, lines beginning with '#' and a first line 'key,value' are skipped.\n"
	"Loading stops at the first bad line; the records before it are stored.\n"
	"\n"
	"Options:\n"
	"  --hex          VALUE is hex digits (two per byte) instead of text\n"
	"  --binary       FILE is raw little-endian 64-bit keys, 8 bytes each; every\n"
	"                 key gets the value of --value (empty by default)\n"
	"  --value TEXT   the value stored with each key of --binary (hex with --hex)\n"
	"  --shards N     shards of a new database (default: one per CPU)\n"
	"  -h, --help     show this help\n"
	"\n"
	"Prints the record count and rate.  A progress bar appears when standard\n"
	"error is a terminal.\n";

struct load_state {
	omen_db *db;
	const char *file;
	uint64_t count;
	cli_progress prog;
	off_t size; /* of a regular FILE, else 0 (progress total unknown) */
};

/* Queue one record; a CLI code. */
static int load_one(struct load_state *ls, uint64_t key, const void *val, size_t len)
{
	int rc = omen_ingest(ls->db, key, val, len);

	if (rc != OMEN_OK) {
		char what[64];

		snprintf(what, sizeof(what), "ingest key %" PRIu64, key);
		cli_err_db(what, rc);
		return CLI_FAIL;
	}
	ls->count++;
	return CLI_OK;
}

static int load_csv(struct load_state *ls, FILE *in, bool hex)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint64_t lineno = 0, consumed = 0;
	int status = CLI_OK;

	while ((n = getline(&line, &cap, in)) != -1) {
		size_t len = (size_t)n;
		char *comma, *val;
		uint64_t key;
		long vlen;

		lineno++;
		consumed += len;
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0 || line[0] == '#' || (lineno == 1 && strcmp(line, "key,value") == 0))
			continue;
		comma = memchr(line, ',', len);
		if (!comma) {
			cli_err("%s:%" PRIu64 ": no comma: expected KEY,VALUE", ls->file, lineno);
			status = CLI_FAIL;
			break;
		}
		*comma = '\0';
		if (!cli_parse_u64(line, &key)) {
			cli_err("%s:%" PRIu64 ": bad key '%s'", ls->file, lineno, line);
			status = CLI_FAIL;
			break;
		}
		val = comma + 1;
		len -= (size_t)(val - line);
		vlen = hex ? cli_unhex(val, len, val) : cli_unescape(val, len, val);
		if (vlen < 0) {
			cli_err("%s:%" PRIu64 ": bad value: %s", ls->file, lineno,
				hex ? "expected an even number of hex digits" : "bad escape (use \\\\ \\n \\r \\t \\xHH)");
			status = CLI_FAIL;
			break;
		}
		if ((size_t)vlen > OMEN_MAX_VALUE) {
			cli_err("%s:%" PRIu64 ": value of %ld bytes: the largest is %u", ls->file, lineno, vlen,
				OMEN_MAX_VALUE);
			status = CLI_FAIL;
			break;
		}
		status = load_one(ls, key, val, (size_t)vlen);
		if (status != CLI_OK)
			break;
		if ((ls->count & 1023) == 0) {
			if (ls->size > 0 && consumed > 0) /* estimate the total from the bytes read */
				ls->prog.total = (uint64_t)((double)ls->count * (double)ls->size / (double)consumed);
			cli_progress_update(&ls->prog, ls->count);
		}
	}
	if (status == CLI_OK && ferror(in)) {
		cli_err("%s: read failed: %s", ls->file, strerror(errno));
		status = CLI_IOERR;
	}
	free(line);
	return status;
}

static int load_binary(struct load_state *ls, FILE *in, const void *val, size_t vlen)
{
	unsigned char buf[8 * 4096];
	size_t have = 0, n;
	int status = CLI_OK;

	if (ls->size % 8) {
		cli_err("%s: %lld bytes: a binary key file holds 8-byte keys", ls->file, (long long)ls->size);
		return CLI_FAIL;
	}
	ls->prog.total = (uint64_t)ls->size / 8;
	while ((n = fread(buf + have, 1, sizeof(buf) - have, in)) > 0) {
		size_t i;

		have += n;
		for (i = 0; i + 8 <= have; i += 8) {
			uint64_t key = 0;

			for (int b = 7; b >= 0; b--)
				key = key << 8 | buf[i + (size_t)b];
			status = load_one(ls, key, val, vlen);
			if (status != CLI_OK)
				return status;
		}
		memmove(buf, buf + i, have - i);
		have -= i;
		cli_progress_update(&ls->prog, ls->count);
	}
	if (ferror(in)) {
		cli_err("%s: read failed: %s", ls->file, strerror(errno));
		return CLI_IOERR;
	}
	if (have) {
		cli_err("%s: %zu trailing bytes: a binary key file holds 8-byte keys", ls->file, have);
		return CLI_FAIL;
	}
	return status;
}

static int cmd_load(int argc, char **argv)
{
	static const struct option opts[] = {
		{"hex", no_argument, NULL, 'x'},
		{"binary", no_argument, NULL, 'b'},
		{"value", required_argument, NULL, 'v'},
		{"shards", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool hex = false, binary = false;
	const char *value = NULL, *dir, *file;
	char *fixed = NULL;
	size_t fixed_len = 0;
	unsigned shards = 0;
	struct load_state ls = {0};
	FILE *in = NULL;
	struct stat st;
	double t0, secs;
	int c, status, rc;

	cli_begin(argv, "load");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'x': hex = true; break;
		case 'b': binary = true; break;
		case 'v': value = optarg; break;
		case 's':
			if ((status = cli_shards_arg(optarg, &shards)) != CLI_OK)
				return status;
			break;
		case 'h': fputs(load_help, stdout); return CLI_OK;
		default: return cli_bad_option();
		}
	}
	if ((status = cli_want_args(argc - optind, 2, "DIR FILE")) != CLI_OK)
		return status;
	if (value && !binary)
		return cli_usage_error("--value applies to --binary only");
	dir = argv[optind];
	file = argv[optind + 1];
	if (value) {
		size_t n = strlen(value);
		long len;

		fixed = malloc(n + 1);
		if (!fixed) {
			cli_err("out of memory");
			return CLI_FAIL;
		}
		len = hex ? cli_unhex(value, n, fixed) : (memcpy(fixed, value, n), (long)n);
		if (len < 0) {
			free(fixed);
			return cli_usage_error("bad --value '%s': expected an even number of hex digits", value);
		}
		if ((size_t)len > OMEN_MAX_VALUE) {
			free(fixed);
			return cli_usage_error("--value is longer than %u bytes", OMEN_MAX_VALUE);
		}
		fixed_len = (size_t)len;
	}

	if (strcmp(file, "-") == 0) {
		in = stdin;
		ls.file = "<stdin>";
	} else {
		in = fopen(file, "rb");
		ls.file = file;
		if (!in) {
			int err = errno;

			cli_err("%s: %s", file, strerror(err));
			free(fixed);
			return err == ENOENT || err == EACCES ? CLI_NOINPUT : CLI_IOERR;
		}
	}
	if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
		ls.size = st.st_size;

	status = cli_open(dir, true, shards, &ls.db);
	if (status != CLI_OK)
		goto out;
	t0 = cli_now();
	cli_progress_start(&ls.prog, "load", 0);
	status = binary ? load_binary(&ls, in, fixed, fixed_len) : load_csv(&ls, in, hex);
	/* Flush even after a bad line: the records before it are stored. */
	rc = omen_flush(ls.db);
	cli_progress_update(&ls.prog, ls.count);
	cli_progress_finish(&ls.prog);
	if (rc != OMEN_OK) {
		cli_err_db("flush", rc);
		if (status == CLI_OK)
			status = CLI_FAIL;
	}
	status = cli_close(ls.db, dir, status);
	secs = cli_now() - t0;
	if (status == CLI_OK)
		printf("loaded %" PRIu64 " records into %s in %.2f s (%.0f records/s)\n", ls.count, dir, secs,
		       secs > 0 ? (double)ls.count / secs : 0.0);
	else if (ls.count)
		fprintf(stderr, "omendb load: %" PRIu64 " records before the failure were loaded\n", ls.count);
out:
	if (in != stdin)
		fclose(in);
	free(fixed);
	return status;
}

/* ===================================================================== */
/* get, put, del                                                          */

static const char get_help[] =
	"Usage: omendb get [options] DIR KEY\n"
	"Print the value of KEY (decimal or 0x hex) followed by a newline: as text\n"
	"with the CSV escapes (\\\\ \\n \\r \\t \\xHH; a comma as is) by default.\n"
	"Exits 3 when the key is absent.\n"
	"\n"
	"Options:\n"
	"  --hex          print the value as hex digits\n"
	"  --raw          print the value's bytes exactly, with no newline\n"
	"  -h, --help     show this help\n";

static int cmd_get(int argc, char **argv)
{
	static const struct option opts[] = {
		{"hex", no_argument, NULL, 'x'},
		{"raw", no_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool hex = false, raw = false;
	const char *dir;
	omen_db *db;
	uint64_t key;
	char *buf;
	size_t len = 0;
	int c, status, rc;

	cli_begin(argv, "get");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'x': hex = true; break;
		case 'r': raw = true; break;
		case 'h': fputs(get_help, stdout); return CLI_OK;
		default: return cli_bad_option();
		}
	}
	if ((status = cli_want_args(argc - optind, 2, "DIR KEY")) != CLI_OK)
		return status;
	if (hex && raw)
		return cli_usage_error("--hex and --raw exclude each other");
	dir = argv[optind];
	if ((status = cli_key_arg(argv[optind + 1], &key)) != CLI_OK)
		return status;
	buf = malloc(OMEN_MAX_VALUE);
	if (!buf) {
		cli_err("out of memory");
		return CLI_FAIL;
	}
	if ((status = cli_open(dir, false, 0, &db)) != CLI_OK)
		goto out;
	rc = omen_get(db, key, buf, OMEN_MAX_VALUE, &len);
	if (rc == OMEN_OK) {
		if (raw) {
			fwrite(buf, 1, len, stdout);
		} else {
			cli_write_value(stdout, buf, len, hex ? CLI_VAL_HEX : CLI_VAL_TEXT);
			putchar('\n');
		}
		status = cli_close_output(stdout, "<stdout>");
	} else if (rc == OMEN_ENOTFOUND) {
		cli_err("key %" PRIu64 " not found", key);
		status = CLI_NOTFOUND;
	} else {
		cli_err_db("get", rc);
		status = CLI_FAIL;
	}
	status = cli_close(db, dir, status);
out:
	free(buf);
	return status;
}

static const char put_help[] =
	"Usage: omendb put [options] DIR KEY VALUE\n"
	"Store VALUE under KEY (decimal or 0x hex) and wait until it is\n"
	"acknowledged (in the write-ahead log).  Creates the database if missing.\n"
	"VALUE is taken literally (no escapes; '' is the empty value); put '--'\n"
	"before a VALUE that begins with '-'.\n"
	"\n"
	"Options:\n"
	"  --hex          VALUE is hex digits (two per byte)\n"
	"  --shards N     shards of a new database (default: one per CPU)\n"
	"  -h, --help     show this help\n";

static int cmd_put(int argc, char **argv)
{
	static const struct option opts[] = {
		{"hex", no_argument, NULL, 'x'},
		{"shards", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool hex = false;
	unsigned shards = 0;
	const char *dir, *value;
	char *val;
	long len;
	omen_db *db;
	uint64_t key;
	int c, status, rc;

	cli_begin(argv, "put");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'x': hex = true; break;
		case 's':
			if ((status = cli_shards_arg(optarg, &shards)) != CLI_OK)
				return status;
			break;
		case 'h': fputs(put_help, stdout); return CLI_OK;
		default: return cli_bad_option();
		}
	}
	if ((status = cli_want_args(argc - optind, 3, "DIR KEY VALUE")) != CLI_OK)
		return status;
	dir = argv[optind];
	value = argv[optind + 2];
	if ((status = cli_key_arg(argv[optind + 1], &key)) != CLI_OK)
		return status;
	val = strdup(value);
	if (!val) {
		cli_err("out of memory");
		return CLI_FAIL;
	}
	len = hex ? cli_unhex(value, strlen(value), val) : (long)strlen(value);
	if (len < 0) {
		free(val);
		return cli_usage_error("bad VALUE: expected an even number of hex digits");
	}
	if ((size_t)len > OMEN_MAX_VALUE) {
		free(val);
		return cli_usage_error("VALUE is longer than %u bytes", OMEN_MAX_VALUE);
	}
	if ((status = cli_open(dir, true, shards, &db)) == CLI_OK) {
		rc = omen_put(db, key, val, (size_t)len);
		if (rc != OMEN_OK) {
			cli_err_db("put", rc);
			status = CLI_FAIL;
		}
		status = cli_close(db, dir, status);
	}
	free(val);
	return status;
}

static const char del_help[] =
	"Usage: omendb del DIR KEY\n"
	"Delete KEY (decimal or 0x hex) and wait until the delete is acknowledged.\n"
	"Deleting an absent key succeeds.\n"
	"\n"
	"Options:\n"
	"  -h, --help     show this help\n";

static int cmd_del(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir;
	omen_db *db;
	uint64_t key;
	int c, status, rc;

	cli_begin(argv, "del");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(del_help, stdout); return CLI_OK;
		default: return cli_bad_option();
		}
	}
	if ((status = cli_want_args(argc - optind, 2, "DIR KEY")) != CLI_OK)
		return status;
	dir = argv[optind];
	if ((status = cli_key_arg(argv[optind + 1], &key)) != CLI_OK)
		return status;
	if ((status = cli_open(dir, false, 0, &db)) != CLI_OK)
		return status;
	rc = omen_delete(db, key);
	if (rc != OMEN_OK) {
		cli_err_db("delete", rc);
		status = CLI_FAIL;
	}
	return cli_close(db, dir, status);
}

/* ===================================================================== */
/* scan                                                                   */

static const char scan_help[] =
	"Usage: omendb scan [options] DIR\n"
	"Print the records with keys in [--from, --to] in ascending key order as\n"
	"CSV, one 'KEY,VALUE' line each: KEY decimal, VALUE text with the escapes\n"
	"\\\\ \\n \\r \\t \\xHH (a comma as \\x2c, any byte outside printable ASCII as\n"
	"\\xHH), or hex with --hex.  'omendb load' reads it back (with the same\n"
	"--hex); either form round-trips any value.\n"
	"\n"
	"Options:\n"
	"  --from KEY       first key (default 0)\n"
	"  --to KEY         last key, inclusive (default 2^64-1)\n"
	"  --limit N        stop after N records\n"
	"  --hex            write values as hex digits\n"
	"  -o, --output FILE  write to FILE instead of standard output (a progress\n"
	"                   bar appears when standard error is a terminal)\n"
	"  -h, --help       show this help\n";

static int cmd_scan(int argc, char **argv)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'},
		{"limit", required_argument, NULL, 'l'},
		{"hex", no_argument, NULL, 'x'},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	uint64_t lo = 0, hi = UINT64_MAX, limit = UINT64_MAX, n = 0, key;
	bool hex = false, ranged = false;
	const char *dir, *output = NULL, *outname = "<stdout>";
	FILE *out = stdout;
	omen_db *db;
	omen_iter *it = NULL;
	omen_stats st;
	cli_progress prog;
	const void *val;
	size_t len;
	int c, status, rc;

	cli_begin(argv, "scan");
	while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!cli_parse_u64(optarg, &lo))
				return cli_usage_error("bad --from '%s'", optarg);
			ranged = true;
			break;
		case 't':
			if (!cli_parse_u64(optarg, &hi))
				return cli_usage_error("bad --to '%s'", optarg);
			ranged = true;
			break;
		case 'l':
			if (!cli_parse_u64(optarg, &limit))
				return cli_usage_error("bad --limit '%s'", optarg);
			break;
		case 'x': hex = true; break;
		case 'o': output = optarg; break;
		case 'h': fputs(scan_help, stdout); return CLI_OK;
		default: return cli_bad_option();
		}
	}
	if ((status = cli_want_args(argc - optind, 1, "DIR")) != CLI_OK)
		return status;
	if (lo > hi)
		return cli_usage_error("--from %" PRIu64 " is above --to %" PRIu64, lo, hi);
	dir = argv[optind];
	if ((status = cli_open(dir, false, 0, &db)) != CLI_OK)
		return status;
	if (output && strcmp(output, "-") != 0) {
		out = fopen(output, "w");
		outname = output;
		if (!out) {
			cli_err("%s: %s", output, strerror(errno));
			return cli_close(db, dir, CLI_IOERR);
		}
	}
	/* The bar's total: every key for a full scan, else unknown. */
	cli_progress_start(&prog, "scan", 0);
	if (out != stdout) {
		if (!ranged && omen_get_stats(db, &st) == OMEN_OK)
			prog.total = st.keys < limit ? st.keys : limit;
		else if (limit != UINT64_MAX)
			prog.total = limit;
	} else {
		prog.tty = false; /* the records are on the terminal */
	}
	rc = omen_iter_open(db, lo, hi, &it);
	if (rc != OMEN_OK) {
		cli_err_db("scan", rc);
		status = CLI_FAIL;
		goto done;
	}
	while (n < limit && (rc = omen_iter_next(it, &key, &val, &len)) == OMEN_OK) {
		fprintf(out, "%" PRIu64 ",", key);
		cli_write_value(out, val, len, hex ? CLI_VAL_HEX : CLI_VAL_CSV);
		putc('\n', out);
		if ((++n & 1023) == 0) {
			if (ferror(out))
				break;
			cli_progress_update(&prog, n);
		}
	}
	if (n < limit && rc != OMEN_END && rc != OMEN_OK) {
		cli_err_db("scan", rc);
		status = CLI_FAIL;
	}
	omen_iter_close(it);
	cli_progress_update(&prog, n);
	cli_progress_finish(&prog);
done:
	rc = cli_close_output(out, outname);
	if (status == CLI_OK)
		status = rc;
	if (status == CLI_OK && out != stdout)
		printf("wrote %" PRIu64 " records to %s\n", n, outname);
	return cli_close(db, dir, status);
}

/* ===================================================================== */
/* stats                                                                  */

static const char stats_help[] =
	"Usage: omendb stats DIR\n"
	"Print the database's counters (omen_get_stats) and one line per shard:\n"
	"its key range, keys, memory, queued records, batches and records\n"
	"committed.  Counters count since this open (the command opens the\n"
	"database), so batches and records are those of recovery only.\n"
	"\n"
	"Options:\n"
	"  -h, --help     show this help\n";

static int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir;
	omen_db *db;
	omen_stats st;
	int c, status, rc;

	cli_begin(argv, "stats");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(stats_help, stdout); return CLI_OK;
		default: return cli_bad_option();
		}
	}
	if ((status = cli_want_args(argc - optind, 1, "DIR")) != CLI_OK)
		return status;
	dir = argv[optind];
	if ((status = cli_open(dir, false, 0, &db)) != CLI_OK)
		return status;
	rc = omen_get_stats(db, &st);
	if (rc != OMEN_OK) {
		cli_err_db("stats", rc);
		return cli_close(db, dir, CLI_FAIL);
	}
	printf("database     %s\n", dir);
	printf("version      %s\n", omen_version());
	printf("keys         %" PRIu64 "\n", st.keys);
	printf("shards       %u\n", st.shards);
	printf("index_bytes  %" PRIu64 "\n", st.index_bytes);
	printf("value_bytes  %" PRIu64 "\n", st.value_bytes);
	printf("resident     %" PRIu64 " keys\n", st.resident_keys);
	printf("disk_bytes   %" PRIu64 "\n", st.disk_bytes);
	printf("queued       %" PRIu64 "\n", st.queued);
	printf("batches      %" PRIu64 "\n", st.batches);
	printf("records      %" PRIu64 "\n", st.records);
	printf("open_us      %" PRIu64 "\n", st.open_us);
	printf("rebuild_us   %" PRIu64 "\n", st.rebuild_us);
	if (st.storage_only)
		printf("storage_only %u\n", st.storage_only);
	printf("\n%-5s %20s %20s %12s %12s %12s %8s %10s %12s\n", "shard", "lo", "hi", "keys", "index_bytes",
	       "value_bytes", "queued", "batches", "records");
	for (unsigned s = 0; s < st.shards; s++) {
		omen_shard_stats ss;
		char lo[24], hi[24];

		rc = omen_get_shard_stats(db, s, &ss);
		if (rc != OMEN_OK) {
			cli_err_db("shard stats", rc);
			status = CLI_FAIL;
			break;
		}
		if (ss.lo > ss.hi) { /* not given a range yet */
			snprintf(lo, sizeof(lo), "-");
			snprintf(hi, sizeof(hi), "-");
		} else {
			snprintf(lo, sizeof(lo), "%" PRIu64, ss.lo);
			snprintf(hi, sizeof(hi), "%" PRIu64, ss.hi);
		}
		printf("%-5u %20s %20s %12" PRIu64 " %12" PRIu64 " %12" PRIu64 " %8" PRIu64 " %10" PRIu64
		       " %12" PRIu64 "\n",
		       s, lo, hi, ss.keys, ss.index_bytes, ss.value_bytes, ss.queued, ss.batches, ss.records);
	}
	rc = cli_close_output(stdout, "<stdout>");
	if (status == CLI_OK)
		status = rc;
	return cli_close(db, dir, status);
}

/* ===================================================================== */
/* verify                                                                 */

static const char verify_help[] =
	"Usage: omendb verify DIR\n"
	"Open the database (which replays and checks its files), check it with\n"
	"omen_verify (each shard's index invariants; index and storage hold the\n"
	"same keys and values, each key in its shard's range; the checksum of\n"
	"every table block), then scan every key and check that the keys ascend\n"
	"strictly, that each scanned value equals what a point lookup (omen_get)\n"
	"returns, and that the number of keys scanned equals the key count in\n"
	"the statistics (and the shards' sum).\n"
	"Exits 0 when everything agrees, 1 otherwise (each problem on stderr).\n"
	"\n"
	"Options:\n"
	"  -h, --help     show this help\n";

#define VERIFY_MAX_REPORTS 10

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir;
	omen_db *db;
	omen_iter *it = NULL;
	omen_stats st;
	cli_progress prog;
	uint64_t n = 0, bad = 0, key, prev = 0, shard_sum = 0;
	const void *val;
	size_t len, glen;
	char *buf;
	double t0;
	int c, status, rc;

	cli_begin(argv, "verify");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(verify_help, stdout); return CLI_OK;
		default: return cli_bad_option();
		}
	}
	if ((status = cli_want_args(argc - optind, 1, "DIR")) != CLI_OK)
		return status;
	dir = argv[optind];
	buf = malloc(OMEN_MAX_VALUE);
	if (!buf) {
		cli_err("out of memory");
		return CLI_FAIL;
	}
	t0 = cli_now();
	if ((status = cli_open(dir, false, 0, &db)) != CLI_OK)
		goto out;
	rc = omen_get_stats(db, &st);
	if (rc != OMEN_OK) {
		cli_err_db("stats", rc);
		status = cli_close(db, dir, CLI_FAIL);
		goto out;
	}
	omen_verify_report vr;
	rc = omen_verify(db, &vr);
	if (rc == OMEN_ECORRUPT) {
		cli_err("%s", omen_errmsg());
		bad += vr.problems;
	} else if (rc != OMEN_OK) {
		cli_err_db("omen_verify", rc);
		status = cli_close(db, dir, CLI_FAIL);
		goto out;
	}
	cli_progress_start(&prog, "verify", st.keys);
	rc = omen_iter_open(db, 0, UINT64_MAX, &it);
	if (rc != OMEN_OK) {
		cli_err_db("scan", rc);
		status = cli_close(db, dir, CLI_FAIL);
		goto out;
	}
#define VERIFY_PROBLEM(...)                                      \
	do {                                                     \
		if (++bad <= VERIFY_MAX_REPORTS)                 \
			cli_err(__VA_ARGS__);                    \
	} while (0)
	while ((rc = omen_iter_next(it, &key, &val, &len)) == OMEN_OK) {
		if (n > 0 && key <= prev)
			VERIFY_PROBLEM("key %" PRIu64 " follows key %" PRIu64 ": keys do not ascend", key, prev);
		prev = key;
		n++;
		rc = omen_get(db, key, buf, OMEN_MAX_VALUE, &glen);
		if (rc != OMEN_OK)
			VERIFY_PROBLEM("key %" PRIu64 ": scanned, but get says: %s", key, omen_strerror(rc));
		else if (glen != len || (len && memcmp(buf, val, len) != 0))
			VERIFY_PROBLEM("key %" PRIu64 ": the scanned value (%zu bytes) differs from get's (%zu bytes)",
				       key, len, glen);
		if ((n & 1023) == 0)
			cli_progress_update(&prog, n);
	}
	if (rc != OMEN_END) {
		cli_err_db("scan", rc);
		status = CLI_FAIL;
	}
	omen_iter_close(it);
	cli_progress_update(&prog, n);
	cli_progress_finish(&prog);
	rc = omen_get_stats(db, &st);
	if (rc != OMEN_OK) {
		cli_err_db("stats", rc);
		status = CLI_FAIL;
	} else {
		if (st.keys != n)
			VERIFY_PROBLEM("scanned %" PRIu64 " keys, the statistics count %" PRIu64, n, st.keys);
		for (unsigned s = 0; s < st.shards; s++) {
			omen_shard_stats ss;

			if (omen_get_shard_stats(db, s, &ss) == OMEN_OK)
				shard_sum += ss.keys;
		}
		if (shard_sum != st.keys)
			VERIFY_PROBLEM("the shards hold %" PRIu64 " keys, the total says %" PRIu64, shard_sum, st.keys);
	}
#undef VERIFY_PROBLEM
	if (bad > VERIFY_MAX_REPORTS)
		cli_err("... %" PRIu64 " problems in all", bad);
	if (bad)
		status = CLI_FAIL;
	status = cli_close(db, dir, status);
	if (status == CLI_OK)
		printf("verified %" PRIu64 " keys in %s: ok (%.2f s including open)\n", n, dir, cli_now() - t0);
	else
		fprintf(stderr, "omendb verify: %s: FAILED (%" PRIu64 " keys scanned, %" PRIu64 " problems)\n", dir,
			n, bad);
out:
	free(buf);
	return status;
}

/* ===================================================================== */
/* checkpoint                                                             */

static const char checkpoint_help[] =
	"Usage: omendb checkpoint DIR DEST\n"
	"Write a consistent copy of the database in DIR to DEST, which must not\n"
	"exist.  DEST opens like any database; table files are hard-linked when\n"
	"DEST is on the same file system.\n"
	"\n"
	"Options:\n"
	"  -h, --help     show this help\n";

static int cmd_checkpoint(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir, *dest;
	omen_db *db;
	struct stat sb;
	int c, status, rc;

	cli_begin(argv, "checkpoint");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h': fputs(checkpoint_help, stdout); return CLI_OK;
		default: return cli_bad_option();
		}
	}
	if ((status = cli_want_args(argc - optind, 2, "DIR DEST")) != CLI_OK)
		return status;
	dir = argv[optind];
	dest = argv[optind + 1];
	if (lstat(dest, &sb) == 0) {
		cli_err("%s already exists: the checkpoint needs a new directory", dest);
		return CLI_FAIL;
	}
	if ((status = cli_open(dir, false, 0, &db)) != CLI_OK)
		return status;
	rc = omen_checkpoint(db, dest);
	if (rc != OMEN_OK) {
		cli_err_db(dest, rc);
		status = CLI_FAIL;
	}
	status = cli_close(db, dir, status);
	if (status == CLI_OK)
		printf("checkpoint of %s written to %s\n", dir, dest);
	return status;
}

/* ===================================================================== */
/* demo and dispatch                                                      */

static int cmd_demo(int argc, char **argv)
{
	cli_cmd = "demo";
	argv[0] = (char *)"demo";
	return cli_demo_main(argc, argv);
}

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;
	const char *summary;
};

static const struct cli_command commands[] = {
	{"demo", cmd_demo, "[options] [DIR]", "simulate an IoT fleet: ingest, query, reopen, report"},
	{"load", cmd_load, "[options] DIR FILE", "load CSV (key,value) or a binary key file"},
	{"get", cmd_get, "[options] DIR KEY", "print the value of a key"},
	{"put", cmd_put, "[options] DIR KEY VALUE", "store one value"},
	{"del", cmd_del, "DIR KEY", "delete one key"},
	{"scan", cmd_scan, "[options] DIR", "print a key range as CSV (export with -o)"},
	{"stats", cmd_stats, "DIR", "print counters and per-shard ranges"},
	{"verify", cmd_verify, "DIR", "check order, values and counts of every key"},
	{"checkpoint", cmd_checkpoint, "DIR DEST", "write a consistent copy to DEST"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: omendb COMMAND [options] ARGS...\n"
		   "       omendb help [COMMAND] | --help | --version\n"
		   "\nCommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char head[64];

		snprintf(head, sizeof(head), "%s %s", commands[i].name, commands[i].synopsis);
		fprintf(f, "  %-30s %s\n", head, commands[i].summary);
	}
	fprintf(f, "\nKEY is decimal or 0x hex.  'omendb COMMAND --help' describes a command;\n"
		   "'man omendb' describes them all, the CSV format and the exit codes:\n"
		   "0 ok, 1 failure, 2 bad usage, 3 key not found, 66 no database (or\n"
		   "input file), 74 file I/O error.\n");
}

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct cli_command *cmd;

	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		if (argc > 2 && strcmp(argv[1], "help") == 0) {
			char *args[3] = {argv[2], (char *)"--help", NULL};

			cmd = find_command(argv[2]);
			if (!cmd) {
				fprintf(stderr, "omendb: unknown command '%s' (try 'omendb --help')\n", argv[2]);
				return CLI_USAGE;
			}
			return cmd->run(2, args);
		}
		usage(stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "version") == 0) {
		printf("omendb %s\n", omen_version());
		return CLI_OK;
	}
	cmd = find_command(argv[1]);
	if (!cmd) {
		fprintf(stderr, "omendb: unknown command '%s' (try 'omendb --help')\n", argv[1]);
		return CLI_USAGE;
	}
	return cmd->run(argc - 1, argv + 1);
}

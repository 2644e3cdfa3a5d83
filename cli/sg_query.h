/* sg_query: the AWS CLI's global --query (a JMESPath subset) and --output text, over cJSON.
 *
 * Supported JMESPath subset: identifiers (unquoted [A-Za-z_][A-Za-z0-9_]* and "quoted" with
 * JSON escapes), sub-expressions a.b.c, index [N] / [-N], list projection [*], flatten
 * projection [], object (values) projection * and .*, multiselect hash {K:expr, ...} and
 * .{...}, multiselect list [expr, ...] and .[...], pipe |, and the current node @.
 * Filters, functions, slices, literals, comparisons, and/or/not and parentheses are
 * rejected with "unsupported JMESPath feature '...'".
 *
 * Deviations from JMESPath, on purpose:
 *  - A field lookup tries the exact key first and, only if that key is absent, the first key
 *    that matches ignoring ASCII case. The AWS CLI queries users copy are written against the
 *    PascalCase AWS shapes ("Jobs[].JobId") while our documents carry the API's camelCase
 *    keys ("jobs", "jobId").
 *  - The right-hand side of "a.*" extends to the end of the projection, exactly like "a[*]"
 *    and a bare "*" ("a.*.b.c" projects "b.c"); jmespath.py 1.1.0 stops it after one field.
 */
#ifndef SG_QUERY_H
#define SG_QUERY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>

/* Longest expression accepted, in bytes (excluding the terminating NUL). */
#define SG_QUERY_MAX_EXPR_LEN 4096
/* Deepest nesting accepted, both for the parser's recursion and for the parsed tree,
 * which bounds the evaluator's recursion as well. */
#define SG_QUERY_MAX_DEPTH 64
/* Most JSON values evaluation may build (containers made plus values copied from the
 * document): far above any real listing, far below what exhausts memory. */
#define SG_QUERY_MAX_VALUES 1000000
#define SG_QUERY_STR_(x) #x
#define SG_QUERY_STR(x) SG_QUERY_STR_(x)
/* Deepest document sg_query_print_text walks: the same limit cJSON_Parse enforces. */
#define SG_QUERY_MAX_PRINT_DEPTH CJSON_NESTING_LIMIT

/* Evaluates expr against root. On success *ret is a NEW cJSON tree owned by the caller
 * (cJSON_CreateNull() for no match) and 0 is returned. root may be NULL (treated as null).
 * On a syntax error, an unsupported feature, an expression over SG_QUERY_MAX_EXPR_LEN bytes or
 * nested deeper than SG_QUERY_MAX_DEPTH returns -EINVAL and writes a one-line reason
 * (e.g. "unexpected '}' at offset 12") into errbuf; -E2BIG when the result (or an
 * intermediate one) would need more than SG_QUERY_MAX_VALUES values; -ENOMEM when out of memory.
 * On any error *ret is NULL. errbuf may be NULL when errlen is 0. Never modifies root. */
int sg_query_eval(const cJSON *root, const char *expr, cJSON **ret, char *errbuf, size_t errlen);

/* Writes v in the AWS CLI "text" style:
 *  - a string/number/bool is printed raw (booleans as True/False, as the AWS CLI does),
 *    followed by a newline; null (or v == NULL) prints "None";
 *  - a list of scalars: values tab-separated on one line; an empty list or object prints nothing;
 *  - a list of objects: one line per element, columns are the sorted union of the keys that
 *    hold scalars in any element ("" where an element lacks one);
 *  - a list of lists: one line per inner list (scalars mixed in come first, on one line);
 *  - an object: its scalar values tab-separated in sorted key order on one line, then each
 *    nested list/object on following lines, prefixed by its key upper-cased
 *    ("S3\tbucket\tkey"), exactly like the AWS CLI.
 * Returns 0, -EINVAL for a NULL out, -ENOMEM, -ELOOP past SG_QUERY_MAX_PRINT_DEPTH, or the
 * negative errno of a failed write (the stream is flushed before returning). On failure errno
 * is also set to the returned code's magnitude. */
int sg_query_print_text(FILE *out, const cJSON *v);

#endif /* SG_QUERY_H */

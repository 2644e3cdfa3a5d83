/* Unit tests for cli/sg_query.c: the --query JMESPath subset and the --output text formatter.
 *
 * Expected query results were cross-checked against jmespath.py (what the AWS CLI runs) and
 * expected text output against the AWS CLI's own formatter; where we deviate on purpose the
 * test says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sg_query.h"

/* One table row: evaluating expr against doc gives the JSON want. */
struct eval_row {
	const char *doc;
	const char *expr;
	const char *want;
};

/* One table row: expr is rejected with -EINVAL and errbuf contains reason. */
struct error_row {
	const char *expr;
	const char *reason;
};

/* One table row: printing the JSON doc as text gives exactly want. */
struct text_row {
	const char *doc;
	const char *want;
};

#define N_ROWS(a) (sizeof(a) / sizeof((a)[0]))

static cJSON *parse_or_die(const char *json)
{
	cJSON *doc = cJSON_Parse(json);

	if (doc == NULL)
		fail_msg("test document does not parse: %s", json);
	return doc;
}

/* Re-prints a JSON text compactly, so expectations can be written with spaces. */
static char *normalise(const char *json)
{
	cJSON *doc = parse_or_die(json);
	char *s = cJSON_PrintUnformatted(doc);

	cJSON_Delete(doc);
	assert_non_null(s);
	return s;
}

/* Evaluates expr on doc (both as text) and returns the result printed compactly. */
static char *eval_to_string(const char *doc_json, const char *expr)
{
	char err[256] = "";
	cJSON *doc = parse_or_die(doc_json), *res = NULL;
	char *s;
	int rc;

	rc = sg_query_eval(doc, expr, &res, err, sizeof(err));
	if (rc != 0)
		fail_msg("'%s' failed with %d: %s", expr, rc, err);
	assert_non_null(res);
	s = cJSON_PrintUnformatted(res);
	assert_non_null(s);
	cJSON_Delete(res);
	cJSON_Delete(doc);
	return s;
}

static void check_eval_rows(const struct eval_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *got = eval_to_string(rows[i].doc, rows[i].expr);
		char *want = normalise(rows[i].want);

		if (strcmp(got, want) != 0)
			fail_msg("row %zu: '%s' on %s gave %s, want %s", i, rows[i].expr, rows[i].doc,
				 got, want);
		cJSON_free(got);
		cJSON_free(want);
	}
}

/* Prints v with sg_query_print_text into memory and returns the text (caller frees). */
static char *text_of(const cJSON *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(sg_query_print_text(f, v), 0);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	return buf;
}

static void check_text_rows(const struct text_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		cJSON *doc = parse_or_die(rows[i].doc);
		char *got = text_of(doc);

		if (strcmp(got, rows[i].want) != 0)
			fail_msg("row %zu: text of %s was \"%s\", want \"%s\"", i, rows[i].doc, got,
				 rows[i].want);
		free(got);
		cJSON_Delete(doc);
	}
}

/* -------------------------------------------------------------------------------------- */
/* Documents shaped like the AWS Signer API responses our commands print                  */
/* -------------------------------------------------------------------------------------- */

static const char PLATFORMS_DOC[] =
	"{\"platforms\": ["
	" {\"platformId\": \"AWSLambda-SHA384-ECDSA\", \"displayName\": \"AWS Lambda\","
	"  \"partner\": \"AWSLambda\", \"target\": \"SHA384-ECDSA\", \"category\": \"AWSIoT\","
	"  \"signingConfiguration\": {"
	"   \"encryptionAlgorithmOptions\": {\"allowedValues\": [\"ECDSA\"], \"defaultValue\": \"ECDSA\"},"
	"   \"hashAlgorithmOptions\": {\"allowedValues\": [\"SHA384\"], \"defaultValue\": \"SHA384\"}},"
	"  \"signingImageFormat\": {\"supportedFormats\": [\"JSONDetached\"], \"defaultFormat\": \"JSONDetached\"},"
	"  \"maxSizeInMB\": 250, \"revocationSupported\": true},"
	" {\"platformId\": \"Notation-OCI-SHA384-ECDSA\", \"displayName\": \"Notation for OCI registries\","
	"  \"partner\": \"AWSSigner\", \"target\": \"SHA384-ECDSA\", \"category\": \"AWSIoT\","
	"  \"maxSizeInMB\": 2048, \"revocationSupported\": true}"
	"]}";

static const char START_JOB_DOC[] =
	"{\"jobId\": \"2a9d5e1c-7f3b-4c1e-9d2a-0b6f8e4c1a77\", \"jobOwner\": \"123456789012\"}";

static const char DESCRIBE_JOB_DOC[] =
	"{\"jobId\": \"2a9d5e1c-7f3b-4c1e-9d2a-0b6f8e4c1a77\","
	" \"source\": {\"s3\": {\"bucketName\": \"src-bucket\", \"key\": \"fn.zip\", \"version\": \"v1\"}},"
	" \"signingMaterial\": {\"certificateArn\": \"arn:aws:acm:eu-west-1:123456789012:certificate/abc\"},"
	" \"platformId\": \"AWSLambda-SHA384-ECDSA\", \"profileName\": \"LambdaProfile\","
	" \"overrides\": {}, \"signingParameters\": {},"
	" \"createdAt\": \"2024-05-01T12:00:00Z\", \"completedAt\": \"2024-05-01T12:00:04Z\","
	" \"status\": \"Succeeded\", \"statusReason\": \"Signing Succeeded\","
	" \"signedObject\": {\"s3\": {\"bucketName\": \"dst-bucket\","
	"  \"key\": \"signed/2a9d5e1c-7f3b-4c1e-9d2a-0b6f8e4c1a77.zip\"}}}";

static const char JOBS_DOC[] =
	"{\"jobs\": ["
	" {\"jobId\": \"job-1\", \"source\": {\"s3\": {\"bucketName\": \"b\", \"key\": \"k1.zip\", \"version\": \"1\"}},"
	"  \"signedObject\": {\"s3\": {\"bucketName\": \"out\", \"key\": \"signed/job-1.zip\"}},"
	"  \"createdAt\": \"2024-05-01T12:00:00Z\", \"status\": \"Succeeded\", \"isRevoked\": false,"
	"  \"profileName\": \"P\", \"profileVersion\": \"v1\", \"platformId\": \"AWSLambda-SHA384-ECDSA\"},"
	" {\"jobId\": \"job-2\", \"source\": {\"s3\": {\"bucketName\": \"b\", \"key\": \"k2.zip\"}},"
	"  \"createdAt\": \"2024-05-02T08:30:00Z\", \"status\": \"Succeeded\", \"isRevoked\": false,"
	"  \"profileName\": \"Q\"}"
	"], \"nextToken\": null}";

/* -------------------------------------------------------------------------------------- */
/* Evaluation: every supported construct                                                  */
/* -------------------------------------------------------------------------------------- */

static void test_identifiers_and_subexpressions_select_nested_values(void **state)
{
	static const struct eval_row rows[] = {
		{ "{\"a\": 1}", "a", "1" },
		{ "{\"a\": {\"b\": {\"c\": \"deep\"}}}", "a.b.c", "\"deep\"" },
		{ "{\"a\": {\"b\": [1, 2]}}", "a.b", "[1, 2]" },
		{ "{\"_x9\": true}", "_x9", "true" },
		{ "{\"with space\": 1}", "\"with space\"", "1" },
		{ "{\"a\": {\"b-c\": 2}}", "a.\"b-c\"", "2" },
		{ "{\"q\\\"t\": 3}", "\"q\\\"t\"", "3" },
		{ "{\"tab\\there\": 4}", "\"tab\\there\"", "4" },
		{ "{\"\\u00e9t\\u00e9\": 5}", "\"\\u00e9t\\u00e9\"", "5" },
		{ "{\"\\ud83d\\ude00\": 6}", "\"\\ud83d\\ude00\"", "6" },
		{ "{\"\": 7}", "\"\"", "7" },
		{ "{\"a\": {\"b\": 8}}", "  a .\n b  ", "8" },
		/* A long chain stays flat: it does not count against the nesting limit. */
		{ "{\"a\": {\"a\": {\"a\": 9}}}", "a.a.a", "9" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

static void test_missing_or_mistyped_paths_evaluate_to_null(void **state)
{
	static const struct eval_row rows[] = {
		{ "{\"a\": 1}", "b", "null" },
		{ "{\"a\": 1}", "a.b", "null" },
		{ "{\"a\": null}", "a.b.c", "null" },
		{ "{\"a\": [1]}", "a.b", "null" },
		{ "{\"a\": \"s\"}", "a[0]", "null" },
		{ "{\"a\": {\"0\": 1}}", "a[0]", "null" },
		{ "{\"a\": {\"b\": 1}}", "a[*]", "null" },
		{ "{\"a\": {\"b\": 1}}", "a[]", "null" },
		{ "{\"a\": [1]}", "a.*", "null" },
		/* a multiselect of a non-null scalar still builds its container */
		{ "{\"a\": 3}", "a.{x: b}", "{\"x\": null}" },
		{ "{\"a\": null}", "a.{x: b}", "null" },
		{ "{\"a\": null}", "a.[b]", "null" },
		{ "[1, 2]", "a", "null" },
		{ "\"scalar\"", "a", "null" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

static void test_index_selects_element_and_negative_counts_from_end(void **state)
{
	static const struct eval_row rows[] = {
		{ "{\"a\": [10, 20, 30]}", "a[0]", "10" },
		{ "{\"a\": [10, 20, 30]}", "a[2]", "30" },
		{ "{\"a\": [10, 20, 30]}", "a[-1]", "30" },
		{ "{\"a\": [10, 20, 30]}", "a[-3]", "10" },
		{ "{\"a\": [10, 20, 30]}", "a[3]", "null" },
		{ "{\"a\": [10, 20, 30]}", "a[-4]", "null" },
		{ "{\"a\": [10]}", "a[-9223372036854775807]", "null" },
		{ "{\"a\": []}", "a[0]", "null" },
		{ "{\"a\": [[1, 2], [3, 4]]}", "a[1][0]", "3" },
		{ "[[\"x\"]]", "[0][0]", "\"x\"" },
		{ "{\"a\": [{\"b\": [5, 6]}]}", "a[0].b[-1]", "6" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

static void test_list_projection_applies_rhs_and_drops_nulls(void **state)
{
	static const struct eval_row rows[] = {
		{ "{\"a\": [{\"b\": 1}, {\"c\": 2}, {\"b\": 3}]}", "a[*].b", "[1, 3]" },
		{ "{\"a\": [1, null, 2]}", "a[*]", "[1, 2]" },
		{ "{\"a\": []}", "a[*].b", "[]" },
		{ "{\"a\": [{\"b\": {\"c\": 1}}, {\"b\": {\"c\": 2}}]}", "a[*].b.c", "[1, 2]" },
		{ "{\"a\": [[1, 2], [3]]}", "a[*][0]", "[1, 3]" },
		{ "{\"a\": [{\"b\": [1, 2]}, {\"b\": [3]}]}", "a[*].b[*]", "[[1, 2], [3]]" },
		{ "[{\"b\": 1}, {\"b\": 2}]", "[*].b", "[1, 2]" },
		{ "{\"a\": [{\"b\": 1}]}", "a[*].b[0]", "[]" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

static void test_flatten_projection_splices_one_level(void **state)
{
	static const struct eval_row rows[] = {
		{ "{\"a\": [1, [2, 3], [[4]], null]}", "a[]", "[1, 2, 3, [4]]" },
		{ "{\"a\": [[{\"b\": 1}], [{\"b\": 2}, {\"c\": 3}]]}", "a[].b", "[1, 2]" },
		{ "{\"a\": [[[1]], [[2, 3]]]}", "a[][]", "[1, 2, 3]" },
		{ "[[1, 2], 3]", "[]", "[1, 2, 3]" },
		{ "{\"a\": [{\"b\": [1, 2]}, {\"b\": [3]}]}", "a[].b[]", "[1, 2, 3]" },
		{ "{\"a\": [[1, 2], [3, 4]]}", "a[][0]", "[]" },
		{ "{\"a\": [[1, 2], [3, 4]]}", "a[*][0]", "[1, 3]" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

static void test_object_projection_iterates_values(void **state)
{
	static const struct eval_row rows[] = {
		{ "{\"x\": {\"id\": 1}, \"y\": {\"id\": 2}, \"z\": {}}", "*.id", "[1, 2]" },
		{ "{\"a\": {\"x\": 1, \"y\": null, \"z\": 3}}", "a.*", "[1, 3]" },
		{ "{\"a\": {\"x\": {\"b\": [1]}, \"y\": {\"b\": [2]}}}", "a.*.b[0]", "[1, 2]" },
		{ "{\"a\": {\"x\": {\"c\": 1}}, \"b\": {\"y\": {\"c\": 2}, \"z\": {}}}", "*.*.c", "[[1], [2]]" },
		{ "{\"a\": [{\"p\": 1, \"q\": 2}]}", "a[*].*", "[[1, 2]]" },
		/* Deviation (see sg_query.h): the rhs of ".*" reaches to the end like "[*]" does;
		 * jmespath.py 1.1.0 evaluates this to null. */
		{ "{\"a\": {\"x\": {\"b\": {\"c\": 1}}, \"y\": {\"b\": {\"c\": 2}}}}", "a.*.b.c", "[1, 2]" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

static void test_multiselect_hash_and_list_build_new_containers(void **state)
{
	static const struct eval_row rows[] = {
		{ "{\"a\": 1, \"b\": 2}", "{x: a, y: b}", "{\"x\": 1, \"y\": 2}" },
		{ "{\"a\": 1}", "{x: a, y: missing}", "{\"x\": 1, \"y\": null}" },
		{ "{\"a\": 1, \"b\": 2}", "{\"two words\": b, \"z\": a}", "{\"two words\": 2, \"z\": 1}" },
		{ "{\"a\": 1, \"b\": 2}", "[b, a, missing]", "[2, 1, null]" },
		{ "{\"a\": {\"b\": 1, \"c\": 2}}", "a.{c: c, b: b}", "{\"c\": 2, \"b\": 1}" },
		{ "{\"a\": {\"b\": 1, \"c\": 2}}", "a.[c, b]", "[2, 1]" },
		{ "{\"a\": [{\"b\": 1, \"c\": 2}, {\"b\": 3}]}", "a[*].[b, c]", "[[1, 2], [3, null]]" },
		{ "{\"a\": {\"b\": [1, 2]}}", "{n: a.b[-1], all: a.b, nest: {inner: a.b[0]}}",
		  "{\"n\": 2, \"all\": [1, 2], \"nest\": {\"inner\": 1}}" },
		{ "{\"a\": [1, 2]}", "[[a[0]], {k: [a[1]]}]", "[[1], {\"k\": [2]}]" },
		/* A repeated key keeps its first position and takes the last value. */
		{ "{\"a\": 1, \"b\": 2}", "{k: a, j: a, k: b}", "{\"k\": 2, \"j\": 1}" },
		{ "{\"a\": 1}", "{k: a}.k", "1" },
		{ "{\"a\": 1}", "[a][0]", "1" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

static void test_pipe_stops_projection_and_chains_results(void **state)
{
	static const struct eval_row rows[] = {
		{ "{\"a\": [{\"b\": [1, 2]}, {\"b\": [3, 4]}]}", "a[*].b[0]", "[1, 3]" },
		{ "{\"a\": [{\"b\": [1, 2]}, {\"b\": [3, 4]}]}", "a[*].b | [0]", "[1, 2]" },
		{ "{\"a\": {\"b\": {\"c\": 1}}}", "a | b | c", "1" },
		{ "{\"a\": [1, 2, 3]}", "a | [-1]", "3" },
		{ "{\"a\": null}", "a | [@]", "null" },
		{ "{\"a\": [{\"b\": 1}, {\"b\": 2}]}", "a[].b | {first: [0], n: @}",
		  "{\"first\": 1, \"n\": [1, 2]}" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

static void test_current_node_returns_input(void **state)
{
	static const struct eval_row rows[] = {
		{ "{\"a\": 1}", "@", "{\"a\": 1}" },
		{ "[1, 2]", "@[1]", "2" },
		{ "{\"a\": [1, null, 2]}", "a[*] | @", "[1, 2]" },
		{ "{\"a\": 1}", "{self: @, a: a}", "{\"self\": {\"a\": 1}, \"a\": 1}" },
		{ "null", "@", "null" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

/* -------------------------------------------------------------------------------------- */
/* Case-insensitive field fallback (documented deviation)                                 */
/* -------------------------------------------------------------------------------------- */

static void test_field_lookup_falls_back_to_ascii_case_insensitive_match(void **state)
{
	static const struct eval_row rows[] = {
		{ "{\"jobId\": \"j\"}", "JobId", "\"j\"" },
		{ "{\"jobId\": \"j\"}", "JOBID", "\"j\"" },
		{ "{\"JobId\": \"j\"}", "jobid", "\"j\"" },
		{ "{\"source\": {\"s3\": {\"key\": \"k\"}}}", "Source.S3.Key", "\"k\"" },
		{ "{\"source\": {\"s3\": {\"key\": \"k\"}}}", "\"SOURCE\".s3.KEY", "\"k\"" },
		/* Only ASCII letters fold: 'E' matches 'e' but not 'é'. */
		{ "{\"\\u00e9\": 1}", "\"\\u00c9\"", "null" },
		{ "{\"jobId\": \"j\"}", "job_id", "null" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

static void test_exact_key_wins_over_case_insensitive_match(void **state)
{
	static const struct eval_row rows[] = {
		/* The case-insensitive candidate comes first in the document; exact still wins. */
		{ "{\"jobid\": \"folded\", \"JobId\": \"exact\"}", "JobId", "\"exact\"" },
		{ "{\"JobId\": \"exact\", \"jobid\": \"folded\"}", "jobid", "\"folded\"" },
		/* With no exact key, the first case-insensitive match in document order is used. */
		{ "{\"JOBID\": \"first\", \"jobid\": \"second\"}", "JobId", "\"first\"" },
		{ "{\"Jobs\": [1], \"jobs\": [2]}", "jobs[0]", "2" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

/* -------------------------------------------------------------------------------------- */
/* The four seed commands                                                                 */
/* -------------------------------------------------------------------------------------- */

static void test_seed_list_signing_platforms_query_yields_list_of_objects(void **state)
{
	static const struct eval_row rows[] = {
		{ PLATFORMS_DOC, "Platforms[].{Id:PlatformId,Target:Target,Category:Category}",
		  "[{\"Id\": \"AWSLambda-SHA384-ECDSA\", \"Target\": \"SHA384-ECDSA\", \"Category\": \"AWSIoT\"},"
		  " {\"Id\": \"Notation-OCI-SHA384-ECDSA\", \"Target\": \"SHA384-ECDSA\", \"Category\": \"AWSIoT\"}]" },
		{ "{\"platforms\": []}", "Platforms[].{Id:PlatformId,Target:Target,Category:Category}", "[]" },
		{ "{}", "Platforms[].{Id:PlatformId,Target:Target,Category:Category}", "null" },
	};

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));
}

static void test_seed_start_signing_job_query_yields_job_id_text(void **state)
{
	char err[128];
	cJSON *doc = parse_or_die(START_JOB_DOC), *res = NULL;
	char *text;

	(void)state;
	assert_int_equal(sg_query_eval(doc, "jobId", &res, err, sizeof(err)), 0);
	assert_true(cJSON_IsString(res));
	/* The result stands alone: it does not carry the member name it was copied from. */
	assert_null(res->string);
	text = text_of(res);
	assert_string_equal(text, "2a9d5e1c-7f3b-4c1e-9d2a-0b6f8e4c1a77\n");
	free(text);
	cJSON_Delete(res);
	cJSON_Delete(doc);
}

static void test_seed_describe_signing_job_query_yields_key_text(void **state)
{
	char err[128];
	cJSON *doc = parse_or_die(DESCRIBE_JOB_DOC), *res = NULL;
	char *text;

	(void)state;
	assert_int_equal(sg_query_eval(doc, "signedObject.s3.key", &res, err, sizeof(err)), 0);
	text = text_of(res);
	assert_string_equal(text, "signed/2a9d5e1c-7f3b-4c1e-9d2a-0b6f8e4c1a77.zip\n");
	free(text);
	cJSON_Delete(res);
	cJSON_Delete(doc);
}

static void test_seed_list_signing_jobs_query_yields_job_summaries(void **state)
{
	static const char query[] =
		"Jobs[].{JobId:JobId,Profile:ProfileName,Created:CreatedAt,Source:Source.S3.Key}";
	static const struct eval_row rows[] = {
		{ JOBS_DOC, query,
		  "[{\"JobId\": \"job-1\", \"Profile\": \"P\", \"Created\": \"2024-05-01T12:00:00Z\", \"Source\": \"k1.zip\"},"
		  " {\"JobId\": \"job-2\", \"Profile\": \"Q\", \"Created\": \"2024-05-02T08:30:00Z\", \"Source\": \"k2.zip\"}]" },
		/* A job without a source keeps its row; only the missing field is null. */
		{ "{\"jobs\": [{\"jobId\": \"j\", \"profileName\": \"P\", \"createdAt\": \"t\"}]}", query,
		  "[{\"JobId\": \"j\", \"Profile\": \"P\", \"Created\": \"t\", \"Source\": null}]" },
	};
	cJSON *doc, *res = NULL;
	char err[128], *text;

	(void)state;
	check_eval_rows(rows, N_ROWS(rows));

	/* And with --output text: one row per job, columns in sorted key order
	 * (Created, JobId, Profile, Source), as the AWS CLI prints them. */
	doc = parse_or_die(JOBS_DOC);
	assert_int_equal(sg_query_eval(doc, query, &res, err, sizeof(err)), 0);
	text = text_of(res);
	assert_string_equal(text, "2024-05-01T12:00:00Z\tjob-1\tP\tk1.zip\n"
				  "2024-05-02T08:30:00Z\tjob-2\tQ\tk2.zip\n");
	free(text);
	cJSON_Delete(res);
	cJSON_Delete(doc);
}

/* -------------------------------------------------------------------------------------- */
/* Ownership                                                                              */
/* -------------------------------------------------------------------------------------- */

static void test_result_is_independent_copy_and_root_is_unchanged(void **state)
{
	static const char *const exprs[] = {
		"@", "jobs", "jobs[0]", "jobs[].source", "jobs[0].source.s3.key", "{j: jobs}",
		"jobs[*].[jobId, source]", "jobs | [0] | source", "nextToken", "missing",
	};
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < N_ROWS(exprs); i++) {
		cJSON *doc = parse_or_die(JOBS_DOC), *res = NULL;
		char *before = cJSON_PrintUnformatted(doc), *after, *res_before, *res_after;

		assert_int_equal(sg_query_eval(doc, exprs[i], &res, err, sizeof(err)), 0);
		after = cJSON_PrintUnformatted(doc);
		assert_string_equal(before, after);
		/* Freeing the document first must leave the result intact (ASan checks this). */
		res_before = cJSON_PrintUnformatted(res);
		cJSON_Delete(doc);
		res_after = cJSON_PrintUnformatted(res);
		assert_string_equal(res_before, res_after);
		cJSON_free(before);
		cJSON_free(after);
		cJSON_free(res_before);
		cJSON_free(res_after);
		cJSON_Delete(res);
	}
}

static void test_no_match_and_null_root_return_fresh_null(void **state)
{
	char err[128];
	cJSON *doc = parse_or_die("{\"a\": null}"), *res = NULL;

	(void)state;
	assert_int_equal(sg_query_eval(doc, "missing", &res, err, sizeof(err)), 0);
	assert_true(cJSON_IsNull(res));
	cJSON_Delete(res);
	res = NULL;
	/* A JSON null in the document comes back as a new node too, not the document's own. */
	assert_int_equal(sg_query_eval(doc, "a", &res, err, sizeof(err)), 0);
	assert_true(cJSON_IsNull(res));
	assert_ptr_not_equal(res, doc->child);
	cJSON_Delete(res);
	res = NULL;
	assert_int_equal(sg_query_eval(NULL, "a.b", &res, err, sizeof(err)), 0);
	assert_true(cJSON_IsNull(res));
	cJSON_Delete(res);
	cJSON_Delete(doc);
}

/* -------------------------------------------------------------------------------------- */
/* Errors                                                                                 */
/* -------------------------------------------------------------------------------------- */

static void check_error_rows(const struct error_row *rows, size_t n)
{
	cJSON *doc = parse_or_die(JOBS_DOC);
	size_t i, j;

	for (i = 0; i < n; i++) {
		char err[256];
		cJSON *res = (cJSON *)&err; /* must be reset to NULL on failure */
		int rc = sg_query_eval(doc, rows[i].expr, &res, err, sizeof(err));

		if (rc != -EINVAL)
			fail_msg("row %zu: '%s' returned %d, want -EINVAL", i, rows[i].expr, rc);
		assert_null(res);
		if (strstr(err, rows[i].reason) == NULL)
			fail_msg("row %zu: '%s' said \"%s\", want it to contain \"%s\"", i,
				 rows[i].expr, err, rows[i].reason);
		for (j = 0; err[j] != '\0'; j++) {
			if (err[j] < 0x20 || err[j] > 0x7e)
				fail_msg("row %zu: reason is not one line of printable ASCII: \"%s\"",
					 i, err);
		}
	}
	cJSON_Delete(doc);
}

static void test_syntax_errors_return_einval_with_offset(void **state)
{
	static const struct error_row rows[] = {
		/* unbalanced braces and brackets */
		{ "Jobs[].{JobId:JobId", "unexpected end of expression (expected ',' or '}') at offset 19" },
		{ "{a:b}}", "unexpected '}' at offset 5" },
		{ "Jobs[].{JobId:JobId}}", "unexpected '}' at offset 20" },
		{ "{a:b", "unexpected end of expression" },
		{ "[a, b", "unexpected end of expression (expected ',' or ']')" },
		{ "a[0", "unexpected end of expression (expected ']')" },
		{ "a]", "unexpected ']' at offset 1" },
		{ "}", "unexpected '}' at offset 0" },
		/* trailing or doubled dots */
		{ "a.", "unexpected end of expression (expected an identifier, '*', '[' or '{') at offset 2" },
		{ "signedObject.s3.", "unexpected end of expression" },
		{ "a..b", "unexpected '.' (expected an identifier, '*', '[' or '{') at offset 2" },
		{ ".a", "unexpected '.' at offset 0" },
		/* other malformed input */
		{ "", "unexpected end of expression at offset 0" },
		{ "   ", "unexpected end of expression at offset 3" },
		{ "a b", "unexpected 'b' at offset 2" },
		{ "{}", "unexpected '}' (expected a key) at offset 1" },
		{ "{a b}", "unexpected 'b' (expected ':') at offset 3" },
		{ "{1: a}", "unexpected '1' (expected a key) at offset 1" },
		{ "[a,]", "unexpected ']' at offset 3" },
		{ "a[b]", "unexpected 'b' (expected a number or '*') at offset 2" },
		{ "a[*x]", "unexpected 'x' (expected ']') at offset 3" },
		{ "a.1", "unexpected '1' (expected an identifier, '*', '[' or '{') at offset 2" },
		{ "a.@", "unexpected '@' (expected an identifier, '*', '[' or '{') at offset 2" },
		{ "a[]]", "unexpected ']' at offset 3" },
		{ "a[*]{b: c}", "unexpected '{' at offset 4" },
		{ "a | ", "unexpected end of expression at offset 4" },
		{ "a#b", "invalid character '#' at offset 1" },
		{ "a = b", "invalid character '=' at offset 2" },
		{ "a\001", "invalid character '\\x01' at offset 1" },
		{ "a\303\251", "invalid character '\\xc3' at offset 1" },
		{ "\"\303\251\" b", "unexpected 'b' at offset 5" },
		{ "\"\303\251\" \"x\"", "unexpected '\"x\"' at offset 5" },
		{ "{\"\303\251\"}", "unexpected '}' (expected ':') at offset 5" },
		{ "\"\303\251\".", "unexpected end of expression" },
		{ "-", "invalid character '-' at offset 0" },
		{ "a[99999999999999999999]", "array index out of range '99999999999999999999' at offset 2" },
		{ "\"abc", "unterminated quoted identifier at offset 0" },
		{ "\"a\\qb\"", "invalid escape in quoted identifier at offset 2" },
		{ "\"\\u12g4\"", "invalid \\u escape in quoted identifier at offset 1" },
		{ "\"\\ud83d\"", "unpaired surrogate in quoted identifier at offset 1" },
		{ "\"\\ude00\"", "unpaired surrogate in quoted identifier at offset 1" },
		{ "\"\\u0000\"", "NUL character in quoted identifier at offset 1" },
		{ "\"a\tb\"", "control character in quoted identifier at offset 2" },
	};

	(void)state;
	check_error_rows(rows, N_ROWS(rows));
}

static void test_unsupported_features_are_rejected_by_name(void **state)
{
	static const struct error_row rows[] = {
		{ "Jobs[?Status=='Succeeded']", "unsupported JMESPath feature '[?' (filter expression) at offset 4" },
		{ "[?a]", "unsupported JMESPath feature '[?' (filter expression) at offset 0" },
		{ "a[*][?b]", "unsupported JMESPath feature '[?'" },
		{ "length(Jobs)", "unsupported JMESPath feature 'length(' (function call) at offset 0" },
		{ "Jobs[].sort_by (@, &x)", "unsupported JMESPath feature 'sort_by (' (function call)" },
		{ "a[1:2]", "unsupported JMESPath feature '[1:' (slice) at offset 1" },
		{ "a[:2]", "unsupported JMESPath feature '[:' (slice) at offset 1" },
		{ "[::-1]", "unsupported JMESPath feature '[:' (slice) at offset 0" },
		{ "a || b", "unsupported JMESPath feature '||' (or-expression) at offset 2" },
		{ "a && b", "unsupported JMESPath feature '&&' (and-expression) at offset 2" },
		{ "!a", "unsupported JMESPath feature '!' (not-expression) at offset 0" },
		{ "a == b", "unsupported JMESPath feature '==' (comparison) at offset 2" },
		{ "a != b", "unsupported JMESPath feature '!=' (comparison)" },
		{ "a <= b", "unsupported JMESPath feature '<=' (comparison)" },
		{ "a > b", "unsupported JMESPath feature '>' (comparison)" },
		{ "(a)", "unsupported JMESPath feature '(' (parenthesised expression) at offset 0" },
		{ "`1`", "unsupported JMESPath feature '`' (JSON literal) at offset 0" },
		{ "'raw'", "unsupported JMESPath feature ''' (raw string literal) at offset 0" },
		{ "&a", "unsupported JMESPath feature '&' (expression reference)" },
		{ "{k: a || b}", "unsupported JMESPath feature '||'" },
		/* The first problem in reading order is the one reported. */
		{ "a.}[?x]", "unexpected '}' (expected an identifier, '*', '[' or '{') at offset 2" },
	};

	(void)state;
	check_error_rows(rows, N_ROWS(rows));
}

static void test_expression_length_is_capped(void **state)
{
	char *expr = malloc(SG_QUERY_MAX_EXPR_LEN + 2);
	char err[128];
	cJSON *doc = parse_or_die("{\"a\": 1}"), *res = NULL;

	(void)state;
	assert_non_null(expr);
	/* "a" plus spaces: exactly at the limit is accepted. */
	memset(expr, ' ', SG_QUERY_MAX_EXPR_LEN);
	expr[0] = 'a';
	expr[SG_QUERY_MAX_EXPR_LEN] = '\0';
	assert_int_equal(sg_query_eval(doc, expr, &res, err, sizeof(err)), 0);
	assert_true(cJSON_IsNumber(res));
	cJSON_Delete(res);
	res = NULL;
	/* One byte more is refused before anything is parsed. */
	expr[SG_QUERY_MAX_EXPR_LEN] = ' ';
	expr[SG_QUERY_MAX_EXPR_LEN + 1] = '\0';
	assert_int_equal(sg_query_eval(doc, expr, &res, err, sizeof(err)), -EINVAL);
	assert_null(res);
	assert_non_null(strstr(err, "expression longer than 4096 bytes"));
	free(expr);
	cJSON_Delete(doc);
}

/* Builds `open` n times, then `mid`, then `close` n times. */
static char *repeat_around(const char *open, size_t n, const char *mid, const char *close)
{
	size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close), i;
	char *s = malloc(n * (lo + lc) + lm + 1), *o;

	assert_non_null(s);
	o = s;
	for (i = 0; i < n; i++, o += lo)
		memcpy(o, open, lo);
	memcpy(o, mid, lm);
	o += lm;
	for (i = 0; i < n; i++, o += lc)
		memcpy(o, close, lc);
	*o = '\0';
	return s;
}

static void test_nesting_depth_is_capped(void **state)
{
	char err[128];
	cJSON *doc = parse_or_die("{\"a\": [[1]]}"), *res = NULL;
	char *expr;

	(void)state;
	/* Nesting exactly at the limit works: 63 list levels around "a" make 64. */
	expr = repeat_around("[", SG_QUERY_MAX_DEPTH - 1, "a", "]");
	assert_int_equal(sg_query_eval(doc, expr, &res, err, sizeof(err)), 0);
	assert_true(cJSON_IsArray(res));
	cJSON_Delete(res);
	res = NULL;
	free(expr);

	/* One more level is refused, through either multiselect. */
	expr = repeat_around("[", SG_QUERY_MAX_DEPTH, "a", "]");
	assert_int_equal(sg_query_eval(doc, expr, &res, err, sizeof(err)), -EINVAL);
	assert_null(res);
	assert_non_null(strstr(err, "expression nested deeper than 64 levels"));
	free(expr);
	expr = repeat_around("{k:", SG_QUERY_MAX_DEPTH, "a", "}");
	assert_int_equal(sg_query_eval(doc, expr, &res, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "nested deeper than"));
	free(expr);

	/* Projections stacked without recursing in the parser ("a[][][]...") still count. */
	{
		char flat[2 + 2 * 200 + 1];
		size_t i;

		flat[0] = 'a';
		for (i = 0; i < 200; i++)
			memcpy(flat + 1 + 2 * i, "[]", 2);
		flat[1 + 2 * 200] = '\0';
		assert_int_equal(sg_query_eval(doc, flat, &res, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "nested deeper than"));
	}
	/* A very long but flat chain is not nesting and is accepted. */
	{
		char chain[2 * 1000];
		size_t i;

		for (i = 0; i < 999; i++)
			memcpy(chain + 2 * i, "a.", 2);
		chain[2 * 999] = 'a';
		chain[2 * 999 + 1] = '\0';
		assert_int_equal(sg_query_eval(doc, chain, &res, err, sizeof(err)), 0);
		assert_true(cJSON_IsNull(res));
		cJSON_Delete(res);
	}
	cJSON_Delete(doc);
}

static void test_bad_arguments_return_einval_and_errbuf_is_optional(void **state)
{
	cJSON *doc = parse_or_die("{\"a\": 1}"), *res = NULL;
	char small[8], err[64];

	(void)state;
	assert_int_equal(sg_query_eval(doc, NULL, &res, err, sizeof(err)), -EINVAL);
	assert_null(res);
	assert_true(err[0] != '\0');
	assert_int_equal(sg_query_eval(doc, "a", NULL, err, sizeof(err)), -EINVAL);
	/* No error buffer at all. */
	assert_int_equal(sg_query_eval(doc, "a.", &res, NULL, 0), -EINVAL);
	assert_int_equal(sg_query_eval(doc, "a.", &res, NULL, 42), -EINVAL);
	/* A short buffer gets a truncated, terminated message. */
	memset(small, 'x', sizeof(small));
	assert_int_equal(sg_query_eval(doc, "a.", &res, small, sizeof(small)), -EINVAL);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	/* Success clears a previous message. */
	assert_int_equal(sg_query_eval(doc, "a", &res, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	cJSON_Delete(res);
	cJSON_Delete(doc);
}

/* cJSON allocations fail after `budget` successful ones; used to walk every failure point. */
static long alloc_budget = -1;

static void *failing_malloc(size_t n)
{
	if (alloc_budget == 0)
		return NULL;
	if (alloc_budget > 0)
		alloc_budget--;
	return malloc(n);
}

static void test_allocation_failures_return_enomem_without_leaking(void **state)
{
	static const char *const exprs[] = {
		"Jobs[].{JobId:JobId,Profile:ProfileName,Created:CreatedAt,Source:Source.S3.Key}",
		"jobs[0].source", "jobs[*].[jobId, source.s3]", "{a: jobs | [0], b: @.nextToken}",
		"jobs[].source.*",
	};
	cJSON_Hooks hooks = { failing_malloc, free };
	cJSON *doc = parse_or_die(JOBS_DOC);
	size_t i;

	(void)state;
	cJSON_InitHooks(&hooks);
	for (i = 0; i < N_ROWS(exprs); i++) {
		long budget;
		int rc = -ENOMEM;

		for (budget = 0; rc == -ENOMEM; budget++) {
			char err[64];
			cJSON *res = NULL;

			alloc_budget = budget;
			rc = sg_query_eval(doc, exprs[i], &res, err, sizeof(err));
			alloc_budget = -1;
			if (rc == -ENOMEM) {
				assert_null(res);
				assert_string_equal(err, "out of memory");
			} else {
				assert_int_equal(rc, 0);
				assert_non_null(res);
			}
			cJSON_Delete(res);
			assert_true(budget < 1000);
		}
	}
	cJSON_InitHooks(NULL);
	cJSON_Delete(doc);
}

/* "[@,@]" doubles its input: 40 of them in a pipe would need 2^40 values. The evaluator must
 * stop at SG_QUERY_MAX_VALUES with -E2BIG and a reason, not try to build the result. */
static void test_eval_refuses_result_growing_past_value_budget(void **state)
{
	char expr[SG_QUERY_MAX_EXPR_LEN + 1] = "@";
	char err[128];
	cJSON *doc = parse_or_die("{\"a\": [1, 2, 3, 4]}"), *res = NULL;
	int i;

	(void)state;
	for (i = 0; i < 40; i++)
		strcat(expr, " | [@, @]");
	assert_int_equal(sg_query_eval(doc, expr, &res, err, sizeof(err)), -E2BIG);
	assert_null(res);
	assert_string_equal(err, "the result would hold more than 1000000 values");
	/* the same doubling through projections and hashes */
	strcpy(expr, "a");
	for (i = 0; i < 30; i++)
		strcat(expr, " | {x: @, y: @}");
	assert_int_equal(sg_query_eval(doc, expr, &res, err, sizeof(err)), -E2BIG);
	assert_null(res);
	cJSON_Delete(doc);
}

/* Below the budget the same shape evaluates: 2^10 copies of a 5-value list is ~6k values. */
static void test_eval_builds_results_within_value_budget(void **state)
{
	char expr[512] = "a";
	char err[128];
	cJSON *doc = parse_or_die("{\"a\": [1, 2, 3, 4]}"), *res = NULL, *leaf;
	int i;

	(void)state;
	for (i = 0; i < 10; i++)
		strcat(expr, " | [@, @]");
	assert_int_equal(sg_query_eval(doc, expr, &res, err, sizeof(err)), 0);
	for (leaf = res, i = 0; i < 10; i++) {
		assert_int_equal(cJSON_GetArraySize(leaf), 2);
		leaf = cJSON_GetArrayItem(leaf, 1);
	}
	assert_int_equal(cJSON_GetArraySize(leaf), 4);
	assert_int_equal(cJSON_GetArrayItem(leaf, 3)->valueint, 4);
	cJSON_Delete(res);
	cJSON_Delete(doc);
}

/* A borrowed document larger than the budget is refused when it would have to be copied out,
 * but walking it without copying (a field of it) is free. */
static void test_eval_charges_copies_of_the_document(void **state)
{
	cJSON *doc = cJSON_CreateObject(), *big = cJSON_CreateArray(), *res = NULL;
	char err[128];
	int i;

	(void)state;
	assert_non_null(doc);
	assert_non_null(big);
	for (i = 0; i < SG_QUERY_MAX_VALUES; i++)
		assert_true(cJSON_AddItemToArray(big, cJSON_CreateNull()));
	cJSON_AddItemToObject(doc, "big", big);
	cJSON_AddNumberToObject(doc, "n", 7);
	/* big plus its elements is one value over the budget */
	assert_int_equal(sg_query_eval(doc, "big", &res, err, sizeof(err)), -E2BIG);
	assert_null(res);
	assert_int_equal(sg_query_eval(doc, "n", &res, err, sizeof(err)), 0);
	assert_int_equal(res->valueint, 7);
	cJSON_Delete(res);
	assert_int_equal(sg_query_eval(doc, "big[-1]", &res, err, sizeof(err)), 0);
	assert_true(cJSON_IsNull(res));
	cJSON_Delete(res);
	cJSON_Delete(cJSON_DetachItemFromArray(big, 0));
	/* exactly at the budget: big and its remaining elements */
	assert_int_equal(sg_query_eval(doc, "big", &res, err, sizeof(err)), 0);
	assert_int_equal(cJSON_GetArraySize(res), SG_QUERY_MAX_VALUES - 1);
	cJSON_Delete(res);
	cJSON_Delete(doc);
}

/* -------------------------------------------------------------------------------------- */
/* Text output                                                                            */
/* -------------------------------------------------------------------------------------- */

static void test_text_output_prints_scalars_raw_and_null_as_none(void **state)
{
	static const struct text_row rows[] = {
		{ "\"job-1\"", "job-1\n" },
		{ "\"\"", "\n" },
		{ "\"tab\\tinside\"", "tab\tinside\n" },
		{ "42", "42\n" },
		{ "-7", "-7\n" },
		{ "1.5", "1.5\n" },
		{ "0.1", "0.1\n" },
		{ "250e0", "250\n" },
		{ "1e-05", "1e-05\n" },
		{ "true", "True\n" },
		{ "false", "False\n" },
		{ "null", "None\n" },
	};

	(void)state;
	check_text_rows(rows, N_ROWS(rows));
}

static void test_text_output_prints_lists_per_aws_cli_rules(void **state)
{
	static const struct text_row rows[] = {
		/* scalars: one tab-separated line */
		{ "[\"a\", 1, true, null]", "a\t1\tTrue\tNone\n" },
		{ "[\"only\"]", "only\n" },
		/* empty containers print nothing */
		{ "[]", "" },
		{ "{}", "" },
		/* objects: one line each, columns are the sorted union of scalar keys */
		{ "[{\"b\": 1, \"a\": \"x\"}, {\"a\": \"y\", \"b\": 2}]", "x\t1\ny\t2\n" },
		{ "[{\"b\": 1, \"a\": \"x\"}, {\"a\": \"y\"}]", "x\t1\ny\t\n" },
		{ "[{\"a\": 1}, {}]", "1\n\n" },
		/* lists: one line each; scalars mixed in come first */
		{ "[[1, 2], [3, 4]]", "1\t2\n3\t4\n" },
		{ "[1, [2, 3], 4]", "1\t4\n2\t3\n" },
		{ "[[[1, 2]], [3]]", "1\t2\n3\n" },
	};

	(void)state;
	check_text_rows(rows, N_ROWS(rows));
}

static void test_text_output_prints_objects_sorted_with_nested_values_below(void **state)
{
	static const struct text_row rows[] = {
		{ "{\"b\": 2, \"a\": \"x\", \"c\": null}", "x\t2\tNone\n" },
		/* nested values follow, prefixed by their upper-cased key */
		{ "{\"jobId\": \"j\", \"source\": {\"s3\": {\"bucketName\": \"b\", \"key\": \"k\"}}}",
		  "j\nS3\tb\tk\n" },
		{ "{\"a\": [1, 2], \"b\": \"x\"}", "x\nA\t1\nA\t2\n" },
		{ "{\"tags\": [{\"key\": \"k1\", \"value\": \"v1\"}, {\"key\": \"k2\", \"value\": \"v2\"}]}",
		  "TAGS\tk1\tv1\nTAGS\tk2\tv2\n" },
		{ "{\"nextToken\": null, \"jobs\": [{\"jobId\": \"a\", \"isRevoked\": false,"
		  " \"source\": {\"s3\": {\"key\": \"k\"}}}]}",
		  "None\nJOBS\tFalse\ta\nS3\tk\n" },
		/* a column that is a container in one element is printed as compact JSON */
		{ "[{\"a\": 1}, {\"a\": [1, true]}]", "1\n[1,true]\n" },
	};

	(void)state;
	check_text_rows(rows, N_ROWS(rows));
}

static void test_text_output_of_seed_query_results(void **state)
{
	static const struct {
		const char *doc, *expr, *want;
	} rows[] = {
		{ PLATFORMS_DOC, "Platforms[].{Id:PlatformId,Target:Target,Category:Category}",
		  "AWSIoT\tAWSLambda-SHA384-ECDSA\tSHA384-ECDSA\n"
		  "AWSIoT\tNotation-OCI-SHA384-ECDSA\tSHA384-ECDSA\n" },
		{ START_JOB_DOC, "jobId", "2a9d5e1c-7f3b-4c1e-9d2a-0b6f8e4c1a77\n" },
		{ DESCRIBE_JOB_DOC, "signedObject.s3.key", "signed/2a9d5e1c-7f3b-4c1e-9d2a-0b6f8e4c1a77.zip\n" },
		{ DESCRIBE_JOB_DOC, "missingField", "None\n" },
		{ JOBS_DOC, "jobs[].jobId", "job-1\tjob-2\n" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N_ROWS(rows); i++) {
		char err[128];
		cJSON *doc = parse_or_die(rows[i].doc), *res = NULL;
		char *text;

		assert_int_equal(sg_query_eval(doc, rows[i].expr, &res, err, sizeof(err)), 0);
		text = text_of(res);
		if (strcmp(text, rows[i].want) != 0)
			fail_msg("row %zu: '%s' printed \"%s\", want \"%s\"", i, rows[i].expr, text,
				 rows[i].want);
		free(text);
		cJSON_Delete(res);
		cJSON_Delete(doc);
	}
}

static void test_text_output_of_null_pointer_prints_none(void **state)
{
	char *text;

	(void)state;
	text = text_of(NULL);
	assert_string_equal(text, "None\n");
	free(text);
	assert_int_equal(sg_query_print_text(NULL, NULL), -EINVAL);
}

static void test_text_output_reports_write_errors(void **state)
{
	cJSON *doc = parse_or_die("{\"a\": [1, 2, 3]}");
	FILE *f;

	(void)state;
	/* A stream opened for reading refuses writes outright. */
	f = fopen("/dev/null", "r");
	assert_non_null(f);
	assert_true(sg_query_print_text(f, doc) < 0);
	fclose(f);
	/* /dev/full accepts buffered writes and fails the flush with ENOSPC. */
	f = fopen("/dev/full", "w");
	if (f != NULL) {
		errno = 0;
		assert_int_equal(sg_query_print_text(f, doc), -ENOSPC);
		assert_int_equal(errno, ENOSPC); /* also left in errno for strerror(errno) callers */
		fclose(f);
	}
	cJSON_Delete(doc);
}

static void test_text_output_refuses_documents_deeper_than_cap(void **state)
{
	cJSON *root = cJSON_CreateArray(), *cur = root;
	FILE *f;
	int i;

	(void)state;
	assert_non_null(root);
	for (i = 0; i < SG_QUERY_MAX_PRINT_DEPTH + 1; i++) {
		cJSON *next = cJSON_CreateArray();

		assert_non_null(next);
		assert_true(cJSON_AddItemToArray(cur, next));
		cur = next;
	}
	assert_true(cJSON_AddItemToArray(cur, cJSON_CreateNumber(1)));
	f = fopen("/dev/null", "w");
	assert_non_null(f);
	assert_int_equal(sg_query_print_text(f, root), -ELOOP);
	/* One level less is fine. */
	assert_int_equal(sg_query_print_text(f, root->child), 0);
	fclose(f);
	cJSON_Delete(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identifiers_and_subexpressions_select_nested_values),
		cmocka_unit_test(test_missing_or_mistyped_paths_evaluate_to_null),
		cmocka_unit_test(test_index_selects_element_and_negative_counts_from_end),
		cmocka_unit_test(test_list_projection_applies_rhs_and_drops_nulls),
		cmocka_unit_test(test_flatten_projection_splices_one_level),
		cmocka_unit_test(test_object_projection_iterates_values),
		cmocka_unit_test(test_multiselect_hash_and_list_build_new_containers),
		cmocka_unit_test(test_pipe_stops_projection_and_chains_results),
		cmocka_unit_test(test_current_node_returns_input),
		cmocka_unit_test(test_field_lookup_falls_back_to_ascii_case_insensitive_match),
		cmocka_unit_test(test_exact_key_wins_over_case_insensitive_match),
		cmocka_unit_test(test_seed_list_signing_platforms_query_yields_list_of_objects),
		cmocka_unit_test(test_seed_start_signing_job_query_yields_job_id_text),
		cmocka_unit_test(test_seed_describe_signing_job_query_yields_key_text),
		cmocka_unit_test(test_seed_list_signing_jobs_query_yields_job_summaries),
		cmocka_unit_test(test_result_is_independent_copy_and_root_is_unchanged),
		cmocka_unit_test(test_no_match_and_null_root_return_fresh_null),
		cmocka_unit_test(test_syntax_errors_return_einval_with_offset),
		cmocka_unit_test(test_unsupported_features_are_rejected_by_name),
		cmocka_unit_test(test_expression_length_is_capped),
		cmocka_unit_test(test_nesting_depth_is_capped),
		cmocka_unit_test(test_bad_arguments_return_einval_and_errbuf_is_optional),
		cmocka_unit_test(test_allocation_failures_return_enomem_without_leaking),
		cmocka_unit_test(test_eval_refuses_result_growing_past_value_budget),
		cmocka_unit_test(test_eval_builds_results_within_value_budget),
		cmocka_unit_test(test_eval_charges_copies_of_the_document),
		cmocka_unit_test(test_text_output_prints_scalars_raw_and_null_as_none),
		cmocka_unit_test(test_text_output_prints_lists_per_aws_cli_rules),
		cmocka_unit_test(test_text_output_prints_objects_sorted_with_nested_values_below),
		cmocka_unit_test(test_text_output_of_seed_query_results),
		cmocka_unit_test(test_text_output_of_null_pointer_prints_none),
		cmocka_unit_test(test_text_output_reports_write_errors),
		cmocka_unit_test(test_text_output_refuses_documents_deeper_than_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* signgate lambda …: the seed's `aws lambda` commands (DESIGN §11) against the gate's API
 * (DESIGN §10). Each verb turns its flags into one API call (create-function with a package
 * makes two) and prints the API's JSON through --query/--output; see gate_client.h for how
 * failures are reported and the exit codes.
 *
 * Arguments follow the AWS CLI: structures as JSON or shorthand (Key=Value,...), any of them
 * from a file with file://PATH, packages as --zip-file fileb://PATH, S3 locations mapped to
 * BUCKET_ROOT/BUCKET/KEY. Flags of AWS's create-function that describe a runtime signgate
 * does not manage (--runtime, --role, --handler, …) are accepted and ignored, so copied
 * commands run unchanged. Values are checked by the gate, which owns the rules; the CLI only
 * checks what it must to build the request. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "gate_client.h"

/* JSON arguments are small documents; the gate refuses JSON bodies over 64 KiB anyway. */
#define ARG_FILE_MAX (64u * 1024)

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

/* The AWS CLI reads any argument from a file when it starts with file:// (text). Returns a
 * malloc'd copy of the argument or of the file's contents, or NULL after printing why. */
static char *arg_text(const char *verb, const char *opt, const char *v) {
        if (strncmp(v, "file://", 7) != 0) {
                char *s = strdup(v);
                if (!s)
                        sg_cli_error("out of memory");
                return s;
        }
        char *text = NULL;
        int r = sg_read_file(AT_FDCWD, v + 7, ARG_FILE_MAX, &text, NULL);
        if (r < 0) {
                sg_cli_error("lambda %s: --%s %s: %s", verb, opt, v + 7,
                             r == -EFBIG ? "larger than 64 KiB" : r == -EINVAL ? "not a regular file" : strerror(-r));
                return NULL;
        }
        return text;
}

/* Splits a shorthand list "a,b" or "[a,b]" into a JSON array of strings. */
static cJSON *shorthand_list(const char *v) {
        size_t n = strlen(v);
        if (n >= 2 && v[0] == '[' && v[n - 1] == ']') {
                v++;
                n -= 2;
        }
        cJSON *arr = cJSON_CreateArray();
        if (!arr)
                return NULL;
        const char *p = v, *end = v + n;
        while (p <= end) {
                const char *c = memchr(p, ',', (size_t) (end - p));
                if (!c)
                        c = end;
                if (c == p) { /* an empty item: "a,,b" or a trailing comma */
                        cJSON_Delete(arr);
                        return NULL;
                }
                char *item = strndup(p, (size_t) (c - p));
                cJSON *s = item ? cJSON_CreateString(item) : NULL;
                free(item);
                if (!s || !cJSON_AddItemToArray(arr, s)) {
                        cJSON_Delete(s);
                        cJSON_Delete(arr);
                        return NULL;
                }
                p = c + 1;
        }
        return arr;
}

/* --allowed-publishers: {"SigningProfileVersionArns":[...]} as JSON, or the shorthand
 * SigningProfileVersionArns=arn1,arn2 (a list shorthand, which the generic k=v parser
 * cannot read: its commas separate list items, not pairs). */
static cJSON *parse_publishers(const char *verb, const char *v) {
        static const char key[] = "SigningProfileVersionArns";
        _cleanup_(sg_freep) char *text = arg_text(verb, "allowed-publishers", v);
        if (!text)
                return NULL;
        cJSON *j = NULL;
        if (text[0] == '{') {
                j = cJSON_Parse(text);
                if (!cJSON_IsObject(j)) {
                        cJSON_Delete(j);
                        j = NULL;
                }
        } else if (strncmp(text, key, sizeof(key) - 1) == 0 && text[sizeof(key) - 1] == '=') {
                cJSON *arr = shorthand_list(text + sizeof(key));
                j = arr ? cJSON_CreateObject() : NULL;
                if (j && !cJSON_AddItemToObject(j, key, arr)) {
                        cJSON_Delete(j);
                        j = NULL;
                } else if (!j)
                        cJSON_Delete(arr);
        }
        if (!j)
                sg_cli_error("lambda %s: --allowed-publishers: expected SigningProfileVersionArns=ARN1,ARN2 or "
                             "{\"SigningProfileVersionArns\":[\"ARN\",...]}",
                             verb);
        return j;
}

/* --code-signing-policies: {"UntrustedArtifactOnDeployment":"Enforce"} or the shorthand
 * UntrustedArtifactOnDeployment=Enforce. */
static cJSON *parse_policies(const char *verb, const char *v) {
        _cleanup_(sg_freep) char *text = arg_text(verb, "code-signing-policies", v);
        if (!text)
                return NULL;
        cJSON *j = sg_cli_shorthand(text);
        if (!j)
                sg_cli_error("lambda %s: --code-signing-policies: expected UntrustedArtifactOnDeployment=Enforce|Warn or "
                             "{\"UntrustedArtifactOnDeployment\":\"Enforce\"}",
                             verb);
        return j;
}

/* A blob argument: fileb://PATH as the AWS CLI wants it; file://PATH and a bare path are
 * taken as the same file (nothing here reads a package as text). */
static const char *blob_path(const char *v) {
        if (strncmp(v, "fileb://", 8) == 0)
                return v + 8;
        if (strncmp(v, "file://", 7) == 0)
                return v + 7;
        return v;
}

static int s3_path(const sg_cli *cli, const char *verb, const char *bucket, const char *key, char *path, size_t len) {
        if (sg_cli_s3_path(cli, bucket, key, path, len) < 0)
                return sg_cli_error("lambda %s: bucket '%s' and key '%s' do not name a file under the bucket root %s", verb,
                                    bucket ? bucket : "", key ? key : "", cli->bucket_root);
        return 0;
}

/* Where a verb's package comes from: --zip-file, --s3-bucket with --s3-key, or a structure
 * (create-function's --code, publish-layer-version's --content) holding ZipFile or S3Bucket
 * and S3Key. Fills path and sets *have when a package was named; returns an exit code. */
static int package_source(const sg_cli *cli, const char *verb, const char *zip, const char *bucket, const char *key,
                          const char *sname, const char *svalue, char *path, size_t len, bool *have) {
        int given = !!zip + (bucket || key) + !!svalue;
        *have = false;
        if (given > 1)
                return sg_cli_error("lambda %s: give only one of --zip-file, --s3-bucket/--s3-key%s%s", verb,
                                    sname ? " or --" : "", sname ? sname : "");
        if (zip) {
                if (snprintf(path, len, "%s", blob_path(zip)) >= (int) len || !path[0])
                        return sg_cli_error("lambda %s: --zip-file '%s': expected fileb://PATH", verb, zip);
                *have = true;
                return 0;
        }
        if (bucket || key) {
                if (!bucket || !key)
                        return sg_cli_error("lambda %s: --s3-bucket and --s3-key go together", verb);
                int r = s3_path(cli, verb, bucket, key, path, len);
                *have = r == 0;
                return r;
        }
        if (!svalue)
                return 0;
        _cleanup_(sg_freep) char *text = arg_text(verb, sname, svalue);
        if (!text)
                return SG_EXIT_USAGE;
        _cleanup_(cjson_deletep) cJSON *j = sg_cli_shorthand(text);
        const cJSON *zf = cJSON_GetObjectItemCaseSensitive(j, "ZipFile");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "S3Bucket"), *k = cJSON_GetObjectItemCaseSensitive(j, "S3Key");
        for (const cJSON *e = j ? j->child : NULL; e; e = e->next)
                if (strcmp(e->string, "ZipFile") != 0 && strcmp(e->string, "S3Bucket") != 0 &&
                    strcmp(e->string, "S3Key") != 0 && strcmp(e->string, "S3ObjectVersion") != 0)
                        return sg_cli_error("lambda %s: --%s: unknown key '%s' (ZipFile, S3Bucket, S3Key)", verb, sname,
                                            e->string);
        if (cJSON_IsString(zf) && !b && !k) {
                if (snprintf(path, len, "%s", blob_path(zf->valuestring)) >= (int) len || !path[0])
                        return sg_cli_error("lambda %s: --%s ZipFile: expected fileb://PATH", verb, sname);
                *have = true;
                return 0;
        }
        if (!zf && cJSON_IsString(b) && cJSON_IsString(k)) {
                int r = s3_path(cli, verb, b->valuestring, k->valuestring, path, len);
                *have = r == 0;
                return r;
        }
        return sg_cli_error("lambda %s: --%s: expected ZipFile=fileb://PATH or S3Bucket=B,S3Key=K", verb, sname);
}

/* Prints a 2xx answer (nothing for an empty one, as the AWS CLI prints nothing for deletes). */
static int print_answer(const sg_cli *cli, cJSON *out) {
        return out ? sg_cli_print(cli, out) : SG_EXIT_OK;
}

/* Keeps the first max items of the array at key (the AWS CLI's --max-items, client side). */
static int truncate_list(const char *verb, const char *max_items, cJSON *out, const char *key) {
        uint64_t max;
        if (!max_items)
                return 0;
        if (sg_parse_u64(max_items, 1, 1000000, &max) < 0)
                return sg_cli_error("lambda %s: --max-items '%s': must be a positive number", verb, max_items);
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(out, key);
        while (cJSON_IsArray(arr) && (uint64_t) cJSON_GetArraySize(arr) > max)
                cJSON_DeleteItemFromArray(arr, cJSON_GetArraySize(arr) - 1);
        return 0;
}

/* Reports why a user value could not go into a request path (sg_gate_pathf's error r);
 * returns 0 when r is 0. The call sites pass their formats as literals so the compiler
 * checks them. */
static int path_error(int r, const char *verb, const char *opt, const char *value) {
        if (r == -EINVAL)
                return sg_cli_error("lambda %s: --%s '%s': not a valid name", verb, opt, value);
        if (r < 0)
                return sg_cli_error("lambda %s: --%s: too long", verb, opt);
        return 0;
}

/* ---- code signing configs ---- */

/* Adds Description, AllowedPublishers and CodeSigningPolicies to body from the options. */
static int csc_body(const char *verb, const char *description, const char *publishers, const char *policies,
                    cJSON *body) {
        if (description && !cJSON_AddStringToObject(body, "Description", description))
                return sg_cli_error("out of memory");
        if (publishers) {
                cJSON *p = parse_publishers(verb, publishers);
                if (!p)
                        return SG_EXIT_USAGE;
                if (!cJSON_AddItemToObject(body, "AllowedPublishers", p)) {
                        cJSON_Delete(p);
                        return sg_cli_error("out of memory");
                }
        }
        if (policies) {
                cJSON *p = parse_policies(verb, policies);
                if (!p)
                        return SG_EXIT_USAGE;
                if (!cJSON_AddItemToObject(body, "CodeSigningPolicies", p)) {
                        cJSON_Delete(p);
                        return sg_cli_error("out of memory");
                }
        }
        return 0;
}

static int cmd_create_csc(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "description"}, {.name = "allowed-publishers", .required = true},
                          {.name = "code-signing-policies"}};
        _cleanup_(cjson_deletep) cJSON *body = cJSON_CreateObject();
        cJSON *out = NULL;
        int r;

        if (sg_cli_parse("lambda create-code-signing-config", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if (!body)
                return sg_cli_error("out of memory");
        if ((r = csc_body("create-code-signing-config", o[0].value, o[1].value, o[2].value, body)) != 0)
                return r;
        if ((r = sg_gate_cli_call(cli, "CreateCodeSigningConfig", "POST", "/v1/code-signing-configs", body, &out)) != 0)
                return r;
        return print_answer(cli, out);
}

static int cmd_get_csc(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "code-signing-config-arn", .required = true}};
        char path[SG_GATE_PATH_MAX + 1];
        cJSON *out = NULL;
        int r;

        if (sg_cli_parse("lambda get-code-signing-config", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        r = sg_gate_pathf(path, sizeof(path), "/v1/code-signing-configs/%s", o[0].value);
        if ((r = path_error(r, "get-code-signing-config", o[0].name, o[0].value)) != 0)
                return r;
        if ((r = sg_gate_cli_call(cli, "GetCodeSigningConfig", "GET", path, NULL, &out)) != 0)
                return r;
        return print_answer(cli, out);
}

static int cmd_list_cscs(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "max-items"}};
        cJSON *out = NULL;
        int r;

        if (sg_cli_parse("lambda list-code-signing-configs", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if ((r = sg_gate_cli_call(cli, "ListCodeSigningConfigs", "GET", "/v1/code-signing-configs", NULL, &out)) != 0)
                return r;
        if ((r = truncate_list("list-code-signing-configs", o[0].value, out, "CodeSigningConfigs")) != 0) {
                cJSON_Delete(out);
                return r;
        }
        return print_answer(cli, out);
}

static int cmd_update_csc(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "code-signing-config-arn", .required = true}, {.name = "description"},
                          {.name = "allowed-publishers"}, {.name = "code-signing-policies"}};
        _cleanup_(cjson_deletep) cJSON *body = cJSON_CreateObject();
        char path[SG_GATE_PATH_MAX + 1];
        cJSON *out = NULL;
        int r;

        if (sg_cli_parse("lambda update-code-signing-config", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if (!body)
                return sg_cli_error("out of memory");
        r = sg_gate_pathf(path, sizeof(path), "/v1/code-signing-configs/%s", o[0].value);
        if ((r = path_error(r, "update-code-signing-config", o[0].name, o[0].value)) != 0 ||
            (r = csc_body("update-code-signing-config", o[1].value, o[2].value, o[3].value, body)) != 0)
                return r;
        if ((r = sg_gate_cli_call(cli, "UpdateCodeSigningConfig", "PUT", path, body, &out)) != 0)
                return r;
        return print_answer(cli, out);
}

static int cmd_delete_csc(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "code-signing-config-arn", .required = true}};
        char path[SG_GATE_PATH_MAX + 1];
        cJSON *out = NULL;
        int r;

        if (sg_cli_parse("lambda delete-code-signing-config", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        r = sg_gate_pathf(path, sizeof(path), "/v1/code-signing-configs/%s", o[0].value);
        if ((r = path_error(r, "delete-code-signing-config", o[0].name, o[0].value)) != 0)
                return r;
        if ((r = sg_gate_cli_call(cli, "DeleteCodeSigningConfig", "DELETE", path, NULL, &out)) != 0)
                return r;
        return print_answer(cli, out);
}

/* ---- functions ---- */

/* --layers: a JSON array of strings, or a comma-separated list (the AWS CLI takes the list
 * as separate words, which this parser's one-value options cannot). */
static cJSON *parse_layers(const char *v) {
        if (v[0] == '[') {
                cJSON *j = cJSON_Parse(v);
                bool ok = cJSON_IsArray(j);
                for (const cJSON *e = ok ? j->child : NULL; e && ok; e = e->next)
                        ok = cJSON_IsString(e);
                if (ok)
                        return j;
                cJSON_Delete(j);
                return NULL;
        }
        return shorthand_list(v);
}

static int cmd_create_function(const sg_cli *cli, int argc, char **argv) {
        /* After the first four, AWS's flags for a managed runtime: accepted so the seed's and
         * Terraform-derived commands run, and ignored (signgate promotes code, it runs none). */
        sg_cli_opt o[] = {{.name = "function-name", .required = true},
                          {.name = "code-signing-config-arn"},
                          {.name = "zip-file"},
                          {.name = "code"},
                          {.name = "layers"},
                          {.name = "runtime"},
                          {.name = "role"},
                          {.name = "handler"},
                          {.name = "description"},
                          {.name = "timeout"},
                          {.name = "memory-size"},
                          {.name = "architectures"},
                          {.name = "publish", .flag = true},
                          {.name = "no-publish", .flag = true}};
        _cleanup_(cjson_deletep) cJSON *body = cJSON_CreateObject();
        char pkg[PATH_MAX], path[SG_GATE_PATH_MAX + 1];
        bool have_pkg = false;
        cJSON *out = NULL, *rec = NULL;
        int r;

        if (sg_cli_parse("lambda create-function", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if (!body)
                return sg_cli_error("out of memory");
        if ((r = package_source(cli, "create-function", o[2].value, NULL, NULL, "code", o[3].value, pkg, sizeof(pkg),
                                &have_pkg)) != 0)
                return r;
        /* Check the package is there before the function is created, so a typo in the path
         * does not leave a function behind. */
        struct stat st;
        if (have_pkg && stat(pkg, &st) < 0)
                return sg_cli_error("%s: %s", pkg, strerror(errno));
        if (have_pkg && !S_ISREG(st.st_mode))
                return sg_cli_error("%s: not a regular file", pkg);
        r = sg_gate_pathf(path, sizeof(path), "/v1/functions/%s/code", o[0].value);
        if ((r = path_error(r, "create-function", o[0].name, o[0].value)) != 0)
                return r;
        if (!cJSON_AddStringToObject(body, "FunctionName", o[0].value) ||
            (o[1].value && !cJSON_AddStringToObject(body, "CodeSigningConfigArn", o[1].value)))
                return sg_cli_error("out of memory");
        if (o[4].value) {
                cJSON *layers = parse_layers(o[4].value);
                if (!layers)
                        return sg_cli_error("lambda create-function: --layers: expected ARN1,ARN2 or [\"ARN\",...]");
                if (!cJSON_AddItemToObject(body, "Layers", layers)) {
                        cJSON_Delete(layers);
                        return sg_cli_error("out of memory");
                }
        }
        if ((r = sg_gate_cli_call(cli, "CreateFunction", "POST", "/v1/functions", body, &out)) != 0)
                return r;
        if (!have_pkg)
                return print_answer(cli, out);
        /* AWS creates the function with its code in one call; the API takes two. The function
         * stands even if its first package is rejected, as AWS would leave none: say so by
         * printing the function with the decision, and exit as update-function-code would. */
        int code = sg_gate_cli_upload(cli, "CreateFunction", "PUT", path, pkg, &rec);
        if (!out)
                out = cJSON_CreateObject();
        if (!out) {
                cJSON_Delete(rec);
                return sg_cli_error("out of memory");
        }
        if (rec)
                cJSON_AddItemToObject(out, "Decision", rec);
        int pc = sg_cli_print(cli, out);
        return code != SG_EXIT_OK ? code : pc;
}

static int cmd_list_functions(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "max-items"}, {.name = "function-version"}, {.name = "master-region"}};
        cJSON *out = NULL;
        int r;

        if (sg_cli_parse("lambda list-functions", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if ((r = sg_gate_cli_call(cli, "ListFunctions", "GET", "/v1/functions", NULL, &out)) != 0)
                return r;
        if ((r = truncate_list("list-functions", o[0].value, out, "Functions")) != 0) {
                cJSON_Delete(out);
                return r;
        }
        return print_answer(cli, out);
}

static int cmd_put_function_csc(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "function-name", .required = true}, {.name = "code-signing-config-arn", .required = true}};
        _cleanup_(cjson_deletep) cJSON *body = cJSON_CreateObject();
        char path[SG_GATE_PATH_MAX + 1];
        cJSON *out = NULL;
        int r;

        if (sg_cli_parse("lambda put-function-code-signing-config", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        r = sg_gate_pathf(path, sizeof(path), "/v1/functions/%s/code-signing-config", o[0].value);
        if ((r = path_error(r, "put-function-code-signing-config", o[0].name, o[0].value)) != 0)
                return r;
        if (!body || !cJSON_AddStringToObject(body, "CodeSigningConfigArn", o[1].value))
                return sg_cli_error("out of memory");
        if ((r = sg_gate_cli_call(cli, "PutFunctionCodeSigningConfig", "PUT", path, body, &out)) != 0)
                return r;
        return print_answer(cli, out);
}

static int cmd_get_function_csc(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "function-name", .required = true}};
        char path[SG_GATE_PATH_MAX + 1];
        cJSON *out = NULL;
        int r;

        if (sg_cli_parse("lambda get-function-code-signing-config", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        r = sg_gate_pathf(path, sizeof(path), "/v1/functions/%s/code-signing-config", o[0].value);
        if ((r = path_error(r, "get-function-code-signing-config", o[0].name, o[0].value)) != 0)
                return r;
        if ((r = sg_gate_cli_call(cli, "GetFunctionCodeSigningConfig", "GET", path, NULL, &out)) != 0)
                return r;
        return print_answer(cli, out);
}

static int cmd_delete_function_csc(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "function-name", .required = true}};
        char path[SG_GATE_PATH_MAX + 1];
        cJSON *out = NULL;
        int r;

        if (sg_cli_parse("lambda delete-function-code-signing-config", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        r = sg_gate_pathf(path, sizeof(path), "/v1/functions/%s/code-signing-config", o[0].value);
        if ((r = path_error(r, "delete-function-code-signing-config", o[0].name, o[0].value)) != 0)
                return r;
        if ((r = sg_gate_cli_call(cli, "DeleteFunctionCodeSigningConfig", "DELETE", path, NULL, &out)) != 0)
                return r;
        return print_answer(cli, out);
}

/* ---- packages ---- */

/* Uploads and prints the decision record (on success and on rejection alike). */
static int upload_and_print(const sg_cli *cli, const char *op, const char *method, const char *path, const char *pkg) {
        cJSON *rec = NULL;
        int code = sg_gate_cli_upload(cli, op, method, path, pkg, &rec);
        if (rec) {
                int pc = sg_cli_print(cli, rec);
                if (code == SG_EXIT_OK)
                        code = pc;
        }
        return code;
}

static int cmd_update_function_code(const sg_cli *cli, int argc, char **argv) {
        /* --s3-object-version names an S3 version the bucket root has no notion of; --publish
         * is what every promotion does anyway. Both are accepted and ignored. */
        sg_cli_opt o[] = {{.name = "function-name", .required = true},
                          {.name = "zip-file"},
                          {.name = "s3-bucket"},
                          {.name = "s3-key"},
                          {.name = "s3-object-version"},
                          {.name = "publish", .flag = true},
                          {.name = "no-publish", .flag = true},
                          {.name = "architectures"},
                          {.name = "revision-id"}};
        char pkg[PATH_MAX], path[SG_GATE_PATH_MAX + 1];
        bool have = false;
        int r;

        if (sg_cli_parse("lambda update-function-code", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if ((r = package_source(cli, "update-function-code", o[1].value, o[2].value, o[3].value, NULL, NULL, pkg,
                                sizeof(pkg), &have)) != 0)
                return r;
        if (!have)
                return sg_cli_error("lambda update-function-code: give --zip-file fileb://PATH or --s3-bucket B --s3-key K");
        r = sg_gate_pathf(path, sizeof(path), "/v1/functions/%s/code", o[0].value);
        if ((r = path_error(r, "update-function-code", o[0].name, o[0].value)) != 0)
                return r;
        return upload_and_print(cli, "UpdateFunctionCode", "PUT", path, pkg);
}

static int cmd_publish_layer_version(const sg_cli *cli, int argc, char **argv) {
        sg_cli_opt o[] = {{.name = "layer-name", .required = true},
                          {.name = "zip-file"},
                          {.name = "content"},
                          {.name = "description"},
                          {.name = "compatible-runtimes"},
                          {.name = "compatible-architectures"},
                          {.name = "license-info"}};
        char pkg[PATH_MAX], path[SG_GATE_PATH_MAX + 1];
        bool have = false;
        int r;

        if (sg_cli_parse("lambda publish-layer-version", argc, argv, o, SG_ELEMENTSOF(o), NULL, 0, NULL) < 0)
                return SG_EXIT_USAGE;
        if ((r = package_source(cli, "publish-layer-version", o[1].value, NULL, NULL, "content", o[2].value, pkg,
                                sizeof(pkg), &have)) != 0)
                return r;
        if (!have)
                return sg_cli_error("lambda publish-layer-version: give --zip-file fileb://PATH or --content S3Bucket=B,S3Key=K");
        r = sg_gate_pathf(path, sizeof(path), "/v1/layers/%s/versions", o[0].value);
        if ((r = path_error(r, "publish-layer-version", o[0].name, o[0].value)) != 0)
                return r;
        return upload_and_print(cli, "PublishLayerVersion", "POST", path, pkg);
}

int sg_cmd_lambda(const sg_cli *cli, int argc, char **argv) {
        static const struct {
                const char *verb;
                int (*fn)(const sg_cli *, int, char **);
        } verbs[] = {
                {"create-code-signing-config", cmd_create_csc},
                {"get-code-signing-config", cmd_get_csc},
                {"list-code-signing-configs", cmd_list_cscs},
                {"update-code-signing-config", cmd_update_csc},
                {"delete-code-signing-config", cmd_delete_csc},
                {"create-function", cmd_create_function},
                {"list-functions", cmd_list_functions},
                {"put-function-code-signing-config", cmd_put_function_csc},
                {"get-function-code-signing-config", cmd_get_function_csc},
                {"delete-function-code-signing-config", cmd_delete_function_csc},
                {"update-function-code", cmd_update_function_code},
                {"publish-layer-version", cmd_publish_layer_version},
        };
        if (argc < 1)
                return sg_cli_error("lambda: missing verb (create-code-signing-config, update-function-code, …; see signgate help)");
        for (size_t i = 0; i < SG_ELEMENTSOF(verbs); i++)
                if (strcmp(argv[0], verbs[i].verb) == 0)
                        return verbs[i].fn(cli, argc - 1, argv + 1);
        return sg_cli_error("lambda: unknown verb '%s' (see signgate help)", argv[0]);
}

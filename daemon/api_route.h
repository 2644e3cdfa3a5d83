/* api_route.h — what the API decides about a request before any I/O (DESIGN §10): which
 * endpoint a method and path name, what a JSON body may hold, and what policy store document
 * an endpoint's body turns into.
 *
 * Everything here is pure: no libmicrohttpd, no libuv, no gate, no files, no clock and no
 * randomness (the caller passes the time and a new id). A refusal is an api_problem, the
 * status and the AWS-style error Code and Message the client is to receive; api.c and
 * api_handlers.c send it as it is, so a client sees exactly what this module wrote.
 *
 * Limits: a method is compared in full and quoted in messages up to API_METHOD_MAX bytes; a
 * path of API_PATH_MAX bytes or more is unknown; a path has at most API_SEGS_MAX segments of
 * fewer than API_SEG_MAX bytes each; a JSON body is at most API_JSON_MAX bytes (api.c stops
 * reading there).
 *
 * Contract: functions return 0 or a negative errno. -ENOMEM means an allocation failed and
 * nothing was filled; every other refusal fills *problem. ret* out-parameters are written
 * only on success. Nothing here logs. */
#ifndef SG_API_ROUTE_H
#define SG_API_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sg_store.h"

#define API_METHOD_MAX 15
#define API_PATH_MAX 1024
#define API_SEGS_MAX 6
#define API_SEG_MAX 192
#define API_ARGS_MAX 2
#define API_JSON_MAX (64 * 1024)
#define API_MESSAGE_MAX 1024

enum { API_ROLE_NONE = 0, API_ROLE_READER = 1, API_ROLE_DEPLOYER = 2, API_ROLE_ADMIN = 3 };

typedef enum { API_BODY_NONE, API_BODY_JSON, API_BODY_PACKAGE } api_body;

/* One per row of DESIGN §10's table; api_handlers.c has one handler for each. */
typedef enum {
        API_EP_PUT_FUNCTION_CODE,
        API_EP_PUBLISH_LAYER_VERSION,
        API_EP_CREATE_FUNCTION,
        API_EP_LIST_FUNCTIONS,
        API_EP_GET_FUNCTION,
        API_EP_DELETE_FUNCTION,
        API_EP_PUT_FUNCTION_CSC,
        API_EP_GET_FUNCTION_CSC,
        API_EP_DELETE_FUNCTION_CSC,
        API_EP_ROLLBACK,
        API_EP_CREATE_CSC,
        API_EP_LIST_CSCS,
        API_EP_GET_CSC,
        API_EP_UPDATE_CSC,
        API_EP_DELETE_CSC,
        API_EP_PUT_PROFILE,
        API_EP_LIST_PROFILES,
        API_EP_REVOKE_PROFILE,
        API_EP_REVOKE_SIGNATURE,
        API_EP_DECISIONS,
        API_EP_HEALTH,
        API_EP_METRICS,
        API_EP_MAX_,
} api_endpoint;

typedef struct {
        const char *method;
        const char *pattern;        /* "/v1/functions/{}/code": {} captures one segment */
        int role;                   /* the least role allowed (API_ROLE_NONE: anyone who can connect) */
        api_body body;
        api_endpoint endpoint;
        const char *const *keys;    /* API_BODY_JSON: the fields the body may have */
        size_t n_keys;
        bool body_required;         /* API_BODY_JSON: an empty body is refused (else it reads as {}) */
} api_route;

/* The routes, one per endpoint in api_endpoint order, ended by a row whose method is NULL. */
extern const api_route api_routes[];

/* A request as routing saw it. method and path are copies (truncated to their limits) for
 * the messages that quote them; args are the {} segments of the route's pattern. */
typedef struct {
        const api_route *route;     /* NULL unless api_route_match() returned 0 */
        char method[API_METHOD_MAX + 1];
        char path[API_PATH_MAX];
        char args[API_ARGS_MAX][API_SEG_MAX];
} api_match;

/* What the client receives when a request is refused. code is a static string. */
typedef struct {
        unsigned status;
        const char *code;
        char message[API_MESSAGE_MAX];
} api_problem;

/* Finds the route for method and path (a NUL-terminated URL path, already percent-decoded,
 * without the query). Always fills ret->method and ret->path. 0 with ret->route set;
 * -ENOENT (404) for a path no route has; -EOPNOTSUPP (405) for a known path with another
 * method; -ENAMETOOLONG (404) for a path of API_PATH_MAX bytes or more. A path is "/" and
 * non-empty segments separated by single slashes, one trailing slash allowed. Cost: one pass
 * over the table, O(routes × path length), no allocation. */
int api_route_match(const char *method, const char *path, api_match *ret, api_problem *problem);

/* For a package route: the function or layer name in the path must be a valid name (400).
 * Checked before the body is read. */
int api_route_check_upload(const api_match *m, api_problem *problem);

/* Parses a JSON body for m's route: one JSON object and nothing after it but whitespace,
 * whose fields are all among the route's keys, none repeated (400 otherwise). An empty body
 * is refused when the route requires one, else it reads as {}. json holds len bytes and a
 * NUL after them, as api.c collects a body (cJSON comes from the distribution, and a NUL
 * stops any parser that reads one byte too far). *ret is the caller's to cJSON_Delete. */
int api_route_body(const api_match *m, const char *json, size_t len, cJSON **ret, api_problem *problem);

/* The path argument of a function route: a valid name (400) of a declared function (404). */
int api_route_find_function(const sg_store *s, const char *name, const sg_function **ret, api_problem *problem);
/* The path argument of a code signing config route: an id or ARN (400) of a known config (404). */
int api_route_find_csc(const sg_store *s, const char *arg, const sg_csc **ret, api_problem *problem);

/* GET /v1/decisions's query arguments, each NULL when absent (400 when out of range). */
typedef struct {
        const char *function;       /* borrowed from the caller; NULL: any */
        const char *outcome;        /* promoted, promoted-with-warnings, rejected; NULL: any */
        uint64_t limit;             /* 1 to API_DECISIONS_MAX, default API_DECISIONS_DEFAULT */
} api_decisions_filter;
#define API_DECISIONS_DEFAULT 50
#define API_DECISIONS_MAX 1000
int api_route_decisions_filter(const char *function, const char *outcome, const char *limit, api_decisions_filter *ret,
                               api_problem *problem);

/* The function document of DESIGN §7: name, the ARN of csc_id (NULL or "": null) and a copy
 * of layers (NULL: []). NULL when out of memory. */
cJSON *api_route_function_doc(const char *name, const char *csc_id, const cJSON *layers);

/* What a policy-changing endpoint with a JSON body asks of the store: write doc as
 * subdir/file, then answer status with answer, and record the action on target in the audit
 * file. When unchanged is true the store already holds the document: nothing is written or
 * recorded, the answer is sent as it is. */
typedef struct {
        bool unchanged;
        const char *subdir;         /* static: "functions", "code-signing-configs", … */
        char file[96];
        cJSON *doc;
        unsigned status;
        cJSON *answer;
        const char *action;         /* static: "create-function", … */
        char target[128];
} api_change;

/* What api_route_change needs from outside: the time, and the id a new code signing config
 * gets (NULL when no randomness could be had: a 500, once the body is known to be good). */
typedef struct {
        int64_t now;
        const char *new_csc_id;
} api_change_ctx;

/* Turns a request for one of the JSON-body endpoints (create-function, put-function-csc,
 * create-csc, update-csc, put-profile, revoke-profile, revoke-signature) into the change it
 * asks for, checking the path arguments, the body (api_route_body) and the body's references
 * against s, in the order the endpoint has always checked them. The document is validated
 * with the parser the store loader uses, so the store that results still loads. -EINVAL with
 * a problem for a refused request; -EOPNOTSUPP for a route without a JSON body. The change is
 * the caller's to release with api_change_done(). */
int api_route_change(const sg_store *s, const api_match *m, const char *json, size_t len, const api_change_ctx *ctx,
                     api_change *ret, api_problem *problem);
void api_change_done(api_change *c);

#endif

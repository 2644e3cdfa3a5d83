/* api.h — the API's request state and routes, shared by api.c (the server) and
 * api_handlers.c (the endpoints). Internal to signgated. */
#ifndef SG_API_H
#define SG_API_H

#include <stdbool.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "gate.h"

#define API_SEG_MAX 192

enum { API_ROLE_NONE = 0, API_ROLE_READER = 1, API_ROLE_DEPLOYER = 2, API_ROLE_ADMIN = 3 };
typedef enum { API_BODY_NONE, API_BODY_JSON, API_BODY_PACKAGE } api_body;

typedef struct api api;
typedef struct req req;

typedef struct {
        const char *method;
        const char *pattern;  /* "/v1/functions/{}/code": {} captures one segment */
        int role;             /* the least role allowed (API_ROLE_NONE: anyone who can connect) */
        api_body body;
        sg_kind kind;         /* for package bodies */
        enum MHD_Result (*handler)(req *r);
} api_route;

extern const api_route api_routes[];

/* One request, from its headers to its completion. */
struct req {
        api *a;
        struct MHD_Connection *conn;
        char method[16];
        char path[1024];
        char args[2][API_SEG_MAX];
        const api_route *route;
        struct ucred cred;
        bool no_cred, path_known, path_too_long, denied, bad_name, too_large, unexpected_body;
        bool conflicting_length;
        char seen_length[32];
        bool responded;
        int io_error;                 /* before the body: answered at once */
        int write_error;              /* while storing the body: answered after it */
        /* JSON body */
        char *json;
        size_t json_len;
        /* package body */
        sg_kind kind;
        char id[37];
        char staging[64];
        int fd;
        uint64_t received;
        bool counted_upload;
        job *job;
        bool suspended, decided, orphan;
        int decision_err;
        sg_outcome outcome;
        cJSON *record;
};

enum MHD_Result api_send_json(req *r, unsigned status, cJSON *body);
enum MHD_Result api_error(req *r, unsigned status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
void api_req_free(req *r);
gate *api_req_gate(const req *r);
unsigned api_uploads_in_flight(gate *g);

#endif

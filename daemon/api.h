/* api.h — the API's request state, shared by api.c (the server) and api_handlers.c (the
 * endpoints); the routes themselves are api_route.h's. Internal to signgated. */
#ifndef SG_API_H
#define SG_API_H

#include <stdbool.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "api_route.h"
#include "gate.h"

typedef struct api api;
typedef struct req req;

/* One request, from its headers to its completion. */
struct req {
        api *a;
        struct MHD_Connection *conn;
        api_match m;                  /* m.route is NULL for a request no route takes */
        api_problem refusal;          /* why, then; or why the upload's name is bad */
        struct ucred cred;
        bool no_cred, denied, bad_name, too_large, unexpected_body;
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
/* Sends a refusal api_route.c wrote. */
enum MHD_Result api_send_problem(req *r, const api_problem *p);
/* Answers a routed request; a JSON body is complete in r->json. */
enum MHD_Result api_handle(req *r);
void api_req_free(req *r);
gate *api_req_gate(const req *r);
unsigned api_uploads_in_flight(gate *g);

#endif

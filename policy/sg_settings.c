#include "sg_settings.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

static void cjson_deletep(cJSON **j) { cJSON_Delete(*j); }

const char *sg_role_name(sg_role r) {
        static const char *const names[] = {"admin", "deployer", "reader"};
        return (unsigned) r < SG_ROLE_MAX_ ? names[r] : "?";
}

void sg_settings_default(sg_settings *s) {
        memset(s, 0, sizeof(*s));
        sg_limits_default(&s->limits);
        s->retain_releases = SG_DEFAULT_RETAIN_RELEASES;
        snprintf(s->socket_path, sizeof(s->socket_path), "%s", SG_DEFAULT_SOCKET);
        s->socket_mode = 0660;
        s->journal = true;
        s->hook_timeout = SG_DEFAULT_HOOK_TIMEOUT;
        s->audit_rotate_bytes = SG_DEFAULT_AUDIT_ROTATE_BYTES;
        s->audit_keep = SG_DEFAULT_AUDIT_KEEP;
}

static int uint_key(const cJSON *v, const char *key, uint64_t min, uint64_t max, uint64_t *ret, sg_error *err) {
        if (!cJSON_IsNumber(v) || v->valuedouble < (double) min || v->valuedouble > (double) max ||
            floor(v->valuedouble) != v->valuedouble)
                return sg_error_set(err, SG_REASON_MALFORMED, "%s: must be an integer from %llu to %llu", key,
                                    (unsigned long long) min, (unsigned long long) max);
        *ret = (uint64_t) v->valuedouble;
        return 0;
}

static int parse_limits(const cJSON *j, sg_limits *l, sg_error *err) {
        uint64_t v;
        int r;

        if (!cJSON_IsObject(j))
                return sg_error_set(err, SG_REASON_MALFORMED, "limits: must be an object");
        for (const cJSON *c = j->child; c; c = c->next) {
                char key[96];
                snprintf(key, sizeof(key), "limits.%.64s", c->string);
                if (strcmp(c->string, "packageBytes") == 0) {
                        if ((r = uint_key(c, key, 22, 1ull << 40, &v, err)) < 0)
                                return r;
                        l->package_bytes = v;
                } else if (strcmp(c->string, "inflatedBytes") == 0) {
                        if ((r = uint_key(c, key, 0, 1ull << 42, &v, err)) < 0)
                                return r;
                        l->inflated_bytes = v;
                } else if (strcmp(c->string, "entries") == 0) {
                        if ((r = uint_key(c, key, 1, 1000000, &v, err)) < 0)
                                return r;
                        l->entries = (uint32_t) v;
                } else if (strcmp(c->string, "nameBytes") == 0) {
                        if ((r = uint_key(c, key, 1, 4096, &v, err)) < 0)
                                return r;
                        l->name_bytes = (uint32_t) v;
                } else if (strcmp(c->string, "depth") == 0) {
                        if ((r = uint_key(c, key, 1, 1024, &v, err)) < 0)
                                return r;
                        l->depth = (uint32_t) v;
                } else
                        return sg_error_set(err, SG_REASON_MALFORMED, "%s: unknown key", key);
        }
        return 0;
}

static int parse_names(const cJSON *j, const char *key, char (*out)[64], size_t *n, sg_error *err) {
        if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) > SG_ROLE_MAX_MEMBERS)
                return sg_error_set(err, SG_REASON_MALFORMED, "%s: must be an array of at most %d names", key,
                                    SG_ROLE_MAX_MEMBERS);
        *n = 0;
        for (const cJSON *c = j->child; c; c = c->next) {
                if (!cJSON_IsString(c) || !c->valuestring[0] || strlen(c->valuestring) >= 64)
                        return sg_error_set(err, SG_REASON_MALFORMED, "%s: every entry must be a user or group name", key);
                snprintf(out[(*n)++], 64, "%s", c->valuestring);
        }
        return 0;
}

static int parse_roles(const cJSON *j, sg_settings *s, sg_error *err) {
        int r;
        if (!cJSON_IsObject(j))
                return sg_error_set(err, SG_REASON_MALFORMED, "roles: must be an object");
        for (const cJSON *c = j->child; c; c = c->next) {
                int role = -1;
                for (int i = 0; i < SG_ROLE_MAX_; i++)
                        if (strcmp(c->string, sg_role_name((sg_role) i)) == 0)
                                role = i;
                char key[96];
                snprintf(key, sizeof(key), "roles.%.64s", c->string);
                if (role < 0)
                        return sg_error_set(err, SG_REASON_MALFORMED, "%s: unknown role (admin, deployer or reader)", key);
                if (!cJSON_IsObject(c))
                        return sg_error_set(err, SG_REASON_MALFORMED, "%s: must be an object with users and groups", key);
                for (const cJSON *m = c->child; m; m = m->next) {
                        char mkey[160];
                        snprintf(mkey, sizeof(mkey), "%s.%.32s", key, m->string);
                        sg_role_members *rm = &s->roles[role];
                        if (strcmp(m->string, "users") == 0)
                                r = parse_names(m, mkey, rm->users, &rm->n_users, err);
                        else if (strcmp(m->string, "groups") == 0)
                                r = parse_names(m, mkey, rm->groups, &rm->n_groups, err);
                        else
                                r = sg_error_set(err, SG_REASON_MALFORMED, "%s: unknown key", mkey);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int parse_socket(const cJSON *j, sg_settings *s, sg_error *err) {
        if (!cJSON_IsObject(j))
                return sg_error_set(err, SG_REASON_MALFORMED, "socket: must be an object");
        for (const cJSON *c = j->child; c; c = c->next) {
                if (strcmp(c->string, "path") == 0) {
                        if (!cJSON_IsString(c) || c->valuestring[0] != '/' || strlen(c->valuestring) >= 108)
                                return sg_error_set(err, SG_REASON_MALFORMED, "socket.path: must be an absolute path under 108 bytes");
                        snprintf(s->socket_path, sizeof(s->socket_path), "%s", c->valuestring);
                } else if (strcmp(c->string, "group") == 0) {
                        if (!cJSON_IsString(c) || !c->valuestring[0] || strlen(c->valuestring) >= sizeof(s->socket_group))
                                return sg_error_set(err, SG_REASON_MALFORMED, "socket.group: must be a group name");
                        snprintf(s->socket_group, sizeof(s->socket_group), "%s", c->valuestring);
                } else if (strcmp(c->string, "mode") == 0) {
                        const char *m = cJSON_IsString(c) ? c->valuestring : NULL;
                        char *end = NULL;
                        unsigned long v = m ? strtoul(m, &end, 8) : 0;
                        if (!m || !*m || *end || v > 0777 || (v & 0600) != 0600)
                                return sg_error_set(err, SG_REASON_MALFORMED,
                                                    "socket.mode: must be an octal string such as \"0660\" that keeps the owner's rw");
                        s->socket_mode = (unsigned) v;
                } else
                        return sg_error_set(err, SG_REASON_MALFORMED, "socket.%.64s: unknown key", c->string);
        }
        return 0;
}

static int parse_hook(const cJSON *j, sg_settings *s, sg_error *err) {
        uint64_t v;
        int r;
        if (!cJSON_IsObject(j))
                return sg_error_set(err, SG_REASON_MALFORMED, "hook: must be an object with argv and timeoutSeconds");
        for (const cJSON *c = j->child; c; c = c->next) {
                if (strcmp(c->string, "argv") == 0) {
                        if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) < 1 || cJSON_GetArraySize(c) > SG_HOOK_MAX_ARGS)
                                return sg_error_set(err, SG_REASON_MALFORMED, "hook.argv: must be an array of 1 to %d strings",
                                                    SG_HOOK_MAX_ARGS);
                        s->hook_argc = 0;
                        for (const cJSON *a = c->child; a; a = a->next) {
                                if (!cJSON_IsString(a) || strlen(a->valuestring) >= SG_HOOK_MAX_ARG)
                                        return sg_error_set(err, SG_REASON_MALFORMED, "hook.argv: every entry must be a string under %d bytes",
                                                            SG_HOOK_MAX_ARG);
                                snprintf(s->hook_argv[s->hook_argc++], SG_HOOK_MAX_ARG, "%s", a->valuestring);
                        }
                        /* No shell and no PATH search: the command is exactly what the admin named. */
                        if (s->hook_argv[0][0] != '/')
                                return sg_error_set(err, SG_REASON_MALFORMED, "hook.argv: the command must be an absolute path");
                } else if (strcmp(c->string, "timeoutSeconds") == 0) {
                        if ((r = uint_key(c, "hook.timeoutSeconds", 1, 3600, &v, err)) < 0)
                                return r;
                        s->hook_timeout = (uint32_t) v;
                } else
                        return sg_error_set(err, SG_REASON_MALFORMED, "hook.%.64s: unknown key", c->string);
        }
        if (s->hook_argc == 0)
                return sg_error_set(err, SG_REASON_MALFORMED, "hook.argv: missing");
        return 0;
}

static int parse_audit(const cJSON *j, sg_settings *s, sg_error *err) {
        uint64_t v;
        int r;
        if (!cJSON_IsObject(j))
                return sg_error_set(err, SG_REASON_MALFORMED, "audit: must be an object");
        for (const cJSON *c = j->child; c; c = c->next) {
                if (strcmp(c->string, "rotateBytes") == 0) {
                        if ((r = uint_key(c, "audit.rotateBytes", 0, 1ull << 40, &v, err)) < 0)
                                return r;
                        s->audit_rotate_bytes = v;
                } else if (strcmp(c->string, "keepFiles") == 0) {
                        if ((r = uint_key(c, "audit.keepFiles", 1, 10000, &v, err)) < 0)
                                return r;
                        s->audit_keep = (uint32_t) v;
                } else
                        return sg_error_set(err, SG_REASON_MALFORMED, "audit.%.64s: unknown key", c->string);
        }
        return 0;
}

int sg_settings_parse(const char *text, size_t len, sg_settings *ret, sg_error *err) {
        const char *end = NULL;
        _cleanup_(cjson_deletep) cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
        sg_settings s;
        uint64_t v;
        int r;

        sg_settings_default(&s);
        if (!j) {
                size_t off = end ? (size_t) (end - text) : 0;
                return sg_error_set(err, SG_REASON_MALFORMED, "not valid JSON near byte %zu", off);
        }
        while (end && end < text + len && (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r'))
                end++;
        if (end != text + len)
                return sg_error_set(err, SG_REASON_MALFORMED, "not valid JSON: unexpected bytes after the object at byte %zu",
                                    (size_t) (end - text));
        if (!cJSON_IsObject(j))
                return sg_error_set(err, SG_REASON_MALFORMED, "the settings must be a JSON object");
        for (const cJSON *c = j->child; c; c = c->next) {
                const char *k = c->string;
                r = 0;
                for (const cJSON *o = c->next; o; o = o->next)
                        if (strcmp(o->string, k) == 0)
                                return sg_error_set(err, SG_REASON_MALFORMED, "%.64s: given twice", k);
                if (strcmp(k, "unboundFunctions") == 0) {
                        if (!cJSON_IsString(c) || (strcmp(c->valuestring, "reject") != 0 && strcmp(c->valuestring, "allow") != 0))
                                return sg_error_set(err, SG_REASON_MALFORMED, "unboundFunctions: must be \"reject\" or \"allow\"");
                        s.unbound_allow = strcmp(c->valuestring, "allow") == 0;
                } else if (strcmp(k, "limits") == 0)
                        r = parse_limits(c, &s.limits, err);
                else if (strcmp(k, "retainReleases") == 0) {
                        if ((r = uint_key(c, k, 1, 1000, &v, err)) == 0)
                                s.retain_releases = (uint32_t) v;
                } else if (strcmp(k, "roles") == 0)
                        r = parse_roles(c, &s, err);
                else if (strcmp(k, "socket") == 0)
                        r = parse_socket(c, &s, err);
                else if (strcmp(k, "hook") == 0)
                        r = parse_hook(c, &s, err);
                else if (strcmp(k, "audit") == 0)
                        r = parse_audit(c, &s, err);
                else if (strcmp(k, "journal") == 0) {
                        if (!cJSON_IsBool(c))
                                return sg_error_set(err, SG_REASON_MALFORMED, "journal: must be true or false");
                        s.journal = cJSON_IsTrue(c);
                } else
                        return sg_error_set(err, SG_REASON_MALFORMED, "%.64s: unknown key", k);
                if (r < 0)
                        return r;
        }
        *ret = s;
        return 0;
}

int sg_settings_load(const char *path, sg_settings *ret, sg_error *err) {
        _cleanup_(sg_freep) char *text = NULL;
        size_t len = 0;
        int r = sg_read_file(AT_FDCWD, path, SG_SETTINGS_MAX_BYTES, &text, &len);
        if (r == -ENOENT) {
                sg_settings_default(ret);
                return r;
        }
        if (r < 0)
                return r;
        return sg_settings_parse(text, len, ret, err);
}
